"""Running figures per symbol and their totals (METRICS.md "Per-symbol and total figures")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import TypeVar

from perf_aggregator.metrics.precision import EXACT

DAY_MS = 86_400_000
_ZERO = Decimal(0)
_exact_add = EXACT.add
_N = TypeVar("_N", int, Decimal)


def utc_day(ms: int) -> int:
    """Days since 1970-01-01 of the UTC calendar day holding ``ms``."""
    return ms // DAY_MS


@dataclass(slots=True, kw_only=True)
class Figures:
    """Accumulators that add up across symbols, fed by the ledger in processing order."""

    trades: int = 0
    unpriced_trades: int = 0
    volume_usd: Decimal = _ZERO
    fees_usd: Decimal = _ZERO
    realized_pnl_usd: Decimal = _ZERO
    cost_basis_usd: Decimal = _ZERO
    closed_quantity: Decimal = _ZERO
    closed_trades: int = 0
    winning_trades: int = 0
    losing_trades: int = 0
    winning_pnl_usd: Decimal = _ZERO
    losing_pnl_usd: Decimal = _ZERO
    largest_win_usd: Decimal | None = None
    largest_loss_usd: Decimal | None = None
    holding_ms_quantity: Decimal = _ZERO
    """Sum of ``q * (c.t - o.t)`` over matched pieces (weights sum to ``closed_quantity``)."""
    daily_pnl_usd: dict[int, Decimal] = field(default_factory=dict)
    """Pnl of matched pieces by the :func:`utc_day` of their closing trade, summed exactly
    (:data:`~perf_aggregator.metrics.daily.EXACT`: the same whatever the order of the sums)."""
    period_start_ms: int | None = None
    period_end_ms: int | None = None

    def merge(self, other: Figures, *, daily: bool = True) -> None:
        """Add ``other``'s accumulators to these (``daily_pnl_usd`` only with ``daily``)."""
        self.trades += other.trades
        self.unpriced_trades += other.unpriced_trades
        self.volume_usd += other.volume_usd
        self.fees_usd += other.fees_usd
        self.realized_pnl_usd += other.realized_pnl_usd
        self.cost_basis_usd += other.cost_basis_usd
        self.closed_quantity += other.closed_quantity
        self.closed_trades += other.closed_trades
        self.winning_trades += other.winning_trades
        self.losing_trades += other.losing_trades
        self.winning_pnl_usd += other.winning_pnl_usd
        self.losing_pnl_usd += other.losing_pnl_usd
        self.holding_ms_quantity += other.holding_ms_quantity
        self.largest_win_usd = _latest(self.largest_win_usd, other.largest_win_usd)
        self.largest_loss_usd = _earliest(self.largest_loss_usd, other.largest_loss_usd)
        if daily:
            own = self.daily_pnl_usd
            for day, pnl in other.daily_pnl_usd.items():
                own[day] = _exact_add(own.get(day, _ZERO), pnl)
        self.period_start_ms = _earliest(self.period_start_ms, other.period_start_ms)
        self.period_end_ms = _latest(self.period_end_ms, other.period_end_ms)


@dataclass(slots=True)
class SymbolFigures(Figures):
    """One symbol's figures, with its positions (which do not add up across symbols)."""

    symbol: str
    base: str
    quote: str
    market_type: str
    open_quantity: Decimal = _ZERO
    """Long minus short."""
    unmatched_quantity: Decimal = _ZERO


@dataclass(slots=True, kw_only=True)
class Totals(Figures):
    """The per-symbol figures summed over a session's symbols."""

    symbols_traded: int = 0

    @classmethod
    def of(cls, figures: Iterable[SymbolFigures], *, daily: bool = True) -> Totals:
        """Sum ``figures`` (symbols without trades are not counted as traded); ``daily=False``
        leaves ``daily_pnl_usd`` empty, for callers that keep the session's days themselves."""
        totals = cls()
        with localcontext(EXACT):
            for f in figures:
                totals.merge(f, daily=daily)
                totals.symbols_traded += 1 if f.trades else 0
        return totals


def _earliest(a: _N | None, b: _N | None) -> _N | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: _N | None, b: _N | None) -> _N | None:
    return b if a is None else a if b is None else max(a, b)
