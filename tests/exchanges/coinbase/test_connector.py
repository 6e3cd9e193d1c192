"""The Coinbase connector against the simulator: validation, complete history, candles, errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.exchanges.base import TradePage
from perf_aggregator.exchanges.coinbase import ALL_FILLS, CoinbaseAdvanced, parse_time_ms
from perf_aggregator.exchanges.errors import (
    CredentialsRejected,
    ExchangeUnavailable,
    KeyNotReadOnly,
    RateLimited,
)
from perf_aggregator.ledger.trades import Trade
from perf_aggregator.simulator.coinbase import (
    MINUTE_MS,
    SimulatedCoinbase,
    create_coinbase_app,
    wall_clock_ms,
)
from perf_aggregator.simulator.faults import FaultInjector, FaultPlan
from perf_aggregator.tee.credentials import ExchangeCredentials

HOUR_MS = 3_600_000


class Clock:
    def __init__(self) -> None:
        self.now = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.now


Stack = tuple[SimulatedCoinbase, Clock, str, FaultInjector]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """A simulator on a settable clock, served through a fault injector (no faults unless set)."""
    clock = Clock()
    sim = SimulatedCoinbase(seed=4, private_per_second=10_000, public_per_second=10_000, now_ms=clock)
    injector = FaultInjector(create_coinbase_app(sim), FaultPlan())
    with serve_in_thread(injector) as url:
        yield sim, clock, url, injector


@pytest.fixture(scope="module")
def served(stack: Stack) -> tuple[SimulatedCoinbase, Clock, str]:
    return stack[:3]


@pytest.fixture(scope="module")
def injector(stack: Stack) -> FaultInjector:
    return stack[3]


def credentials(key: str, secret: str) -> ExchangeCredentials:
    return ExchangeCredentials("coinbase", key, secret, None, "spot", 0, ())


@pytest.fixture
def sim(served: tuple[SimulatedCoinbase, Clock, str], injector: FaultInjector) -> Iterator[SimulatedCoinbase]:
    exchange, clock, _ = served
    clock.now = int(time.time() * 1000)
    yield exchange
    injector.plan = FaultPlan()
    clock.now = int(time.time() * 1000)


async def sweep(connector: CoinbaseAdvanced, cursor: object | None, since: int) -> tuple[list[Trade], object]:
    trades: list[Trade] = []
    for _ in range(200):
        page: TradePage = await connector.fetch_trades(ALL_FILLS, cursor, since)
        trades.extend(page.trades)
        cursor = page.cursor
        if page.done:
            return trades, cursor
    raise AssertionError("the sweep did not end")


@pytest.fixture
async def connector(
    served: tuple[SimulatedCoinbase, Clock, str], sim: SimulatedCoinbase
) -> AsyncIterator[tuple[CoinbaseAdvanced, Any, Clock]]:
    _, clock, url = served
    end = clock.now - MINUTE_MS
    account = sim.create_account(21, 700, start_ms=end - 6 * HOUR_MS, end_ms=end)
    conn = CoinbaseAdvanced(credentials(account.key_name, account.private_key_pem), url, clock_ms=clock)
    try:
        yield conn, account, clock
    finally:
        await conn.close()


async def test_validate_accepts_read_only_and_refuses_transfer_and_bad_keys(
    served: tuple[SimulatedCoinbase, Clock, str], sim: SimulatedCoinbase
) -> None:
    url = served[2]
    good = sim.create_account(1, 3)
    transfer = sim.create_account(2, 3, can_transfer=True)
    other = sim.create_account(3, 3)
    cases: list[tuple[str, str, type[Exception] | None]] = [
        (good.key_name, good.private_key_pem, None),
        (transfer.key_name, transfer.private_key_pem, KeyNotReadOnly),
        (good.key_name, other.private_key_pem, CredentialsRejected),
        ("organizations/x/apiKeys/y", good.private_key_pem, CredentialsRejected),
    ]
    for key, secret, error in cases:
        conn = CoinbaseAdvanced(credentials(key, secret), url)
        try:
            if error is None:
                await conn.validate()
            else:
                with pytest.raises(error) as raised:
                    await conn.validate()
                assert "BEGIN" not in str(raised.value) and "organizations" not in str(raised.value)
        finally:
            await conn.close()
    assert conn.data_source == url


class LateClockReads:
    """Wraps a simulator app: a request for Coinbase's time reaches it ``delay_s`` late (a slow
    path on the way in, none on the way back), so its clock is read at the end of the round trip."""

    def __init__(self, app: ASGIApp, delay_s: float) -> None:
        self.app, self.delay_s = app, delay_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/brokerage/time"):
            await asyncio.sleep(self.delay_s)
        await self.app(scope, receive, send)


async def test_a_clock_read_delayed_on_the_way_in_still_signs_tokens_coinbase_accepts() -> None:
    # Coinbase 3 s behind: a token signed on our clock (1 s back) is refused. Measured from the
    # midpoint of round trips whose first 5 s are on the way in, the offset would come out -0.5 s
    # twice (tokens still ahead, then no change: the key refused); taken against the end of the
    # round trip, it never puts a token ahead of Coinbase's clock.
    sim = SimulatedCoinbase(seed=6, private_per_second=10_000, public_per_second=10_000)
    sim.wall_ms = lambda: wall_clock_ms() - 3_000
    account = sim.create_account(7, 3)
    with serve_in_thread(LateClockReads(create_coinbase_app(sim), 5.0)) as url:
        conn = CoinbaseAdvanced(credentials(account.key_name, account.private_key_pem), url)
        try:
            await conn.validate()
            assert -3_000 - 500 < conn._ccxt.clock_offset_ms <= -3_000
        finally:
            await conn.close()


@pytest.mark.parametrize(
    ("skew_ms", "measured"), [(-30_000, True), (-3_000, True), (60_000, False), (150_000, True)]
)
async def test_tokens_are_signed_on_coinbase_clock_after_one_refusal(
    served: tuple[SimulatedCoinbase, Clock, str], sim: SimulatedCoinbase, skew_ms: int, measured: bool
) -> None:
    account = sim.create_account(5, 3)
    sim.wall_ms = lambda: wall_clock_ms() + skew_ms  # Coinbase's clock is off ours
    conn = CoinbaseAdvanced(credentials(account.key_name, account.private_key_pem), served[2])
    try:
        # Behind ours, Coinbase refuses a token as not yet valid; far ahead, as expired (2 min):
        # the clock is measured and the call signed again. A little ahead, the token is valid.
        await conn.validate()
        await conn.validate()
        offset = conn._ccxt.clock_offset_ms
        assert abs(offset - skew_ms) < 1_000 if measured else offset == 0
    finally:
        sim.wall_ms = wall_clock_ms
        await conn.close()


async def test_history_is_complete_once_and_polling_picks_up_new_fills(
    connector: tuple[CoinbaseAdvanced, Any, Clock],
) -> None:
    conn, account, clock = connector
    assert await conn.discover_symbols(["BTC/USD"]) == [ALL_FILLS]
    since = account.trade_ms[0] + 2 * HOUR_MS
    final = clock.now
    clock.now = account.trade_ms[-1] - 30 * MINUTE_MS  # the last half hour has not happened yet
    first, cursor = await sweep(conn, None, since)
    clock.now = final
    second, cursor = await sweep(conn, cursor, since)
    third, _ = await sweep(conn, cursor, since)

    want = {f["trade_id"] for f, t in zip(account.fills, account.trade_ms, strict=True) if t >= since}
    got = [t.id for t in first + second + third]
    assert set(got) == want
    assert len(first) == len({t.id for t in first})  # one sweep never repeats a fill
    assert all(t.timestamp >= since for t in first + second)
    assert {t.symbol for t in first} >= {"BTC/USD", "ETH/USD", "ETH/BTC"}
    by_id = {f["trade_id"]: f for f in account.fills}
    for trade in first[:20]:
        assert trade.timestamp == parse_time_ms(by_id[trade.id]["trade_time"])
        assert trade.fee_currency == trade.quote and trade.cost == trade.amount * trade.price


async def test_duplicated_pages_lose_nothing_and_a_stale_sweep_start_is_refused(
    connector: tuple[CoinbaseAdvanced, Any, Clock], injector: FaultInjector
) -> None:
    conn, account, clock = connector
    injector.plan = FaultPlan(stale_rate=0.4, seed=3)  # the previous page again, with its cursor
    trades: list[Trade] = []
    cursor: object | None = None
    for _ in range(40):
        try:
            page = await conn.fetch_trades(ALL_FILLS, cursor, 0)
        except ExchangeUnavailable:
            continue
        trades.extend(page.trades)
        cursor = page.cursor
        if page.done:
            break
    assert {t.id for t in trades} == {f["trade_id"] for f in account.fills}
    assert injector.counts["stale"] > 0
    # The next sweep starts 15 minutes below the newest fill; the last page of the backfill (the
    # oldest fills) served again does not answer it, and must not end the sweep.
    injector.plan = FaultPlan(stale_rate=1.0)
    clock.now += 5 * MINUTE_MS
    with pytest.raises(ExchangeUnavailable):
        await conn.fetch_trades(ALL_FILLS, cursor, 0)


async def test_candles_are_closed_only_and_match_the_simulator(
    connector: tuple[CoinbaseAdvanced, Any, Clock], sim: SimulatedCoinbase
) -> None:
    conn, _, clock = connector
    clock.now = (clock.now // MINUTE_MS) * MINUTE_MS + 30_000  # half way through a minute
    start = clock.now - 800 * MINUTE_MS
    candles = await conn.fetch_candles("BTC/USD", start, clock.now + HOUR_MS)
    open_minute = clock.now // MINUTE_MS * MINUTE_MS
    assert candles.covered_until_ms == open_minute - MINUTE_MS
    times = [t for t, _ in candles.closes]
    assert times == sorted(times) and times[-1] == open_minute - MINUTE_MS
    assert times[0] == -(-start // MINUTE_MS) * MINUTE_MS and len(times) == len(set(times)) == 799
    for open_ms, close in candles.closes[::97]:
        expected = Decimal(sim.prices.close_units("BTCUSDT", open_ms // MINUTE_MS)) / 10**8
        assert close == expected


@pytest.mark.parametrize(
    "plan",
    [
        FaultPlan(server_error_rate=1.0),
        FaultPlan(malformed_rate=1.0),
        FaultPlan(reset_rate=1.0),
        FaultPlan(timeout_rate=1.0, timeout_hold_s=0.1),
    ],
)
async def test_faults_are_classified(
    connector: tuple[CoinbaseAdvanced, Any, Clock], injector: FaultInjector, plan: FaultPlan
) -> None:
    conn, _, _ = connector
    await conn.markets()
    injector.plan = plan
    with pytest.raises(ExchangeUnavailable) as raised:
        await conn.fetch_trades(ALL_FILLS, None, 0)
    assert not isinstance(raised.value, RateLimited | CredentialsRejected)


async def test_candles_from_another_request_are_refused_and_never_counted(
    connector: tuple[CoinbaseAdvanced, Any, Clock], injector: FaultInjector
) -> None:
    conn, _, clock = connector
    await conn.markets()
    hour_ago = (clock.now // MINUTE_MS) * MINUTE_MS - HOUR_MS
    await conn.fetch_candles("BTC/USDT", hour_ago - 20 * MINUTE_MS, hour_ago - 10 * MINUTE_MS)
    injector.plan = FaultPlan(stale_rate=1.0)  # that answer again, for another window
    with pytest.raises(ExchangeUnavailable):
        await conn.fetch_candles("BTC/USDT", hour_ago, hour_ago + 10 * MINUTE_MS)


async def test_rate_limit_is_classified_with_a_pause(served: tuple[SimulatedCoinbase, Clock, str]) -> None:
    sim = SimulatedCoinbase(seed=4, private_per_second=1)
    with serve_in_thread(create_coinbase_app(sim)) as url:
        account = sim.create_account(1, 3)
        conn = CoinbaseAdvanced(credentials(account.key_name, account.private_key_pem), url)
        try:
            await conn.fetch_trades(ALL_FILLS, None, 0)
            with pytest.raises(RateLimited) as raised:
                await conn._call(conn._ccxt.v3PrivateGetBrokerageKeyPermissions, {}, private=True)
            assert raised.value.retry_after_s >= 1
        finally:
            await conn.close()
