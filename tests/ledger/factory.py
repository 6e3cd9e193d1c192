"""Realistic trades and candles for the ledger tests."""

from __future__ import annotations

from decimal import Decimal

from perf_aggregator.formats import parse_rfc3339
from perf_aggregator.ledger.prices import PriceBook
from perf_aggregator.ledger.trades import Side, Trade

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
        cost=qty * px,
        fee_cost=Decimal(fee),
        fee_currency=fee_currency or quote,
        timestamp=t,
    )


def add_flat_candles(book: PriceBook, market: str, start: int, end: int, close: str) -> None:
    """Fetch-like: every minute of ``[start, end]`` closes at ``close``, the range is covered."""
    book.add_candles(market, start, end, [(m, Decimal(close)) for m in range(start, end + 1, MINUTE)])
