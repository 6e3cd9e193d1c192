"""Which exchanges this build supports, and connectors for them.

Each connector class takes ``(credentials or None, origin_override or None)``;
without credentials it serves public market data only. Classes are named by
import path so that an exchange's module (and its ccxt class) loads only when used.
"""

from __future__ import annotations

import importlib
from typing import cast

from perf_aggregator.exchanges.base import ExchangeConnector
from perf_aggregator.tee.credentials import ExchangeCredentials

ACCOUNT_CONNECTORS: dict[tuple[str, str], str] = {
    ("binance", "spot"): "perf_aggregator.exchanges.binance:BinanceSpot",
    ("coinbase", "spot"): "perf_aggregator.exchanges.coinbase:CoinbaseAdvanced",
    ("binance", "futures"): "perf_aggregator.exchanges.binance_usdm:BinanceUsdm",
    ("kraken", "spot"): "perf_aggregator.exchanges.kraken:KrakenSpot",
}
"""``(exchange id, account_type)`` → ``module:Class`` of the connector reading that account."""

MARKET_DATA: dict[str, str] = {
    "binance": "perf_aggregator.exchanges.binance:BinanceSpot",
    "coinbase": "perf_aggregator.exchanges.coinbase:CoinbaseAdvanced",
    "kraken": "perf_aggregator.exchanges.kraken:KrakenSpot",
}
"""Exchange id → connector class used without credentials for markets and candles (pricing)."""

SUPPORTED_EXCHANGES = frozenset(exchange for exchange, _ in ACCOUNT_CONNECTORS)


def supports(exchange: str, account_type: str) -> bool:
    """Whether this build can read ``account_type`` accounts on ``exchange``."""
    return (exchange, account_type) in ACCOUNT_CONNECTORS


def _load(path: str) -> type:
    module, _, name = path.partition(":")
    return cast(type, getattr(importlib.import_module(module), name))


def account_connector(credentials: ExchangeCredentials, origin_override: str | None) -> ExchangeConnector:
    """A connector reading the account behind ``credentials``."""
    cls = _load(ACCOUNT_CONNECTORS[(credentials.exchange, credentials.account_type)])
    return cast(ExchangeConnector, cls(credentials, origin_override))


def market_data_connector(exchange_id: str, origin_override: str | None) -> ExchangeConnector:
    """A connector without credentials, for public market data (candles, markets)."""
    return cast(ExchangeConnector, _load(MARKET_DATA[exchange_id])(None, origin_override))
