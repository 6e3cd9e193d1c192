"""The normalized trade (METRICS.md "Trades"), its identity and its processing order."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from operator import itemgetter
from typing import Any, Literal, NamedTuple

MarketType = Literal["spot", "swap"]
Side = Literal["buy", "sell"]

TradeKey = tuple[str, str, str]
"""``(symbol, id, side)``: the identity of a fill within one session's exchange."""

OrderKey = tuple[int, tuple[int, int | str], int]


class Trade(NamedTuple):
    """One fill as the exchange reported it, with exact decimal amounts.

    ``timestamp`` is epoch milliseconds; ``cost`` is ``amount * price``. Immutable; a named
    tuple rather than a frozen dataclass because one is made for every fill fetched and for every
    trade a replay rebuilds, and a tuple is made in a third of the time.
    """

    id: str
    order_id: str
    symbol: str
    base: str
    quote: str
    market_type: MarketType
    side: Side
    amount: Decimal
    price: Decimal
    cost: Decimal
    fee_cost: Decimal
    fee_currency: str
    timestamp: int
    exchange_realized_pnl: Decimal | None = None
    """The exchange's own realized pnl for this fill where it reports one (Binance USD-M
    ``realizedPnl``, average-cost based): shown beside ours for comparison, never used."""

    @property
    def key(self) -> TradeKey:
        """Dedup identity: the same ``(symbol, id, side)`` seen twice is one trade."""
        return (self.symbol, self.id, self.side)

    @property
    def order(self) -> OrderKey:
        """Processing order: ``(timestamp, id, side)``, numeric ids as integers, buy before sell."""
        return order_key(self.timestamp, self.id, self.side)


def order_key(timestamp: int, trade_id: str, side: str) -> OrderKey:
    """Sort key for ``(timestamp, id, side)``.

    Ids made only of digits compare as integers and sort before non-numeric ids,
    which compare as strings (one exchange never mixes the two).
    """
    id_key: tuple[int, int | str] = (
        (0, int(trade_id)) if trade_id.isascii() and trade_id.isdigit() else (1, trade_id)
    )
    return (timestamp, id_key, 0 if side == "buy" else 1)


def fields_of(*names: str) -> Callable[[Trade], Any]:
    """A getter of the named fields of a trade, as a tuple (one name: the field alone).

    It reads them by position (a trade is a tuple) in one C call: for the loops that run for every
    trade, where reading the attributes one by one costs several times more.
    """
    return itemgetter(*(Trade._fields.index(name) for name in names))
