"""The running-sum statistics of ``DailyPnl`` against the plain series computation of ``stats``."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perf_aggregator.metrics.daily import DailyPnl, DailyStats
from perf_aggregator.metrics.precision import CONTEXT, EXACT
from perf_aggregator.metrics.stats import (
    daily_series,
    daily_volatility,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
)

FIRST = 20_458  # 2026-01-05
PNL = st.decimals(min_value=-(10**6), max_value=10**6, places=4, allow_nan=False, allow_infinity=False)
CHANGES = st.lists(st.tuples(st.integers(0, 20), PNL, st.booleans()), max_size=40)
"""``(day offset, pnl, subtract)``: pnl added to (or taken off) a day."""


def explicit(values: dict[int, Decimal], first: int, last: int) -> DailyStats:
    """The statistics computed from the whole series, as ``stats`` does."""
    series = daily_series(values, first, last)
    return DailyStats(
        len(series),
        max_drawdown(series),
        daily_volatility(series),
        sharpe_ratio(series),
        sortino_ratio(series),
    )


def assert_same(got: DailyStats, want: DailyStats) -> None:
    """Equal, but for the last of 60 digits (the two compute the variance in different ways)."""
    assert (got.days, got.max_drawdown) == (want.days, want.max_drawdown)
    if want.volatility is None:
        assert got.volatility is None
    else:
        assert got.volatility is not None
        assert abs(got.volatility - want.volatility) <= want.volatility.scaleb(-50)
    for ours, theirs in ((got.sharpe, want.sharpe), (got.sortino, want.sortino)):
        assert (ours is None) == (theirs is None)
        if theirs is not None:
            assert ours == pytest.approx(theirs, rel=1e-14)


def apply(
    daily: DailyPnl, values: dict[int, Decimal], changes: list[tuple[int, Decimal, bool]]
) -> dict[int, Decimal]:
    """Apply ``changes`` to ``daily``; ``values`` with the same changes, days at 0 left out."""
    values = dict(values)
    for offset, pnl, subtract in changes:
        day = FIRST + offset
        if subtract:
            daily.subtract(day, pnl)
            values[day] = values.get(day, Decimal(0)) - pnl
        else:
            daily.add(day, pnl)
            values[day] = values.get(day, Decimal(0)) + pnl
    return {day: v for day, v in values.items() if v}


@settings(max_examples=200, deadline=None)
@given(changes=CHANGES, more=CHANGES, extra_days=st.integers(0, 10))
def test_running_sums_give_the_series_statistics_before_and_after_more_changes(
    changes: list[tuple[int, Decimal, bool]], more: list[tuple[int, Decimal, bool]], extra_days: int
) -> None:
    daily = DailyPnl()
    last = FIRST + 20 + extra_days
    values = apply(daily, {}, changes)
    assert daily.values() == values
    assert_same(daily.stats(FIRST, last), explicit(values, FIRST, last))
    # After a read, changes to earlier and later days: what the read cached must follow them.
    values = apply(daily, values, more)
    assert daily.values() == values
    assert_same(daily.stats(FIRST, last), explicit(values, FIRST, last))
    assert_same(DailyPnl(values).stats(FIRST, last), daily.stats(FIRST, last))


def test_a_worked_series() -> None:
    daily = DailyPnl(
        {FIRST: Decimal(3), FIRST + 1: Decimal(-1), FIRST + 2: Decimal(3), FIRST + 3: Decimal(-1)}
    )
    stats = daily.stats(FIRST, FIRST + 4)
    # [3, -1, 3, -1, 0]: mean 0.8, sample variance (4.84 + 3.24 + 4.84 + 3.24 + 0.64) / 4 = 4.2
    assert stats.days == 5
    assert stats.volatility == CONTEXT.sqrt(Decimal("4.2"))
    assert stats.sharpe == pytest.approx(0.8 / math.sqrt(4.2) * math.sqrt(365), rel=1e-15)
    # downside mean (1 + 1) / 5 = 0.4
    assert stats.sortino == pytest.approx(0.8 / math.sqrt(0.4) * math.sqrt(365), rel=1e-15)
    assert stats.max_drawdown == 1  # cumulative 3, 2, 5, 4
    daily.add(FIRST + 4, Decimal(-6))  # the last day now loses 6: cumulative 5 -> -2
    assert daily.stats(FIRST, FIRST + 4).max_drawdown == 7
    daily.subtract(FIRST, Decimal(10))  # an earlier day changes: cumulative -7, -8, -5, -6, -12
    assert daily.stats(FIRST, FIRST + 4).max_drawdown == 12


def test_the_drawdown_follows_the_last_days_coming_back_to_zero() -> None:
    daily = DailyPnl({FIRST: Decimal(-1), FIRST + 1: Decimal(-1), FIRST + 2: Decimal(-1)})
    assert daily.stats(FIRST, FIRST + 3).max_drawdown == 3  # cumulative -1, -2, -3, -3
    daily.add(FIRST + 2, Decimal(1))  # the last day with closes comes back to 0
    assert daily.stats(FIRST, FIRST + 3).max_drawdown == 2
    daily.add(FIRST + 1, Decimal(1))  # and the one before it
    assert daily.stats(FIRST, FIRST + 3).max_drawdown == 1
    daily.add(FIRST + 3, Decimal(-5))  # a later day
    assert daily.stats(FIRST, FIRST + 3).max_drawdown == 6


def test_equal_days_have_exactly_zero_deviation() -> None:
    # A third has no finite decimal: summed in a rounding context, n * sum(d^2) - sum(d)^2
    # could come out a hair above 0 and give a huge Sharpe ratio instead of none.
    third = Decimal(1) / Decimal(3)
    daily = DailyPnl()
    for day in range(FIRST, FIRST + 7):
        daily.add(day, third)
    stats = daily.stats(FIRST, FIRST + 6)
    assert stats.volatility == 0
    assert stats.sharpe is None and stats.sortino is None


def test_a_day_summed_in_any_order_is_exact() -> None:
    pieces = [Decimal("0.1") ** 40, Decimal(10) ** 30, Decimal(-1) / 7, -(Decimal(10) ** 30)]
    forward, backward = DailyPnl(), DailyPnl()
    for pnl in pieces:
        forward.add(FIRST, pnl)
    for pnl in reversed(pieces):
        backward.add(FIRST, pnl)
    assert forward.values() == backward.values() == {FIRST: EXACT.add(pieces[0], pieces[2])}
    for pnl in pieces:
        forward.subtract(FIRST, pnl)
    assert forward.values() == {}
    assert forward.stats(FIRST, FIRST + 1) == DailyStats(2, Decimal(0), Decimal(0), None, None)


def test_days_outside_the_range_fall_back_to_the_series() -> None:
    daily = DailyPnl({FIRST: Decimal(5), FIRST + 3: Decimal(-8)})
    # as_of before the last close: only [5, 0] counts
    assert daily.stats(FIRST, FIRST + 1) == explicit({FIRST: Decimal(5)}, FIRST, FIRST + 1)
    assert daily.stats(FIRST, FIRST + 1).max_drawdown == 0
    assert daily.stats(FIRST, FIRST + 3).max_drawdown == 8
    assert daily.stats(FIRST, FIRST - 1) == DailyStats(0, Decimal(0), None, None, None)
