"""Statistics of the daily pnl series (METRICS.md "Summary figures").

The drawdown is summed exactly (:data:`EXACT`); means, deviations and ratios carry the 60 digits
of :data:`CONTEXT`, and ratios become floats only for the final annualization.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal, localcontext

from perf_aggregator.metrics.precision import CONTEXT, EXACT

_ZERO = Decimal(0)
# Annualized as empyrical and numpy-based clients do: the daily ratio as a double, times sqrt(365).
_SQRT_DAYS_PER_YEAR = math.sqrt(365)


def daily_series(daily_pnl: Mapping[int, Decimal], first_day: int, last_day: int) -> list[Decimal]:
    """Pnl of each day from ``first_day`` to ``last_day`` inclusive, 0 on days without closes.

    Days are :func:`~perf_aggregator.metrics.figures.utc_day` numbers; empty when
    ``last_day < first_day``.
    """
    return [daily_pnl.get(day, _ZERO) for day in range(first_day, last_day + 1)]


def max_drawdown(series: Sequence[Decimal]) -> Decimal:
    """Largest drop of the cumulative series below its running peak (which starts at 0)."""
    with localcontext(EXACT):
        cumulative = peak = drawdown = _ZERO
        for pnl in series:
            cumulative += pnl
            peak = max(peak, cumulative)
            drawdown = max(drawdown, peak - cumulative)
        return drawdown


def daily_volatility(series: Sequence[Decimal]) -> Decimal | None:
    """Sample standard deviation (ddof = 1); ``None`` with fewer than 2 days."""
    with localcontext(CONTEXT):
        return _sample_std(series)


def sharpe_ratio(series: Sequence[Decimal]) -> float | None:
    """``mean / std * sqrt(365)``, sample std; ``None`` with fewer than 2 days or zero std."""
    with localcontext(CONTEXT):
        std = _sample_std(series)
        if not std:
            return None
        return float(_mean(series) / std) * _SQRT_DAYS_PER_YEAR


def sortino_ratio(series: Sequence[Decimal]) -> float | None:
    """``mean / sqrt(mean(min(d, 0)^2)) * sqrt(365)``; ``None`` when no day is negative."""
    with localcontext(CONTEXT):
        downside = sum((d * d for d in series if d < 0), _ZERO)
        if not downside:
            return None
        deviation = (downside / len(series)).sqrt()
        return float(_mean(series) / deviation) * _SQRT_DAYS_PER_YEAR


def _mean(series: Sequence[Decimal]) -> Decimal:
    return sum(series, _ZERO) / len(series)


def _sample_std(series: Sequence[Decimal]) -> Decimal | None:
    if len(series) < 2:
        return None
    mean = _mean(series)
    return (sum(((d - mean) ** 2 for d in series), _ZERO) / (len(series) - 1)).sqrt()
