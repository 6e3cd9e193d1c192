"""Issue 4's acceptance: 50 sessions over Binance (spot and USD-M), Coinbase and Kraken on a bad day.

Every exchange answers through a :class:`FaultInjector` failing 20% of requests (5xx, resets,
timeouts, malformed bodies, stale or duplicated pages) with latency, runs its clock behind ours,
and has a tight rate limit (Binance: half its real weight limit; Coinbase and Kraken: their
documented ones, Kraken's Starter tier). Every backfill completes with every trade exactly once,
no 418 (and no 429) is ever answered, Binance's weight never passes its limit, and each
session's figures equal those of a fault-free run of the same accounts on clean simulators
(run at the same time, on their own enclave).

A timeout holds the answer for ``timeout_hold_s`` and then drops the connection: the connectors'
own timeouts (10-30 s) are left as they are, so the hold is kept short.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conftest import enclave_settings
from perf_aggregator.api.app import create_app
from perf_aggregator.client import Credentials, EnclaveClient, EnclaveError, VerificationPolicy
from perf_aggregator.clock import now_ms
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.simulator.accounts import generate_account
from perf_aggregator.simulator.binance import SimulatedBinance, create_binance_app
from perf_aggregator.simulator.binance_usdm import enable_futures, futures_accounts, generate_futures_account
from perf_aggregator.simulator.coinbase import CoinbaseAccount, SimulatedCoinbase, create_coinbase_app
from perf_aggregator.simulator.faults import FaultInjector, FaultPlan
from perf_aggregator.simulator.kraken import SimulatedKraken, create_kraken_app, generate_kraken_account

SEED = 41
SPOT, FUTURES, COINBASE, KRAKEN = 12, 4, 17, 17
TRADES = 24
KRAKEN_TRADES = 80
"""Two ``TradesHistory`` pages (50 a page): Kraken's walk pages under faults."""
HOUR_MS = 3_600_000
SKEW_MS = 1_500
"""How far every faulty exchange's clock runs behind ours."""
BINANCE_WEIGHT_LIMIT = 3000
"""Binance's spot weight per minute on the faulty simulator: half the real one."""
FAULTS = FaultPlan.evenly(0.20, seed=SEED, latency_s=0.05, timeout_hold_s=1.0)
BACKFILL_DEADLINE_S = 240


class Observer:
    """What an exchange itself answered (inside the fault injector): HTTP statuses, Kraken's
    rate-limit errors (which come with HTTP 200), and the peak of Binance's weight header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.statuses: Counter[int] = Counter()
        self.kraken_rate_limited = 0
        self.peak_weight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] += 1
                for name, value in message.get("headers", []):
                    if name.lower() == b"x-mbx-used-weight-1m":
                        self.peak_weight = max(self.peak_weight, int(value))
            elif b"EAPI:Rate limit exceeded" in message.get("body", b""):
                self.kraken_rate_limited += 1
            await send(message)

        await self.app(scope, receive, observe)


@dataclass
class Account:
    """One session to open: its credentials on each side, and the trades the exchange holds."""

    exchange: str
    account_type: str
    clean_key: tuple[str, str]
    faulty_key: tuple[str, str]
    trades: Counter[tuple[str, str]]
    """``(id, side)`` of every trade (Binance's self-trades are two records with one id)."""


@dataclass
class Side:
    """The exchanges of one run, by id, as the enclave reaches them."""

    urls: dict[str, str] = field(default_factory=dict)
    observers: dict[str, Observer] = field(default_factory=dict)
    injectors: dict[str, FaultInjector] = field(default_factory=dict)


@dataclass
class World:
    accounts: list[Account]
    clean: Side
    faulty: Side


def _binance_accounts(clean: SimulatedBinance, faulty: SimulatedBinance, end: int) -> list[Account]:
    accounts = []
    symbols = ("BTCUSDT", "ETHBTC", "ETHUSDT")
    for i in range(SPOT):
        account = generate_account(
            SEED + i, end - 6 * HOUR_MS, end, trades=TRADES, prices=clean.prices, symbols=symbols[: 2 + i % 2]
        )
        clean.add_account(account)
        faulty.add_account(account)
        key = (account.api_key, account.api_secret)
        ids = Counter((str(t["id"]), "buy" if t["isBuyer"] else "sell") for t in account.raw_trades())
        accounts.append(Account("binance", "spot", key, key, ids))
    return accounts


def _futures_accounts(clean: SimulatedBinance, faulty: SimulatedBinance, end: int) -> list[Account]:
    accounts = []
    for sim in (clean, faulty):
        enable_futures(sim)
    for i in range(FUTURES):
        spot, futures = generate_futures_account(
            SEED + 100 + i, end - 6 * HOUR_MS, end, trades=TRADES, prices=clean.prices
        )
        for sim in (clean, faulty):
            sim.add_account(spot)
            futures_accounts(sim)[spot.api_key] = futures
        key = (spot.api_key, spot.api_secret)
        ids = Counter((str(t.id), "buy" if t.is_buyer else "sell") for t in futures.ledger.trades)
        accounts.append(Account("binance", "futures", key, key, ids))
    return accounts


def _coinbase_accounts(clean: SimulatedCoinbase, faulty: SimulatedCoinbase, end: int) -> list[Account]:
    accounts = []
    for i in range(COINBASE):
        account: CoinbaseAccount = clean.create_account(
            SEED + 200 + i, TRADES, start_ms=end - 6 * HOUR_MS, end_ms=end
        )
        faulty.add_account(account)
        key = (account.key_name, account.private_key_pem)
        ids = Counter((f["trade_id"], f["side"].lower()) for f in account.fills)
        accounts.append(Account("coinbase", "spot", key, key, ids))
    return accounts


def _kraken_accounts(clean: SimulatedKraken, faulty: SimulatedKraken, end: int) -> list[Account]:
    accounts = []
    for i in range(KRAKEN):
        # The same trades twice, with a key of each simulator's own (nonces and counters are per key).
        made = [
            sim.add_account(
                generate_kraken_account(
                    SEED + 300 + i, end - 6 * HOUR_MS, end, trades=KRAKEN_TRADES, prices=clean.prices
                )
            )
            for sim in (clean, faulty)
        ]
        ids = Counter((t.txid, t.type) for t in made[0].trades)
        assert ids == Counter((t.txid, t.type) for t in made[1].trades)
        keys = [(a.api_key, a.api_secret) for a in made]
        accounts.append(Account("kraken", "spot", keys[0], keys[1], ids))
    return accounts


@pytest.fixture
def world() -> Iterator[World]:
    def skewed() -> int:
        return now_ms() - SKEW_MS

    binance = (
        SimulatedBinance(seed=SEED),
        SimulatedBinance(seed=SEED, weight_limit=BINANCE_WEIGHT_LIMIT, now_ms=skewed),
    )
    coinbase = (SimulatedCoinbase(seed=SEED), SimulatedCoinbase(seed=SEED, now_ms=skewed, wall_ms=skewed))
    kraken = (
        SimulatedKraken(seed=SEED, tier="starter"),
        SimulatedKraken(seed=SEED, tier="starter", now_ms=skewed),
    )
    end = now_ms() - 10 * 60_000
    accounts = [
        *_binance_accounts(*binance, end),
        *_futures_accounts(*binance, end),
        *_coinbase_accounts(*coinbase, end),
        *_kraken_accounts(*kraken, end),
    ]
    assert len(accounts) == 50
    apps = {
        "binance": (create_binance_app(binance[0]), create_binance_app(binance[1])),
        "coinbase": (create_coinbase_app(coinbase[0]), create_coinbase_app(coinbase[1])),
        "kraken": (create_kraken_app(kraken[0]), create_kraken_app(kraken[1])),
    }
    clean, faulty = Side(), Side()
    with ExitStack() as stack:
        for exchange, (clean_app, faulty_app) in apps.items():
            clean.urls[exchange] = stack.enter_context(serve_in_thread(clean_app))
            faulty.observers[exchange] = Observer(faulty_app)
            faulty.injectors[exchange] = FaultInjector(faulty.observers[exchange], FAULTS)
            faulty.urls[exchange] = stack.enter_context(serve_in_thread(faulty.injectors[exchange]))
        yield World(accounts, clean, faulty)


@dataclass
class Outcome:
    metrics: dict[str, Any]
    trades: Counter[tuple[str, str]]
    warnings: tuple[str, ...]


async def run_sessions(world: World, side: Side, data_dir: Path) -> list[Outcome]:
    """Register every account on a fresh enclave reading ``side``; wait for every backfill."""
    settings = enclave_settings(
        data_dir,
        side.urls["binance"],
        exchange_urls=side.urls,
        registrations_per_minute=1000,
        poll_min_s=10.0,
        poll_max_s=60.0,
        log_level="warning",
    )
    policy = VerificationPolicy(allow_simulated=True, allowed_data_sources=frozenset(side.urls.values()))
    faulty = side.injectors != {}
    with serve_in_thread(create_app(settings)) as enclave:
        async with EnclaveClient(enclave, timeout=120) as client:

            async def one(account: Account) -> Outcome:
                api_key, api_secret = account.faulty_key if faulty else account.clean_key
                credentials = Credentials(
                    exchange=account.exchange,
                    api_key=api_key,
                    api_secret=api_secret,
                    account_type=account.account_type,
                )
                for attempt in range(30):  # registration validates with the exchange: a fault is a 503
                    try:
                        registration = await client.register(credentials, policy=policy)
                        break
                    except EnclaveError as exc:
                        if exc.status != 503 or attempt == 29:
                            raise
                        await asyncio.sleep(0.2)
                deadline = time.monotonic() + BACKFILL_DEADLINE_S
                while True:
                    metrics = await client.metrics(registration.session_id, registration.token)
                    sync = metrics["sync"]
                    if sync["backfill_complete"] and metrics["totals"]["unpriced_trades"] == 0:
                        break
                    if time.monotonic() > deadline:
                        raise AssertionError(f"{account.exchange}: backfill incomplete: {sync}")
                    await asyncio.sleep(0.5)
                listed: Counter[tuple[str, str]] = Counter()
                cursor = None
                while True:
                    page = await client.trades(
                        registration.session_id, registration.token, limit=7, cursor=cursor
                    )
                    listed.update((t["id"], t["side"]) for t in page["trades"])
                    cursor = page["next_cursor"]
                    if cursor is None:
                        break
                return Outcome(metrics, listed, registration.warnings)

            return await asyncio.gather(*(one(a) for a in world.accounts))


async def test_fifty_sessions_on_a_bad_day_read_every_trade_once_and_match_a_clean_run(
    world: World, tmp_path: Path
) -> None:
    started = time.monotonic()
    expected, got = await asyncio.gather(  # separate enclaves, exchanges and budgets
        run_sessions(world, world.clean, tmp_path / "clean"),
        run_sessions(world, world.faulty, tmp_path / "faulty"),
    )
    elapsed_s = time.monotonic() - started
    statuses = {name: observer.statuses for name, observer in world.faulty.observers.items()}
    limited = {name: counts[429] for name, counts in statuses.items()}
    limited["kraken"] += world.faulty.observers["kraken"].kraken_rate_limited
    print(
        f"\nboth runs {elapsed_s:.1f} s; faults injected "
        f"{ {n: dict(i.counts) for n, i in world.faulty.injectors.items()} }; "
        f"exchange answers {statuses}; rate limited {limited}; "
        f"Binance peak weight {world.faulty.observers['binance'].peak_weight}/{BINANCE_WEIGHT_LIMIT}"
    )

    for account, want, have in zip(world.accounts, expected, got, strict=True):
        label = f"{account.exchange} {account.account_type}"
        assert have.trades == account.trades, label  # nothing missing, nothing doubled
        assert want.trades == account.trades, label
        assert have.metrics["sync"]["trades_fetched"] == sum(account.trades.values()), label
        assert have.metrics["totals"] == want.metrics["totals"], label
        assert have.metrics["symbols"] == want.metrics["symbols"], label
        kraken = account.exchange == "kraken"
        assert any("withdraw" in w for w in have.warnings) == kraken, label

    # One budget per host for every session: never over the limit, never told to slow down.
    assert all(counts[418] == 0 for counts in statuses.values()), statuses
    assert sum(limited.values()) == 0, limited
    assert 0 < world.faulty.observers["binance"].peak_weight <= BINANCE_WEIGHT_LIMIT
    injected: Counter[str] = Counter()
    for name, injector in world.faulty.injectors.items():
        failed = sum(n for kind, n in injector.counts.items() if kind != "ok")
        assert failed >= 0.1 * sum(injector.counts.values()), (name, injector.counts)
        injected.update(injector.counts)
    assert set(injected) == {"ok", "server_error", "reset", "timeout", "malformed", "stale"}, injected
