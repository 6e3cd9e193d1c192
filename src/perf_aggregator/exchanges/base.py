"""The small interface every exchange connector implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from perf_aggregator.ledger.trades import MarketType, Trade


@dataclass(frozen=True, slots=True)
class Market:
    """One market of an exchange, in ccxt unified naming (``BTC/USDT``)."""

    symbol: str
    id: str
    base: str
    quote: str
    market_type: MarketType


@dataclass(frozen=True, slots=True)
class TradePage:
    """One answer of :meth:`ExchangeConnector.fetch_trades`.

    ``cursor`` is opaque to callers and is passed back for the next page;
    ``done`` says there is nothing more to read right now.
    """

    trades: list[Trade]
    cursor: object
    done: bool


@dataclass(frozen=True, slots=True)
class Candles:
    """Closed 1-minute candles ``(open_time_ms, close)`` of ``[start_ms, covered_until_ms]``.

    The span is what the answer evidences was fetched; it is empty (``covered_until_ms <
    start_ms``) when nothing can be vouched for."""

    closes: list[tuple[int, Decimal]]
    start_ms: int
    covered_until_ms: int


class ExchangeConnector(Protocol):
    """Read-only access to one account (or, without credentials, to public market data).

    Optional attribute, not part of the structural type: ``warnings: tuple[str, ...] = ()``,
    what the connector could not check about the key (Kraken cannot tell whether a key can
    withdraw). Read it with :func:`connector_warnings`; registration returns it to the client.
    """

    exchange_id: str
    data_source: str
    """Origin the data is actually read from (an operator override shows here)."""

    async def validate(self) -> None:
        """One authenticated read plus the key's permissions where the exchange exposes them."""
        ...

    async def markets(self) -> dict[str, Market]:
        """Every market of the exchange by unified symbol (cached after the first call)."""
        ...

    async def discover_symbols(self, hints: Sequence[str]) -> list[str]:
        """Unified symbols whose trade history must be read for this account."""
        ...

    async def fetch_trades(self, symbol: str, cursor: object | None, since_ms: int) -> TradePage:
        """The next page of the account's trades in ``symbol`` at or after ``since_ms``."""
        ...

    async def fetch_candles(self, symbol: str, start_ms: int, end_ms: int) -> Candles:
        """Closed 1m candles of ``symbol`` whose open time is in ``[start_ms, end_ms]``."""
        ...

    async def close(self) -> None:
        """Release HTTP resources."""
        ...


def connector_warnings(connector: object) -> tuple[str, ...]:
    """The connector's optional ``warnings`` (empty when it has none)."""
    return tuple(getattr(connector, "warnings", ()))
