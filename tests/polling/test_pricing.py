"""The shared price service hands every session the same book."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal

from perf_aggregator.exchanges.base import Candles, Market, TradePage
from perf_aggregator.polling.pricing import PriceService


class SlowMarkets:
    """A connector whose market list takes a while, as over a real network."""

    exchange_id = "test"
    data_source = "http://127.0.0.1"

    def __init__(self) -> None:
        self.calls = 0

    async def markets(self) -> dict[str, Market]:
        self.calls += 1
        await asyncio.sleep(0.05)
        return {"BNB/USDT": Market("BNB/USDT", "BNBUSDT", "BNB", "USDT", "spot")}

    async def fetch_candles(self, symbol: str, start_ms: int, end_ms: int) -> Candles:
        return Candles([(start_ms, Decimal(600))], start_ms, start_ms)

    async def validate(self) -> None: ...
    async def discover_symbols(self, hints: Sequence[str]) -> list[str]: ...  # type: ignore[empty-body]
    async def fetch_trades(self, symbol: str, cursor: object | None, since_ms: int) -> TradePage: ...  # type: ignore[empty-body]
    async def close(self) -> None: ...


async def test_concurrent_first_callers_share_one_book() -> None:
    connector = SlowMarkets()
    service = PriceService(connector)
    books = await asyncio.gather(*(service.book() for _ in range(8)))
    assert all(book is books[0] for book in books)
    assert connector.calls == 1
