from decimal import Decimal

import pytest

from perf_aggregator.formats import rfc3339_ms
from perf_aggregator.ledger.book import Ledger
from perf_aggregator.ledger.prices import PriceBook
from perf_aggregator.ledger.trades import (
    ImpossibleTrade,
    Trade,
    TradeColumns,
    check_values,
    columns_of,
    order_key,
)

AMOUNT, PRICE, COST, FEE = (
    Decimal("12.00000000"),
    Decimal("4.00000100"),
    Decimal("48.0000120"),
    Decimal("0.1"),
)


def by_keyword() -> Trade:
    return Trade(
        id="28457",
        order_id="100234",
        symbol="BNB/BTC",
        base="BNB",
        quote="BTC",
        market_type="spot",
        side="buy",
        amount=AMOUNT,
        price=PRICE,
        fee_cost=FEE,
        fee_currency="BNB",
        timestamp=1499865549590,
    )


def test_the_constructor_sets_every_field_by_keyword_or_position() -> None:
    trade = by_keyword()
    assert trade._asdict() == {
        "id": "28457",
        "order_id": "100234",
        "symbol": "BNB/BTC",
        "base": "BNB",
        "quote": "BTC",
        "market_type": "spot",
        "side": "buy",
        "amount": AMOUNT,
        "price": PRICE,
        "fee_cost": FEE,
        "fee_currency": "BNB",
        "timestamp": 1499865549590,
        "exchange_realized_pnl": None,
    }
    positional = Trade(
        "28457",
        "100234",
        "BNB/BTC",
        "BNB",
        "BTC",
        "spot",
        "buy",
        AMOUNT,
        PRICE,
        FEE,
        "BNB",
        1499865549590,
    )
    assert positional == trade and hash(positional) == hash(trade)
    assert trade.cost == COST and str(trade.cost) == "48.0000120000000000"  # amount * price, exact
    with_pnl = Trade(
        "28457",
        "100234",
        "BNB/BTC",
        "BNB",
        "BTC",
        "spot",
        "buy",
        AMOUNT,
        PRICE,
        FEE,
        "BNB",
        1499865549590,
        Decimal("-1.5"),
    )
    assert with_pnl.exchange_realized_pnl == Decimal("-1.5")
    assert trade._replace(exchange_realized_pnl=Decimal("-1.5")) == with_pnl
    assert Trade._fields[-1] == "exchange_realized_pnl"


def test_trades_are_immutable() -> None:
    trade = by_keyword()
    with pytest.raises(AttributeError):
        trade.amount = Decimal(1)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del trade.id  # type: ignore[misc]
    with pytest.raises(AttributeError):
        trade.note = "added"  # type: ignore[attr-defined]
    assert trade == by_keyword() and hash(trade) == hash(by_keyword())


def test_key_and_processing_order() -> None:
    trade = by_keyword()
    assert trade.key == ("BNB/BTC", "28457", "buy")
    assert trade.order == (1499865549590, (0, 28457), 0)
    assert order_key(5, "TX-1", "sell") == (5, (1, "TX-1"), 1)
    assert order_key(5, "9", "sell") < order_key(5, "10", "buy") < order_key(5, "A", "buy")


def test_columns_hold_each_field_of_a_run_in_order() -> None:
    first, second = by_keyword(), by_keyword()._replace(id="28458", side="sell", amount=Decimal("0.5"))
    columns = columns_of([first, second])
    assert columns._fields == Trade._fields
    assert columns.id == ("28457", "28458")
    assert columns.side == ("buy", "sell")
    assert columns.amount == (first.amount, Decimal("0.5"))
    assert all(getattr(columns, name) == (first[k], second[k]) for k, name in enumerate(Trade._fields))
    assert columns.tail(1) == columns_of([second])
    assert columns.tail(2) == columns_of([]) == TradeColumns(*[()] * len(Trade._fields))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", "NaN"),
        ("amount", "sNaN"),
        ("amount", "Infinity"),
        ("amount", "0"),
        ("amount", "-1"),
        ("amount", "1E-31"),
        ("amount", "1E+30"),
        ("price", "0E-8"),
        ("price", "-Infinity"),
        ("price", "1E+999999"),
        ("fee_cost", "-1E+31"),
        ("fee_cost", "Infinity"),
        ("fee_cost", "1E-62"),  # beyond 60 decimals: sums would grow without bound
        ("fee_cost", "-0E-100000000000000000"),
        ("fee_cost", "1E-999999"),
        ("exchange_realized_pnl", "sNaN"),
        ("exchange_realized_pnl", "-1E+400000"),
        ("exchange_realized_pnl", "0E-70"),
    ],
)
def test_a_run_with_an_impossible_number_is_refused_naming_the_field_not_the_value(
    field: str, value: str
) -> None:
    good = by_keyword()
    run = [good, good._replace(id="28458", **{field: Decimal(value)}), good._replace(id="28459")]
    with pytest.raises(ImpossibleTrade) as refused:
        check_values(columns_of(run))
    assert str(refused.value) == f"a trade's {field} is not a number a market can have"
    assert value not in str(refused.value)


@pytest.mark.parametrize("timestamp", [-1, 253_402_300_800_000, 2**64, -(2**70)])
def test_a_run_with_a_time_before_1970_or_after_the_year_9999_is_refused(timestamp: int) -> None:
    good = by_keyword()
    run = [good, good._replace(id="28458", timestamp=timestamp)]
    with pytest.raises(ImpossibleTrade, match=r"^a trade's timestamp is not a time a market can have$"):
        check_values(columns_of(run))
    ledger = Ledger(PriceBook({"BNB/BTC"}))
    with pytest.raises(ImpossibleTrade):
        ledger.add(run)
    assert len(ledger) == 0


def test_the_ends_of_the_range_and_zero_and_negative_fees_are_accepted() -> None:
    good = by_keyword()
    edges = [
        good._replace(amount=Decimal("1E-30"), price=Decimal("9.99E+29"), fee_cost=Decimal(0)),
        good._replace(fee_cost=Decimal("-1E+30")),
        good._replace(fee_cost=Decimal("9.99E+29")),
        good._replace(amount=Decimal("9.99E+29"), price=Decimal("1E-30")),
        good._replace(exchange_realized_pnl=Decimal("-1E+30")),
        good._replace(exchange_realized_pnl=Decimal("9.99E+29")),
        good._replace(fee_cost=Decimal("1E-60"), exchange_realized_pnl=Decimal("-0E-60")),
        good._replace(fee_cost=Decimal("-" + "9" * 89 + "E-60")),  # 60 decimals, just within range
    ]
    check_values(columns_of(edges))
    check_values(columns_of([]))


def test_the_first_and_last_possible_times_are_stored_and_read() -> None:
    first = by_keyword()._replace(timestamp=0)
    last = first._replace(id="28458", timestamp=253_402_300_800_000 - 1)
    ledger = Ledger(PriceBook({"BNB/BTC"}))
    assert ledger.add([first, last]) == 2
    assert [p.trade for p in ledger.trades()] == [first, last]
    assert ledger.symbol_documents()[0]["trades"] == 2
    assert rfc3339_ms(last.timestamp) == "9999-12-31T23:59:59.999Z"  # as the trades page writes it


def test_a_maker_rebate_is_a_negative_fee_the_ledger_takes() -> None:
    """Binance USD-M reports a rebate as a negative commission (EXCHANGES.md's example)."""
    rebate = by_keyword()._replace(
        symbol="BTC/USDT:USDT",
        base="BTC",
        quote="USDT",
        market_type="swap",
        fee_cost=Decimal("-0.07819010"),
        fee_currency="USDT",
    )
    ledger = Ledger(PriceBook({"BTC/USDT:USDT"}))
    assert ledger.add([rebate]) == 1
    assert ledger.totals_document()["fees_usd"] == "-0.0781901"


def test_a_batch_with_one_impossible_trade_stores_nothing() -> None:
    good = by_keyword()
    ledger = Ledger(PriceBook({"BNB/BTC"}))
    assert ledger.add([good]) == 1
    before = (ledger.symbol_documents(), ledger.trades())
    later = [good._replace(id=str(28458 + k), timestamp=good.timestamp + k) for k in range(3)]
    spoiled = [*later, good._replace(id="28470", symbol="BTC/USDT", fee_cost=Decimal("NaN"))]
    with pytest.raises(ImpossibleTrade):
        ledger.add(spoiled)
    assert len(ledger) == 1
    assert (ledger.symbol_documents(), ledger.trades()) == before
    assert ledger.add(later) == 3
