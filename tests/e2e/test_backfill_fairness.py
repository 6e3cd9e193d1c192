"""Issue 4: new sessions' backfills cannot starve a live session.

One budget per exchange host is shared by every session and served in arrival order; each
session has at most one request in flight, so each request of a live poll waits behind at most
one request per backfilling session. A live session whose backfill is done keeps seeing its new
trades within a bound computed from the poll interval and the budget's rate, while several
large backfills (many ``fromId`` pages each) are still running on the same host.

The simulator's weight limit is low enough that the budget paces every request. All accounts
trade BTC/USDT only with fees in BTC or USDT, and the large histories lie inside the span the
live session's backfill already fetched candles for, so a live poll never waits for candles
another session needs (the price service fetches for one session at a time).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import enclave_settings
from perf_aggregator.api.app import create_app
from perf_aggregator.client import Credentials, EnclaveClient, VerificationPolicy
from perf_aggregator.client.models import Registration
from perf_aggregator.clock import now_ms
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.exchanges.binance import WEIGHTS
from perf_aggregator.exchanges.budget import BURST, HEADROOM, MINUTE_S
from perf_aggregator.polling.scheduler import JITTER
from perf_aggregator.simulator.accounts import Account, generate_account
from perf_aggregator.simulator.binance import SimulatedBinance, create_binance_app

MINUTE_MS = 60_000
WEIGHT_LIMIT = 3000
"""The simulator's weight per minute, which the enclave adopts from ``exchangeInfo``."""
SLOT_S = max(WEIGHTS.values()) * MINUTE_S / (WEIGHT_LIMIT * HEADROOM)
"""The budget's time for one request of the largest weight (``myTrades``): 0.5 s."""
BURST_REQUESTS = WEIGHT_LIMIT * BURST / max(WEIGHTS.values())
BACKFILLS = 4
BIG_TRADES = 25_000
BIG_PAGES = BIG_TRADES // 1000
"""``fromId`` pages of 1000 trades each large backfill walks."""
POLL_MIN_S, POLL_MAX_S = 0.5, 2.0
LIVE_POLL_REQUESTS = 3
"""Requests of one live poll: ``myTrades`` of its one symbol, candles for the page of new trades,
candles for the trades still unpriced (discovery and markets are cached for minutes)."""
REQUEST_S = 0.5
"""Allowance for one request's own round trip and parsing on loopback, on a loaded machine."""
VISIBLE_WITHIN_S = POLL_MAX_S * (1 + JITTER) + 2 * LIVE_POLL_REQUESTS * ((BACKFILLS + 1) * SLOT_S + REQUEST_S)
"""A trade appearing just after a poll read past it is read by the next poll: the current poll
ends, the poller sleeps at most the longest interval, and the next poll reads it; each request
of either poll waits at most one slot per backfilling session plus its own."""


@dataclass
class Stack:
    exchange: SimulatedBinance
    enclave: str
    policy: VerificationPolicy


@pytest.fixture
def stack(enclave_data_dir: Path) -> Iterator[Stack]:
    """A Binance simulator with a tight weight limit, and an enclave reading from it."""
    exchange = SimulatedBinance(seed=61, weight_limit=WEIGHT_LIMIT)
    with serve_in_thread(create_binance_app(exchange)) as simulator:
        settings = enclave_settings(
            enclave_data_dir,
            simulator,
            registrations_per_minute=1000,
            poll_min_s=POLL_MIN_S,
            poll_max_s=POLL_MAX_S,
            log_level="warning",
        )
        policy = VerificationPolicy(allow_simulated=True, allowed_data_sources=frozenset({simulator}))
        with serve_in_thread(create_app(settings)) as enclave:
            yield Stack(exchange, enclave, policy)


def _account(stack: Stack, seed: int, start_ms: int, end_ms: int, trades: int) -> Account:
    return stack.exchange.add_account(
        generate_account(
            seed,
            start_ms,
            end_ms,
            trades=trades,
            prices=stack.exchange.prices,
            symbols=("BTCUSDT",),
            bnb_fee_share=0.0,
        )
    )


async def _register(client: EnclaveClient, stack: Stack, account: Account, since_ms: int) -> Registration:
    credentials = Credentials(
        exchange="binance",
        api_key=account.api_key,
        api_secret=account.api_secret,
        since=datetime.fromtimestamp(since_ms / 1000, UTC),
    )
    return await client.register(credentials, policy=stack.policy)


async def _metrics(client: EnclaveClient, registration: Registration) -> dict[str, Any]:
    metrics: dict[str, Any] = await client.metrics(registration.session_id, registration.token)
    return metrics


async def _syncs(client: EnclaveClient, registrations: list[Registration]) -> list[dict[str, Any]]:
    return [(await _metrics(client, r))["sync"] for r in registrations]


def test_the_bound_is_shorter_than_the_backfills() -> None:
    """Waiting behind whole backfills would break the bound: it proves fairness, not patience."""
    assert VISIBLE_WITHIN_S < (BACKFILLS * BIG_PAGES - BURST_REQUESTS) * SLOT_S


async def test_a_live_session_sees_new_trades_while_large_backfills_run(stack: Stack) -> None:
    now = now_ms()
    live = _account(stack, 1, now - 20 * MINUTE_MS, now + 150_000, 600)  # trades keep appearing
    bigs = [
        _account(stack, 10 + i, now - 18 * MINUTE_MS, now - 2 * MINUTE_MS, BIG_TRADES)
        for i in range(BACKFILLS)
    ]
    async with EnclaveClient(stack.enclave, timeout=60) as client:
        live_session = await _register(client, stack, live, now - 21 * MINUTE_MS)
        deadline = now_ms() + 30_000
        while not (await _metrics(client, live_session))["sync"]["backfill_complete"]:
            assert now_ms() < deadline, "the live session's own backfill did not complete"
            await asyncio.sleep(0.2)

        big_sessions = await asyncio.gather(
            *(_register(client, stack, big, now - 19 * MINUTE_MS) for big in bigs)
        )
        deadline = now_ms() + 30_000
        while not all(sync["trades_fetched"] for sync in await _syncs(client, big_sessions)):
            assert now_ms() < deadline, "the large backfills did not start storing pages"
            await asyncio.sleep(0.2)
        walking_ms = now_ms()  # every large backfill has stored a page and walks the next ones
        times = sorted(int(t["time"]) for t in live.raw_trades())
        target_ms = next(t for t in times if t > walking_ms + 500)
        expected = sum(1 for t in times if t <= target_ms)

        while (fetched := (await _metrics(client, live_session))["sync"]["trades_fetched"]) < expected:
            assert now_ms() < target_ms + VISIBLE_WITHIN_S * 1000, (
                f"live trades starved: {fetched} of {expected} after {VISIBLE_WITHIN_S:.1f} s"
            )
            await asyncio.sleep(0.2)
        seen_ms = now_ms()
        backfills = await _syncs(client, big_sessions)

    print(
        f"\nlive trade visible after {(seen_ms - target_ms) / 1000:.2f} s (bound {VISIBLE_WITHIN_S:.1f} s); "
        f"backfills then at {[sync['trades_fetched'] for sync in backfills]} of {BIG_TRADES}"
    )
    # The large backfills were still walking their pages when the live session saw its trade.
    assert all(not sync["backfill_complete"] for sync in backfills), backfills
    assert all(0 < sync["trades_fetched"] < BIG_TRADES for sync in backfills), backfills
    assert seen_ms - target_ms <= VISIBLE_WITHIN_S * 1000
