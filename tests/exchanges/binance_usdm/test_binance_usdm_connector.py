"""``BinanceUsdm`` against the simulator: markets, validation, discovery, complete history, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.exchanges.binance_usdm import BinanceUsdm, parse_usdm_trade
from perf_aggregator.exchanges.errors import CredentialsRejected, KeyNotReadOnly, RateLimited
from perf_aggregator.ledger.trades import Trade
from perf_aggregator.simulator import SimulatedBinance, create_binance_app
from perf_aggregator.tee.credentials import ExchangeCredentials

from .conftest import DAY_MS, FuturesSim

Connect = Callable[..., BinanceUsdm]


@pytest.fixture
async def connect(futures_sim: FuturesSim) -> AsyncIterator[Connect]:
    opened: list[BinanceUsdm] = []

    def make(account: dict[str, Any] | None, since_ms: int = 0, **fields: Any) -> BinanceUsdm:
        credentials = None
        if account is not None:
            values = {
                "exchange": "binance",
                "api_key": account["api_key"],
                "api_secret": account["api_secret"],
                "passphrase": None,
                "account_type": "futures",
                "since_ms": since_ms,
                "symbols": (),
            } | fields
            credentials = ExchangeCredentials(**values)
        connector = BinanceUsdm(credentials, futures_sim.origin)
        opened.append(connector)
        return connector

    yield make
    for connector in opened:
        await connector.close()


async def read_all(
    connector: BinanceUsdm, since_ms: int, hints: tuple[str, ...] = ()
) -> tuple[list[Trade], dict[str, object]]:
    """One poll the way the scheduler runs it: discover, then page every symbol until done."""
    trades: list[Trade] = []
    cursors: dict[str, object] = {}
    for symbol in await connector.discover_symbols(hints):
        while True:
            page = await connector.fetch_trades(symbol, cursors.get(symbol), since_ms)
            trades.extend(page.trades)
            cursors[symbol] = page.cursor
            if page.done:
                break
    return trades, cursors


async def test_markets_are_the_linear_perpetuals(connect: Connect, futures_sim: FuturesSim) -> None:
    connector = connect(None)
    markets = await connector.markets()
    assert sorted(markets) == ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]
    btc = markets["BTC/USDT:USDT"]
    assert (btc.id, btc.base, btc.quote, btc.market_type) == ("BTCUSDT", "BTC", "USDT", "swap")
    assert connector.data_source == futures_sim.origin and connector.exchange_id == "binance"


async def test_complete_history_across_weeks_and_pages(connect: Connect, futures_sim: FuturesSim) -> None:
    account = futures_sim.account(trades=4000, seed=31, days=40)
    since = account["start"] + 9 * DAY_MS  # earlier fills exist and are left out
    connector = connect(account, since)
    await connector.validate()

    trades, cursors = await read_all(connector, since)

    expected = [r for r in account["raw"] if r["time"] >= since]
    by_symbol: dict[str, list[dict[str, Any]]] = {}
    for r in expected:
        by_symbol.setdefault(r["symbol"], []).append(r)
    assert max(len(v) for v in by_symbol.values()) > 1000  # fromId paging was needed
    # Pages overlap by design (the first week's page is read again by fromId, each fromId
    # page starts at the last id seen); the ledger keeps one trade per key.
    unique = {t.key: t for t in trades}
    assert len(trades) - len(unique) <= 2 * 1000 * len(by_symbol)
    keys = set(unique)
    markets = await connector.markets()
    by_id = {m.id: m for m in markets.values()}
    assert sorted(unique.values(), key=lambda t: t.order) == sorted(
        (parse_usdm_trade(r, by_id[r["symbol"]]) for r in expected), key=lambda t: t.order
    )

    # The next poll reads from the last id seen: at most that fill again, nothing new.
    again = []
    for symbol, cursor in cursors.items():
        page = await connector.fetch_trades(symbol, cursor, since)
        assert page.done
        again.extend(page.trades)
    assert {t.key for t in again} <= keys and len(again) <= len(cursors)


async def test_discovery_finds_closed_positions_and_keeps_hints(
    connect: Connect, futures_sim: FuturesSim
) -> None:
    account = futures_sim.account(trades=60, seed=32, days=3, symbols=["ETHUSDT", "SOLUSDT"])
    connector = connect(account, account["start"])
    found = await connector.discover_symbols(["BTC/USDT:USDT", "DOGE/USDT:USDT"])
    assert found == ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]
    # Later polls only read income since the previous one, and keep what was found.
    assert await connector.discover_symbols([]) == ["ETH/USDT:USDT", "SOL/USDT:USDT"]


async def test_an_empty_account_is_read_in_week_windows(connect: Connect, futures_sim: FuturesSim) -> None:
    account = futures_sim.account(trades=0, seed=33, days=30)
    connector = connect(account, account["start"])
    assert await connector.discover_symbols([]) == []
    windows = 0
    cursor: object | None = None
    while True:
        page = await connector.fetch_trades("BTC/USDT:USDT", cursor, account["start"])
        windows += 1
        assert page.trades == []
        cursor = page.cursor
        if page.done:
            break
    assert windows == 10  # 30 days and 10 minutes: five 7-day windows, each empty one read twice


async def test_keys_that_can_withdraw_or_are_wrong_are_refused(
    connect: Connect, futures_sim: FuturesSim
) -> None:
    withdrawing = futures_sim.account(trades=5, seed=34, days=1, can_withdraw=True)
    with pytest.raises(KeyNotReadOnly):
        await connect(withdrawing).validate()
    with pytest.raises(CredentialsRejected):
        await connect(withdrawing, api_secret="x" * 64).validate()
    with pytest.raises(CredentialsRejected):
        await connect(withdrawing, api_key="A" * 64).validate()
    spot_only = httpx.post(
        f"{futures_sim.origin}/_simulator/accounts", json={"seed": 1, "trades": 3}, timeout=30
    ).json()
    with pytest.raises(CredentialsRejected):
        await connect(spot_only).validate()


async def test_rate_limit_answers_become_rate_limited() -> None:
    # Its own simulator: the penalty pauses the process-wide budget of that origin.
    sim = SimulatedBinance(seed=2)
    sim.limiter.limits["fapi"] = 0
    with serve_in_thread(create_binance_app(sim)) as origin:
        account = FuturesSim(sim, origin).account(trades=5, seed=35, days=1)
        credentials = ExchangeCredentials(
            "binance", account["api_key"], account["api_secret"], None, "futures", 0, ()
        )
        connector = BinanceUsdm(credentials, origin)
        try:
            with pytest.raises(RateLimited) as limited:
                await connector.validate()
        finally:
            await connector.close()
    assert 1 <= limited.value.retry_after_s <= 60


async def test_candles_come_from_futures_klines(connect: Connect, futures_sim: FuturesSim) -> None:
    connector = connect(None)
    end = (futures_sim.sim.now_ms() // 60_000 - 30) * 60_000
    candles = await connector.fetch_candles("ETH/USDT:USDT", end - 1500 * 60_000, end)
    assert len(candles.closes) == 1501
    spot = httpx.get(
        f"{futures_sim.origin}/api/v3/klines",
        params={"symbol": "ETHUSDT", "interval": "1m", "startTime": end - 10 * 60_000, "endTime": end},
    ).json()
    assert candles.closes[-11:] == [(k[0], Decimal(k[4])) for k in spot]


async def test_candles_cover_only_the_minutes_received(connect: Connect) -> None:
    connector = connect(None)
    listed = 1_597_125_600_000  # SOLUSDT's first candle on the simulator
    straddling = await connector.fetch_candles("SOL/USDT:USDT", listed - 30 * 60_000, listed + 9 * 60_000)
    assert [open_ms for open_ms, _ in straddling.closes] == [listed + i * 60_000 for i in range(10)]
    assert (straddling.start_ms, straddling.covered_until_ms) == (listed, listed + 9 * 60_000)
    before = await connector.fetch_candles("SOL/USDT:USDT", listed - 30 * 60_000, listed - 60_000)
    assert before.closes == [] and before.covered_until_ms < before.start_ms  # nothing vouched for
