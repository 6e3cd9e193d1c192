"""Sharpe, Sortino, volatility and drawdown of daily pnl series cross-checked against empyrical.

METRICS.md says its dollar Sharpe and Sortino ratios equal empyrical's when the daily pnl series
is handed to it as returns with ``annualization=365``; they do (``sortino_ratio`` with
``required_return=0``: empyrical's downside risk is ``sqrt(mean(min(r, 0)^2))`` over *all* days,
as in METRICS.md, not the standard deviation of the losing days). The daily volatility is
empyrical's ``annual_volatility`` with ``annualization=1`` (``std`` with ddof = 1).

Where METRICS.md says ``null``, empyrical gives a non-finite number or NaN instead: Sharpe with
zero spread (``±inf``/NaN), Sortino without a losing day (``inf``, or NaN when the mean is 0 too),
and every ratio of a single day (NaN), including Sortino, which METRICS.md defines for one losing
day. Those cases are checked as such below.

Drawdown does not map directly: empyrical's ``max_drawdown`` is relative, ``min((W - P) / P)``
over the compounded wealth ``W = 100 * prod(1 + r)`` and its running peak ``P`` (the start, 100,
included), while METRICS.md's is the largest dollar drop of the *summed* pnl ``C`` below its
running peak starting at 0. Handing empyrical the returns ``r_i = exp(d_i / s) - 1`` (any scale
``s > 0``) makes the wealth ``100 * exp(C_i / s)`` exactly in real arithmetic, so
``(W - P) / P = exp(-(peak(C) - C) / s) - 1``: a strictly decreasing function of the dollar drop,
whose minimum therefore maps back to the largest drop, ``-s * log1p(max_drawdown(r))``.
"""

from __future__ import annotations

import math
from decimal import Decimal

import empyrical
import numpy as np
import pytest
from numpy.typing import NDArray

from perf_aggregator.metrics.documents import summary_figures
from perf_aggregator.metrics.figures import DAY_MS, SymbolFigures
from perf_aggregator.metrics.stats import daily_volatility, max_drawdown, sharpe_ratio, sortino_ratio

RATIO = 1e-9
"""Relative agreement asked of float ratios: empyrical sums doubles, the service decimals."""

FIRST_DAY = 20_458  # 2026-01-05


def _micro_dollars(seed: int, shape: str) -> NDArray[np.int64]:
    """Daily pnl in millionths of a dollar (exact as decimals, and as doubles below 2**53)."""
    rng = np.random.default_rng(seed)
    if shape == "long":
        values = rng.normal(5, 100, 1000)
    elif shape == "all_positive":
        values = np.abs(rng.normal(0, 300, 90)) + 0.01
    elif shape == "all_negative":
        values = -np.abs(rng.normal(0, 300, 90)) - 0.01
    elif shape == "zero_days":
        values = rng.normal(20, 500, 120) * (rng.random(120) < 0.4)  # about 60% of days without closes
    elif shape == "fat_tails":
        values = rng.standard_t(2, 250) * 1000
    elif shape == "tiny":
        values = rng.normal(0, 1e-4, 30)  # cents and less: 8-place USD rounding matters here
    else:
        values = rng.normal(50, 400, 60)  # "mixed"
    return np.round(values * 1_000_000).astype(np.int64)


SHAPES = ["mixed", "all_positive", "all_negative", "zero_days", "long", "fat_tails", "tiny"]
CASES = [(shape, seed) for shape in SHAPES for seed in (1, 2, 3)]


def _series(shape: str, seed: int) -> tuple[list[Decimal], NDArray[np.float64]]:
    micros = _micro_dollars(seed, shape)
    decimals = [Decimal(int(m)).scaleb(-6) for m in micros]
    return decimals, micros / 1e6  # the double nearest each decimal (both operands exact)


def _empyrical_dollar_drawdown(floats: NDArray[np.float64]) -> float:
    """METRICS.md's drawdown obtained from empyrical's relative one (see the module docstring)."""
    cumulative = np.cumsum(floats)
    scale = max(1e-12, float(np.max(np.abs(cumulative))) / 4)  # keeps exp(C / s) within e^-8 .. e^8
    relative = empyrical.max_drawdown(np.expm1(floats / scale))
    return -scale * math.log1p(relative)


@pytest.mark.parametrize(("shape", "seed"), CASES)
def test_sharpe_sortino_volatility_match_empyrical(shape: str, seed: int) -> None:
    decimals, floats = _series(shape, seed)
    ours_volatility = daily_volatility(decimals)
    assert ours_volatility is not None
    assert float(ours_volatility) == pytest.approx(
        empyrical.annual_volatility(floats, annualization=1), rel=RATIO
    )
    assert sharpe_ratio(decimals) == pytest.approx(
        empyrical.sharpe_ratio(floats, annualization=365), rel=RATIO
    )
    theirs = empyrical.sortino_ratio(floats, required_return=0, annualization=365)
    if shape == "all_positive":
        assert sortino_ratio(decimals) is None  # METRICS.md: null when no day is negative ...
        assert theirs == math.inf  # ... where empyrical divides by a zero downside risk
    else:
        assert sortino_ratio(decimals) == pytest.approx(theirs, rel=RATIO)


@pytest.mark.parametrize(("shape", "seed"), CASES)
def test_max_drawdown_matches_empyrical_through_exponential_wealth(shape: str, seed: int) -> None:
    decimals, floats = _series(shape, seed)
    ours = float(max_drawdown(decimals))
    theirs = _empyrical_dollar_drawdown(floats)
    scale = float(np.max(np.abs(np.cumsum(floats))))
    assert ours == pytest.approx(theirs, rel=RATIO, abs=RATIO * scale)
    if shape == "all_positive":
        assert ours == 0
    if shape == "all_negative":
        assert ours == pytest.approx(-float(np.sum(floats)), rel=RATIO)  # from the initial peak 0


def test_the_exponential_mapping_is_needed_for_drawdown() -> None:
    # [+1, -0.5, -0.5]: a dollar drop of 1 from the peak 1. As returns, empyrical compounds
    # 100 -> 200 -> 100 -> 50 and reports -75 % of the peak: not the dollar figure, nor its sign.
    floats = np.array([1.0, -0.5, -0.5])
    assert max_drawdown([Decimal(1), Decimal("-0.5"), Decimal("-0.5")]) == 1
    assert _empyrical_dollar_drawdown(floats) == pytest.approx(1, rel=1e-12)
    assert empyrical.max_drawdown(floats) == pytest.approx(-0.75, rel=1e-12)


@pytest.mark.parametrize(("shape", "seed"), [(shape, 7) for shape in SHAPES])
def test_published_summary_matches_empyrical(shape: str, seed: int) -> None:
    """The same cross-check through the signed summary's figures (the path the service uses)."""
    decimals, floats = _series(shape, seed)
    days = len(decimals)
    figures = SymbolFigures(
        "BTC/USDT",
        "BTC",
        "USDT",
        "spot",
        trades=1,
        daily_pnl_usd={FIRST_DAY + i: d for i, d in enumerate(decimals) if d or i % 2},  # some 0 days kept
        period_start_ms=FIRST_DAY * DAY_MS + 1,
        period_end_ms=FIRST_DAY * DAY_MS + 1,
    )
    summary = summary_figures([figures], (FIRST_DAY + days - 1) * DAY_MS + 12 * 3_600_000)
    assert summary["trading_days"] == days
    volatility = empyrical.annual_volatility(floats, annualization=1)
    # USD figures are rendered rounded to 8 places: within 5e-9 of the exact value
    assert float(str(summary["daily_pnl_volatility_usd"])) == pytest.approx(volatility, rel=RATIO, abs=5e-9)
    drawdown = _empyrical_dollar_drawdown(floats)
    assert float(str(summary["max_drawdown_usd"])) == pytest.approx(
        drawdown, rel=RATIO, abs=5e-9 + RATIO * float(np.max(np.abs(np.cumsum(floats))))
    )
    assert summary["sharpe_ratio"] == pytest.approx(
        empyrical.sharpe_ratio(floats, annualization=365), rel=RATIO
    )
    sortino = empyrical.sortino_ratio(floats, required_return=0, annualization=365)
    assert summary["sortino_ratio"] == (
        None if shape == "all_positive" else pytest.approx(sortino, rel=RATIO)
    )


def test_where_metrics_says_null_empyrical_is_not_finite() -> None:
    flat = [Decimal(25)] * 5  # zero spread
    assert sharpe_ratio(flat) is None
    assert math.isinf(empyrical.sharpe_ratio(np.full(5, 25.0), annualization=365))
    gains_and_zeros = [Decimal(0), Decimal(3), Decimal(0)]  # no losing day
    assert sortino_ratio(gains_and_zeros) is None
    assert empyrical.sortino_ratio(np.array([0.0, 3.0, 0.0]), annualization=365) == math.inf
    zeros = [Decimal(0)] * 4
    assert (sharpe_ratio(zeros), sortino_ratio(zeros)) == (None, None)
    assert math.isnan(empyrical.sharpe_ratio(np.zeros(4), annualization=365))
    assert math.isnan(empyrical.sortino_ratio(np.zeros(4), annualization=365))


def test_single_day_sortino_is_defined_by_metrics_but_not_by_empyrical() -> None:
    # METRICS.md: -3 / sqrt(mean([(-3)^2])) * sqrt 365 = -sqrt 365; empyrical needs 2 days.
    assert sortino_ratio([Decimal(-3)]) == pytest.approx(-math.sqrt(365), rel=1e-15)
    assert math.isnan(empyrical.sortino_ratio(np.array([-3.0]), annualization=365))
    assert sharpe_ratio([Decimal(-3)]) is None
    assert math.isnan(empyrical.sharpe_ratio(np.array([-3.0]), annualization=365))
    assert daily_volatility([Decimal(-3)]) is None
    assert math.isnan(empyrical.annual_volatility(np.array([-3.0]), annualization=1))
