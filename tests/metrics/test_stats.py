import math
from decimal import Decimal

import pytest

from perf_aggregator.metrics.stats import (
    daily_series,
    daily_volatility,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
)


def series(*values: str) -> list[Decimal]:
    return [Decimal(v) for v in values]


def test_daily_series_fills_days_without_closes_with_zero() -> None:
    assert daily_series({20_458: Decimal(10), 20_460: Decimal(-5)}, 20_458, 20_461) == series(
        "10", "0", "-5", "0"
    )
    assert daily_series({}, 20_458, 20_458) == series("0")
    assert daily_series({20_458: Decimal(1)}, 20_458, 20_457) == []


def test_max_drawdown_from_a_running_peak_starting_at_zero() -> None:
    # cumulative 5, -3, -1, 5, 2: peak 5 then -3 -> 8
    assert max_drawdown(series("5", "-8", "2", "6", "-3")) == Decimal(8)
    # cumulative -4, -3: below the initial peak 0 by 4
    assert max_drawdown(series("-4", "1")) == Decimal(4)
    assert max_drawdown(series("1", "2")) == 0
    assert max_drawdown([]) == 0


def test_sharpe_sortino_and_volatility_of_a_small_series() -> None:
    days = series("3", "-1", "3", "-1", "1")
    # mean 5 / 5 = 1; deviations 2, -2, 2, -2, 0; sample variance 16 / 4 = 4; std 2
    assert daily_volatility(days) == Decimal(2)
    assert sharpe_ratio(days) == pytest.approx(0.5 * math.sqrt(365), rel=1e-15)  # 1 / 2 * sqrt 365
    # downside: mean of (0, 1, 0, 1, 0) = 0.4; 1 / sqrt(0.4) * sqrt(365) = sqrt(912.5)
    assert sortino_ratio(days) == pytest.approx(math.sqrt(912.5), rel=1e-15)


def test_undefined_statistics_are_none() -> None:
    assert sharpe_ratio(series("5")) is None  # fewer than 2 days
    assert sharpe_ratio(series("2", "2", "2")) is None  # zero std
    assert daily_volatility(series("2", "2", "2")) == 0
    assert daily_volatility(series("5")) is None
    assert daily_volatility([]) is None
    assert sortino_ratio(series("1", "0", "2")) is None  # no negative day
    assert sortino_ratio([]) is None
    assert sharpe_ratio([]) is None


def test_sortino_with_a_single_negative_day() -> None:
    # -3 / sqrt(9) * sqrt(365)
    assert sortino_ratio(series("-3")) == pytest.approx(-math.sqrt(365), rel=1e-15)


def test_volatility_is_decimal_beyond_float_precision() -> None:
    # values 0.1 and 0.3 are exact in decimal: mean 0.2, variance (0.01 + 0.01) / 1 = 0.02
    vol = daily_volatility(series("0.1", "0.3"))
    assert vol is not None
    assert str(vol)[:30] == "0.1414213562373095048801688724"  # sqrt(0.02)
