"""Fixtures shared by the connector tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from perf_aggregator.exchanges.binance import BinanceSpot


@pytest.fixture
async def opened() -> AsyncIterator[list[BinanceSpot]]:
    """Binance connectors a test opened (futures ones too), closed after it."""
    connectors: list[BinanceSpot] = []
    yield connectors
    for connector in connectors:
        await connector.close()
