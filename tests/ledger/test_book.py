from decimal import Decimal
from fractions import Fraction

import pytest

from perf_aggregator.ledger.book import Ledger, PricedTrade
from perf_aggregator.ledger.prices import PriceBook
from perf_aggregator.ledger.trades import Trade

from .factory import HOUR, MINUTE, add_flat_candles, at, make_trade

T10 = at("2026-01-05T10:00:00")
MARKETS = {"BTC/USDT", "ETH/USDT", "ETH/BTC", "BNB/USDT", "BTC/USDT:USDT"}


def spot_ladder() -> list[Trade]:
    """Two buys closed by two sells, the last one partly unmatched (see test_fifo for the pieces)."""
    return [
        make_trade("1", "buy", "1", "100", T10, fee="0.1"),
        make_trade("2", "buy", "2", "110", T10 + HOUR, fee="0.4"),
        make_trade("3", "sell", "1.5", "120", T10 + 2 * HOUR, fee="0.3"),
        make_trade("4", "sell", "2", "105", T10 + 3 * HOUR, fee="0.21"),
    ]


def test_spot_round_trip_with_fees_in_bnb_and_in_quote() -> None:
    prices = PriceBook(MARKETS)
    add_flat_candles(prices, "BNB/USDT", T10 - HOUR, T10, "300")
    ledger = Ledger(prices)
    sell_at = at("2026-01-05T14:30:00")
    added = ledger.add(
        [
            make_trade("1", "buy", "0.5", "40000", T10, fee="0.01", fee_currency="BNB"),
            make_trade("2", "sell", "0.5", "42000", sell_at, fee="21"),
        ]
    )
    assert added == 2
    # fees: 0.01 BNB * 300 = 3 and 21 USDT; volume 0.5 * 40000 + 0.5 * 42000 = 41000
    # pnl 0.5 * (42000 - 40000) - 3 * 0.5 / 0.5 - 21 * 0.5 / 0.5 = 976; basis 20000 -> 4.88 %
    assert ledger.symbol_documents() == [
        {
            "symbol": "BTC/USDT",
            "base": "BTC",
            "quote": "USDT",
            "market_type": "spot",
            "trades": 2,
            "volume_usd": "41000",
            "fees_usd": "24",
            "realized_pnl_usd": "976",
            "return_pct": 4.88,
            "closed_quantity": "0.5",
            "open_quantity": "0",
            "unmatched_quantity": "0",
            "closed_trades": 1,
            "winning_trades": 1,
            "win_rate": 1.0,
            "unpriced_trades": 0,
            "period_start": "2026-01-05T10:00:00.000Z",
            "period_end": "2026-01-05T14:30:00.000Z",
        }
    ]
    assert ledger.totals_document() == {
        "trades": 2,
        "volume_usd": "41000",
        "fees_usd": "24",
        "realized_pnl_usd": "976",
        "return_pct": 4.88,
        "closed_trades": 1,
        "winning_trades": 1,
        "win_rate": 1.0,
        "unpriced_trades": 0,
        "period_start": "2026-01-05T10:00:00.000Z",
        "period_end": "2026-01-05T14:30:00.000Z",
    }
    summary = ledger.summary_figures(at("2026-01-06T12:00:00"))
    # daily series [976, 0]: mean 488, sample std sqrt(2 * 488^2 / 1) = 488 * sqrt(2) = 690.1362184...
    assert summary == {
        "trades": 2,
        "symbols_traded": 1,
        "volume_usd": "41000",
        "fees_usd": "24",
        "realized_pnl_usd": "976",
        "return_pct": 4.88,
        "closed_trades": 1,
        "win_rate": 1.0,
        "profit_factor": None,
        "avg_win_usd": "976",
        "avg_loss_usd": None,
        "largest_win_usd": "976",
        "largest_loss_usd": None,
        "avg_holding_seconds": 16200.0,  # 4.5 h
        "max_drawdown_usd": "0",
        "sharpe_ratio": pytest.approx(13.509256086106296),  # 488 / (488 * sqrt 2) * sqrt 365 = sqrt 182.5
        "sortino_ratio": None,
        "daily_pnl_volatility_usd": "690.13621844",
        "trading_days": 2,
        "period_start": "2026-01-05T10:00:00.000Z",
        "period_end": "2026-01-05T14:30:00.000Z",
    }


def test_partial_closes_across_lots_and_an_unmatched_remainder() -> None:
    ledger = Ledger(PriceBook(MARKETS))
    ledger.add(spot_ladder())
    (doc,) = ledger.symbol_documents()
    # pnl 24.5 - 7.9575 = 16.5425 over basis 155 + 165 = 320 -> 5.16953125 %
    assert doc["volume_usd"] == "710"  # 100 + 220 + 180 + 210
    assert doc["fees_usd"] == "1.01"  # 0.1 + 0.4 + 0.3 + 0.21, unmatched part included
    assert doc["realized_pnl_usd"] == "16.5425"
    assert doc["return_pct"] == 5.16953125
    assert (doc["closed_quantity"], doc["open_quantity"], doc["unmatched_quantity"]) == ("3", "0", "0.5")
    assert (doc["closed_trades"], doc["winning_trades"]) == (2, 1)
    summary = ledger.summary_figures(T10 + 4 * HOUR)
    assert summary["profit_factor"] == pytest.approx(3.0788564247565193)  # 24.5 / 7.9575
    assert (summary["avg_win_usd"], summary["avg_loss_usd"]) == ("24.5", "-7.9575")
    assert (summary["largest_win_usd"], summary["largest_loss_usd"]) == ("24.5", "-7.9575")
    assert summary["win_rate"] == 0.5
    # (1 * 2h + 0.5 * 1h + 1.5 * 2h) / 3 = 1 h 50 min
    assert summary["avg_holding_seconds"] == 6600.0
    assert summary["trading_days"] == 1
    assert summary["daily_pnl_volatility_usd"] is None


def test_sums_and_products_are_exact_however_many_digits() -> None:
    # 40 significant digits each: products of 80 digits, beyond the 60 digits divisions carry.
    amount = "1.234567890123456789012345678901234567891"
    buy_price = "98765.43210987654321098765432109876543211"
    sell_price = "98765.43210987654321098765432109876543212"
    a, bought, sold = (Fraction(x) for x in (amount, buy_price, sell_price))
    ledger = Ledger(PriceBook(MARKETS))
    ledger.add(
        [
            make_trade("1", "buy", amount, buy_price, T10, fee="0.000000000000000000000000000001"),
            make_trade("2", "sell", amount, sell_price, T10 + HOUR, fee="1000000000000"),
        ]
    )
    (figures,) = ledger.figures()
    assert Fraction(figures.volume_usd) == a * bought + a * sold
    assert Fraction(figures.cost_basis_usd) == a * bought
    assert Fraction(figures.fees_usd) == Fraction("1000000000000.000000000000000000000000000001")
    expected_pnl = a * (sold - bought) - Fraction("1000000000000.000000000000000000000000000001")
    assert Fraction(figures.realized_pnl_usd) == expected_pnl
    assert [Fraction(pnl) for pnl in figures.daily_pnl_usd.values()] == [expected_pnl]


def test_an_entirely_unmatched_sell_is_not_a_closed_trade() -> None:
    ledger = Ledger(PriceBook(MARKETS))
    ledger.add([make_trade("1", "sell", "0.25", "40000", T10, fee="10")])
    (doc,) = ledger.symbol_documents()
    assert (doc["unmatched_quantity"], doc["closed_trades"], doc["realized_pnl_usd"]) == ("0.25", 0, "0")
    assert (doc["fees_usd"], doc["volume_usd"], doc["return_pct"]) == ("10", "10000", None)
    assert ledger.totals_document()["win_rate"] is None


def test_unpriced_trade_counts_only_until_its_candles_arrive() -> None:
    prices = PriceBook(MARKETS)
    ledger = Ledger(prices)
    buy = make_trade("1", "buy", "1", "100", T10, fee="0.001", fee_currency="BNB")
    sell = make_trade("2", "sell", "1", "110", T10 + HOUR, fee="0.11")
    ledger.add([buy, sell])
    (doc,) = ledger.symbol_documents()
    # the buy takes no part: the sell finds no lot
    assert (doc["trades"], doc["unpriced_trades"]) == (2, 1)
    assert (doc["volume_usd"], doc["fees_usd"]) == ("110", "0.11")
    assert (doc["unmatched_quantity"], doc["closed_trades"]) == ("1", 0)
    assert doc["period_start"] == "2026-01-05T10:00:00.000Z"
    assert ledger.trades() == [PricedTrade(buy, None, None), PricedTrade(sell, Decimal(110), Decimal("0.11"))]
    assert ledger.revalue() is False

    needs = ledger.unpriced_needs()
    assert needs == {("BNB", T10)}
    (fetch,) = prices.missing_ranges(needs)
    assert fetch == ("BNB/USDT", T10 - 59 * MINUTE, T10)
    prices.add_candles(*fetch, [(T10, Decimal(250))])
    assert ledger.revalue() is True
    (doc,) = ledger.symbol_documents()
    # buy fee 0.001 * 250 = 0.25; pnl 1 * (110 - 100) - 0.25 - 0.11 = 9.64 on basis 100
    assert (doc["unpriced_trades"], doc["volume_usd"], doc["fees_usd"]) == (0, "210", "0.36")
    assert (doc["realized_pnl_usd"], doc["return_pct"], doc["unmatched_quantity"]) == ("9.64", 9.64, "0")
    assert ledger.trades()[0] == PricedTrade(buy, Decimal(100), Decimal("0.25"))
    assert ledger.unpriced_needs() == set()
    assert ledger.revalue() is False


def test_non_usd_quote_is_valued_through_its_own_usd_market() -> None:
    prices = PriceBook(MARKETS)
    add_flat_candles(prices, "BTC/USDT", T10 - HOUR, T10, "40000")
    add_flat_candles(prices, "BTC/USDT", T10 + HOUR, T10 + 2 * HOUR, "50000")
    ledger = Ledger(prices)
    ledger.add(
        [
            make_trade("1", "buy", "2", "0.05", T10, symbol="ETH/BTC", fee="0.0001"),
            make_trade("2", "sell", "2", "0.06", T10 + 2 * HOUR, symbol="ETH/BTC", fee="0.00012"),
        ]
    )
    (doc,) = ledger.symbol_documents()
    # values 0.1 BTC * 40000 = 4000 and 0.12 BTC * 50000 = 6000; fees 0.0001 * 40000 + 0.00012 * 50000
    assert (doc["volume_usd"], doc["fees_usd"]) == ("10000", "10")
    # pnl 2 * 0.01 BTC * 50000 - 4 - 6 = 990 on basis 4000 -> 24.75 %
    assert (doc["realized_pnl_usd"], doc["return_pct"], doc["quote"]) == ("990", 24.75, "BTC")


def test_short_on_a_swap_symbol() -> None:
    ledger = Ledger(PriceBook(MARKETS))
    swap = "BTC/USDT:USDT"
    ledger.add(
        [
            make_trade("1", "sell", "1", "50000", T10, symbol=swap, fee="20"),
            make_trade("2", "buy", "1.5", "48000", T10 + HOUR, symbol=swap, fee="28.8"),
            make_trade("3", "sell", "1", "49000", T10 + 2 * HOUR, symbol=swap, fee="9.8"),
        ]
    )
    (doc,) = ledger.symbol_documents()
    # 1960.8 + 485.5 (see test_fifo) on basis 50000 + 24000
    assert doc["market_type"] == "swap"
    assert (doc["realized_pnl_usd"], doc["closed_trades"], doc["winning_trades"]) == ("2446.3", 2, 2)
    assert doc["return_pct"] == pytest.approx(3.3058108108108106)  # 244630 / 74000
    assert (doc["closed_quantity"], doc["open_quantity"], doc["unmatched_quantity"]) == ("1.5", "-0.5", "0")
    assert (doc["volume_usd"], doc["fees_usd"]) == ("171000", "58.6")
    assert ledger.summary_figures(T10 + 3 * HOUR)["avg_holding_seconds"] == 3600.0


@pytest.mark.parametrize(
    "batches",
    [
        [[2, 3], [0, 1]],  # an old page after a newer one
        [[3], [2], [1], [0]],  # newest first, one at a time
        [[1, 3], [0, 2]],
        [[3, 1, 0, 2]],  # one batch out of order
    ],
)
def test_late_trades_give_the_in_order_result(batches: list[list[int]]) -> None:
    trades = [
        *spot_ladder(),
        make_trade("9", "sell", "1", "50000", T10, symbol="BTC/USDT:USDT", fee="20"),
        make_trade("10", "buy", "1.5", "48000", T10 + HOUR, symbol="BTC/USDT:USDT", fee="28.8"),
    ]
    in_order = Ledger(PriceBook(MARKETS))
    in_order.add(trades)
    late = Ledger(PriceBook(MARKETS))
    for batch in batches:
        late.add([trades[i] for i in batch] + [trades[4 + i] for i in batch if i < 2])
    assert late.symbol_documents() == in_order.symbol_documents()
    assert late.summary_figures(T10 + 5 * HOUR) == in_order.summary_figures(T10 + 5 * HOUR)
    assert late.trades() == in_order.trades()
    # spot 16.5425 (above) + the swap short closed at 1960.8 (test_fifo)
    assert in_order.totals_document()["realized_pnl_usd"] == "1977.3425"


def test_duplicates_are_ignored_within_and_across_batches() -> None:
    ledger = Ledger(PriceBook(MARKETS))
    trades = spot_ladder()
    assert ledger.add(trades + trades[:2]) == 4
    assert ledger.add(trades) == 0
    assert ledger.add([make_trade("2", "buy", "2", "110", T10 + HOUR, fee="0.4")]) == 0  # a retry's copy
    assert len(ledger) == 4
    (doc,) = ledger.symbol_documents()
    assert (doc["trades"], doc["realized_pnl_usd"]) == (4, "16.5425")


def test_a_self_trade_is_two_trades_buy_processed_first() -> None:
    ledger = Ledger(PriceBook(MARKETS))
    # Binance reports a self-trade as two fills with one id; the sell arriving first changes nothing
    sell = make_trade("7", "sell", "1", "100", T10, fee="0.1")
    buy = make_trade("7", "buy", "1", "100", T10, fee="0.1")
    assert ledger.add([sell, buy]) == 2
    assert len(ledger) == 2
    (doc,) = ledger.symbol_documents()
    # pnl 1 * (100 - 100) - 0.1 - 0.1 = -0.2: a losing closed trade
    assert (doc["trades"], doc["closed_trades"], doc["winning_trades"]) == (2, 1, 0)
    assert (doc["realized_pnl_usd"], doc["return_pct"], doc["unmatched_quantity"]) == ("-0.2", -0.2, "0")
    summary = ledger.summary_figures(T10)
    assert (summary["win_rate"], summary["profit_factor"]) == (0.0, 0.0)
    assert (summary["avg_loss_usd"], summary["largest_loss_usd"], summary["largest_win_usd"]) == (
        "-0.2",
        "-0.2",
        None,
    )
    assert summary["max_drawdown_usd"] == "0.2"
    assert summary["sortino_ratio"] == pytest.approx(-19.1049731745428)  # -0.2 / sqrt(0.04) * sqrt 365
    assert [p.trade for p in ledger.trades()] == [buy, sell]


def test_daily_series_runs_from_the_first_trade_day_to_as_of() -> None:
    ledger = Ledger(PriceBook(MARKETS))
    day = 24 * HOUR
    ledger.add(
        [
            make_trade("1", "buy", "1", "100", T10),
            make_trade("2", "sell", "0.5", "120", T10 + day),  # +10 on day 2
            make_trade("3", "sell", "0.5", "80", T10 + 3 * day),  # -10 on day 4
        ]
    )
    summary = ledger.summary_figures(T10 + 4 * day)
    # days 5 Jan .. 9 Jan: [0, 10, 0, -10, 0]; cumulative 0, 10, 10, 0, 0 -> drawdown 10
    # mean 0 -> sharpe 0 and sortino 0; std sqrt((100 + 100) / 4) = sqrt(50) = 7.0710678118...
    assert summary["trading_days"] == 5
    assert summary["max_drawdown_usd"] == "10"
    assert summary["sharpe_ratio"] == 0.0
    assert summary["sortino_ratio"] == 0.0
    assert summary["daily_pnl_volatility_usd"] == "7.07106781"
    assert summary["avg_holding_seconds"] == 172800.0  # (0.5 * 1 day + 0.5 * 3 days) / 1


def test_trades_are_listed_oldest_first_and_paged_by_order_and_symbol() -> None:
    ledger = Ledger(PriceBook(MARKETS))
    btc_5 = make_trade("5", "buy", "1", "100", T10)
    eth_5 = make_trade("5", "buy", "1", "10", T10, symbol="ETH/USDT")  # same (timestamp, id, side)
    btc_6 = make_trade("6", "sell", "1", "101", T10 + MINUTE)
    eth_4 = make_trade("4", "buy", "1", "10", T10 - MINUTE, symbol="ETH/USDT")
    ledger.add([btc_6, eth_5])
    ledger.add([btc_5, eth_4])
    listed = [p.trade for p in ledger.trades()]
    assert listed == [eth_4, btc_5, eth_5, btc_6]
    assert [p.trade for p in ledger.trades(limit=2)] == [eth_4, btc_5]
    assert [p.trade for p in ledger.trades(after=btc_5.order, after_symbol="BTC/USDT")] == [eth_5, btc_6]
    assert [p.trade for p in ledger.trades(after=btc_5.order)] == [btc_6]
    assert [p.trade for p in ledger.trades("ETH/USDT")] == [eth_4, eth_5]
    assert [p.trade for p in ledger.trades("ETH/USDT", after=eth_4.order, limit=1)] == [eth_5]
    assert ledger.trades("SOL/USDT") == []
    assert ledger.trades(limit=0) == []
    assert ledger.trades()[1] == PricedTrade(btc_5, Decimal(100), Decimal(0))


def test_ids_equal_as_integers_keep_one_order_whatever_the_arrival() -> None:
    a = make_trade("7", "buy", "1", "100", T10)
    b = make_trade("007", "buy", "2", "101", T10)
    sell = make_trade("8", "sell", "1", "110", T10)
    first, second = Ledger(PriceBook(MARKETS)), Ledger(PriceBook(MARKETS))
    first.add([a, b, sell])
    second.add([sell, b])
    second.add([a])
    # "007" < "7" as strings: the 101 lot is closed first, pnl 1 * (110 - 101) = 9
    assert first.symbol_documents() == second.symbol_documents()
    assert first.totals_document()["realized_pnl_usd"] == "9"


def test_pages_overlapping_by_a_trade_count_each_trade_once() -> None:
    # The poller asks each page from the last id seen: every page repeats the previous one's last.
    trades = [
        make_trade(str(100 + i), "buy" if i % 3 else "sell", "1", str(100 + i), T10 + i * MINUTE)
        for i in range(9)
    ]
    ledger = Ledger(PriceBook(MARKETS))
    assert [ledger.add(trades[max(0, i - 1) : i + 3]) for i in range(0, 9, 3)] == [3, 3, 3]
    reference = Ledger(PriceBook(MARKETS))
    reference.add(trades)
    assert len(ledger) == 9
    assert ledger.symbol_documents() == reference.symbol_documents()
    assert ledger.trades(limit=20) == reference.trades(limit=20)


def test_reads_follow_every_change_after_being_cached() -> None:
    ledger = Ledger(PriceBook(MARKETS))
    ledger.add(spot_ladder()[:2])
    assert ledger.totals_document()["trades"] == 2
    assert ledger.symbol_documents()[0]["open_quantity"] == "3"
    ledger.add(spot_ladder()[2:3])  # in order
    assert (ledger.symbol_documents()[0]["open_quantity"], ledger.totals_document()["trades"]) == ("1.5", 3)
    assert ledger.summary_figures(T10 + 4 * HOUR)["realized_pnl_usd"] == "24.5"
    ledger.add([make_trade("0", "buy", "1", "90", T10 - HOUR)])  # late: the sell now closes the 90 lot first
    (doc,) = ledger.symbol_documents()
    # 1 * (120 - 90) + 0.5 * (120 - 100) - 0.1 * 0.5 / 1 - 0.3 * 1.5 / 1.5 = 39.65
    assert (doc["trades"], doc["open_quantity"], doc["realized_pnl_usd"]) == (4, "2.5", "39.65")
    assert ledger.summary_figures(T10 + 4 * HOUR)["realized_pnl_usd"] == "39.65"
    assert ledger.totals_document()["trades"] == 4


def test_text_ids_and_ids_that_change_kind_give_the_in_order_result() -> None:
    # Kraken-like ids, then a numeric one: order and identity keep working on a mixed symbol.
    trades = [
        make_trade("TXA-1", "buy", "1", "100", T10, fee="0.1"),
        make_trade("TXB-2", "buy", "2", "110", T10 + HOUR, fee="0.4"),
        make_trade("7", "sell", "1.5", "120", T10 + 2 * HOUR, fee="0.3"),
        make_trade("TXC-3", "sell", "2", "105", T10 + 3 * HOUR, fee="0.21"),
    ]
    in_order = Ledger(PriceBook(MARKETS))
    in_order.add(trades)
    late = Ledger(PriceBook(MARKETS))
    late.add(trades[2:])
    late.symbol_documents()
    late.add(trades[::-1])  # repeats and two late trades
    assert len(late) == 4
    assert late.symbol_documents() == in_order.symbol_documents()
    assert late.trades() == in_order.trades()
    # the same figures as the numeric-id ladder
    assert in_order.symbol_documents()[0]["realized_pnl_usd"] == "16.5425"
