"""The ccxt fallback connector, run for ``kraken`` against the Kraken simulator and checked
against the dedicated connector; plus the registry's fallback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import closed_port_origin, enclave_settings
from perf_aggregator.api.app import create_app
from perf_aggregator.client import Credentials, EnclaveClient, VerificationPolicy
from perf_aggregator.config import Settings
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.exchanges.ccxt_generic import (
    ALL_PAIRS,
    KEY_PERMISSIONS_WARNING,
    CcxtCursor,
    CcxtGeneric,
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
            for _ in range(12):
                clock.now += 5 * MINUTE_MS
                trades, cursor, calls = await read_all(fallback, now - 3 * HOUR_MS, cursor)
                assert calls == 1  # a poll asks one window: from the last trade to the present
                seen.extend(trades)
        finally:
            await fallback.close()
    expected = {t.txid for t in account.trades if t.time_ms <= clock.now}
    assert {t.id for t in seen} == expected and len(expected) > backfilled + 30
    # Repeats are only the last trade's millisecond, re-read by each poll.
    assert len(seen) - len(expected) <= 12


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
