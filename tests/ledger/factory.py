"""Realistic trades and candles for the ledger tests."""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from perf_aggregator.formats import parse_rfc3339
from perf_aggregator.ledger.fifo import FifoBook
from perf_aggregator.ledger.prices import ONE, PriceBook
from perf_aggregator.ledger.trades import Side, Trade, columns_of
from perf_aggregator.metrics.figures import DAY_MS, Figures
from perf_aggregator.metrics.precision import EXACT

MINUTE = 60_000
HOUR = 3_600_000


def at(text: str) -> int:
    """Epoch ms of a UTC time written ``2026-01-05T10:00:00``."""
    ms: int = parse_rfc3339(text + "Z")
    return ms


def make_trade(
    trade_id: str,
    side: Side,
    amount: str,
    price: str,
    t: int,
    *,
    symbol: str = "BTC/USDT",
    fee: str = "0",
    fee_currency: str | None = None,
) -> Trade:
    """A fill of ``symbol`` (``X/Y`` spot, ``X/Y:Y`` swap) with ``cost = amount * price``."""
    base, rest = symbol.split("/")
    quote = rest.split(":")[0]
    qty, px = Decimal(amount), Decimal(price)
    return Trade(
        id=trade_id,
        order_id=f"order-{trade_id}",
        symbol=symbol,
        base=base,
        quote=quote,
        market_type="swap" if ":" in symbol else "spot",
        side=side,
        amount=qty,
        price=px,
        fee_cost=Decimal(fee),
        fee_currency=fee_currency or quote,
        timestamp=t,
    )


def add_flat_candles(book: PriceBook, market: str, start: int, end: int, close: str) -> None:
    """Fetch-like: every minute of ``[start, end]`` closes at ``close``, the range is covered."""
    book.add_candles(market, start, end, [(m, Decimal(close)) for m in range(start, end + 1, MINUTE)])


class ClosedTrade(NamedTuple):
    """One closing trade with the pieces it matched, summed (what ``FifoBook.record`` records)."""

    timestamp: int
    quantity: Decimal
    pnl_usd: Decimal
    cost_basis_usd: Decimal
    holding_ms_quantity: Decimal


def apply_one(book: FifoBook, trade: Trade, fee_usd: Decimal, quote_rate: Decimal) -> ClosedTrade | None:
    """Record one priced trade, whose fee is ``fee_usd`` in USD; the closed trade when it matched anything."""
    figures = Figures()
    book.record(columns_of([trade._replace(fee_cost=fee_usd)]), [quote_rate], [ONE], figures)
    if not figures.closed_trades:
        return None
    return ClosedTrade(
        trade.timestamp,
        figures.closed_quantity,
        figures.realized_pnl_usd,
        figures.cost_basis_usd,
        figures.holding_ms_quantity,
    )


def record_close(figures: Figures, closed: ClosedTrade) -> None:
    """Add one closed trade to ``figures`` as METRICS.md counts it: an independent reference."""
    pnl = closed.pnl_usd
    figures.realized_pnl_usd += pnl
    figures.cost_basis_usd += closed.cost_basis_usd
    figures.closed_quantity += closed.quantity
    figures.holding_ms_quantity += closed.holding_ms_quantity
    figures.closed_trades += 1
    if pnl > 0:
        figures.winning_trades += 1
        figures.winning_pnl_usd += pnl
        if figures.largest_win_usd is None or pnl > figures.largest_win_usd:
            figures.largest_win_usd = pnl
    elif pnl < 0:
        figures.losing_trades += 1
        figures.losing_pnl_usd += pnl
        if figures.largest_loss_usd is None or pnl < figures.largest_loss_usd:
            figures.largest_loss_usd = pnl
    day = closed.timestamp // DAY_MS
    figures.daily_pnl_usd[day] = EXACT.add(figures.daily_pnl_usd.get(day, Decimal(0)), pnl)


def record_fill(figures: Figures, trade: Trade, quote_rate: Decimal | None, fee_usd: Decimal) -> None:
    """Count one trade in ``figures`` as METRICS.md does (``quote_rate`` ``None``: unpriced)."""
    figures.trades += 1
    if figures.period_start_ms is None or trade.timestamp < figures.period_start_ms:
        figures.period_start_ms = trade.timestamp
    if figures.period_end_ms is None or trade.timestamp > figures.period_end_ms:
        figures.period_end_ms = trade.timestamp
    if quote_rate is None:
        figures.unpriced_trades += 1
        return
    figures.volume_usd += trade.cost * quote_rate
    figures.fees_usd += fee_usd
