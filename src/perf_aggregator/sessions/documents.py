"""The API.md documents of one session: metrics, summary and trade pages."""

from __future__ import annotations

import base64
import json
from typing import Any

from perf_aggregator.formats import plain, rfc3339_ms, usd
from perf_aggregator.ledger.trades import OrderKey, Trade, order_key
from perf_aggregator.sessions.session import Session

SUMMARY_VERSION = 1


def _time(ms: int | None) -> str | None:
    return None if ms is None else rfc3339_ms(ms)


def metrics_document(session: Session, now_ms: int) -> dict[str, Any]:
    """``GET /enclave/metrics/{id}``."""
    sync = session.sync
    return {
        "session_id": session.id,
        "exchange": session.exchange,
        "account_type": session.account_type,
        "status": sync.status,
        "expires_at": rfc3339_ms(session.expires_ms),
        "as_of": rfc3339_ms(now_ms),
        "sync": {
            "backfill_complete": sync.backfill_complete,
            "trades_fetched": len(session.ledger),
            "last_poll_at": _time(sync.last_poll_at_ms),
            "next_poll_at": _time(sync.next_poll_at_ms),
            "poll_interval_s": sync.poll_interval_s,
            "last_error": sync.last_error,
        },
        "symbols": session.ledger.symbol_documents(),
        "totals": session.ledger.totals_document(),
    }


def summary_body(session: Session, now_ms: int) -> dict[str, Any]:
    """The ``summary`` object that the enclave signs."""
    return {
        "version": SUMMARY_VERSION,
        "session_id": session.id,
        "exchange": session.exchange,
        "account_type": session.account_type,
        "as_of": rfc3339_ms(now_ms),
        "backfill_complete": session.sync.backfill_complete,
        **session.ledger.summary_figures(now_ms),
        "data_source": session.data_source,
    }


def encode_cursor(trade: Trade) -> str:
    """Opaque page cursor after ``trade``: its order key and symbol (ids repeat across symbols)."""
    text = json.dumps([trade.timestamp, trade.id, trade.side, trade.symbol], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[OrderKey, str]:
    """Inverse of :func:`encode_cursor`: ``(order key, symbol)``; ``ValueError`` if not one of ours."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        timestamp, trade_id, side, symbol = json.loads(base64.urlsafe_b64decode(padded))
        valid = (
            isinstance(timestamp, int)
            and isinstance(trade_id, str)
            and side in ("buy", "sell")
            and isinstance(symbol, str)
        )
    except (ValueError, TypeError, UnicodeDecodeError):
        valid = False
    if not valid:
        raise ValueError("cursor is not valid")
    return order_key(timestamp, trade_id, side), symbol


def trades_document(session: Session, symbol: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
    """``GET /enclave/trades/{id}``: oldest first, ``limit`` per page.

    ``exchange_realized_pnl`` (beyond API.md) is the exchange's own realized pnl of the fill
    where it reports one (Binance USD-M), for comparison with ours; ``null`` otherwise."""
    after, after_symbol = decode_cursor(cursor) if cursor else (None, None)
    page = session.ledger.trades(symbol, after, limit + 1, after_symbol=after_symbol)
    more = len(page) > limit
    page = page[:limit]
    items = []
    for priced in page:
        t = priced.trade
        items.append(
            {
                "id": t.id,
                "order_id": t.order_id,
                "symbol": t.symbol,
                "market_type": t.market_type,
                "side": t.side,
                "amount": plain(t.amount),
                "price": plain(t.price),
                "cost": plain(t.cost),
                "fee_cost": plain(t.fee_cost),
                "fee_currency": t.fee_currency,
                "fee_usd": None if priced.fee_usd is None else usd(priced.fee_usd),
                "value_usd": None if priced.value_usd is None else usd(priced.value_usd),
                "timestamp": rfc3339_ms(t.timestamp),
                "exchange_realized_pnl": (
                    None if t.exchange_realized_pnl is None else plain(t.exchange_realized_pnl)
                ),
            }
        )
    next_cursor = None
    if more and page:
        next_cursor = encode_cursor(page[-1].trade)
    return {"trades": items, "next_cursor": next_cursor}
