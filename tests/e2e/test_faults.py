"""Bad days: injected faults, clock skew and a tight limit change nothing in the figures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import enclave_settings
from e2e.test_shared_budget import StatusCounter
from perf_aggregator.api.app import create_app
from perf_aggregator.client import Credentials, EnclaveClient, VerificationPolicy
from perf_aggregator.clock import now_ms
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.simulator.accounts import Account, generate_account
from perf_aggregator.simulator.binance import SimulatedBinance, create_binance_app
from perf_aggregator.simulator.faults import FaultInjector, FaultPlan

SESSIONS = 8
SEED = 23


def accounts(sim: SimulatedBinance) -> list[Account]:
    end = now_ms() - 600_000
    return [
        generate_account(SEED + i, end - 3 * 86_400_000, end, trades=120, prices=sim.prices)
        for i in range(SESSIONS)
    ]


async def backfill_all(enclave: str, exchange: str, accounts: list[Account]) -> list[dict[str, Any]]:
    policy = VerificationPolicy(allow_simulated=True, allowed_data_sources=frozenset({exchange}))
    async with EnclaveClient(enclave, timeout=120) as client:

        async def one(account: Account) -> dict[str, Any]:
            credentials = Credentials(
                exchange="binance", api_key=account.api_key, api_secret=account.api_secret
            )
            for _ in range(20):  # registration validates with the exchange: a fault there is a 503
                try:
                    registration = await client.register(credentials, policy=policy)
                    break
                except Exception as exc:
                    if getattr(exc, "status", None) != 503:
                        raise
                    await asyncio.sleep(0.2)
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                metrics = await client.metrics(registration.session_id, registration.token)
                if metrics["sync"]["backfill_complete"] and metrics["totals"]["unpriced_trades"] == 0:
                    return metrics
                await asyncio.sleep(0.5)
            page = await client.trades(registration.session_id, registration.token, limit=1000)
            unpriced = [
                (t["symbol"], t["timestamp"], t["fee_currency"])
                for t in page["trades"]
                if t["value_usd"] is None
            ]
            raise AssertionError(
                f"{exchange}: backfill incomplete: {metrics['sync']} unpriced: {unpriced[:5]}"
            )

        return await asyncio.gather(*(one(a) for a in accounts))


@dataclass
class Exchanges:
    clean: SimulatedBinance
    clean_url: str
    faulty: SimulatedBinance
    faulty_url: str
    injector: FaultInjector
    observed: StatusCounter


@pytest.fixture
def exchanges() -> Iterator[Exchanges]:
    clean = SimulatedBinance(seed=SEED)
    # The faulty exchange's clock runs 1.5 s behind ours: our timestamps look early to it (-1021).
    faulty = SimulatedBinance(seed=SEED, now_ms=lambda: now_ms() - 1500)
    injector = FaultInjector(
        create_binance_app(faulty), FaultPlan.evenly(0.20, seed=SEED, timeout_hold_s=2.0)
    )
    observed = StatusCounter(injector)
    with serve_in_thread(create_binance_app(clean)) as clean_url, serve_in_thread(observed) as faulty_url:
        yield Exchanges(clean, clean_url, faulty, faulty_url, injector, observed)


async def test_faults_skew_and_a_tight_limit_leave_the_figures_unchanged(
    exchanges: Exchanges, tmp_path: Path
) -> None:
    books = accounts(exchanges.clean)
    for account in books:  # the same accounts on both exchanges
        exchanges.clean.add_account(account)
        exchanges.faulty.add_account(account)

    settings = {"registrations_per_minute": 1000}
    clean_app = create_app(enclave_settings(tmp_path / "a", exchanges.clean_url, **settings))
    with serve_in_thread(clean_app) as enclave:
        expected = await backfill_all(enclave, exchanges.clean_url, books)
    faulty_app = create_app(enclave_settings(tmp_path / "b", exchanges.faulty_url, **settings))
    with serve_in_thread(faulty_app) as enclave:
        got = await backfill_all(enclave, exchanges.faulty_url, books)

    for account, want, have in zip(books, expected, got, strict=True):
        assert have["sync"]["trades_fetched"] == want["sync"]["trades_fetched"] == len(account.raw_trades())
        assert have["symbols"] == want["symbols"] and have["totals"] == want["totals"]
    assert exchanges.observed.statuses[418] == 0
    counts = exchanges.injector.counts
    injected = {kind: n for kind, n in counts.items() if kind != "ok"}
    assert set(injected) == {"server_error", "reset", "timeout", "malformed", "stale"}, counts
    assert sum(injected.values()) >= 0.1 * sum(counts.values())
