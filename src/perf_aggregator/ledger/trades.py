"""The normalized trade (METRICS.md "Trades"), its identity and its processing order."""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Literal

MarketType = Literal["spot", "swap"]
Side = Literal["buy", "sell"]

TradeKey = tuple[str, str, str]
"""``(symbol, id, side)``: the identity of a fill within one session's exchange."""

OrderKey = tuple[int, tuple[int, int | str], int]


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill as the exchange reported it, with exact decimal amounts.

    ``timestamp`` is epoch milliseconds; ``cost`` is ``amount * price``.
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

    def __init__(
        self,
        id: str,
        order_id: str,
        symbol: str,
        base: str,
        quote: str,
        market_type: MarketType,
        side: Side,
        amount: Decimal,
        price: Decimal,
        cost: Decimal,
        fee_cost: Decimal,
        fee_currency: str,
        timestamp: int,
        exchange_realized_pnl: Decimal | None = None,
    ) -> None:
        # What dataclass would generate, but each slot set through its descriptor directly:
        # half the cost of the frozen class's object.__setattr__, for every fill fetched.
        _set_id(self, id)
        _set_order_id(self, order_id)
        _set_symbol(self, symbol)
        _set_base(self, base)
        _set_quote(self, quote)
        _set_market_type(self, market_type)
        _set_side(self, side)
        _set_amount(self, amount)
        _set_price(self, price)
        _set_cost(self, cost)
        _set_fee_cost(self, fee_cost)
        _set_fee_currency(self, fee_currency)
        _set_timestamp(self, timestamp)
        _set_exchange_realized_pnl(self, exchange_realized_pnl)

    @property
    def key(self) -> TradeKey:
        """Dedup identity: the same ``(symbol, id, side)`` seen twice is one trade."""
        return (self.symbol, self.id, self.side)

    @property
    def order(self) -> OrderKey:
        """Processing order: ``(timestamp, id, side)``, numeric ids as integers, buy before sell."""
        return order_key(self.timestamp, self.id, self.side)


(
    _set_id,
    _set_order_id,
    _set_symbol,
    _set_base,
    _set_quote,
    _set_market_type,
    _set_side,
    _set_amount,
    _set_price,
    _set_cost,
    _set_fee_cost,
    _set_fee_currency,
    _set_timestamp,
    _set_exchange_realized_pnl,
) = (vars(Trade)[f.name].__set__ for f in fields(Trade))


def order_key(timestamp: int, trade_id: str, side: str) -> OrderKey:
    """Sort key for ``(timestamp, id, side)``.

    Ids made only of digits compare as integers and sort before non-numeric ids,
    which compare as strings (one exchange never mixes the two).
    """
    id_key: tuple[int, int | str] = (
        (0, int(trade_id)) if trade_id.isascii() and trade_id.isdigit() else (1, trade_id)
    )
    return (timestamp, id_key, 0 if side == "buy" else 1)
