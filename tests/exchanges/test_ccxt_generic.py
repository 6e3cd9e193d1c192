"""The ccxt fallback connector, run for ``kraken`` against the Kraken simulator and checked
against the dedicated connector; plus the registry's fallback."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import closed_port_origin, enclave_settings
from perf_aggregator.api.app import create_app
from perf_aggregator.client import Credentials, EnclaveClient, VerificationPolicy
from perf_aggregator.config import Settings
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.exchanges.base import Market
from perf_aggregator.exchanges.ccxt_generic import (
    ALL_PAIRS,
    KEY_PERMISSIONS_WARNING,
    MAX_WINDOW_MS,
    SETTLE_MS,
    CcxtCursor,
    CcxtGeneric,
    next_window,
    trade_fee,
    window_query,
)
from perf_aggregator.exchanges.cursors import cursor_from_json, cursor_to_json
from perf_aggregator.exchanges.errors import CredentialsRejected, ExchangeUnavailable
from perf_aggregator.exchanges.kraken import KrakenSpot
from perf_aggregator.exchanges.registry import (
    account_connector,
    market_data_connector,
    supports,
    supports_exchange,
)
from perf_aggregator.ledger.trades import Trade
from perf_aggregator.simulator.binance import SimulatedBinance, create_binance_app
from perf_aggregator.simulator.kraken import KrakenAccount, SimulatedKraken, create_kraken_app, wall_clock_ms
from perf_aggregator.tee.credentials import ExchangeCredentials

HOUR_MS = 3_600_000
MINUTE_MS = 60_000


class FakeClock:
    """A settable clock starting at the real time, shared by the simulator and the connector."""

    def __init__(self) -> None:
        self.now = wall_clock_ms()

    def __call__(self) -> int:
        return self.now


def credentials(exchange: str, api_key: str, api_secret: str) -> ExchangeCredentials:
    return ExchangeCredentials(exchange, api_key, api_secret, None, "spot", 0, ())


@pytest.fixture(scope="module")
def kraken() -> Iterator[tuple[SimulatedKraken, str]]:
    sim = SimulatedKraken(seed=11, tier="pro")
    sim.max_counter = 1e9
    with serve_in_thread(create_kraken_app(sim)) as url:
        yield sim, url


FAST = 1000.0
"""Requests per second allowed against the simulator (its counter is unlimited)."""


def generic(url: str, account: KrakenAccount) -> CcxtGeneric:
    creds = credentials("kraken", account.api_key, account.api_secret)
    return CcxtGeneric("kraken", creds, url, requests_per_s=FAST)


def dedicated(url: str, account: KrakenAccount) -> KrakenSpot:
    creds = credentials("kraken", account.api_key, account.api_secret)
    return KrakenSpot(creds, url, counter_max=10_000, counter_decay_per_s=100)


async def read_all(
    connector: CcxtGeneric | KrakenSpot, since_ms: int, cursor: object | None = None
) -> tuple[list[Trade], object, int]:
    trades: list[Trade] = []
    calls = 0
    while True:
        page = await connector.fetch_trades(ALL_PAIRS, cursor, since_ms)
        calls += 1
        trades.extend(page.trades)
        cursor = page.cursor
        if page.done:
            return trades, cursor, calls


def by_key(trades: list[Trade]) -> dict[tuple[str, str, str], Trade]:
    return {t.key: t for t in trades}


async def test_trades_equal_the_dedicated_connectors(kraken: tuple[SimulatedKraken, str]) -> None:
    sim, url = kraken
    now = wall_clock_ms()
    account = sim.create_account(21, 400, start_ms=now - 6 * HOUR_MS, end_ms=now - MINUTE_MS)
    since = now - 5 * HOUR_MS
    spot, fallback = dedicated(url, account), generic(url, account)
    try:
        await fallback.validate()
        assert fallback.warnings == (KEY_PERMISSIONS_WARNING,)
        assert fallback.data_source == url
        assert await fallback.discover_symbols([]) == [ALL_PAIRS]
        got, cursor, calls = await read_all(fallback, since)
        # Second: Kraken's nonces must grow, and the dedicated connector's are microseconds.
        expected, _, _ = await read_all(spot, since)
    finally:
        await spot.close()
        await fallback.close()
    assert len(expected) > 200 and calls > len(expected) // 50  # pages were full and windows split
    assert len(got) == len(by_key(got))  # nothing doubled within one walk
    assert by_key(got) == by_key(expected)  # ids, sides, exact amounts, prices, fees, times
    assert isinstance(cursor, CcxtCursor) and cursor.since_ms >= max(t.timestamp for t in got)


async def test_polling_after_the_backfill_reads_every_trade_once() -> None:
    clock = FakeClock()
    sim = SimulatedKraken(seed=12, tier="pro", now_ms=clock)
    sim.max_counter = 1e9
    now = clock.now
    account = sim.create_account(22, 300, start_ms=now - 2 * HOUR_MS, end_ms=now + HOUR_MS)
    with serve_in_thread(create_kraken_app(sim)) as url:
        creds = credentials("kraken", account.api_key, account.api_secret)
        fallback = CcxtGeneric("kraken", creds, url, clock_ms=clock, requests_per_s=FAST)
        try:
            seen, cursor, _ = await read_all(fallback, now - 3 * HOUR_MS)
            backfilled = len(seen)
            poll_ends = [clock.now]
            for _ in range(12):
                clock.now += 5 * MINUTE_MS
                trades, cursor, calls = await read_all(fallback, now - 3 * HOUR_MS, cursor)
                assert calls == 1  # a poll asks one window: from the settle period to the present
                seen.extend(trades)
                poll_ends.append(clock.now)
        finally:
            await fallback.close()
    expected = {t.txid for t in account.trades if t.time_ms <= clock.now}
    assert {t.id for t in seen} == expected and len(expected) > backfilled + 30
    # Repeats are exactly the trades of the settle period before each poll's end, re-read by
    # the next poll.
    reread = sum(1 for end in poll_ends[:-1] for t in account.trades if end - SETTLE_MS <= t.time_ms <= end)
    assert reread > 0 and len(seen) - len(expected) == reread


async def test_candles_equal_the_dedicated_connectors(kraken: tuple[SimulatedKraken, str]) -> None:
    _, url = kraken
    now = wall_clock_ms()
    start = (now // MINUTE_MS) * MINUTE_MS - 90 * MINUTE_MS
    spot, fallback = KrakenSpot(None, url), CcxtGeneric("kraken", None, url, requests_per_s=FAST)
    try:
        expected = await spot.fetch_candles("ETH/BTC", start, start + 60 * MINUTE_MS)
        got = await fallback.fetch_candles("ETH/BTC", start, start + 60 * MINUTE_MS)
    finally:
        await spot.close()
        await fallback.close()
    assert fallback.warnings == ()
    assert len(got.closes) == 61
    assert got.closes == [c for c in expected.closes if start <= c[0] <= start + 60 * MINUTE_MS]
    assert (got.start_ms, got.covered_until_ms) == (start, start + 60 * MINUTE_MS)
    assert all(type(close) is Decimal for _, close in got.closes)


async def test_an_open_candle_is_not_returned(kraken: tuple[SimulatedKraken, str]) -> None:
    _, url = kraken
    now = wall_clock_ms()
    fallback = CcxtGeneric("kraken", None, url, requests_per_s=FAST)
    try:
        got = await fallback.fetch_candles("ETH/BTC", now - 5 * MINUTE_MS, now + MINUTE_MS)
    finally:
        await fallback.close()
    assert got.closes and all(open_ms + MINUTE_MS <= now for open_ms, _ in got.closes)


async def test_an_unknown_key_is_rejected(kraken: tuple[SimulatedKraken, str]) -> None:
    _, url = kraken
    fallback = CcxtGeneric(
        "kraken", credentials("kraken", "unknown-key", "c2VjcmV0"), url, requests_per_s=FAST
    )
    try:
        with pytest.raises(CredentialsRejected) as error:
            await fallback.validate()
    finally:
        await fallback.close()
    assert "unknown-key" not in str(error.value) and "c2VjcmV0" not in str(error.value)


async def test_an_unreachable_exchange_is_unavailable() -> None:
    fallback = CcxtGeneric("kraken", credentials("kraken", "key", "c2VjcmV0"), closed_port_origin())
    try:
        with pytest.raises(ExchangeUnavailable):
            await fallback.validate()
    finally:
        await fallback.close()


def test_the_cursor_round_trips_through_the_store_format() -> None:
    cursor = CcxtCursor(since_ms=1_700_000_000_123, window_ms=86_400_000, limit=50)
    stored = cursor_to_json(cursor)
    assert stored == {
        "type": "perf_aggregator.exchanges.ccxt_generic:CcxtCursor",
        "fields": {"since_ms": 1_700_000_000_123, "window_ms": 86_400_000, "limit": 50},
    }
    assert cursor_from_json(stored) == cursor


def test_the_registry_falls_back_to_ccxt_for_other_exchanges() -> None:
    assert supports("bitstamp", "spot")
    assert supports_exchange("bitstamp")
    assert not supports("bitstamp", "futures")
    assert not supports("nosuchexchange", "spot") and not supports_exchange("nosuchexchange")
    assert not supports_exchange(42) and not supports_exchange(None)
    assert supports("binance", "futures") and not supports("kraken", "futures")
    assert not supports("binanceusdm", "spot")  # ccxt's USD-M class has no spot markets


def test_a_fallback_exchange_takes_its_origin_override_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PERF_AGG_EXCHANGE_URL_BITSTAMP", "http://127.0.0.1:9")
    origin = Settings().exchange_urls["bitstamp"]
    account = account_connector(credentials("bitstamp", "key", "c2VjcmV0"), origin)
    public = market_data_connector("bitstamp", None)
    assert isinstance(account, CcxtGeneric) and isinstance(public, CcxtGeneric)
    assert account.data_source == "http://127.0.0.1:9"
    assert public.data_source == "https://www.bitstamp.net"
    assert account.warnings == (KEY_PERMISSIONS_WARNING,) and public.warnings == ()
    assert isinstance(account_connector(credentials("kraken", "key", "c2VjcmV0"), None), KrakenSpot)


async def test_a_fallback_exchange_registers_and_backfills_through_the_service(
    enclave_data_dir: Path,
) -> None:
    """``binanceus`` has no dedicated connector: ccxt's class for it reads our Binance simulator
    (same API) through the generic connector, routed there by its origin override."""
    sim = SimulatedBinance(seed=3)
    now = wall_clock_ms()
    account = sim.create_account(9, 120, start_ms=now - 2 * 86_400_000, end_ms=now - MINUTE_MS)
    since = now - 36 * HOUR_MS  # earlier trades exist and must be left out
    with serve_in_thread(create_binance_app(sim)) as sim_url:
        urls = {"binanceus": sim_url, "binance": closed_port_origin()}
        settings = enclave_settings(enclave_data_dir, closed_port_origin(), exchange_urls=urls)
        policy = VerificationPolicy(allow_simulated=True, allowed_data_sources=frozenset({sim_url}))
        creds = Credentials(
            exchange="binanceus",
            api_key=account.api_key,
            api_secret=account.api_secret,
            since=datetime.fromtimestamp(since / 1000, tz=UTC),
        )
        with serve_in_thread(create_app(settings)) as enclave_url:
            async with EnclaveClient(enclave_url) as client:
                registration = await client.register(creds, label="generic", ttl=3600, policy=policy)
                deadline = time.monotonic() + 60
                while True:
                    metrics = await client.metrics(registration.session_id, registration.token)
                    if metrics["sync"]["backfill_complete"]:
                        break
                    assert time.monotonic() < deadline, "backfill did not complete"
                    await asyncio.sleep(0.2)
                listed: list[dict[str, Any]] = []
                cursor = None
                while True:
                    page = await client.trades(
                        registration.session_id, registration.token, limit=400, cursor=cursor
                    )
                    listed.extend(page["trades"])
                    cursor = page["next_cursor"]
                    if cursor is None:
                        break
    assert registration.warnings == (KEY_PERMISSIONS_WARNING,)
    raw = account.raw_trades()
    in_period = [t for t in raw if t["time"] >= since]
    assert 0 < len(in_period) < len(raw)
    assert metrics["sync"]["trades_fetched"] == len(in_period) == len(listed)

    def exact(side: str, qty: str, price: str, fee: str, fee_currency: str) -> tuple[Any, ...]:
        return (side, Decimal(qty), Decimal(price), Decimal(fee), fee_currency)

    got = {
        str(t["id"]): exact(t["side"], t["amount"], t["price"], t["fee_cost"], t["fee_currency"])
        for t in listed
    }
    assert got == {
        str(t["id"]): exact(
            "buy" if t["isBuyer"] else "sell", t["qty"], t["price"], t["commission"], t["commissionAsset"]
        )
        for t in in_period
    }


# The walk's decisions, against a page source that honours since, limit and until to the
# millisecond and cuts a range holding more than a page at either end.


def walk(
    times: list[int], page: int, newest_first: bool, since_ms: int, now_ms: int
) -> tuple[list[int], int, int]:
    """Timestamps read, calls made and crowded windows met by one walk to the present."""
    cursor = CcxtCursor(since_ms, MAX_WINDOW_MS, page)
    read: list[int] = []
    crowded = 0
    for calls in range(1, 20_001):
        since, start, end = window_query(cursor, since_ms, now_ms)
        in_range = sorted(t for t in times if since <= t <= end)
        answer = in_range[-page:] if newest_first else in_range[:page]
        step = next_window(cursor, start, end, now_ms, answer, MAX_WINDOW_MS)
        if step.keep:
            read.extend(t for t in answer if start <= t <= end)
        crowded += step.crowded
        if step.done:
            assert step.cursor.since_ms == now_ms - SETTLE_MS
            return read, calls, crowded
        assert step.cursor != cursor  # the walk always moves
        cursor = step.cursor
    raise AssertionError("the walk did not finish")


NOW = 1_700_000_000_000
BACKGROUND = [NOW - HOUR_MS + 7_919 * i for i in range(200)]
"""Sparse trades over most of the last hour, one every ~8 seconds."""


@pytest.mark.parametrize("newest_first", [False, True])
def test_a_burst_next_to_the_page_size_is_read_whole(newest_first: bool) -> None:
    """60 fills within 300 ms with a page of 50: the second before a window is in its query
    and holds a page, which must not stop the walk (it used to loop, 49 of 60 read)."""
    burst = [NOW - 30 * MINUTE_MS + 5 * i + 3 for i in range(60)]
    read, calls, crowded = walk(BACKGROUND + burst, 50, newest_first, NOW - 2 * HOUR_MS, NOW)
    assert sorted(read) == sorted(BACKGROUND + burst) and crowded == 0
    assert calls < 200


@pytest.mark.parametrize("newest_first", [False, True])
def test_a_millisecond_holding_more_than_a_page_is_passed(newest_first: bool) -> None:
    """65 fills in one millisecond with a page of 50: the page that came is kept, once, and
    the walk moves on (it used to ask the same window forever)."""
    crowd_ms = NOW - 30 * MINUTE_MS + 123
    read, calls, crowded = walk(BACKGROUND + [crowd_ms] * 65, 50, newest_first, NOW - 2 * HOUR_MS, NOW)
    assert sorted(read) == sorted(BACKGROUND + [crowd_ms] * 50) and crowded == 1
    assert calls < 200


@given(
    offsets=st.lists(st.integers(0, 5_000), min_size=0, max_size=120),
    page=st.integers(2, 12),
    newest_first=st.booleans(),
)
@settings(max_examples=150, deadline=None)
def test_the_walk_reads_every_trade_when_no_two_milliseconds_hold_a_page(
    offsets: list[int], page: int, newest_first: bool
) -> None:
    times = [NOW - 6_000 + offset for offset in offsets]
    read, _, _ = walk(times, page, newest_first, NOW - 7_000, NOW)
    assert sorted(read) == sorted(times) or any(
        offsets.count(o) + offsets.count(o + 1) >= page for o in offsets
    )
    assert len(read) <= len(times) and set(read) <= set(times)


def test_a_full_answer_reaching_past_both_ends_proves_the_window_complete() -> None:
    """Whichever end the exchange cut, a window lying inside what it sent is whole; a full
    answer reaching past one end only is not."""
    cursor = CcxtCursor(NOW, 4000, 50)
    since, start, end = window_query(cursor, 0, NOW + HOUR_MS)
    assert (since, start, end) == (NOW - 1000, NOW, NOW + 3999)
    around = [NOW - 500] * 10 + [NOW + 100] * 30 + [NOW + 4500] * 10
    step = next_window(cursor, start, end, NOW + HOUR_MS, around, MAX_WINDOW_MS)
    assert step.keep and not step.crowded and step.cursor == CcxtCursor(NOW + 4000, 8000, 50)
    before = around[:40] + [NOW + 3999] * 10
    step = next_window(cursor, start, end, NOW + HOUR_MS, before, MAX_WINDOW_MS)
    assert not step.keep and step.cursor == CcxtCursor(NOW, 2000, 50)


def test_a_walk_done_resumes_a_settle_period_before_the_present() -> None:
    """Not at the newest trade: one published late with an earlier time is still read."""
    cursor = CcxtCursor(NOW - 10 * MINUTE_MS, MAX_WINDOW_MS, 50)
    since, start, end = window_query(cursor, 0, NOW)
    assert (since, start, end) == (NOW - 10 * MINUTE_MS - 1000, NOW - 10 * MINUTE_MS, NOW)
    step = next_window(cursor, start, end, NOW, [NOW - 1000], MAX_WINDOW_MS)
    assert step.done and step.keep and step.cursor.since_ms == NOW - SETTLE_MS
    # Also when the last window started within the settle period (earlier windows are re-read).
    step = next_window(replace(cursor, since_ms=NOW - 10_000), NOW - 10_000, NOW, NOW, [], MAX_WINDOW_MS)
    assert step.done and step.cursor.since_ms == NOW - SETTLE_MS


# Kraken's simulator behind ccxt's kraken class: newest trades first, whole seconds.


def with_fills(sim: SimulatedKraken, account: KrakenAccount, times_us: list[int]) -> KrakenAccount:
    """``account`` plus one fill (its first one's figures, a new id) at each of ``times_us``,
    registered under its key in its place."""
    template = account.trades[0]
    extra = [
        replace(template, txid=f"TX{i:04d}-ZZZZZ-ZZZZZZ", time_us=at, trade_id=10**9 + i)
        for i, at in enumerate(times_us, start=len(account.trades))
    ]
    return sim.add_account(
        KrakenAccount(account.api_key, account.api_secret, account.balances, account.trades + extra)
    )


async def read_bounded(fallback: CcxtGeneric, since_ms: int, max_calls: int) -> tuple[list[Trade], int]:
    trades: list[Trade] = []
    cursor: object | None = None
    for calls in range(1, max_calls + 1):
        page = await fallback.fetch_trades(ALL_PAIRS, cursor, since_ms)
        trades.extend(page.trades)
        cursor = page.cursor
        if page.done:
            return trades, calls
    raise AssertionError("the walk did not finish")


async def test_a_second_holding_a_page_with_the_one_before_is_read_whole(
    kraken: tuple[SimulatedKraken, str], caplog: pytest.LogCaptureFixture
) -> None:
    """10 fills at the end of a second and 45 early in the next: every window's query holds
    more than Kraken's page of 50 with its slack, yet every fill is read."""
    sim, url = kraken
    now = wall_clock_ms()
    second = (now - HOUR_MS) // 1000 * 1000
    times_us = [(second - 300 + 29 * i) * 1000 + 500 for i in range(10)]
    times_us += [(second + 7 + 6 * i) * 1000 + 500 for i in range(45)]
    base = sim.create_account(31, 40, start_ms=now - 3 * HOUR_MS, end_ms=now - 2 * HOUR_MS)
    account = with_fills(sim, base, times_us)
    fallback = generic(url, account)
    try:
        got, _ = await read_bounded(fallback, now - 4 * HOUR_MS, 2_000)
    finally:
        await fallback.close()
    assert {t.id for t in got} == {t.txid for t in account.trades} and len(got) == 95
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_crowded_millisecond_is_passed_with_a_warning(
    kraken: tuple[SimulatedKraken, str], caplog: pytest.LogCaptureFixture
) -> None:
    """120 fills in one millisecond, Kraken's page is 50 and it takes no larger limit: the 50
    that come are kept and the walk goes on, saying so without naming the account's data."""
    sim, url = kraken
    now = wall_clock_ms()
    crowd_ms = (now - HOUR_MS) // 1000 * 1000
    base = sim.create_account(32, 40, start_ms=now - 3 * HOUR_MS, end_ms=now - 2 * HOUR_MS)
    account = with_fills(sim, base, [crowd_ms * 1000 + 500] * 120)
    fallback = generic(url, account)
    try:
        got, _ = await read_bounded(fallback, now - 4 * HOUR_MS, 4_000)
    finally:
        await fallback.close()
    crowd = [t for t in got if t.timestamp == crowd_ms]
    assert len(by_key(crowd)) == len(crowd) == 50
    assert {t.id for t in got if t.timestamp != crowd_ms} == {t.txid for t in base.trades}
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings and all(w == "kraken: more trades at one millisecond than a page holds" for w in warnings)


async def test_a_stored_cursor_never_asks_more_than_the_declared_page(
    kraken: tuple[SimulatedKraken, str],
) -> None:
    """Kraken declares no page size (50 then) and answers 50 whatever is asked: a cursor asking
    1000 must not take those 50 for a whole millisecond of 120."""
    sim, url = kraken
    now = wall_clock_ms()
    crowd_ms = (now - HOUR_MS) // 1000 * 1000
    base = sim.create_account(33, 10, start_ms=now - 3 * HOUR_MS, end_ms=now - 2 * HOUR_MS)
    account = with_fills(sim, base, [crowd_ms * 1000 + 500] * 120)
    fallback = generic(url, account)
    try:
        page = await fallback.fetch_trades(ALL_PAIRS, CcxtCursor(crowd_ms, 1, 1000), crowd_ms)
    finally:
        await fallback.close()
    assert len(page.trades) == 50 and not page.done
    assert page.cursor == CcxtCursor(crowd_ms + 1, 1, 50)  # passed as crowded, not as complete


async def test_a_start_in_the_future_asks_nothing(kraken: tuple[SimulatedKraken, str]) -> None:
    sim, url = kraken
    now = wall_clock_ms()
    account = sim.create_account(34, 5, start_ms=now - 3 * HOUR_MS, end_ms=now - 2 * HOUR_MS)
    fallback = generic(url, account)
    try:
        page = await fallback.fetch_trades(ALL_PAIRS, None, now + HOUR_MS)
    finally:
        await fallback.close()
    assert page.trades == [] and page.done and isinstance(page.cursor, CcxtCursor)
    assert account.last_nonce == 0  # no authenticated request was made


async def test_a_trade_published_late_is_read_by_the_next_poll() -> None:
    clock = FakeClock()
    sim = SimulatedKraken(seed=13, tier="pro", now_ms=clock)
    sim.max_counter = 1e9
    now = clock.now
    account = sim.create_account(23, 30, start_ms=now - 2 * HOUR_MS, end_ms=now - 10 * MINUTE_MS)
    # The newest trade is 10 s old when the walk (one window: less than a page) ends.
    account = with_fills(sim, account, [(now - 10_000) * 1000 + 500])
    with serve_in_thread(create_kraken_app(sim)) as url:
        creds = credentials("kraken", account.api_key, account.api_secret)
        fallback = CcxtGeneric("kraken", creds, url, clock_ms=clock, requests_per_s=FAST)
        try:
            seen, cursor, _ = await read_all(fallback, now - 3 * HOUR_MS)
            # A fill 40 s old, older than the newest one read, appears only now.
            late = with_fills(sim, account, [(now - 40_000) * 1000 + 500])
            clock.now += 5_000
            trades, _, _ = await read_all(fallback, now - 3 * HOUR_MS, cursor)
        finally:
            await fallback.close()
    assert len(seen) == 31
    assert {t.id for t in seen + trades} == {t.txid for t in late.trades}


ETH_BTC = Market("ETH/BTC", "XETHXXBT", "ETH", "BTC", "spot")


def unified(fees: list[tuple[str, str]]) -> dict[str, Any]:
    """A trade as ccxt's own unification (string number mode) makes it, with these fees."""
    exchange = ccxt_async.kraken({})
    exchange.number = str
    entry = {"id": "T1", "timestamp": NOW, "symbol": "ETH/BTC", "side": "buy", "amount": "2", "price": "0.05"}
    trade: dict[str, Any] = exchange.safe_trade(
        {**entry, "fees": [{"cost": cost, "currency": currency} for cost, currency in fees]}
    )
    return trade


def test_fees_in_one_currency_are_summed_exactly() -> None:
    fee, currency = trade_fee(unified([("0.001", "BTC"), ("0.0005", "BTC")]), ETH_BTC, Decimal("0.05"))
    assert (fee, currency) == (Decimal("0.0015"), "BTC")


def test_fees_in_base_and_quote_become_one_quote_fee_at_the_fill_price() -> None:
    """ccxt leaves ``fee`` empty here; only ``fees`` holds them (they used to be read as 0)."""
    entry = unified([("0.001", "BTC"), ("0.002", "ETH")])
    assert entry["fee"]["cost"] is None
    fee, currency = trade_fee(entry, ETH_BTC, Decimal("0.05"))
    assert (fee, currency) == (Decimal("0.0011"), "BTC")


def test_a_zero_fee_in_another_currency_is_ignored() -> None:
    fee, currency = trade_fee(unified([("0.001", "BTC"), ("0", "BNB")]), ETH_BTC, Decimal("0.05"))
    assert (fee, currency) == (Decimal("0.001"), "BTC")
    assert trade_fee(unified([]), ETH_BTC, Decimal("0.05")) == (Decimal(0), "BTC")


def test_fees_in_a_third_currency_refuse_the_trade() -> None:
    with pytest.raises(ValueError):
        trade_fee(unified([("0.001", "BTC"), ("0.01", "BNB")]), ETH_BTC, Decimal("0.05"))
