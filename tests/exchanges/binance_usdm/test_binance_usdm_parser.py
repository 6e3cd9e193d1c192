"""``parse_usdm_trade`` field by field against ccxt's own ``binanceusdm.parse_trade`` (the oracle)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from perf_aggregator.exchanges.base import Market
from perf_aggregator.exchanges.binance_usdm import parse_usdm_trade
from perf_aggregator.exchanges.endpoints import override_ccxt_urls

from .conftest import FuturesSim

DOC_EXAMPLE = {
    "buyer": False,
    "commission": "-0.07819010",
    "commissionAsset": "USDT",
    "id": 698759,
    "maker": False,
    "orderId": 25851813,
    "price": "7819.01",
    "qty": "0.002",
    "quoteQty": "15.63802",
    "realizedPnl": "-0.91539999",
    "side": "SELL",
    "positionSide": "SHORT",
    "symbol": "BTCUSDT",
    "time": 1569514978020,
}


def number(value: Any) -> Decimal:
    return Decimal(str(value))


@pytest.fixture
async def oracle(futures_sim: FuturesSim) -> AsyncIterator[ccxt.binanceusdm]:
    ex = ccxt.binanceusdm()
    override_ccxt_urls(ex, futures_sim.origin)
    try:
        await ex.load_markets()
        yield ex
    finally:
        await ex.close()


def ours(raw: dict[str, Any], ex: ccxt.binanceusdm) -> Any:
    m = ex.markets_by_id[raw["symbol"]][0]
    return parse_usdm_trade(raw, Market(m["symbol"], m["id"], m["base"], m["quote"], "swap"))


def assert_agrees(raw: dict[str, Any], ex: ccxt.binanceusdm) -> None:
    trade = ours(raw, ex)
    want = ex.parse_trade(raw)
    assert trade.id == want["id"]
    assert trade.order_id == want["order"]
    assert trade.symbol == want["symbol"]
    assert trade.market_type == "swap"
    assert trade.side == want["side"]
    assert trade.amount == number(want["amount"]) == Decimal(raw["qty"])
    assert trade.price == number(want["price"]) == Decimal(raw["price"])
    assert trade.cost == number(want["cost"]) == Decimal(raw["quoteQty"])
    assert trade.fee_cost == number(want["fee"]["cost"])
    assert trade.fee_currency == want["fee"]["currency"]
    assert trade.timestamp == want["timestamp"]
    assert trade.exchange_realized_pnl == Decimal(raw["realizedPnl"])
    assert (trade.base, trade.quote) == (
        ex.markets[want["symbol"]]["base"],
        ex.markets[want["symbol"]]["quote"],
    )


async def test_the_documented_example_including_a_rebate(oracle: ccxt.binanceusdm) -> None:
    assert_agrees(DOC_EXAMPLE, oracle)
    trade = ours(DOC_EXAMPLE, oracle)
    assert trade.symbol == "BTC/USDT:USDT" and trade.side == "sell"
    assert trade.fee_cost == Decimal("-0.07819010")  # a rebate keeps its sign
    assert trade.exchange_realized_pnl == Decimal("-0.91539999")


async def test_every_generated_fill(oracle: ccxt.binanceusdm, futures_sim: FuturesSim) -> None:
    account = futures_sim.account(trades=300, seed=21, days=10)
    for raw in account["raw"]:
        assert_agrees(raw, oracle)
    assert {r["commissionAsset"] for r in account["raw"]} == {"USDT", "BNB"}
    assert any(Decimal(r["realizedPnl"]) != 0 for r in account["raw"])


async def test_side_comes_from_buyer_when_side_is_absent(oracle: ccxt.binanceusdm) -> None:
    raw = {k: v for k, v in DOC_EXAMPLE.items() if k not in ("side", "realizedPnl")} | {"buyer": True}
    trade = ours(raw, oracle)
    assert trade.side == "buy"
    assert oracle.parse_trade(raw)["side"] is None  # ccxt reads only ``side`` on futures fills
    assert trade.exchange_realized_pnl is None


@pytest.mark.parametrize("field", ["qty", "price", "commission", "realizedPnl"])
@pytest.mark.parametrize("text", [" 0.002", "0.002 ", "0_002", "two", ""])
def test_a_decimal_text_that_is_not_strictly_a_number_is_refused(field: str, text: str) -> None:
    # as the spot parser: the connector turns the ArithmeticError into a refused page
    market = Market("BTC/USDT:USDT", "BTCUSDT", "BTC", "USDT", "swap")
    with pytest.raises(ArithmeticError):
        parse_usdm_trade(DOC_EXAMPLE | {field: text}, market)
