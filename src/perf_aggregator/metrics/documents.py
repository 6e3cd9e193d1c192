"""The API.md JSON shapes of the figures: ``symbols``, ``totals`` and the summary figures.

USD amounts are decimal strings rounded half-even to 8 places, quantities exact decimal
strings, ratios unrounded floats, undefined values ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, localcontext

from perf_aggregator.formats import plain, rfc3339_ms, usd
from perf_aggregator.metrics.daily import DailyPnl
from perf_aggregator.metrics.figures import SymbolFigures, Totals, utc_day
from perf_aggregator.metrics.precision import CONTEXT

Json = str | int | float | None
Document = dict[str, Json]


def symbol_documents(figures: Iterable[SymbolFigures]) -> list[Document]:
    """One ``symbols`` item per symbol with at least one trade, ordered by symbol."""
    with localcontext(CONTEXT):
        return [_symbol_document(f) for f in sorted(figures, key=lambda f: f.symbol) if f.trades]


def totals_document(figures: Iterable[SymbolFigures]) -> Document:
    """The ``totals`` object of the metrics document."""
    return totals_of(Totals.of(figures, daily=False))


def totals_of(t: Totals) -> Document:
    """The ``totals`` object for already summed figures."""
    with localcontext(CONTEXT):
        return {
            "trades": t.trades,
            "volume_usd": usd(t.volume_usd),
            "fees_usd": usd(t.fees_usd),
            "realized_pnl_usd": usd(t.realized_pnl_usd),
            "return_pct": _return_pct(t.realized_pnl_usd, t.cost_basis_usd),
            "closed_trades": t.closed_trades,
            "winning_trades": t.winning_trades,
            "win_rate": _win_rate(t.winning_trades, t.closed_trades),
            "unpriced_trades": t.unpriced_trades,
            "period_start": _time(t.period_start_ms),
            "period_end": _time(t.period_end_ms),
        }


def summary_figures(figures: Iterable[SymbolFigures], as_of_ms: int) -> Document:
    """The figure fields of the signed ``summary`` (the caller adds identity and provenance)."""
    totals = Totals.of(figures)
    return summary_of(totals, DailyPnl(totals.daily_pnl_usd), as_of_ms)


def summary_of(t: Totals, daily: DailyPnl, as_of_ms: int) -> Document:
    """The summary figures for already summed figures and the session's daily pnl."""
    if t.period_start_ms is None:
        stats = daily.stats(0, -1)
    else:
        stats = daily.stats(utc_day(t.period_start_ms), utc_day(as_of_ms))
    with localcontext(CONTEXT):
        return {
            "trades": t.trades,
            "symbols_traded": t.symbols_traded,
            "volume_usd": usd(t.volume_usd),
            "fees_usd": usd(t.fees_usd),
            "realized_pnl_usd": usd(t.realized_pnl_usd),
            "return_pct": _return_pct(t.realized_pnl_usd, t.cost_basis_usd),
            "closed_trades": t.closed_trades,
            "win_rate": _win_rate(t.winning_trades, t.closed_trades),
            "profit_factor": (float(t.winning_pnl_usd / -t.losing_pnl_usd) if t.losing_trades else None),
            "avg_win_usd": _usd(t.winning_pnl_usd / t.winning_trades if t.winning_trades else None),
            "avg_loss_usd": _usd(t.losing_pnl_usd / t.losing_trades if t.losing_trades else None),
            "largest_win_usd": _usd(t.largest_win_usd),
            "largest_loss_usd": _usd(t.largest_loss_usd),
            "avg_holding_seconds": (
                float(t.holding_ms_quantity / t.closed_quantity / 1000) if t.closed_quantity else None
            ),
            "max_drawdown_usd": usd(stats.max_drawdown),
            "sharpe_ratio": stats.sharpe,
            "sortino_ratio": stats.sortino,
            "daily_pnl_volatility_usd": _usd(stats.volatility),
            "trading_days": stats.days,
            "period_start": _time(t.period_start_ms),
            "period_end": _time(t.period_end_ms),
        }


def _symbol_document(f: SymbolFigures) -> Document:
    return {
        "symbol": f.symbol,
        "base": f.base,
        "quote": f.quote,
        "market_type": f.market_type,
        "trades": f.trades,
        "volume_usd": usd(f.volume_usd),
        "fees_usd": usd(f.fees_usd),
        "realized_pnl_usd": usd(f.realized_pnl_usd),
        "return_pct": _return_pct(f.realized_pnl_usd, f.cost_basis_usd),
        "closed_quantity": plain(f.closed_quantity),
        "open_quantity": plain(f.open_quantity),
        "unmatched_quantity": plain(f.unmatched_quantity),
        "closed_trades": f.closed_trades,
        "winning_trades": f.winning_trades,
        "win_rate": _win_rate(f.winning_trades, f.closed_trades),
        "unpriced_trades": f.unpriced_trades,
        "period_start": _time(f.period_start_ms),
        "period_end": _time(f.period_end_ms),
    }


def _return_pct(pnl: Decimal, cost_basis: Decimal) -> float | None:
    # Matched pieces always have a positive cost basis (prices are > 0), so 0 means none matched.
    return float(100 * pnl / cost_basis) if cost_basis else None


def _win_rate(winning: int, closed: int) -> float | None:
    return winning / closed if closed else None


def _usd(value: Decimal | None) -> str | None:
    return None if value is None else usd(value)


def _time(ms: int | None) -> str | None:
    return None if ms is None else rfc3339_ms(ms)
