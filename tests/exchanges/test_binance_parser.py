"""Binance spot ``myTrades`` elements as normalized trades."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from perf_aggregator.exchanges import binance
from perf_aggregator.exchanges.base import Market
from perf_aggregator.ledger.trades import Trade

SPOT = Market("BTC/USDT", "BTCUSDT", "BTC", "USDT", "spot")
SPOT_FIELDS = ("BTC/USDT", "BTC", "USDT", "spot")
"""A trade's symbol, base, quote and market type on ``SPOT``."""


def element(**fields: Any) -> dict[str, Any]:
    """A ``myTrades`` element as Binance sends it (API.md field names), with ``fields`` replaced."""
    return {
        "symbol": "BTCUSDT",
        "id": 28457,
        "orderId": 100234,
        "orderListId": -1,
        "price": "4.00000100",
        "qty": "12.00000000",
        "quoteQty": "48.000012",
        "commission": "10.10000000",
        "commissionAsset": "BNB",
        "time": 1499865549590,
        "isBuyer": True,
        "isMaker": False,
        "isBestMatch": True,
    } | fields


def test_an_element_becomes_a_trade_with_every_field() -> None:
    buy, sell = binance.parse_trades([element(), element(id=28458, isBuyer=False)], SPOT)
    decimals = [Decimal(text) for text in ("12.00000000", "4.00000100", "10.10000000")]
    # in field order: ids, market, side, amount, price and fee, fee currency, time (no exchange pnl)
    assert buy == Trade("28457", "100234", *SPOT_FIELDS, "buy", *decimals, "BNB", 1499865549590)
    assert (sell.id, sell.side) == ("28458", "sell")
    assert buy.amount.as_tuple().exponent == -8  # the text's digits are kept


@pytest.mark.parametrize("field", ["qty", "price", "commission"])
@pytest.mark.parametrize("text", [" 12.5", "12.5 ", "1_000", "twelve", ""])
def test_a_decimal_text_that_is_not_strictly_a_number_is_refused(field: str, text: str) -> None:
    # Decimal() itself would strip the spaces and read the underscores; the connector turns the
    # ArithmeticError into a refused page (read again later), never a trade
    with pytest.raises(ArithmeticError):
        binance.parse_trades([element(**{field: text})], SPOT)


def test_a_kline_close_is_read_strictly() -> None:
    row = [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100", "148976.1", 1499644799999]
    assert binance.parse_kline(row) == (1499040000000, Decimal("0.01577100"))
    for close in (" 0.015771", "0_015771", "cheap"):  # Decimal() would read the first two
        with pytest.raises(ArithmeticError):
            binance.parse_kline([*row[:4], close, *row[5:]])
