"""The Coinbase connector against the simulator: validation, complete history, candles, errors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest

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
from perf_aggregator.simulator.coinbase import MINUTE_MS, Faults, SimulatedCoinbase, create_coinbase_app
from perf_aggregator.tee.credentials import ExchangeCredentials

HOUR_MS = 3_600_000


class Clock:
    def __init__(self) -> None:
        self.now = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.now


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[SimulatedCoinbase, Clock, str]]:
    clock = Clock()
    sim = SimulatedCoinbase(seed=4, private_per_second=10_000, public_per_second=10_000, now_ms=clock)
    with serve_in_thread(create_coinbase_app(sim)) as url:
        yield sim, clock, url


def credentials(key: str, secret: str) -> ExchangeCredentials:
    return ExchangeCredentials("coinbase", key, secret, None, "spot", 0, ())


@pytest.fixture
def sim(served: tuple[SimulatedCoinbase, Clock, str]) -> Iterator[SimulatedCoinbase]:
    exchange, clock, _ = served
    clock.now = int(time.time() * 1000)
    yield exchange
    exchange.faults = Faults()
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


async def test_overlapping_and_duplicated_pages_lose_nothing(
    connector: tuple[CoinbaseAdvanced, Any, Clock], sim: SimulatedCoinbase
) -> None:
    conn, account, _ = connector
    sim.faults.page_overlap = 7
    sim.faults.duplicate_page_rate = 0.3
    trades, _ = await sweep(conn, None, 0)
    assert {t.id for t in trades} == {f["trade_id"] for f in account.fills}


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
    ("fault", "error"),
    [
        ("error_rate", ExchangeUnavailable),
        ("malformed_rate", ExchangeUnavailable),
        ("reset_rate", ExchangeUnavailable),
    ],
)
async def test_faults_are_classified(
    connector: tuple[CoinbaseAdvanced, Any, Clock], sim: SimulatedCoinbase, fault: str, error: type[Exception]
) -> None:
    conn, _, _ = connector
    setattr(sim.faults, fault, 1.0)
    with pytest.raises(error) as raised:
        await conn.fetch_trades(ALL_FILLS, None, 0)
    assert not isinstance(raised.value, RateLimited | CredentialsRejected)


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
