"""``FifoBook.record``: a run recorded in one call gives, digit for digit, the book and figures of the
same trades recorded one at a time with each trade and closed trade added by the tests' own
``record_fill`` and ``record_close``."""

from __future__ import annotations

from decimal import Decimal, localcontext
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from perf_aggregator.ledger.fifo import FifoBook
from perf_aggregator.ledger.prices import ONE, ZERO_FEE_RATE
from perf_aggregator.ledger.trades import MarketType, Trade, columns_of
from perf_aggregator.metrics.figures import DAY_MS, Figures
from perf_aggregator.metrics.precision import EXACT

from .factory import HOUR, apply_one, at, make_trade, record_close, record_fill

T0 = at("2026-01-05T22:00:00")
AMOUNTS = ("0.3", "1", "1.25", "0.007", "2.5", "0.10")
PRICES = ("100", "99.5", "101.25", "0.05", "120")
FEES = (Decimal(0), Decimal("0.1"), Decimal("0.0333"), Decimal("1.7"), Decimal("-0.02"))
QUOTE_RATES = (ONE, Decimal(1), Decimal("40000.5"), Decimal("0.9998"), None)
"""``ONE`` (the stablecoin rate, products skipped), other rates (one of them equal to 1) and
``None`` (unpriced)."""
Fill = tuple[Trade, Decimal, Decimal | None]
"""``(trade, fee_usd, quote_rate)``."""
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)


@st.composite
def fills(draw: st.DrawFn) -> tuple[MarketType, list[Fill]]:
    """A spot or swap symbol's fills in processing order, over a few UTC days, a few unpriced."""
    market_type: MarketType = draw(st.sampled_from(["spot", "swap"]))
    symbol = "BTC/USDT" if market_type == "spot" else "BTC/USDT:USDT"
    t = T0
    run: list[Fill] = []
    for k in range(draw(st.integers(0, 30))):
        t += draw(st.sampled_from([0, 1, HOUR, 5 * HOUR]))
        side = draw(st.sampled_from(["buy", "sell"]))
        trade = make_trade(
            str(k), side, draw(st.sampled_from(AMOUNTS)), draw(st.sampled_from(PRICES)), t, symbol=symbol
        )
        run.append((trade, draw(st.sampled_from(FEES)), draw(st.sampled_from(QUOTE_RATES))))
    return market_type, run


def exact(book: FifoBook, figures: Figures) -> str:
    """Everything the book and the figures hold, with each decimal's digits and exponent."""
    return repr((book.position, book.unmatched, book.lots, figures))


@PROPERTY
@given(fills(), st.lists(st.integers(0, 30), max_size=4))
def test_runs_record_as_one_trade_at_a_time(case: tuple[MarketType, list[Fill]], cuts: list[int]) -> None:
    market_type, run = case
    with localcontext(EXACT):
        reference, expected = FifoBook(market_type), Figures()
        for trade, fee_usd, quote_rate in run:
            record_fill(expected, trade, quote_rate, fee_usd)
            if quote_rate is not None:
                closed = apply_one(reference, trade, fee_usd, quote_rate)
                if closed is not None:
                    record_close(expected, closed)
        book, figures = FifoBook(market_type), Figures()
        days = figures.daily_pnl_usd  # the caller's sum of the runs' days
        trades = [trade._replace(fee_cost=fee_usd) for trade, fee_usd, _ in run]
        quote_rates = [quote_rate for _, _, quote_rate in run]
        fee_rates = [None if rate is None else ONE for rate in quote_rates]
        bounds = [0, *sorted(c for c in cuts if c < len(run)), len(run)]
        for start, stop in pairwise(bounds):
            recorded = book.record(
                columns_of(trades[start:stop]), quote_rates[start:stop], fee_rates[start:stop], figures
            )
            for day, pnl in recorded.items():
                days[day] = EXACT.add(days.get(day, Decimal(0)), pnl)
    assert exact(book, figures) == exact(reference, expected)


def test_a_zero_fee_is_worth_zero_at_its_rate() -> None:
    trade = make_trade("1", "buy", "2", "100", T0, fee="0.000")
    book, figures = FifoBook("spot"), Figures()
    with localcontext(EXACT):
        book.record(columns_of([trade]), [ONE], [ZERO_FEE_RATE], figures)
    assert repr(figures.fees_usd) == "Decimal('0')"
    assert (figures.trades, figures.volume_usd, figures.unpriced_trades) == (1, Decimal(200), 0)


def test_a_run_returns_its_pnl_by_day_of_the_closing_trade() -> None:
    day_end = (T0 // DAY_MS + 1) * DAY_MS
    run = [
        make_trade("1", "buy", "2", "100", T0),
        make_trade("2", "sell", "1", "110", day_end - 1, fee="0.5"),
        make_trade("3", "sell", "0.5", "90", day_end),
        make_trade("4", "sell", "1", "120", day_end + 1),
    ]
    book, figures = FifoBook("spot"), Figures()
    with localcontext(EXACT):
        days = book.record(columns_of(run), [ONE] * 4, [ONE] * 4, figures)
    # day 1: 1 * (110 - 100) - 0.5; day 2: 0.5 * (90 - 100), then 0.5 * (120 - 100) (the rest unmatched)
    assert days == {T0 // DAY_MS: Decimal("9.5"), T0 // DAY_MS + 1: Decimal(5)}
    assert figures.daily_pnl_usd == {}  # the caller adds them
    assert (figures.closed_trades, figures.winning_trades, figures.losing_trades) == (3, 2, 1)
    assert (figures.largest_win_usd, figures.largest_loss_usd) == (Decimal(10), Decimal(-5))
    assert (book.position, book.unmatched) == (Decimal(0), Decimal("0.5"))
