"""The decimal context of all ledger and metrics arithmetic (METRICS.md "Trades")."""

from __future__ import annotations

from decimal import MAX_PREC, ROUND_HALF_EVEN, Context, DivisionByZero, Inexact, InvalidOperation, Overflow

CONTEXT = Context(prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])
"""60 significant digits: sums and products of exchange decimals stay exact in practice,
and divisions (fee shares, means) keep far more than the 28 digits METRICS.md asks for."""

EXACT = Context(
    prec=MAX_PREC, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact]
)
"""Exact sums and products (``Inexact`` traps: a result that would need rounding raises)."""
