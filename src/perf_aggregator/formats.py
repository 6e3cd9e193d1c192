"""Wire formats shared by every component: RFC 3339 times and decimal strings (API.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

_USD_QUANTUM = Decimal("1E-8")
_WIDE = Context(
    prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation]
)
"""Formatting rounds nothing but what it says (USD to 8 places), whatever the caller's context."""


def rfc3339_ms(ms: int) -> str:
    """Format epoch milliseconds as ``2026-01-31T12:00:00.123Z``."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_rfc3339(text: str) -> int:
    """Parse an RFC 3339 time with an explicit offset into epoch milliseconds.

    Raises ``ValueError`` for anything else (naive times included).
    """
    dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError("time has no UTC offset")
    return round(dt.timestamp() * 1000)


def plain(value: Decimal) -> str:
    """Exact decimal in plain notation, trailing zeros dropped, never ``-0``."""
    if value == 0:
        return "0"
    return format(value.normalize(_WIDE), "f")


def usd(value: Decimal) -> str:
    """USD amount rounded half-even to 8 places, in plain notation."""
    return plain(value.quantize(_USD_QUANTUM, context=_WIDE))
