"""FIFO pairing of one symbol's fills into realized pieces (METRICS.md "FIFO pairing")."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from perf_aggregator.ledger.prices import ONE
from perf_aggregator.ledger.trades import MarketType, Trade

_ZERO = Decimal(0)


@dataclass(slots=True)
class Lot:
    """The still open part of one opening trade."""

    quantity: Decimal
    """Remaining base quantity."""
    price: Decimal
    timestamp: int
    fee_usd: Decimal
    """The opening trade's whole fee: a piece of quantity ``q`` carries ``fee_usd * q / amount``."""
    amount: Decimal
    """The opening trade's whole amount."""
    quote_rate: Decimal
    """USD per quote unit at the opening time, for the cost basis."""


class ClosedTrade(NamedTuple):
    """One closing trade with the pieces it matched, summed."""

    timestamp: int
    quantity: Decimal
    pnl_usd: Decimal
    cost_basis_usd: Decimal
    holding_ms_quantity: Decimal
    """Sum over the pieces of ``q * (c.t - o.t)``, for the quantity-weighted holding time."""


_OpenLot = tuple[Decimal, Decimal, int, Decimal, Decimal, Decimal]
"""A :class:`Lot` as stored: a tuple is cheaper to make than an object, and a lot is made per buy."""


class FifoBook:
    """Open lots of one symbol, closed first in, first out.

    Spot books hold long lots only (a sell without lots is unmatched); swap books hold either
    long or short lots. Arithmetic uses the current decimal context (the ledger sets
    :data:`perf_aggregator.metrics.precision.CONTEXT`).
    """

    __slots__ = ("_lots", "_short", "_spot", "position", "unmatched")

    def __init__(self, market_type: MarketType) -> None:
        self._spot = market_type == "spot"
        self._lots: deque[_OpenLot] = deque()
        self._short = False  # direction of every lot in the queue; meaningless when empty
        self.position = _ZERO
        """Open quantity, long minus short."""
        self.unmatched = _ZERO
        """Spot sell quantity that found no lot."""

    @property
    def lots(self) -> tuple[Lot, ...]:
        """Open lots, oldest first (short lots on a swap book when ``position < 0``)."""
        return tuple(Lot(*lot) for lot in self._lots)

    def apply(self, trade: Trade, fee_usd: Decimal, quote_rate: Decimal) -> ClosedTrade | None:
        """Pair a priced trade, processed in order; the closed trade when it matched anything.

        ``fee_usd`` is the trade's fee in USD and ``quote_rate`` USD per quote unit at its time.
        """
        buy = trade.side == "buy"
        amount = remaining = trade.amount
        lots = self._lots
        closed = None
        if lots and buy is self._short:  # opposite direction: close lots first
            price, timestamp, short = trade.price, trade.timestamp, self._short
            matched = pnl = basis = holding = _ZERO
            while remaining and lots:
                quantity, lot_price, lot_time, lot_fee, lot_amount, lot_rate = lots[0]
                q = quantity if quantity <= remaining else remaining
                move = q * (lot_price - price) if short else q * (price - lot_price)
                cost = q * lot_price
                if quote_rate is not ONE:  # a stablecoin quote's rate is 1: skip the products
                    move *= quote_rate
                if lot_rate is not ONE:
                    cost *= lot_rate
                # fee_share(t, q) = t.fee_usd * q / t.amount, which is t.fee_usd when q is all of t
                open_fee = lot_fee if q == lot_amount else lot_fee * q / lot_amount
                close_fee = fee_usd if q == amount else fee_usd * q / amount
                pnl += move - open_fee - close_fee
                basis += cost
                holding += q * (timestamp - lot_time)
                matched += q
                remaining -= q
                if q == quantity:
                    lots.popleft()
                else:
                    lots[0] = (quantity - q, lot_price, lot_time, lot_fee, lot_amount, lot_rate)
            self.position += matched if short else -matched
            closed = ClosedTrade(timestamp, matched, pnl, basis, holding)
        if remaining:
            if buy or not self._spot:
                lots.append((remaining, trade.price, trade.timestamp, fee_usd, amount, quote_rate))
                self._short = not buy
                self.position += remaining if buy else -remaining
            else:
                self.unmatched += remaining
        return closed
