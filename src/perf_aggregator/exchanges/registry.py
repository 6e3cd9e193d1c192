"""Which exchanges this build supports, and connectors for them.

Each dedicated connector class takes ``(credentials or None, origin_override or None)``;
without credentials it serves public market data only. Classes are named by
import path so that an exchange's module (and its ccxt class) loads only when used.
Any other ccxt exchange with spot markets and ``fetchMyTrades`` is read, spot only, through
:class:`~perf_aggregator.exchanges.ccxt_generic.CcxtGeneric` (ccxt's own parsing).
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
"""``(exchange id, account_type)`` → ``module:Class`` of the dedicated connector reading that account."""

MARKET_DATA: dict[str, str] = {
    "binance": "perf_aggregator.exchanges.binance:BinanceSpot",
    "coinbase": "perf_aggregator.exchanges.coinbase:CoinbaseAdvanced",
    "kraken": "perf_aggregator.exchanges.kraken:KrakenSpot",
}
"""Exchange id → dedicated connector class used without credentials for markets and candles (pricing)."""

_CCXT_GENERIC = "perf_aggregator.exchanges.ccxt_generic:CcxtGeneric"
DEDICATED_EXCHANGES = frozenset(exchange for exchange, _ in ACCOUNT_CONNECTORS)
GENERIC_ACCOUNT_TYPE = "spot"


def _generic(exchange: str) -> bool:
    """Whether ``exchange`` is read by the ccxt fallback (loads ccxt only for non-dedicated ids)."""
    if exchange in DEDICATED_EXCHANGES:
        return False
    from perf_aggregator.exchanges.ccxt_generic import has_my_trades

    return has_my_trades(exchange)


def supports_exchange(exchange: object) -> bool:
    """Whether ``exchange`` (a ``metadata.exchange`` value) names an exchange this build reads."""
    return isinstance(exchange, str) and (exchange in DEDICATED_EXCHANGES or _generic(exchange))


def supports(exchange: str, account_type: str) -> bool:
    """Whether this build can read ``account_type`` accounts on ``exchange``."""
    if (exchange, account_type) in ACCOUNT_CONNECTORS:
        return True
    return account_type == GENERIC_ACCOUNT_TYPE and _generic(exchange)


def _load(path: str) -> type:
    module, _, name = path.partition(":")
    return cast(type, getattr(importlib.import_module(module), name))


def load_connectors() -> None:
    """Import every connector (and ccxt) now rather than at first use: for a service about to
    keep its startup objects out of the garbage collector's passes."""
    for path in sorted({*ACCOUNT_CONNECTORS.values(), *MARKET_DATA.values(), _CCXT_GENERIC}):
        _load(path)


def account_connector(credentials: ExchangeCredentials, origin_override: str | None) -> ExchangeConnector:
    """A connector reading the account behind ``credentials`` (which :func:`supports`)."""
    path = ACCOUNT_CONNECTORS.get((credentials.exchange, credentials.account_type))
    if path is None:
        generic = _load(_CCXT_GENERIC)
        return cast(ExchangeConnector, generic(credentials.exchange, credentials, origin_override))
    return cast(ExchangeConnector, _load(path)(credentials, origin_override))


def market_data_connector(exchange_id: str, origin_override: str | None) -> ExchangeConnector:
    """A connector without credentials, for public market data (candles, markets)."""
    path = MARKET_DATA.get(exchange_id)
    if path is None:
        generic = _load(_CCXT_GENERIC)
        return cast(ExchangeConnector, generic(exchange_id, None, origin_override))
    return cast(ExchangeConnector, _load(path)(None, origin_override))
