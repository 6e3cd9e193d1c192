"""Binance candles from a garbled answer: the page is refused (read again later), never a close
the exchange did not send, and never an error the price service cannot classify."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from starlette.types import Receive, Scope, Send

from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.exchanges.binance import BinanceSpot
from perf_aggregator.exchanges.errors import ExchangeUnavailable
from perf_aggregator.simulator.binance import SimulatedBinance, create_binance_app
from perf_aggregator.tee.credentials import ExchangeCredentials
from request_log import held_answer, json_answer

MINUTE_MS = 60_000


class Garbling:
    """A simulated Binance whose ``klines`` answers, while ``row`` is set, have their first
    element replaced by it (valid JSON, the right status: only the content is wrong)."""

    def __init__(self, sim: SimulatedBinance) -> None:
        self.sim = sim
        self.app = create_binance_app(sim)
        self.origin = ""
        self.row: list[object] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/api/v3/klines" or self.row is None:
            await self.app(scope, receive, send)
            return
        _, body = await held_answer(self.app, scope, receive)
        for message in json_answer(json.dumps([self.row, *json.loads(body)[1:]]).encode()):
            await send(message)


@pytest.fixture(scope="module")
def exchange() -> Iterator[Garbling]:
    garbling = Garbling(SimulatedBinance(seed=31))
    with serve_in_thread(garbling) as origin:
        garbling.origin = origin
        yield garbling


@pytest.mark.parametrize(
    "row",
    [
        [0, "1", "1", "1", " 1.5", "1", 59_999],  # Decimal() would strip the space
        [0, "1", "1", "1", "1_500", "1", 59_999],  # and read this as 1500
        [0, "1", "1", "1", "cheap", "1", 59_999],
        [0, "1"],  # too short
        {"close": "1.5"},  # not a row
    ],
)
async def test_a_garbled_kline_refuses_the_page(
    exchange: Garbling, opened: list[BinanceSpot], row: list[object]
) -> None:
    end = int(time.time() * 1000) - 10 * MINUTE_MS
    account = exchange.sim.create_account(
        5, 10, start_ms=end - MINUTE_MS * 60, end_ms=end, symbols=["BTCUSDT"]
    )
    credentials = ExchangeCredentials(
        "binance", account.api_key, account.api_secret, None, "spot", end - MINUTE_MS * 60, ()
    )
    connector = BinanceSpot(credentials, exchange.origin)
    opened.append(connector)
    start = (end // MINUTE_MS - 30) * MINUTE_MS
    good = await connector.fetch_candles("BTC/USDT", start, start + 10 * MINUTE_MS)
    assert len(good.closes) == 11
    exchange.row = [start, *row[1:]] if isinstance(row, list) else row
    try:
        with pytest.raises(ExchangeUnavailable):
            await connector.fetch_candles("BTC/USDT", start, start + 10 * MINUTE_MS)
    finally:
        exchange.row = None
    assert await connector.fetch_candles("BTC/USDT", start, start + 10 * MINUTE_MS) == good
