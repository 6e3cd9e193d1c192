"""The decimal contexts of the ledger and metrics arithmetic (METRICS.md "Trades": exact sums and
products, at least 28 significant digits for divisions)."""

from __future__ import annotations

from decimal import MAX_PREC, ROUND_HALF_EVEN, Context, DivisionByZero, Inexact, InvalidOperation, Overflow

CONTEXT = Context(prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])
"""Divisions (fee shares, means, deviations) and square roots: 60 significant digits, far more than
the 28 METRICS.md asks for."""

EXACT = Context(
    prec=MAX_PREC, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact]
)
"""Sums and products, which the ledger runs in: exact however many digits they need (``Inexact``
traps: a result that would need rounding raises). Never a division or square root here: one
that does not end would need unbounded memory; they name ``CONTEXT``. The digits a sum needs
are bounded by the inputs' (``ledger.trades.check_values`` bounds the decimals of fees)."""
