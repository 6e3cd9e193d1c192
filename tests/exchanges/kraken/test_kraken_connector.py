"""KrakenSpot against the simulator: paging, stale pages, errors, budgets, candles."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from conftest import closed_port_origin
from exchanges.kraken.conftest import FakeClock
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.exchanges.budget import HEADROOM
from perf_aggregator.exchanges.errors import CredentialsRejected, ExchangeUnavailable, RateLimited
from perf_aggregator.exchanges.kraken import ALL_PAIRS, KEY_PERMISSIONS_WARNING, KrakenCursor, KrakenSpot
from perf_aggregator.ledger.trades import Trade
from perf_aggregator.simulator.faults import FaultInjector, FaultPlan
from perf_aggregator.simulator.kraken import KrakenAccount, SimulatedKraken, create_kraken_app, wall_clock_ms
from perf_aggregator.tee.credentials import ExchangeCredentials

HOUR_MS = 3_600_000
MINUTE_MS = 60_000


def credentials(api_key: str, api_secret: str) -> ExchangeCredentials:
    return ExchangeCredentials("kraken", api_key, api_secret, None, "spot", 0, ())


def connector(origin: str, account: KrakenAccount, secret: str | None = None) -> KrakenSpot:
    creds = credentials(account.api_key, secret or account.api_secret)
    return KrakenSpot(creds, origin, counter_max=10_000, counter_decay_per_s=100)


async def read_all(spot: KrakenSpot, cursor: object | None, since_ms: int) -> tuple[list[Trade], object]:
    trades: list[Trade] = []
    while True:
        page = await spot.fetch_trades(ALL_PAIRS, cursor, since_ms)
        trades.extend(page.trades)
        cursor = page.cursor
        if page.done:
            return trades, cursor


Stack = tuple[SimulatedKraken, FakeClock, str, FaultInjector]


@pytest.fixture
def stack() -> Iterator[Stack]:
    """A simulator on a settable clock, served through a fault injector (no faults unless set)."""
    clock = FakeClock()
    sim = SimulatedKraken(seed=6, tier="pro", now_ms=clock)
    sim.max_counter = 1e9
    injector = FaultInjector(create_kraken_app(sim), FaultPlan())
    with serve_in_thread(injector) as url:
        yield sim, clock, url, injector


@pytest.fixture
def clocked(stack: Stack) -> tuple[SimulatedKraken, FakeClock, str]:
    return stack[:3]


@pytest.fixture
def injector(stack: Stack) -> FaultInjector:
    return stack[3]


async def test_backfill_then_polling_reads_every_trade_once(
    clocked: tuple[SimulatedKraken, FakeClock, str],
) -> None:
    sim, clock, url = clocked
    now = clock.now
    account = sim.create_account(3, 420, start_ms=now - 3 * HOUR_MS, end_ms=now + HOUR_MS)
    since = now - 2 * HOUR_MS
    spot = connector(url, account)
    try:
        await spot.validate()
        assert await spot.discover_symbols(["BTC/USD"]) == [ALL_PAIRS]
        assert spot.data_source == url

        seen: list[Trade] = []
        cursor: object | None = None
        # The backfill, with new trades arriving between its pages.
        while True:
            page = await spot.fetch_trades(ALL_PAIRS, cursor, since)
            seen.extend(page.trades)
            cursor = page.cursor
            clock.now += 20_000
            if page.done:
                break
        assert isinstance(cursor, KrakenCursor) and cursor.end is None
        # Polls as time goes by.
        for _ in range(12):
            clock.now += 5 * MINUTE_MS
            trades, cursor = await read_all(spot, cursor, since)
            seen.extend(trades)
        expected = {t.txid for t in account.trades if since <= t.time_ms <= clock.now}
        assert len(seen) == len(expected) == len({t.id for t in seen})  # nothing doubled, nothing missed
        assert {t.id for t in seen} == expected
        assert len(expected) > 200
    finally:
        await spot.close()


async def test_stale_pages_are_refused_and_lose_nothing(
    clocked: tuple[SimulatedKraken, FakeClock, str], injector: FaultInjector
) -> None:
    sim, clock, url = clocked
    now = clock.now
    account = sim.create_account(4, 300, start_ms=now - 2 * HOUR_MS, end_ms=now - MINUTE_MS)
    # A stale answer is the key's previous page: read as the next one, it would end the walk
    # (its oldest trade is the bound asked for) and lose every trade below it.
    injector.plan = FaultPlan(stale_rate=0.5, seed=2)
    spot = connector(url, account)
    trades: list[Trade] = []
    refused = 0
    cursor: object | None = None
    try:
        for _ in range(100):
            try:
                page = await spot.fetch_trades(ALL_PAIRS, cursor, 0)
            except ExchangeUnavailable:
                refused += 1
                continue
            trades.extend(page.trades)
            cursor = page.cursor
            if page.done:
                break
    finally:
        await spot.close()
    assert refused > 0 and injector.counts["stale"] >= refused
    assert {t.key for t in trades} == {(_symbol(t.pair), t.txid, t.type) for t in account.trades}


def _symbol(pair: str) -> str:
    return {
        "XXBTZUSD": "BTC/USD",
        "XETHZUSD": "ETH/USD",
        "XETHXXBT": "ETH/BTC",
        "SOLUSD": "SOL/USD",
        "XXBTZEUR": "BTC/EUR",
    }[pair]


async def test_errors_are_classified_without_secrets(
    clocked: tuple[SimulatedKraken, FakeClock, str], injector: FaultInjector
) -> None:
    sim, clock, url = clocked
    account = sim.create_account(5, 10, start_ms=clock.now - HOUR_MS, end_ms=clock.now - MINUTE_MS)
    cases: list[tuple[KrakenSpot, type[Exception]]] = [
        (connector(url, account, secret="eHh4eHh4eHh4eHh4eHh4eA=="), CredentialsRejected),
        (KrakenSpot(credentials("Z" * 56, account.api_secret), url), CredentialsRejected),
        (
            KrakenSpot(credentials(account.api_key, account.api_secret), closed_port_origin()),
            ExchangeUnavailable,
        ),
    ]
    for spot, error in cases:
        try:
            with pytest.raises(error) as raised:
                await spot.validate()
            assert account.api_secret not in str(raised.value) and account.api_key not in str(raised.value)
        finally:
            await spot.close()

    spot = connector(url, account)
    try:
        sim.max_counter = 0.5
        with pytest.raises(RateLimited) as limited:
            await spot.validate()
        assert limited.value.retry_after_s > 0
        sim.max_counter = 1e9
        for kind in ("server_error_rate", "malformed_rate", "reset_rate"):
            injector.plan = FaultPlan(**{kind: 1.0})
            with pytest.raises(ExchangeUnavailable):
                await spot.fetch_trades(ALL_PAIRS, None, 0)
        injector.plan = FaultPlan()
        await spot.validate()
    finally:
        await spot.close()


async def test_budgets_follow_the_scope_of_kraken_limits_and_the_key_warning_is_set() -> None:
    origin = "http://127.0.0.1:9"  # never reached
    one = KrakenSpot(credentials("K" * 56, "c2VjcmV0"), origin)
    same_key = KrakenSpot(credentials("K" * 56, "c2VjcmV0"), origin)
    other_key = KrakenSpot(credentials("L" * 56, "c2VjcmV0"), origin)
    public = KrakenSpot(None, origin)
    try:
        assert one._private is same_key._private and one._private is not other_key._private  # per key
        assert one._public is other_key._public is public._public  # per IP
        # Starter tier: a burst of 14 (15 less a margin), refilled at 0.33 per second less headroom.
        sent, checked = [], []
        for _ in range(8):
            sent.append(one._private.reserve(2))
            checked.append(time.monotonic())
        assert all(at <= now for at, now in zip(sent[:7], checked, strict=False))  # at once
        assert sent[7] >= sent[0] + 2 / (0.33 * HEADROOM) - 1e-9
        assert one.warnings == (KEY_PERMISSIONS_WARNING,) and public.warnings == ()
        assert "withdraw" in KEY_PERMISSIONS_WARNING
    finally:
        for spot in (one, same_key, other_key, public):
            await spot.close()


async def test_candles_are_closed_and_limited_to_the_kept_window(
    kraken_sim: tuple[SimulatedKraken, str],
) -> None:
    _, url = kraken_sim
    spot = KrakenSpot(None, url)
    try:
        markets = await spot.markets()
        assert {"BTC/USD", "ETH/USD", "ETH/BTC", "SOL/USD", "BTC/EUR"} <= set(markets)
        assert markets["BTC/USD"].id == "XXBTZUSD"
        now = wall_clock_ms()
        start = (now // MINUTE_MS - 30) * MINUTE_MS
        candles = await spot.fetch_candles("ETH/BTC", start, now)
        rows = httpx.get(
            f"{url}/0/public/OHLC", params={"pair": "XETHXXBT", "interval": 1, "since": start // 1000 - 60}
        ).json()["result"]["XETHXXBT"]
        wire = {r[0] * 1000: Decimal(r[4]) for r in rows}
        last_closed = (wall_clock_ms() // MINUTE_MS - 1) * MINUTE_MS
        assert candles.closes[0][0] == start
        assert candles.closes[-1][0] in (last_closed, last_closed - MINUTE_MS)
        assert candles.covered_until_ms == candles.closes[-1][0]
        assert all(wire[t] == close for t, close in candles.closes)

        # Gone from Kraken: covered without candles (those trades stay unpriced), and the answer's
        # newer candles come along.
        old = await spot.fetch_candles("ETH/BTC", now - 20 * HOUR_MS, now - 19 * HOUR_MS)
        assert old.start_ms == now - 20 * HOUR_MS and old.covered_until_ms >= last_closed - MINUTE_MS
        assert old.closes[0][0] > now - 12 * HOUR_MS - 5 * MINUTE_MS
    finally:
        await spot.close()


async def test_a_stale_ohlc_answer_covers_only_what_it_holds(
    clocked: tuple[SimulatedKraken, FakeClock, str], injector: FaultInjector
) -> None:
    _, clock, url = clocked
    spot = KrakenSpot(None, url, clock_ms=clock)
    try:
        await spot.markets()
        minute = clock.now // MINUTE_MS * MINUTE_MS
        recent = await spot.fetch_candles("BTC/USD", minute - 30 * MINUTE_MS, minute)
        assert (recent.start_ms, recent.covered_until_ms) == (minute - 30 * MINUTE_MS, minute - MINUTE_MS)
        assert len(recent.closes) == 30
        clock.now += 3 * MINUTE_MS
        injector.plan = FaultPlan(stale_rate=1.0)  # that answer again, for an earlier start
        stale = await spot.fetch_candles("BTC/USD", minute - 2 * HOUR_MS, minute)
        # Minutes before its first candle and after its ``last`` are not vouched for.
        assert (stale.start_ms, stale.covered_until_ms) == (recent.start_ms, recent.covered_until_ms)
        injector.plan = FaultPlan()
        fresh = await spot.fetch_candles("BTC/USD", minute - 2 * HOUR_MS, minute)
        assert (fresh.start_ms, fresh.covered_until_ms) == (minute - 2 * HOUR_MS, minute + 2 * MINUTE_MS)
    finally:
        await spot.close()


async def test_connectors_of_one_origin_share_one_pair_list(stack: Stack) -> None:
    _, _, url, injector = stack
    one, two = KrakenSpot(None, url), KrakenSpot(None, url)
    try:
        assert await one.markets() == await two.markets()
        assert injector.counts == {"ok": 1}  # one AssetPairs call: public calls are paced per IP
    finally:
        await one.close()
        await two.close()
