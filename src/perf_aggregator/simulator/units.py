"""Exact amounts as integers of 1e-8, the resolution of Binance's 8-decimal strings.

Prices, quantities and fees are kept as integer "units" so that every amount the
simulator serves is exact and formats exactly like Binance (``"0.00100000"``).
"""

from __future__ import annotations

from decimal import Decimal

SCALE = 10**8
"""Units per whole coin."""


def fmt8(units: int) -> str:
    """Binance's wire form of an amount: ``fmt8(150_000_000) == "1.50000000"``."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), SCALE)
    return f"{sign}{whole}.{frac:08d}"


def to_units(amount: str | Decimal) -> int:
    """Units of a decimal amount with at most 8 decimals; raises ``ValueError`` otherwise."""
    scaled = Decimal(amount) * SCALE
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than 8 decimals")
    return int(scaled)


def div_round(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, for non-negative integers."""
    return (2 * numerator + denominator) // (2 * denominator)
