"""The compact per-symbol trade store: exact round trips, order, deduplication and its footprint."""

from __future__ import annotations

import tracemalloc
from decimal import Decimal

from perf_aggregator.ledger.store import SymbolTrades, gallop, numeric_id
from perf_aggregator.ledger.trades import Trade, columns_of

from .factory import MINUTE, at, make_trade

T10 = at("2026-01-05T10:00:00")
ONE = Decimal(1)


def store_for(trade: Trade) -> SymbolTrades:
    return SymbolTrades(trade.symbol, trade.base, trade.quote, trade.market_type)


def test_numeric_ids_are_the_canonical_spellings_that_fit_64_bits() -> None:
    assert numeric_id("0") == 0
    assert numeric_id("3211487847") == 3211487847
    assert numeric_id("9" * 18) == 10**18 - 1
    for text in ("9" * 19, "007", "", "+1", " 1", "1_000", "١٢", "TX-1", "-1"):
        assert numeric_id(text) is None, text


def test_trades_come_back_equal_with_every_field_and_decimal_spelling() -> None:
    odd = Trade(
        id="TRD-1 a|b",
        order_id="order with spaces 3 x",
        symbol="BTC/USDT:USDT",
        base="BTC",
        quote="USDT",
        market_type="swap",
        side="sell",
        amount=Decimal("1E+3"),
        price=Decimal("0.00001000"),
        fee_cost=Decimal("0E-8"),
        fee_currency="US DT 4",
        timestamp=T10,
        exchange_realized_pnl=Decimal("-12.50"),
    )
    later = odd._replace(
        id="TRD-2", side="buy", exchange_realized_pnl=None, timestamp=T10 + 1, price=Decimal(7)
    )
    stored = store_for(odd)
    assert stored.append(odd, None, None)
    assert stored.append(later, ONE, Decimal("0.5"))
    for i, trade in enumerate((odd, later)):
        back = stored.trade(i)
        assert back == trade
        # the exact strings too, exponent and trailing zeros included
        decimals = ("amount", "price", "cost", "fee_cost", "exchange_realized_pnl")
        assert [str(getattr(back, f)) for f in decimals] == [str(getattr(trade, f)) for f in decimals]
    assert (list(stored.quote_rates), list(stored.fee_rates)) == ([None, ONE], [None, Decimal("0.5")])
    assert [stored.order(i) for i in range(2)] == [odd.order, later.order]


def test_a_run_stored_at_once_keeps_every_field_and_spelling_as_appending_does() -> None:
    first = Trade(
        "100", "order with spaces 3 x", "BTC/USDT:USDT", "BTC", "USDT", "swap", "sell",
        Decimal("1E+3"), Decimal("0.00001000"), Decimal("0E-8"), "US DT 4",
        T10, Decimal("-12.50"),
    )  # fmt: skip
    run = [
        first,
        first._replace(id="101", side="buy", exchange_realized_pnl=None, price=Decimal(7), fee_currency=""),
        first._replace(id="102", order_id="", fee_cost=Decimal("-0.1"), fee_currency="BNB"),
    ]
    at_once, one_by_one = store_for(first), store_for(first)
    assert at_once.extend(columns_of(run), [ONE] * 3, [ONE] * 3) == 0
    for trade in run:
        assert one_by_one.append(trade, ONE, ONE)
    decimals = ("amount", "price", "cost", "fee_cost", "exchange_realized_pnl")
    for i, trade in enumerate(run):
        back = at_once.trade(i)
        assert back == trade == one_by_one.trade(i)
        assert [str(getattr(back, f)) for f in decimals] == [str(getattr(trade, f)) for f in decimals]
        assert at_once.record(i) == one_by_one.record(i)


def test_only_a_trade_after_the_last_one_is_appended() -> None:
    first = make_trade("100", "buy", "1", "10", T10)
    stored = store_for(first)
    assert stored.append(first, ONE, ONE)
    assert not stored.append(first, ONE, ONE)  # the same trade again
    assert not stored.append(make_trade("99", "buy", "1", "10", T10 - MINUTE), ONE, ONE)  # older
    assert stored.append(make_trade("100", "sell", "1", "10", T10), ONE, ONE)  # a self-trade's other side
    assert stored.append(make_trade("101", "buy", "1", "10", T10 + MINUTE), ONE, ONE)
    assert len(stored) == 3
    assert stored.contains("100", "sell") and stored.contains("101", "buy")
    assert not stored.contains("100 ", "buy") and not stored.contains("102", "buy")


def test_ids_that_stop_ascending_with_time_switch_to_a_key_set() -> None:
    trades = [
        make_trade("500", "buy", "1", "10", T10),
        make_trade("20", "buy", "1", "10", T10 + MINUTE),  # a smaller id, later
        make_trade("007", "sell", "1", "10", T10 + 2 * MINUTE),  # not a canonical number
        make_trade("ORD-x", "sell", "1", "10", T10 + 3 * MINUTE),
    ]
    stored = store_for(trades[0])
    for trade in trades:
        assert stored.append(trade, ONE, ONE)
    for trade in trades:
        assert not stored.append(trade, ONE, ONE)
        assert stored.contains(trade.id, trade.side)
    assert not stored.contains("7", "sell") and not stored.contains("500", "sell")
    assert [stored.trade(i) for i in range(4)] == trades
    # new but before the last one: older, or at its time with a numeric id (before any other)
    assert not stored.append(make_trade("1", "buy", "1", "10", T10 + 2 * MINUTE), ONE, ONE)
    assert not stored.append(make_trade("1", "buy", "1", "10", T10 + 3 * MINUTE), ONE, ONE)
    assert stored.append(make_trade("ORD-y", "buy", "1", "10", T10 + 3 * MINUTE), ONE, ONE)
    assert stored.append(make_trade("1", "buy", "1", "10", T10 + 4 * MINUTE), ONE, ONE)


def test_a_binance_like_trade_takes_a_small_fraction_of_its_object() -> None:
    trades = [
        Trade(
            str(3_000_000_000 + 2 * i),
            str(26_000_000_000 + i),
            "SOL/USDT",
            "SOL",
            "USDT",
            "spot",
            "buy" if i % 2 else "sell",
            Decimal(f"{i % 97 + 1}.{i:08d}"[:12]),
            Decimal(f"155.{i % 100:02d}000000"),
            Decimal(f"0.00{i % 1000:03d}700"),
            "BNB",
            T10 + 137 * i,
        )
        for i in range(20_000)
    ]
    stored = store_for(trades[0])
    tracemalloc.start()
    try:
        for trade in trades:
            stored.append(trade, ONE, ONE)
        size, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(stored) == len(trades)
    # The Trade objects above take about 600 bytes each; the store about 140.
    assert size / len(trades) < 200
    assert stored.trade(12_345) == trades[12_345]


def test_an_unordered_store_keeps_arrival_order_and_refuses_only_repeats() -> None:
    history = [make_trade(str(10 + i), "buy", "1", "10", T10 + i * MINUTE) for i in range(6)]
    late = SymbolTrades("BTC/USDT", "BTC", "USDT", "spot", ordered=False)
    for trade in history[3:]:  # a page read forward: kept in order, no key set needed
        assert late.append(trade, None, None)
    assert list(late.in_rank_order()) == [0, 1, 2]
    for trade in history[:3]:  # an older page after it
        assert late.append(trade, None, None)
    assert not late.append(history[4], None, None) and not late.append(history[0], None, None)
    assert len(late) == 6
    assert [late.trade(i) for i in late.in_rank_order()] == history
    assert all(late.contains(t.id, t.side) for t in history) and not late.contains("16", "buy")


def test_gallop_finds_the_first_position_after_a_rank() -> None:
    ranks = [((t, (0, t), 0), str(t)) for t in range(0, 200, 2)]  # even times
    for start in (0, 3, 50):
        for probe in range(-1, 202):
            rank = ((probe, (0, probe), 0), str(probe))
            want = next((p for p in range(start, len(ranks)) if ranks[p] > rank), len(ranks))
            assert gallop(len(ranks), ranks.__getitem__, rank, start) == want


def _contents(stored: SymbolTrades) -> list[tuple[Trade, Decimal | None, Decimal | None]]:
    return [(stored.trade(i), stored.quote_rates[i], stored.fee_rates[i]) for i in range(len(stored))]


def test_a_run_in_order_is_stored_at_once_as_appending_one_at_a_time_would() -> None:
    run = [
        make_trade("100", "buy", "1.50000000", "10.5", T10, fee="0.001", fee_currency="BTC"),
        make_trade("100", "sell", "1.5", "10.5", T10),  # a self-trade: same id, both sides
        make_trade("101", "sell", "0.2", "11", T10 + MINUTE),
        make_trade("105", "buy", "3", "9", T10 + MINUTE),
    ]
    rates: list[Decimal | None] = [ONE, None, ONE, Decimal("0.5")]
    one_by_one = store_for(run[0])
    for trade, rate in zip(run, rates, strict=True):
        assert one_by_one.append(trade, rate, rate)
    at_once = store_for(run[0])
    assert at_once.extend(columns_of(run[:2]), rates[:2], rates[:2]) == 0
    # The next page starts with the last trades stored (polled from the last id seen).
    assert at_once.extend(columns_of(run[:2] + run[2:]), rates, rates) == 2
    assert _contents(at_once) == _contents(one_by_one)
    assert at_once.contains("100", "sell") and not at_once.contains("101", "buy")
    assert at_once.extend(columns_of(run[3:]), rates[3:], rates[3:]) == 1  # all repeats: nothing new
    assert len(at_once) == 4
    assert at_once.append(make_trade("106", "buy", "1", "9", T10 + MINUTE), ONE, ONE)


def test_a_run_that_does_not_fit_is_not_stored() -> None:
    first = make_trade("100", "buy", "1", "10", T10)
    stored = store_for(first)
    assert stored.extend(columns_of([first]), [ONE], [ONE]) == 0
    later = T10 + MINUTE
    runs = {
        "id not canonical": [make_trade("0101", "buy", "1", "10", later)],
        "id with a sign": [make_trade("+101", "buy", "1", "10", later)],
        "id with spaces": [make_trade(" 101 ", "buy", "1", "10", later)],
        "id with an underscore": [make_trade("1_01", "buy", "1", "10", later)],
        "id in non-ASCII digits": [make_trade("\u0661\u0660\u0662", "buy", "1", "10", later)],
        "empty id": [make_trade("", "buy", "1", "10", later)],
        "a second id not canonical": [
            make_trade("101", "buy", "1", "10", later),
            make_trade("0102", "buy", "1", "10", later),
        ],
        "id too long": [make_trade("9" * 19, "buy", "1", "10", later)],
        "text id": [make_trade("TX-1", "buy", "1", "10", later)],
        "ids going down": [
            make_trade("103", "buy", "1", "10", later),
            make_trade("102", "buy", "1", "10", later),
        ],
        "the same trade twice": [make_trade("103", "buy", "1", "10", later)] * 2,
        "time going back": [
            make_trade("101", "buy", "1", "10", later),
            make_trade("102", "buy", "1", "10", T10),
        ],
        "before the last stored": [make_trade("101", "buy", "1", "10", T10 - MINUTE)],
        "an older id, not stored": [make_trade("99", "buy", "1", "10", later)],
    }
    for reason, run in runs.items():
        assert stored.extend(columns_of(run), [ONE] * len(run), [ONE] * len(run)) is None, reason
        assert len(stored) == 1, reason
    assert stored.extend(columns_of([]), [], []) is None
    assert (
        stored.extend(columns_of([make_trade("100", "sell", "1", "10", T10)]), [ONE], [ONE]) == 0
    )  # a self-trade's other side
    assert len(stored) == 2
    # A store in arrival order takes a run after its last trade at once too, or else nothing.
    unordered = SymbolTrades("BTC/USDT", "BTC", "USDT", "spot", ordered=False)
    assert unordered.extend(columns_of([first]), [None], [None]) == 0
    assert unordered.extend(columns_of([make_trade("99", "buy", "1", "10", T10)]), [None], [None]) is None
    assert unordered.append(make_trade("99", "buy", "1", "10", T10), None, None)  # older: arrival order
    assert len(unordered) == 2
