"""Worked examples: every published figure of small histories, computed by hand from METRICS.md.

USD strings are the exact sums rounded half-even to 8 places; ratios are floats derived from exact
decimals, compared to 12 significant digits. The arithmetic is in the comments.
"""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from ledger.factory import HOUR, MINUTE, at, make_trade
from perf_aggregator.ledger.book import Ledger, PricedTrade
from perf_aggregator.ledger.prices import PriceBook
from perf_aggregator.ledger.trades import Trade

MARKETS = {"BTC/USDT", "ETH/USDT", "BNB/USDT", "ETH/BTC", "BTC/USDT:USDT", "ETH/USDT:USDT"}


def approx(value: float) -> object:
    """A float ratio derived from exact decimals."""
    return pytest.approx(value, rel=1e-12)


Expected = dict[str, object]
"""A document as expected: literal values, floats wrapped in :func:`approx`."""


def period(start: str, end: str) -> Expected:
    return {"period_start": start + ".000Z", "period_end": end + ".000Z"}


# (a) Spot ETH/USDT: two lots closed by a sell across both, the rest of the second lot by a later
# sell; fees in BNB, valued with BNB/USDT 1m candles.


def bnb_candles(prices: PriceBook) -> None:
    prices.add_candles(
        "BNB/USDT",
        at("2026-01-05T09:00:00"),
        at("2026-01-06T12:00:00"),
        [
            (at("2026-01-05T10:00:00"), Decimal(300)),
            (at("2026-01-05T11:00:00"), Decimal(320)),
            (at("2026-01-05T11:01:00"), Decimal(999)),  # opens after trade 2: not its candle
            (at("2026-01-06T07:59:00"), Decimal(400)),  # more than an hour before trade 4
            (at("2026-01-06T08:30:00"), Decimal(305)),
        ],
    )


def spot_history() -> list[Trade]:
    eth = "ETH/USDT"
    return [
        # value 2 * 3000 = 6000; fee 0.003 BNB * 300 (10:00 candle, open time = t) = 0.9
        make_trade(
            "1", "buy", "2", "3000", at("2026-01-05T10:00:00"), symbol=eth, fee="0.003", fee_currency="BNB"
        ),
        # value 3100; fee 0.0015 * 320 (11:00 candle) = 0.48
        make_trade(
            "2", "buy", "1", "3100", at("2026-01-05T11:00:00"), symbol=eth, fee="0.0015", fee_currency="BNB"
        ),
        # value 2.5 * 3200 = 8000; fee 8 USDT
        make_trade("3", "sell", "2.5", "3200", at("2026-01-05T12:30:00"), symbol=eth, fee="8"),
        # value 0.5 * 2900 = 1450; fee 0.002 * 305 (08:30 candle) = 0.61
        make_trade(
            "4", "sell", "0.5", "2900", at("2026-01-06T09:00:00"), symbol=eth, fee="0.002", fee_currency="BNB"
        ),
        # value 0.4 * 3000 = 1200; fee 1.2 USDT; stays open
        make_trade("5", "buy", "0.4", "3000", at("2026-01-06T10:00:00"), symbol=eth, fee="1.2"),
    ]


# Trade 3 (sell 2.5) closes lot 1 whole and 0.5 of lot 2:
#   lot 1, q = 2:   2 * (3200 - 3000) - 0.9 * 2 / 2 - 8 * 2 / 2.5     = 400 - 0.9 - 6.4   = 392.7
#                   basis 2 * 3000 = 6000; held 2.5 h = 9000 s
#   lot 2, q = 0.5: 0.5 * (3200 - 3100) - 0.48 * 0.5 / 1 - 8 * 0.5 / 2.5 = 50 - 0.24 - 1.6 = 48.16
#                   basis 0.5 * 3100 = 1550; held 1.5 h = 5400 s
#   closed trade: 392.7 + 48.16 = 440.86 (a win)
# Trade 4 (sell 0.5) closes the rest of lot 2:
#   q = 0.5: 0.5 * (2900 - 3100) - 0.48 * 0.5 / 1 - 0.61 * 0.5 / 0.5 = -100 - 0.24 - 0.61 = -100.85
#            basis 1550; held 22 h = 79200 s (a loss)
# pnl 440.86 - 100.85 = 340.01 over basis 6000 + 1550 + 1550 = 9100 -> 3.7363736263736...%
# volume 6000 + 3100 + 8000 + 1450 + 1200 = 19750; fees 0.9 + 0.48 + 8 + 0.61 + 1.2 = 11.19
SPOT_PERIOD = period("2026-01-05T10:00:00", "2026-01-06T10:00:00")
SPOT_COUNTS: Expected = {
    "trades": 5,
    "volume_usd": "19750",
    "fees_usd": "11.19",
    "realized_pnl_usd": "340.01",
}
SPOT_SYMBOL: Expected = {
    "symbol": "ETH/USDT",
    "base": "ETH",
    "quote": "USDT",
    "market_type": "spot",
    **SPOT_COUNTS,
    "return_pct": approx(3.7363736263736262),  # 100 * 340.01 / 9100
    "closed_quantity": "3",  # 2 + 0.5 + 0.5
    "open_quantity": "0.4",
    "unmatched_quantity": "0",
    "closed_trades": 2,
    "winning_trades": 1,
    "win_rate": 0.5,
    "unpriced_trades": 0,
    **SPOT_PERIOD,
}
SPOT_TOTALS: Expected = {
    **SPOT_COUNTS,
    "return_pct": approx(3.7363736263736262),
    "closed_trades": 2,
    "winning_trades": 1,
    "win_rate": 0.5,
    "unpriced_trades": 0,
    **SPOT_PERIOD,
}
# as of 6 Jan 12:00: days 5 and 6 Jan, daily series [440.86, -100.85]
# mean 170.005; sample std |440.86 + 100.85| / sqrt 2 = 541.71 / sqrt 2 = 383.046814436...
# downside sqrt((0 + 100.85^2) / 2) = sqrt(5085.36125) = 71.3117...
SPOT_SUMMARY: Expected = {
    **SPOT_COUNTS,
    "symbols_traded": 1,
    "return_pct": approx(3.7363736263736262),
    "closed_trades": 2,
    "win_rate": 0.5,
    "profit_factor": approx(4.3714427367377295),  # 440.86 / 100.85
    "avg_win_usd": "440.86",
    "avg_loss_usd": "-100.85",
    "largest_win_usd": "440.86",
    "largest_loss_usd": "-100.85",
    "avg_holding_seconds": approx(20100.0),  # (2 * 9000 + 0.5 * 5400 + 0.5 * 79200) / 3
    "max_drawdown_usd": "100.85",  # cumulative 440.86 then 340.01
    "sharpe_ratio": approx(8.479227191369924),  # 170.005 / 383.046814436... * sqrt 365
    "sortino_ratio": approx(45.54568331023304),  # 170.005 / 71.3117... * sqrt 365
    "daily_pnl_volatility_usd": "383.04681444",
    "trading_days": 2,
    **SPOT_PERIOD,
}
SPOT_AS_OF = at("2026-01-06T12:00:00")


def test_a_spot_partial_closes_across_lots_with_fees_in_bnb() -> None:
    prices = PriceBook(MARKETS)
    bnb_candles(prices)
    ledger = Ledger(prices)
    assert ledger.add(spot_history()) == 5
    assert ledger.symbol_documents() == [SPOT_SYMBOL]
    assert ledger.totals_document() == SPOT_TOTALS
    assert ledger.summary_figures(SPOT_AS_OF) == SPOT_SUMMARY
    fees = [p.fee_usd for p in ledger.trades()]
    assert fees == [Decimal("0.9"), Decimal("0.48"), Decimal(8), Decimal("0.61"), Decimal("1.2")]


# (f) The same history with trade 1 (the oldest) arriving after the others have been read.


def test_f_a_late_trade_arriving_after_reads_gives_the_in_order_figures() -> None:
    prices = PriceBook(MARKETS)
    bnb_candles(prices)
    ledger = Ledger(prices)
    first, *rest = spot_history()
    ledger.add(rest)
    # Without trade 1, trade 3 closes only lot 2 (q = 1) and finds nothing for 1.5:
    #   1 * (3200 - 3100) - 0.48 * 1 / 1 - 8 * 1 / 2.5 = 100 - 0.48 - 3.2 = 96.32, basis 3100, held 1.5 h
    # and trade 4 finds no lot at all: unmatched 1.5 + 0.5 = 2.
    # volume 3100 + 8000 + 1450 + 1200 = 13750; fees 0.48 + 8 + 0.61 + 1.2 = 10.29
    early = period("2026-01-05T11:00:00", "2026-01-06T10:00:00")
    assert ledger.symbol_documents() == [
        {
            "symbol": "ETH/USDT",
            "base": "ETH",
            "quote": "USDT",
            "market_type": "spot",
            "trades": 4,
            "volume_usd": "13750",
            "fees_usd": "10.29",
            "realized_pnl_usd": "96.32",
            "return_pct": approx(3.1070967741935482),  # 100 * 96.32 / 3100
            "closed_quantity": "1",
            "open_quantity": "0.4",
            "unmatched_quantity": "2",
            "closed_trades": 1,
            "winning_trades": 1,
            "win_rate": 1.0,
            "unpriced_trades": 0,
            **early,
        }
    ]
    # daily series [96.32, 0]: mean 48.16, std 96.32 / sqrt 2 = 68.1085251638...
    # sharpe 48.16 / (96.32 / sqrt 2) * sqrt 365 = sqrt(365 / 2)
    assert ledger.summary_figures(SPOT_AS_OF) == {
        "trades": 4,
        "symbols_traded": 1,
        "volume_usd": "13750",
        "fees_usd": "10.29",
        "realized_pnl_usd": "96.32",
        "return_pct": approx(3.1070967741935482),
        "closed_trades": 1,
        "win_rate": 1.0,
        "profit_factor": None,
        "avg_win_usd": "96.32",
        "avg_loss_usd": None,
        "largest_win_usd": "96.32",
        "largest_loss_usd": None,
        "avg_holding_seconds": approx(5400.0),
        "max_drawdown_usd": "0",
        "sharpe_ratio": approx(math.sqrt(182.5)),
        "sortino_ratio": None,
        "daily_pnl_volatility_usd": "68.10852516",
        "trading_days": 2,
        **early,
    }
    assert ledger.add([first]) == 1
    assert ledger.symbol_documents() == [SPOT_SYMBOL]
    assert ledger.totals_document() == SPOT_TOTALS
    assert ledger.summary_figures(SPOT_AS_OF) == SPOT_SUMMARY


def test_b_swap_short_partly_covered_then_flipped_to_long() -> None:
    swap = "BTC/USDT:USDT"
    ledger = Ledger(PriceBook(MARKETS))
    ledger.add(
        [
            # opens a short of 2; value 100000, fee 40
            make_trade("1", "sell", "2", "50000", at("2026-01-05T10:00:00"), symbol=swap, fee="40"),
            # covers 0.5: 0.5 * (50000 - 48000) - 40 * 0.5 / 2 - 9.6 = 1000 - 10 - 9.6 = 980.4
            #             basis 0.5 * 50000 = 25000; held 2 h = 7200 s; value 24000
            make_trade("2", "buy", "0.5", "48000", at("2026-01-05T12:00:00"), symbol=swap, fee="9.6"),
            # covers the last 1.5: 1.5 * (50000 - 51000) - 40 * 1.5 / 2 - 51 * 1.5 / 2.5
            #                    = -1500 - 30 - 30.6 = -1560.6; basis 75000; held 6 h = 21600 s
            # and opens a long of 1 (lot fee 51 over amount 2.5); value 127500
            make_trade("3", "buy", "2.5", "51000", at("2026-01-05T16:00:00"), symbol=swap, fee="51"),
            # closes 0.4 of the long: 0.4 * (52000 - 51000) - 51 * 0.4 / 2.5 - 4.16 = 400 - 8.16 - 4.16
            #                       = 387.68; basis 0.4 * 51000 = 20400; held 42 h = 151200 s; value 20800
            make_trade("4", "sell", "0.4", "52000", at("2026-01-07T10:00:00"), symbol=swap, fee="4.16"),
        ]
    )
    # pnl 980.4 - 1560.6 + 387.68 = -192.52 over basis 25000 + 75000 + 20400 = 120400
    # volume 100000 + 24000 + 127500 + 20800 = 272300; fees 40 + 9.6 + 51 + 4.16 = 104.76
    counts: Expected = {
        "trades": 4,
        "volume_usd": "272300",
        "fees_usd": "104.76",
        "realized_pnl_usd": "-192.52",
        "return_pct": approx(-0.15990033222591363),  # 100 * -192.52 / 120400
    }
    span = period("2026-01-05T10:00:00", "2026-01-07T10:00:00")
    assert ledger.symbol_documents() == [
        {
            "symbol": swap,
            "base": "BTC",
            "quote": "USDT",
            "market_type": "swap",
            **counts,
            "closed_quantity": "2.4",  # 0.5 + 1.5 + 0.4
            "open_quantity": "0.6",  # long 1 - 0.4
            "unmatched_quantity": "0",
            "closed_trades": 3,
            "winning_trades": 2,
            "win_rate": 2 / 3,
            "unpriced_trades": 0,
            **span,
        }
    ]
    assert ledger.totals_document() == {
        **counts,
        "closed_trades": 3,
        "winning_trades": 2,
        "win_rate": approx(2 / 3),
        "unpriced_trades": 0,
        **span,
    }
    # as of 7 Jan 12:00: days 5, 6 (no trade at all), 7 Jan; series [980.4 - 1560.6, 0, 387.68]
    #   = [-580.2, 0, 387.68]; cumulative -580.2, -580.2, -192.52 under the initial peak 0
    # mean -64.17333...; sample std 487.1207100230...; downside sqrt(580.2^2 / 3) = 334.98...
    assert ledger.summary_figures(at("2026-01-07T12:00:00")) == {
        **counts,
        "symbols_traded": 1,
        "closed_trades": 3,
        "win_rate": approx(2 / 3),
        "profit_factor": approx(0.876637190824042),  # (980.4 + 387.68) / 1560.6
        "avg_win_usd": "684.04",  # 1368.08 / 2
        "avg_loss_usd": "-1560.6",
        "largest_win_usd": "980.4",
        "largest_loss_usd": "-1560.6",
        "avg_holding_seconds": approx(40200.0),  # (0.5 * 7200 + 1.5 * 21600 + 0.4 * 151200) / 2.4
        "max_drawdown_usd": "580.2",
        "sharpe_ratio": approx(-2.5168911660446174),  # -64.1733... / 487.1207... * sqrt 365
        "sortino_ratio": approx(-3.6600240015956653),  # -64.1733... / 334.98... * sqrt 365
        "daily_pnl_volatility_usd": "487.12071002",
        "trading_days": 3,
        **span,
    }


def test_c_sells_without_lots_are_unmatched() -> None:
    ledger = Ledger(PriceBook(MARKETS))
    ledger.add(
        [
            # no lot: 0.3 unmatched, not a closed trade; value 12000, fee 12
            make_trade("1", "sell", "0.3", "40000", at("2026-01-05T10:00:00"), fee="12"),
            # value 20500, fee 20.5
            make_trade("2", "buy", "0.5", "41000", at("2026-01-05T11:00:00"), fee="20.5"),
            # closes the 0.5 lot: 0.5 * (42000 - 41000) - 20.5 - 29.4 * 0.5 / 0.7 = 500 - 20.5 - 21 = 458.5
            # basis 20500; held 1 h; the other 0.2 is unmatched; value 29400, fee 29.4
            make_trade("3", "sell", "0.7", "42000", at("2026-01-05T12:00:00"), fee="29.4"),
        ]
    )
    # volume 12000 + 20500 + 29400 = 61900; fees 12 + 20.5 + 29.4 = 61.9 (the unmatched sell's too)
    counts: Expected = {
        "trades": 3,
        "volume_usd": "61900",
        "fees_usd": "61.9",
        "realized_pnl_usd": "458.5",
        "return_pct": approx(2.2365853658536587),  # 100 * 458.5 / 20500
    }
    span = period("2026-01-05T10:00:00", "2026-01-05T12:00:00")
    assert ledger.symbol_documents() == [
        {
            "symbol": "BTC/USDT",
            "base": "BTC",
            "quote": "USDT",
            "market_type": "spot",
            **counts,
            "closed_quantity": "0.5",
            "open_quantity": "0",
            "unmatched_quantity": "0.5",  # 0.3 + 0.2
            "closed_trades": 1,
            "winning_trades": 1,
            "win_rate": 1.0,
            "unpriced_trades": 0,
            **span,
        }
    ]
    assert ledger.totals_document() == {
        **counts,
        "closed_trades": 1,
        "winning_trades": 1,
        "win_rate": 1.0,
        "unpriced_trades": 0,
        **span,
    }
    # one day, series [458.5]: no drawdown; sharpe and volatility need 2 days; no negative day
    assert ledger.summary_figures(at("2026-01-05T13:00:00")) == {
        **counts,
        "symbols_traded": 1,
        "closed_trades": 1,
        "win_rate": 1.0,
        "profit_factor": None,
        "avg_win_usd": "458.5",
        "avg_loss_usd": None,
        "largest_win_usd": "458.5",
        "largest_loss_usd": None,
        "avg_holding_seconds": approx(3600.0),
        "max_drawdown_usd": "0",
        "sharpe_ratio": None,
        "sortino_ratio": None,
        "daily_pnl_volatility_usd": None,
        "trading_days": 1,
        **span,
    }


def test_d_an_unpriced_trade_counts_fully_once_its_candle_is_fetched() -> None:
    prices = PriceBook(MARKETS)
    # BTC/USDT (which values the ETH/BTC quote) fetched for 09:00-12:59; BNB/USDT not fetched yet.
    prices.add_candles(
        "BTC/USDT",
        at("2026-01-05T09:00:00"),
        at("2026-01-05T12:59:00"),
        [
            (at("2026-01-05T10:00:00"), Decimal(40000)),
            (at("2026-01-05T11:00:00"), Decimal(41000)),
            (at("2026-01-05T12:00:00"), Decimal(42000)),
        ],
    )
    t1, t2, t3 = at("2026-01-05T10:00:00"), at("2026-01-05T11:30:00"), at("2026-01-05T12:00:00")
    # fee in BNB: unpriced until BNB/USDT is fetched
    buy = make_trade("1", "buy", "10", "0.05", t1, symbol="ETH/BTC", fee="0.01", fee_currency="BNB")
    # value 4 * 0.06 = 0.24 BTC * 41000 = 9840; fee 0.00024 BTC * 41000 = 9.84
    sell = make_trade("2", "sell", "4", "0.06", t2, symbol="ETH/BTC", fee="0.00024", fee_currency="BTC")
    # fee in a currency with no USD market: unpriced for good
    odd = make_trade("3", "sell", "1", "0.055", t3, symbol="ETH/BTC", fee="0.5", fee_currency="XYZ")
    ledger = Ledger(prices)
    ledger.add([buy, sell, odd])

    span = period("2026-01-05T10:00:00", "2026-01-05T12:00:00")
    symbol: Expected = {"symbol": "ETH/BTC", "base": "ETH", "quote": "BTC", "market_type": "spot"}
    # Before: only the sell is priced, and it finds no lot (the buy takes no part): unmatched 4.
    before: Expected = {
        "trades": 3,
        "volume_usd": "9840",
        "fees_usd": "9.84",
        "realized_pnl_usd": "0",
        "return_pct": None,
    }
    assert ledger.symbol_documents() == [
        {
            **symbol,
            **before,
            "closed_quantity": "0",
            "open_quantity": "0",
            "unmatched_quantity": "4",
            "closed_trades": 0,
            "winning_trades": 0,
            "win_rate": None,
            "unpriced_trades": 2,
            **span,
        }
    ]
    assert ledger.totals_document() == {
        **before,
        "closed_trades": 0,
        "winning_trades": 0,
        "win_rate": None,
        "unpriced_trades": 2,
        **span,
    }
    assert ledger.summary_figures(at("2026-01-05T13:00:00")) == {
        **before,
        "symbols_traded": 1,
        "closed_trades": 0,
        "win_rate": None,
        "profit_factor": None,
        "avg_win_usd": None,
        "avg_loss_usd": None,
        "largest_win_usd": None,
        "largest_loss_usd": None,
        "avg_holding_seconds": None,
        "max_drawdown_usd": "0",
        "sharpe_ratio": None,
        "sortino_ratio": None,
        "daily_pnl_volatility_usd": None,
        "trading_days": 1,
        **span,
    }
    assert ledger.trades() == [
        PricedTrade(buy, None, None),
        PricedTrade(sell, Decimal(9840), Decimal("9.84")),
        PricedTrade(odd, None, None),
    ]

    # The poller fetches what the unpriced trades need: BNB/USDT minutes (09:00, 10:00].
    ranges = prices.missing_ranges(ledger.unpriced_needs())
    assert ranges == [("BNB/USDT", t1 - HOUR + MINUTE, t1)]
    bnb = {t1 - 30 * MINUTE: Decimal(290), t1: Decimal(300)}
    for market, start, end in ranges:
        prices.add_candles(market, start, end, [(t, c) for t, c in bnb.items() if start <= t <= end])
    assert ledger.revalue() is True

    # After: buy value 10 * 0.05 = 0.5 BTC * 40000 = 20000, fee 0.01 BNB * 300 = 3.
    # The sell now closes 4 of the 10: usd(4 * (0.06 - 0.05) BTC, at the sell: 41000) = 1640
    #   pnl 1640 - 3 * 4 / 10 - 9.84 = 1640 - 1.2 - 9.84 = 1628.96
    #   basis usd(4 * 0.05 BTC, at the buy: 40000) = 8000; held 1.5 h = 5400 s
    after: Expected = {
        "trades": 3,
        "volume_usd": "29840",  # 20000 + 9840
        "fees_usd": "12.84",  # 3 + 9.84
        "realized_pnl_usd": "1628.96",
        "return_pct": approx(20.362),  # 100 * 1628.96 / 8000
    }
    assert ledger.symbol_documents() == [
        {
            **symbol,
            **after,
            "closed_quantity": "4",
            "open_quantity": "6",
            "unmatched_quantity": "0",
            "closed_trades": 1,
            "winning_trades": 1,
            "win_rate": 1.0,
            "unpriced_trades": 1,
            **span,
        }
    ]
    assert ledger.totals_document() == {
        **after,
        "closed_trades": 1,
        "winning_trades": 1,
        "win_rate": 1.0,
        "unpriced_trades": 1,
        **span,
    }
    assert ledger.summary_figures(at("2026-01-05T13:00:00")) == {
        **after,
        "symbols_traded": 1,
        "closed_trades": 1,
        "win_rate": 1.0,
        "profit_factor": None,
        "avg_win_usd": "1628.96",
        "avg_loss_usd": None,
        "largest_win_usd": "1628.96",
        "largest_loss_usd": None,
        "avg_holding_seconds": approx(5400.0),
        "max_drawdown_usd": "0",
        "sharpe_ratio": None,
        "sortino_ratio": None,
        "daily_pnl_volatility_usd": None,
        "trading_days": 1,
        **span,
    }
    assert ledger.trades() == [
        PricedTrade(buy, Decimal(20000), Decimal(3)),
        PricedTrade(sell, Decimal(9840), Decimal("9.84")),
        PricedTrade(odd, None, None),
    ]
    assert prices.missing_ranges(ledger.unpriced_needs()) == []  # XYZ has no market to fetch
    assert ledger.revalue() is False


def test_e_days_without_trades_inside_the_period() -> None:
    swap = "ETH/USDT:USDT"
    ledger = Ledger(PriceBook(MARKETS))
    ledger.add(
        [
            make_trade("1", "buy", "1", "100", at("2026-01-05T09:00:00")),
            make_trade("2", "sell", "1", "130", at("2026-01-05T15:00:00")),  # +30 on 5 Jan, held 6 h
            # 6 Jan: no trade at all
            make_trade("3", "sell", "2", "50", at("2026-01-07T08:00:00"), symbol=swap),
            make_trade("4", "buy", "2", "60", at("2026-01-07T20:00:00"), symbol=swap),  # 2 * (50 - 60) = -20
            make_trade("5", "buy", "1", "200", at("2026-01-08T10:00:00")),  # 8 Jan: a trade, no close
            make_trade("6", "sell", "1", "210", at("2026-01-09T10:00:00")),  # +10 on 9 Jan, held 24 h
        ]
    )
    btc_span = period("2026-01-05T09:00:00", "2026-01-09T10:00:00")
    assert ledger.symbol_documents() == [
        {
            "symbol": "BTC/USDT",
            "base": "BTC",
            "quote": "USDT",
            "market_type": "spot",
            "trades": 4,
            "volume_usd": "640",  # 100 + 130 + 200 + 210
            "fees_usd": "0",
            "realized_pnl_usd": "40",  # 30 + 10
            "return_pct": approx(40 / 3),  # 100 * 40 / (100 + 200)
            "closed_quantity": "2",
            "open_quantity": "0",
            "unmatched_quantity": "0",
            "closed_trades": 2,
            "winning_trades": 2,
            "win_rate": 1.0,
            "unpriced_trades": 0,
            **btc_span,
        },
        {
            "symbol": swap,
            "base": "ETH",
            "quote": "USDT",
            "market_type": "swap",
            "trades": 2,
            "volume_usd": "220",  # 100 + 120
            "fees_usd": "0",
            "realized_pnl_usd": "-20",
            "return_pct": approx(-20.0),  # 100 * -20 / (2 * 50)
            "closed_quantity": "2",
            "open_quantity": "0",
            "unmatched_quantity": "0",
            "closed_trades": 1,
            "winning_trades": 0,
            "win_rate": 0.0,
            "unpriced_trades": 0,
            **period("2026-01-07T08:00:00", "2026-01-07T20:00:00"),
        },
    ]
    counts: Expected = {
        "trades": 6,
        "volume_usd": "860",
        "fees_usd": "0",
        "realized_pnl_usd": "20",
        "return_pct": approx(5.0),  # 100 * 20 / (300 + 100)
    }
    assert ledger.totals_document() == {
        **counts,
        "closed_trades": 3,
        "winning_trades": 2,
        "win_rate": approx(2 / 3),
        "unpriced_trades": 0,
        **btc_span,
    }
    # as of 10 Jan 06:00: days 5..10 Jan, series [30, 0, -20, 0, 10, 0]; cumulative 30, 30, 10, 10,
    # 20, 20 -> drawdown 30 - 10 = 20. mean 20 / 6 = 10 / 3; squares 900 + 400 + 100 = 1400,
    # sample variance (1400 - 6 * (10 / 3)^2) / 5 = 800 / 3, std 16.3299316185...;
    # sharpe (10 / 3) / sqrt(800 / 3) * sqrt 365 = sqrt(365 / 24)
    # downside mean 400 / 6 = 200 / 3; sortino (10 / 3) / sqrt(200 / 3) * sqrt 365 = sqrt(365 / 6)
    figures: Expected = {
        **counts,
        "symbols_traded": 2,
        "closed_trades": 3,
        "win_rate": approx(2 / 3),
        "profit_factor": approx(2.0),  # (30 + 10) / 20
        "avg_win_usd": "20",
        "avg_loss_usd": "-20",
        "largest_win_usd": "30",
        "largest_loss_usd": "-20",
        "avg_holding_seconds": approx(48600.0),  # (1 * 6 h + 2 * 12 h + 1 * 24 h) / 4 = 13.5 h
        "max_drawdown_usd": "20",
        "sharpe_ratio": approx(math.sqrt(365 / 24)),
        "sortino_ratio": approx(math.sqrt(365 / 6)),
        "daily_pnl_volatility_usd": "16.32993162",
        "trading_days": 6,
        **btc_span,
    }
    assert ledger.summary_figures(at("2026-01-10T06:00:00")) == figures
    # as of the last instant of 9 Jan: series [30, 0, -20, 0, 10]; mean 4; squares of deviations
    # 676 + 16 + 576 + 16 + 36 = 1320, variance 330; sharpe 4 / sqrt 330 * sqrt 365;
    # downside mean 400 / 5 = 80; sortino 4 / sqrt 80 * sqrt 365 = sqrt 73
    assert ledger.summary_figures(at("2026-01-10T00:00:00") - 1) == {
        **figures,
        "sharpe_ratio": approx(4 * math.sqrt(365 / 330)),
        "sortino_ratio": approx(math.sqrt(73)),
        "daily_pnl_volatility_usd": "18.16590212",  # sqrt 330 = 18.165902124...
        "trading_days": 5,
    }


def test_g_equal_timestamps_are_processed_by_numeric_id() -> None:
    t = at("2026-01-05T10:00:00")
    ledger = Ledger(PriceBook(MARKETS))
    # ids 9 < 10 as integers ("10" < "9" as strings): the sell comes first and finds no lot
    ledger.add([make_trade("10", "buy", "1", "100", t), make_trade("9", "sell", "1", "100", t)])
    (item,) = ledger.symbol_documents()
    assert (item["unmatched_quantity"], item["open_quantity"], item["closed_trades"]) == ("1", "1", 0)
    assert item["return_pct"] is None
