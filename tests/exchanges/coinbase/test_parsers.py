"""Our exact Coinbase parsers, field by field, against ccxt's ``parse_trade`` as an oracle."""

from __future__ import annotations

from decimal import Context, Decimal, localcontext
from fractions import Fraction
from typing import Any

import ccxt
import pytest

from perf_aggregator.exchanges.base import Market
from perf_aggregator.exchanges.coinbase import (
    coinbase_error_code,
    format_time,
    market_of_product,
    parse_candle,
    parse_fill,
    parse_product,
    parse_time_ms,
)
from perf_aggregator.metrics.precision import CONTEXT, EXACT
from perf_aggregator.simulator.accounts import RawTrade
from perf_aggregator.simulator.coinbase import PRODUCTS, render_fill

ORACLE = ccxt.coinbase()
ORACLE.markets_by_id = {}
MARKETS = {
    p.product_id: Market(f"{p.base}/{p.quote}", p.product_id, p.base, p.quote, "spot")
    for p in PRODUCTS.values()
}

DOC_FILL = {
    "entry_id": "22222-2222222-22222222",
    "trade_id": "1111-11111-111111",
    "order_id": "0000-000000-000000",
    "trade_time": "2021-05-31T09:59:59.000Z",
    "trade_type": "FILL",
    "price": "10000.00",
    "size": "0.001",
    "commission": "1.25",
    "product_id": "BTC-USD",
    "sequence_timestamp": "2021-05-31T09:58:59.000Z",
    "liquidity_indicator": "MAKER",
    "size_in_quote": False,
    "user_id": "3333-333333-3333333",
    "side": "BUY",
    "retail_portfolio_id": "4444-444444-4444444",
}
CCXT_DOC_FILL = {
    "entry_id": "b88b82cc89e326a2778874795102cbafd08dd979a2a7a3c69603fc4c23c2e010",
    "trade_id": "cdc39e45-bbd3-44ec-bf02-61742dfb16a1",
    "order_id": "813a53c5-3e39-47bb-863d-2faf685d22d8",
    "trade_time": "2023-01-18T01:37:38.091377090Z",
    "trade_type": "FILL",
    "price": "21220.64",
    "size": "0.0046830664333996",
    "commission": "0.0000280983986004",
    "product_id": "BTC-USDT",
    "sequence_timestamp": "2023-01-18T01:37:38.092520Z",
    "liquidity_indicator": "UNKNOWN_LIQUIDITY_INDICATOR",
    "size_in_quote": True,
    "user_id": "1111111-1111-1111-1111-111111111111",
    "side": "BUY",
}


def simulated_fills() -> list[dict[str, Any]]:
    fills = []
    for i, (maker, buyer) in enumerate([(True, True), (False, True), (False, False), (True, False)] * 6):
        raw = RawTrade(
            "ETHBTC" if i % 5 == 0 else "BTCUSDT",
            10_000 + i,
            500 + i,
            6_012_345_000_000 + i * 1000,
            (i + 1) * 100_000,
            0,
            0,
            "USDT",
            1_735_700_000_000 + i * 1234,
            buyer,
            maker,
        )
        quote_qty = raw.price * raw.qty // 10**8
        raw = RawTrade(
            raw.symbol, raw.id, raw.order_id, raw.price, raw.qty, quote_qty, 0, "USDT", raw.time, buyer, maker
        )
        product = PRODUCTS["ETH-BTC" if raw.symbol == "ETHBTC" else "BTC-USD"]
        fills.append(render_fill(raw, product, 1, "user", "portfolio"))
    return fills


CASES = [
    DOC_FILL,
    CCXT_DOC_FILL,
    {**DOC_FILL, "side": "SELL", "size_in_quote": True, "size": "10.5"},
    *simulated_fills(),
]


@pytest.mark.parametrize("raw", CASES)
def test_parse_fill_matches_ccxt(raw: dict[str, Any]) -> None:
    market = market_of_product(raw["product_id"], MARKETS)
    ours = parse_fill(raw, market)
    theirs = ORACLE.parse_trade(
        raw, {"id": raw["product_id"], "symbol": market.symbol, "quote": market.quote}
    )
    assert ours.id == theirs["id"] and ours.order_id == theirs["order"]
    assert ours.symbol == theirs["symbol"] and ours.side == theirs["side"]
    assert ours.timestamp == theirs["timestamp"]
    assert ours.fee_currency == theirs["fee"]["currency"]
    for mine, oracle in (
        (ours.amount, theirs["amount"]),
        (ours.price, theirs["price"]),
        (ours.cost, theirs["cost"]),
        (ours.fee_cost, theirs["fee"]["cost"]),
    ):
        assert mine == pytest.approx(Decimal(str(oracle)), rel=Decimal("1e-12"))
    assert Fraction(ours.cost) == Fraction(ours.amount) * Fraction(ours.price)  # exact
    assert ours.market_type == "spot" and (ours.base, ours.quote) == (market.base, market.quote)


@pytest.mark.parametrize("field", ["price", "size", "commission"])
@pytest.mark.parametrize("text", [" 12.5", "12.5 ", "1_000", "twelve"])
def test_a_decimal_text_that_is_not_strictly_a_number_is_refused(field: str, text: str) -> None:
    # Decimal() itself would strip the spaces and read the underscores; the connector turns the
    # ArithmeticError into a refused page (read again later), never a trade
    market = market_of_product("BTC-USD", MARKETS)
    with pytest.raises(ArithmeticError):
        parse_fill({**DOC_FILL, field: text}, market)


def test_size_in_quote_is_exact_when_it_divides() -> None:
    assert any(f["size_in_quote"] for f in simulated_fills())
    for raw in simulated_fills():
        trade = parse_fill(raw, market_of_product(raw["product_id"], MARKETS))
        if raw["size_in_quote"]:  # the simulator's quote sizes divide exactly
            assert trade.cost == Decimal(raw["size"])
            assert trade.amount * trade.price == Decimal(raw["size"])
        else:
            assert trade.amount == Decimal(raw["size"])
        assert trade.fee_currency == raw["product_id"].split("-")[1]


def test_times_candles_products_and_error_codes() -> None:
    assert parse_time_ms("2023-01-18T01:37:38.091377090Z") == 1674005858091
    assert parse_time_ms("2023-01-18T01:37:38Z") == 1674005858000
    assert parse_time_ms("2023-01-18T02:37:38.5+01:00") == 1674005858500
    assert format_time(1674005858091) == "2023-01-18T01:37:38.091Z"
    with pytest.raises(ValueError):
        parse_time_ms("yesterday")
    assert parse_candle(
        {"start": "1700000040", "low": "1", "high": "2", "open": "1", "close": "1.50", "volume": "3"}
    ) == (1_700_000_040_000, Decimal("1.50"))
    for close in ("1.50 ", "1_50", "cheap"):  # Decimal() would read the first two
        with pytest.raises(ArithmeticError):
            parse_candle({"start": "1700000040", "close": close})
    assert parse_product(
        {
            "product_id": "ETH-BTC",
            "base_currency_id": "ETH",
            "quote_currency_id": "BTC",
            "product_type": "SPOT",
        }
    ) == Market("ETH/BTC", "ETH-BTC", "ETH", "BTC", "spot")
    assert parse_product({"product_id": "BIT-26APR24-CDE", "product_type": "FUTURE"}) is None
    assert market_of_product("DOGE-USD", MARKETS) == Market("DOGE/USD", "DOGE-USD", "DOGE", "USD", "spot")
    assert coinbase_error_code('coinbase {"error":"UNAUTHORIZED","message":"x"}') == "UNAUTHORIZED"
    assert coinbase_error_code("coinbase <html>") is None


@pytest.mark.parametrize("context", [Context(prec=5), EXACT, CONTEXT], ids=["5 digits", "exact", "60 digits"])
def test_inexact_quote_size_keeps_60_digits_in_any_context(context: Context) -> None:
    raw = {**DOC_FILL, "size_in_quote": True, "size": "100", "price": "30000.03"}
    with localcontext(context):  # in the ledger's exact context, a division that does not end
        trade = parse_fill(raw, MARKETS["BTC-USD"])  # was a MemoryError
    assert len(trade.amount.as_tuple().digits) == 60
    assert trade.amount == Decimal("0.00333333000000333333000000333333000000333333000000333333000000")
    assert abs(trade.cost - 100) < Decimal("1e-55")
