"""Which exchanges this build supports, and connectors for them."""

from __future__ import annotations

from perf_aggregator.exchanges.base import ExchangeConnector
from perf_aggregator.exchanges.binance import BinanceSpot
from perf_aggregator.tee.credentials import ExchangeCredentials

SUPPORTED_EXCHANGES = frozenset({"binance"})
SUPPORTED_ACCOUNT_TYPES = {"binance": frozenset({"spot"})}


def account_connector(credentials: ExchangeCredentials, origin_override: str | None) -> ExchangeConnector:
    """A connector reading the account behind ``credentials``."""
    if credentials.exchange == "binance":
        return BinanceSpot(credentials, origin_override)
    raise ValueError(f"unsupported exchange {credentials.exchange!r}")


def market_data_connector(exchange_id: str, origin_override: str | None) -> ExchangeConnector:
    """A connector without credentials, for public market data (candles, markets)."""
    if exchange_id == "binance":
        return BinanceSpot(None, origin_override)
    raise ValueError(f"unsupported exchange {exchange_id!r}")
