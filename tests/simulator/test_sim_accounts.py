"""Generated accounts: deterministic, Binance-shaped, consistent with the simulated candles."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from decimal import Decimal
from itertools import pairwise

import pytest

from perf_aggregator.simulator.accounts import generate_account
from perf_aggregator.simulator.market import MARKETS, MINUTE_MS, PriceModel

START_MS = 1_735_689_600_000  # 2025-01-01
END_MS = START_MS + 10 * 86_400_000
EIGHT_DECIMALS = re.compile(r"[0-9]+\.[0-9]{8}")

PRICES = PriceModel(42)
ACCOUNT = generate_account(5, START_MS, END_MS, trades=1500, prices=PRICES, symbols=list(MARKETS))
RAW = ACCOUNT.raw_trades()


def test_the_same_seed_and_parameters_give_the_same_trades() -> None:
    again = generate_account(5, START_MS, END_MS, trades=1500, prices=PriceModel(42), symbols=list(MARKETS))
    other_seed = generate_account(6, START_MS, END_MS, trades=1500, prices=PRICES, symbols=list(MARKETS))

    assert again.raw_trades() == RAW
    assert again.balances == ACCOUNT.balances
    assert other_seed.raw_trades() != RAW
    assert (again.api_key, again.api_secret) != (ACCOUNT.api_key, ACCOUNT.api_secret)


def test_credentials_look_like_binance_keys() -> None:
    assert re.fullmatch(r"[A-Za-z0-9]{64}", ACCOUNT.api_key)
    assert re.fullmatch(r"[A-Za-z0-9]{64}", ACCOUNT.api_secret)


def test_trades_have_binance_types_and_exact_amounts() -> None:
    assert len(RAW) == 1500
    for t in RAW:
        assert list(t) == [
            "symbol",
            "id",
            "orderId",
            "orderListId",
            "price",
            "qty",
            "quoteQty",
            "commission",
            "commissionAsset",
            "time",
            "isBuyer",
            "isMaker",
            "isBestMatch",
        ]
        assert all(type(t[k]) is int for k in ("id", "orderId", "orderListId", "time"))
        assert all(EIGHT_DECIMALS.fullmatch(t[k]) for k in ("price", "qty", "quoteQty", "commission"))
        assert Decimal(t["price"]) * Decimal(t["qty"]) == Decimal(t["quoteQty"])
        market = MARKETS[t["symbol"]]
        assert Decimal(t["price"]) % (Decimal(market.tick_units) / 10**8) == 0
        assert Decimal(t["qty"]) % (Decimal(market.step_units) / 10**8) == 0
        assert START_MS <= t["time"] < END_MS
        assert t["orderListId"] == -1 and t["isBestMatch"] is True


def test_prices_lie_within_their_minute_candle_near_its_close() -> None:
    for t in RAW:
        candle = PRICES.candle(t["symbol"], t["time"] // MINUTE_MS, 1, END_MS)
        assert candle is not None
        price = Decimal(t["price"]) * 10**8
        assert candle.low <= price <= candle.high, t
        assert abs(price / candle.close - 1) < Decimal("0.003"), t


def test_ids_increase_with_time_per_symbol_with_gaps() -> None:
    by_symbol = defaultdict(list)
    for t in sorted(RAW, key=lambda t: (t["id"], not t["isBuyer"])):
        by_symbol[t["symbol"]].append(t)
    first_ids = {trades[0]["id"] for trades in by_symbol.values()}

    assert len(first_ids) == len(by_symbol)
    for trades in by_symbol.values():
        assert [t["time"] for t in trades] == sorted(t["time"] for t in trades)
        steps = [b["id"] - a["id"] for a, b in pairwise(trades)]
        assert min(steps) >= 0
        assert max(steps) > 100


def test_orders_have_one_to_three_fills_and_a_few_self_trades() -> None:
    fills_per_order = Counter((t["symbol"], t["orderId"]) for t in RAW)
    records_per_id = Counter((t["symbol"], t["id"]) for t in RAW)
    self_trades = [key for key, n in records_per_id.items() if n == 2]

    assert set(fills_per_order.values()) == {1, 2, 3}
    assert set(records_per_id.values()) <= {1, 2}
    assert 1 <= len(self_trades) <= 10
    for symbol, trade_id in self_trades:
        pair = [t for t in RAW if (t["symbol"], t["id"]) == (symbol, trade_id)]
        assert {t["isBuyer"] for t in pair} == {True, False}
        assert {t["isMaker"] for t in pair} == {True, False}
        assert len({(t["price"], t["qty"], t["time"]) for t in pair}) == 1


def test_fees_are_in_the_received_asset_or_in_bnb() -> None:
    in_bnb = 0
    for t in RAW:
        market = MARKETS[t["symbol"]]
        minute = t["time"] // MINUTE_MS
        received = market.base if t["isBuyer"] else market.quote
        fee = Decimal(t["commission"])
        # 0.1% of the received asset, or 0.075% of the trade's value paid in BNB
        # (which is also the received asset when buying BNB or selling for BNB).
        standard = Decimal(t["qty"] if t["isBuyer"] else t["quoteQty"]) / 1000
        usd = Decimal(t["quoteQty"]) * PRICES.usd_units(market.quote, minute) / 10**8
        in_bnb_fee = usd * Decimal("0.00075") / (Decimal(PRICES.usd_units("BNB", minute)) / 10**8)
        if t["commissionAsset"] == received and abs(fee - standard) <= Decimal("0.00000001"):
            continue
        assert t["commissionAsset"] == "BNB", t
        assert abs(fee - in_bnb_fee) <= Decimal("0.00000001"), t
        in_bnb += 1
    assert 0.2 < in_bnb / len(RAW) < 0.4


def test_mostly_long_but_some_sells_exceed_the_window_buys() -> None:
    net: dict[str, Decimal] = defaultdict(Decimal)
    lowest: dict[str, Decimal] = defaultdict(Decimal)
    buys = sells = 0
    for t in RAW:
        base = MARKETS[t["symbol"]].base
        qty = Decimal(t["qty"])
        net[base] += qty if t["isBuyer"] else -qty
        lowest[base] = min(lowest[base], net[base])
        buys, sells = buys + t["isBuyer"], sells + (not t["isBuyer"])

    assert buys > sells > 0.25 * len(RAW)
    assert any(low < 0 for low in lowest.values())
    assert all(units >= 0 for units in ACCOUNT.balances.values())
    assert {"BTC", "ETH", "SOL", "BNB", "USDT", "USDC"} <= set(ACCOUNT.balances)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="symbols"):
        generate_account(1, START_MS, END_MS, trades=10, prices=PRICES, symbols=["DOGEUSDT"])
    with pytest.raises(ValueError, match="window"):
        generate_account(1, END_MS, START_MS, trades=10, prices=PRICES)
