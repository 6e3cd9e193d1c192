"""One price service per exchange: candles fetched once and shared by every session."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from perf_aggregator.exchanges.base import ExchangeConnector
from perf_aggregator.ledger.prices import PriceBook


class PriceService:
    """Owns an exchange's :class:`PriceBook` and fills it from public candles on demand."""

    def __init__(self, connector: ExchangeConnector) -> None:
        self._connector = connector
        self._book: PriceBook | None = None
        self._lock = asyncio.Lock()
        self._creating = asyncio.Lock()

    async def book(self) -> PriceBook:
        """The price book, created once from the exchange's market list on first use.

        Concurrent first callers must get the same book: a ledger holding a book that
        never receives candles would leave its trades unpriced for good.
        """
        async with self._creating:
            if self._book is None:
                markets = await self._connector.markets()
                self._book = PriceBook(set(markets))
        return self._book

    async def ensure(self, needs: Iterable[tuple[str, int]]) -> None:
        """Fetch whatever candles ``needs`` lack; concurrent callers share the fetches."""
        book = await self.book()
        async with self._lock:
            for market, start_ms, end_ms in book.missing_ranges(needs):
                candles = await self._connector.fetch_candles(market, start_ms, end_ms)
                book.add_candles(market, candles.start_ms, candles.covered_until_ms, candles.closes)

    async def close(self) -> None:
        """Release the connector."""
        await self._connector.close()
