"""Every parser's ``cost`` is ``amount * price`` exactly, however many digits (METRICS.md "Trades":
products are exact), and so is a ccxt fee folded into the quote currency."""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction

import ccxt.async_support as ccxt_async

from perf_aggregator.exchanges import binance, binance_usdm, coinbase, kraken
from perf_aggregator.exchanges.base import Market
from perf_aggregator.exchanges.ccxt_generic import trade_fee

AMOUNT = "123456789.123456789012345"
PRICE = "98765.4321098765432109"
"""24 and 21 significant digits: their product has 45, which the default context (28) rounds."""
EXACT_COST = Fraction(AMOUNT) * Fraction(PRICE)
SPOT = Market("BTC/USDT", "BTCUSDT", "BTC", "USDT", "spot")


def test_the_product_needs_more_digits_than_the_default_context() -> None:
    with localcontext() as context:
        context.prec = 28
        assert Fraction(Decimal(AMOUNT) * Decimal(PRICE)) != EXACT_COST


def test_binance_spot() -> None:
    raw = {
        "symbol": "BTCUSDT",
        "id": 7,
        "orderId": 8,
        "price": PRICE,
        "qty": AMOUNT,
        "commission": "0.1",
        "commissionAsset": "USDT",
        "time": 1_767_225_600_000,
        "isBuyer": True,
    }
    (trade,) = binance.parse_trades([raw], SPOT)
    assert Fraction(trade.cost) == EXACT_COST


def test_binance_usdm() -> None:
    raw = {
        "symbol": "BTCUSDT",
        "id": 7,
        "orderId": 8,
        "side": "BUY",
        "price": PRICE,
        "qty": AMOUNT,
        "realizedPnl": "0",
        "commission": "0.1",
        "commissionAsset": "USDT",
        "time": 1_767_225_600_000,
    }
    market = Market("BTC/USDT:USDT", "BTCUSDT", "BTC", "USDT", "swap")
    assert Fraction(binance_usdm.parse_usdm_trade(raw, market).cost) == EXACT_COST


def test_coinbase() -> None:
    raw = {
        "trade_id": "t1",
        "order_id": "o1",
        "product_id": "BTC-USDT",
        "price": PRICE,
        "size": AMOUNT,
        "commission": "0.1",
        "side": "BUY",
        "trade_time": "2026-01-01T00:00:00Z",
        "size_in_quote": False,
    }
    assert Fraction(coinbase.parse_fill(raw, SPOT).cost) == EXACT_COST


def test_kraken() -> None:
    raw = {
        "ordertxid": "O1",
        "pair": "XBTUSDT",
        "time": 1767225600.0,
        "type": "buy",
        "price": PRICE,
        "vol": AMOUNT,
        "fee": "0.1",
    }
    assert Fraction(kraken.parse_trade("T1", raw, SPOT).cost) == EXACT_COST


def test_ccxt_fee_in_base_and_quote() -> None:
    exchange = ccxt_async.kraken({})
    exchange.number = str
    entry = exchange.safe_trade(
        {
            "id": "T1",
            "timestamp": 1_767_225_600_000,
            "symbol": "BTC/USDT",
            "side": "buy",
            "amount": "1",
            "price": PRICE,
            "fees": [{"cost": AMOUNT, "currency": "BTC"}, {"cost": "0.1", "currency": "USDT"}],
        }
    )
    fee, currency = trade_fee(entry, SPOT, Decimal(PRICE))
    assert (Fraction(fee), currency) == (EXACT_COST + Fraction("0.1"), "USDT")
