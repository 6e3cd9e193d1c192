"""Running figures per symbol and their totals (METRICS.md "Per-symbol and total figures")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from perf_aggregator.metrics.precision import CONTEXT

DAY_MS = 86_400_000
_ZERO = Decimal(0)


def utc_day(ms: int) -> int:
    """Days since 1970-01-01 of the UTC calendar day holding ``ms``."""
    return ms // DAY_MS


@dataclass(slots=True)
class SymbolFigures:
    """Accumulators of one symbol, fed trade by trade in processing order.

    The ``record_*`` methods use the current decimal context (the ledger sets
    :data:`~perf_aggregator.metrics.precision.CONTEXT`).
    """

    symbol: str
    base: str
    quote: str
    market_type: str
    trades: int = 0
    unpriced_trades: int = 0
    volume_usd: Decimal = _ZERO
    fees_usd: Decimal = _ZERO
    realized_pnl_usd: Decimal = _ZERO
    cost_basis_usd: Decimal = _ZERO
    closed_quantity: Decimal = _ZERO
    open_quantity: Decimal = _ZERO
    """Long minus short."""
    unmatched_quantity: Decimal = _ZERO
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
    """Pnl of matched pieces by the :func:`utc_day` of their closing trade."""
    period_start_ms: int | None = None
    period_end_ms: int | None = None

    def record_trade(self, timestamp: int) -> None:
        """Count a trade, priced or not."""
        self.trades += 1
        if self.period_start_ms is None or timestamp < self.period_start_ms:
            self.period_start_ms = timestamp
        if self.period_end_ms is None or timestamp > self.period_end_ms:
            self.period_end_ms = timestamp

    def record_unpriced(self) -> None:
        """Count a trade that could not be valued (it takes no other part)."""
        self.unpriced_trades += 1

    def record_valued(self, value_usd: Decimal, fee_usd: Decimal) -> None:
        """Add a priced trade's volume and fee."""
        self.volume_usd += value_usd
        self.fees_usd += fee_usd

    def record_close(
        self,
        timestamp: int,
        quantity: Decimal,
        pnl_usd: Decimal,
        cost_basis_usd: Decimal,
        holding_ms_quantity: Decimal,
    ) -> None:
        """Add one closed trade: the sums over the pieces one closing trade matched."""
        self.realized_pnl_usd += pnl_usd
        self.cost_basis_usd += cost_basis_usd
        self.closed_quantity += quantity
        self.holding_ms_quantity += holding_ms_quantity
        self.closed_trades += 1
        if pnl_usd > 0:
            self.winning_trades += 1
            self.winning_pnl_usd += pnl_usd
            if self.largest_win_usd is None or pnl_usd > self.largest_win_usd:
                self.largest_win_usd = pnl_usd
        elif pnl_usd < 0:
            self.losing_trades += 1
            self.losing_pnl_usd += pnl_usd
            if self.largest_loss_usd is None or pnl_usd < self.largest_loss_usd:
                self.largest_loss_usd = pnl_usd
        day = utc_day(timestamp)
        self.daily_pnl_usd[day] = self.daily_pnl_usd.get(day, _ZERO) + pnl_usd


@dataclass(slots=True)
class Totals:
    """The per-symbol figures summed over a session's symbols."""

    symbols_traded: int = 0
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
    daily_pnl_usd: dict[int, Decimal] = field(default_factory=dict)
    period_start_ms: int | None = None
    period_end_ms: int | None = None

    @classmethod
    def of(cls, figures: Iterable[SymbolFigures]) -> Totals:
        """Sum ``figures`` (symbols without trades are not counted as traded)."""
        totals = cls()
        with localcontext(CONTEXT):
            for f in figures:
                totals._add(f)
        return totals

    def _add(self, f: SymbolFigures) -> None:
        if f.trades:
            self.symbols_traded += 1
        self.trades += f.trades
        self.unpriced_trades += f.unpriced_trades
        self.volume_usd += f.volume_usd
        self.fees_usd += f.fees_usd
        self.realized_pnl_usd += f.realized_pnl_usd
        self.cost_basis_usd += f.cost_basis_usd
        self.closed_quantity += f.closed_quantity
        self.closed_trades += f.closed_trades
        self.winning_trades += f.winning_trades
        self.losing_trades += f.losing_trades
        self.winning_pnl_usd += f.winning_pnl_usd
        self.losing_pnl_usd += f.losing_pnl_usd
        self.holding_ms_quantity += f.holding_ms_quantity
        if f.largest_win_usd is not None and (
            self.largest_win_usd is None or f.largest_win_usd > self.largest_win_usd
        ):
            self.largest_win_usd = f.largest_win_usd
        if f.largest_loss_usd is not None and (
            self.largest_loss_usd is None or f.largest_loss_usd < self.largest_loss_usd
        ):
            self.largest_loss_usd = f.largest_loss_usd
        for day, pnl in f.daily_pnl_usd.items():
            self.daily_pnl_usd[day] = self.daily_pnl_usd.get(day, _ZERO) + pnl
        if f.period_start_ms is not None and (
            self.period_start_ms is None or f.period_start_ms < self.period_start_ms
        ):
            self.period_start_ms = f.period_start_ms
        if f.period_end_ms is not None and (
            self.period_end_ms is None or f.period_end_ms > self.period_end_ms
        ):
            self.period_end_ms = f.period_end_ms
