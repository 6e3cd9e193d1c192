"""The Binance window scan against a lagging replica: a window that holds a trade known to exist
(the oldest of spot's most recent page, a futures symbol's first commission) is not skipped
for a few stale empty answers, and an exchange that never shows it cannot stall the scan."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qs

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.exchanges.binance import EMPTY_READS_KNOWN, BinanceSpot
from perf_aggregator.exchanges.binance_usdm import BinanceUsdm
from perf_aggregator.ledger.trades import Trade
from perf_aggregator.simulator.binance import SimulatedBinance, create_binance_app
from perf_aggregator.simulator.binance_usdm import enable_futures
from perf_aggregator.tee.credentials import ExchangeCredentials
from request_log import held_answer, json_answer

DAY_MS = 86_400_000
TRADES_PATHS = frozenset({"/api/v3/myTrades", "/fapi/v1/userTrades"})


class Lagging:
    """A simulated Binance which, once armed, answers ``[]`` to the first ``hide`` requests for
    the first window (``startTime`` set) whose true answer holds trades, as stale replicas would."""

    def __init__(self, sim: SimulatedBinance) -> None:
        self.sim = sim
        self.app = create_binance_app(sim)
        self.origin = ""
        self.hide = 0
        self.window: str | None = None
        self.hidden = 0

    def arm(self, hide: int) -> None:
        self.hide, self.window, self.hidden = hide, None, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode())
        if scope["type"] != "http" or scope["path"] not in TRADES_PATHS or "startTime" not in query:
            await self.app(scope, receive, send)
            return
        messages, body = await held_answer(self.app, scope, receive)
        window = scope["path"] + query["startTime"][0]
        if self.window is None and messages[0]["status"] == 200 and json.loads(body):
            self.window = window
        if window == self.window and self.hidden < self.hide:
            self.hidden += 1
            messages = json_answer(b"[]")
        for message in messages:
            await send(message)


@pytest.fixture(scope="module")
def exchange() -> Iterator[Lagging]:
    sim = SimulatedBinance(seed=23)
    enable_futures(sim)
    lagging = Lagging(sim)
    with serve_in_thread(lagging) as origin:
        lagging.origin = origin
        yield lagging


async def backfill(connector: BinanceSpot, symbol: str, since_ms: int) -> list[Trade]:
    """Page one symbol until the connector says its history is read, as the scheduler does."""
    trades: list[Trade] = []
    cursor: object | None = None
    for _ in range(200):
        page = await connector.fetch_trades(symbol, cursor, since_ms)
        trades.extend(page.trades)
        cursor = page.cursor
        if page.done:
            return trades
    raise AssertionError("the scan never ended")


def credentials(key: str, secret: str, account_type: str, since_ms: int) -> ExchangeCredentials:
    return ExchangeCredentials("binance", key, secret, None, account_type, since_ms, ())


@pytest.mark.parametrize(("hide", "complete"), [(EMPTY_READS_KNOWN - 1, True), (EMPTY_READS_KNOWN, False)])
async def test_spot_rereads_the_window_of_the_oldest_trade_of_the_recent_page(
    exchange: Lagging, opened: list[BinanceSpot], hide: int, complete: bool
) -> None:
    # Exactly one page of trades, all after ``since``: the recent page cannot tell whether older
    # ones exist, so the days from ``since`` are scanned; the first trade's day is known. Were
    # it skipped, the walk would start at the next day's first trade and lose the first day's.
    end = int(time.time() * 1000) - 10 * 60_000
    account = exchange.sim.create_account(
        70 + hide, 1000, start_ms=end - 3 * DAY_MS, end_ms=end, symbols=["BTCUSDT"], bnb_fee_share=0.0
    )
    since = end - 6 * DAY_MS
    connector = BinanceSpot(credentials(account.api_key, account.api_secret, "spot", since), exchange.origin)
    opened.append(connector)
    exchange.arm(hide)

    trades = await backfill(connector, "BTC/USDT", since)

    ids = {t.id for t in trades}
    assert (ids == {str(t["id"]) for t in account.raw_trades()}) is complete
    assert exchange.hidden == hide  # bounded: a window never shown is not read forever


@pytest.mark.parametrize(("hide", "complete"), [(EMPTY_READS_KNOWN - 1, True), (EMPTY_READS_KNOWN, False)])
async def test_futures_rereads_the_week_of_the_first_commission(
    exchange: Lagging, opened: list[BinanceSpot], hide: int, complete: bool
) -> None:
    end = int(time.time() * 1000) - 10 * 60_000
    body = {"seed": 80 + hide, "trades": 30, "start": end - DAY_MS, "end": end, "symbols": ["ETHUSDT"]}
    created = httpx.post(f"{exchange.origin}/_simulator/futures/accounts", json=body, timeout=60)
    key, secret = created.raise_for_status().json()["api_key"], created.json()["api_secret"]
    raw = httpx.get(f"{exchange.origin}/_simulator/futures/accounts/{key}/trades", timeout=60).json()
    since = end - 30 * DAY_MS  # four empty weeks, then (at most two) weeks with the fills
    connector = BinanceUsdm(credentials(key, secret, "futures", since), exchange.origin)
    opened.append(connector)
    assert await connector.discover_symbols([]) == ["ETH/USDT:USDT"]  # income: the first commission
    exchange.arm(hide)

    trades = await backfill(connector, "ETH/USDT:USDT", since)

    assert ({t.id for t in trades} == {str(r["id"]) for r in raw}) is complete
    assert exchange.hidden == hide
