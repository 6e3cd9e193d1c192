"""The daily pnl series kept with running sums, so that its statistics cost the same at any size.

Days with closes are summed exactly (:data:`EXACT` never rounds), so a day's value does not
depend on the order its closes were added or removed in, and neither do the running sums
(sum, sum of squares, sum of squared losing days) the statistics are read from. Days without
closes are 0 and add nothing to the sums; the statistics still count them (METRICS.md
"Summary figures").
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from perf_aggregator.metrics.precision import CONTEXT, EXACT
from perf_aggregator.metrics.stats import (
    daily_series,
    daily_volatility,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
)

_ZERO = Decimal(0)
_SQRT_DAYS_PER_YEAR = math.sqrt(365)
_add, _subtract, _multiply = EXACT.add, EXACT.subtract, EXACT.multiply


@dataclass(frozen=True, slots=True)
class DailyStats:
    """Statistics of the daily pnl series from a first day to an ``as_of`` day (METRICS.md)."""

    days: int
    max_drawdown: Decimal
    volatility: Decimal | None
    sharpe: float | None
    sortino: float | None


class DailyPnl:
    """Pnl by UTC day (:func:`~perf_aggregator.metrics.figures.utc_day` numbers), summed exactly.

    Changes are cheap (a dictionary update); the running sums catch up with the days changed
    since the previous :meth:`stats`, and the drawdown is recomputed only when a day before
    the last one with closes changed.
    """

    __slots__ = ("_changed", "_days", "_downside", "_prefix", "_squares", "_sum", "_values")

    def __init__(self, values: Mapping[int, Decimal] | None = None) -> None:
        self._values: dict[int, Decimal] = {}
        self._days: list[int] = []
        """Days with a non-zero value, ascending."""
        self._changed: dict[int, Decimal] = {}
        """Days changed since the running sums were brought up to date: their value then."""
        self._sum = self._squares = self._downside = _ZERO
        self._prefix: tuple[int, Decimal, Decimal, Decimal] | None = None
        """``(day, cumulative, peak, drawdown)`` over the days before ``day`` (the last day with
        closes when the sums were last brought up to date), or ``None`` when it must be rebuilt."""
        for day, pnl in (values or {}).items():
            self.add(day, pnl)

    def add(self, day: int, pnl: Decimal) -> None:
        """Add ``pnl`` to ``day``."""
        values = self._values
        old = values.get(day)
        if old is not None and day in self._changed:  # the usual case, one dictionary write
            new = _add(old, pnl)
            if new:
                values[day] = new
                return
        self._set(day, _add(_ZERO if old is None else old, pnl))

    def subtract(self, day: int, pnl: Decimal) -> None:
        """Take ``pnl`` (added before) off ``day``."""
        self._set(day, _subtract(self._values.get(day, _ZERO), pnl))

    def values(self) -> dict[int, Decimal]:
        """The non-zero days and their pnl (a copy)."""
        return dict(self._values)

    def stats(self, first_day: int, last_day: int) -> DailyStats:
        """Statistics of the series from ``first_day`` to ``last_day`` inclusive (none when empty)."""
        n = last_day - first_day + 1
        if n <= 0:
            return DailyStats(0, _ZERO, None, None, None)
        days = self._days
        if days and (days[0] < first_day or days[-1] > last_day):
            return _explicit(daily_series(self._values, first_day, last_day))
        self._catch_up()
        total, mean = self._sum, CONTEXT.divide(self._sum, n)
        volatility = sharpe = sortino = None
        if n >= 2:
            # n * sum(d^2) - sum(d)^2 = n (n - 1) * sample variance, exactly: zero only when it is.
            spread = _subtract(_multiply(n, self._squares), _multiply(total, total))
            volatility = CONTEXT.sqrt(CONTEXT.divide(spread, n * (n - 1)))
            if volatility:
                sharpe = float(CONTEXT.divide(mean, volatility)) * _SQRT_DAYS_PER_YEAR
        if self._downside:
            deviation = CONTEXT.sqrt(CONTEXT.divide(self._downside, n))
            sortino = float(CONTEXT.divide(mean, deviation)) * _SQRT_DAYS_PER_YEAR
        return DailyStats(n, self._drawdown(), volatility, sharpe, sortino)

    def _set(self, day: int, value: Decimal) -> None:
        values = self._values
        old = values.get(day)
        if day not in self._changed:
            self._changed[day] = _ZERO if old is None else old
        if value:
            values[day] = value
            if old is None:
                insort(self._days, day)
        elif old is not None:
            del values[day]
            del self._days[bisect_left(self._days, day)]

    def _catch_up(self) -> None:
        """Bring the running sums up to date with the days changed since the last call."""
        changed = self._changed
        if not changed:
            return
        total, squares, downside = self._sum, self._squares, self._downside
        for day, old in changed.items():
            new = self._values.get(day, _ZERO)
            total = _add(total, _subtract(new, old))
            squares = _add(squares, _subtract(_multiply(new, new), _multiply(old, old)))
            if old < 0:
                downside = _subtract(downside, _multiply(old, old))
            if new < 0:
                downside = _add(downside, _multiply(new, new))
        self._sum, self._squares, self._downside = total, squares, downside
        prefix = self._prefix
        if prefix is not None and min(changed) < prefix[0]:
            self._prefix = None
        changed.clear()

    def _drawdown(self) -> Decimal:
        """Largest drop below the running peak of the cumulative series (days with closes only:
        the days between them add 0 and change neither the peak nor the drop)."""
        days, values = self._days, self._values
        if not days:
            return _ZERO
        last = days[-1]
        prefix = self._prefix
        if prefix is None or prefix[0] > last:  # (also when the last days came back to 0: it holds them)
            prefix = (days[0], _ZERO, _ZERO, _ZERO)
        start, cumulative, peak, drawdown = prefix
        # Fold the days from the previous last day up to (excluding) the current one.
        for day in days[bisect_left(days, start) : -1]:
            cumulative = _add(cumulative, values[day])
            peak = max(peak, cumulative)
            drawdown = max(drawdown, _subtract(peak, cumulative))
        self._prefix = (last, cumulative, peak, drawdown)
        cumulative = _add(cumulative, values[last])
        return max(drawdown, _subtract(max(peak, cumulative), cumulative))


def _explicit(series: Iterable[Decimal]) -> DailyStats:
    """The statistics computed from the whole series (for an ``as_of`` before some closes)."""
    days = list(series)
    return DailyStats(
        len(days), max_drawdown(days), daily_volatility(days), sharpe_ratio(days), sortino_ratio(days)
    )
