"""KrakenSpot against the simulator: paging, errors, pacing, candles."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from conftest import closed_port_origin
from exchanges.kraken.conftest import FakeClock
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.exchanges.errors import CredentialsRejected, ExchangeUnavailable, RateLimited
from perf_aggregator.exchanges.kraken import ALL_PAIRS, KrakenCursor, KrakenSpot, _CallCounter
from perf_aggregator.ledger.trades import Trade
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


@pytest.fixture
def clocked() -> Iterator[tuple[SimulatedKraken, FakeClock, str]]:
    clock = FakeClock()
    sim = SimulatedKraken(seed=6, tier="pro", now_ms=clock)
    sim.max_counter = 1e9
    with serve_in_thread(create_kraken_app(sim)) as url:
        yield sim, clock, url


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


async def test_overlapping_pages_lose_nothing(clocked: tuple[SimulatedKraken, FakeClock, str]) -> None:
    sim, clock, url = clocked
    now = clock.now
    account = sim.create_account(4, 300, start_ms=now - 2 * HOUR_MS, end_ms=now - MINUTE_MS)
    sim.faults.overlap_rate = 0.7
    spot = connector(url, account)
    try:
        trades, _ = await read_all(spot, None, 0)
    finally:
        await spot.close()
    assert {t.key for t in trades} == {(t.pair and _symbol(t.pair), t.txid, t.type) for t in account.trades}


def _symbol(pair: str) -> str:
    return {
        "XXBTZUSD": "BTC/USD",
        "XETHZUSD": "ETH/USD",
        "XETHXXBT": "ETH/BTC",
        "SOLUSD": "SOL/USD",
        "XXBTZEUR": "BTC/EUR",
    }[pair]


async def test_errors_are_classified_without_secrets(clocked: tuple[SimulatedKraken, FakeClock, str]) -> None:
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
        for knob in ("error_rate_5xx", "malformed_rate", "reset_rate"):
            setattr(sim.faults, knob, 1.0)
            with pytest.raises(ExchangeUnavailable):
                await spot.fetch_trades(ALL_PAIRS, None, 0)
            setattr(sim.faults, knob, 0.0)
        await spot.validate()
    finally:
        await spot.close()


def test_call_counter_paces_to_the_limit() -> None:
    counter = _CallCounter(maximum=14, decay_per_s=0.33)
    for _ in range(7):
        assert counter.wait_s(2) == 0
        counter.add(2)
    assert counter.wait_s(2) == pytest.approx(2 / 0.33, rel=0.01)
    counter.saturate()
    assert counter.wait_s(1) == pytest.approx(1 / 0.33, rel=0.01)


async def test_candles_are_closed_and_limited_to_the_kept_window(
    kraken_sim: tuple[SimulatedKraken, str],
) -> None:
    _, url = kraken_sim
    spot = KrakenSpot(None, url, public_interval_s=0)
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

        old = await spot.fetch_candles("ETH/BTC", now - 20 * HOUR_MS, now - 19 * HOUR_MS)
        assert old.closes == [] and old.start_ms == now - 20 * HOUR_MS  # gone from Kraken: unpriced
    finally:
        await spot.close()
