"""FIFO pairing of one symbol's fills into realized pieces (METRICS.md "FIFO pairing")."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from perf_aggregator.ledger.prices import ONE, ZERO_FEE_RATE
from perf_aggregator.ledger.trades import MarketType, TradeColumns
from perf_aggregator.metrics.figures import DAY_MS, Figures
from perf_aggregator.metrics.precision import CONTEXT

_ZERO = Decimal(0)
_divide = CONTEXT.divide


@dataclass(slots=True)
class Lot:
    """The still open part of one opening trade."""

    quantity: Decimal
    """Remaining base quantity."""
    price: Decimal
    timestamp: int
    fee_usd: Decimal
    """The part of the opening trade's fee not yet charged to closed pieces: a piece of quantity ``q``
    is charged ``fee_usd * q / quantity`` (METRICS.md's ``fee_share``, within the division's 60
    digits), the piece closing what remains all of it, so that the shares charged for one fee add
    up to it exactly."""
    quote_rate: Decimal
    """USD per quote unit at the opening time, for the cost basis."""


_OpenLot = tuple[Decimal, Decimal, int, Decimal, Decimal]
"""A :class:`Lot` as stored: a tuple is cheaper to make than an object, and a lot is made per buy."""


class FifoBook:
    """Open lots of one symbol, closed first in, first out.

    Spot books hold long lots only (a sell without lots is unmatched); swap books hold either
    long or short lots. Sums and products use the current decimal context (the ledger sets
    :data:`perf_aggregator.metrics.precision.EXACT`: they never round); the fee shares' divisions
    carry the 60 digits of :data:`perf_aggregator.metrics.precision.CONTEXT` whatever it is.
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

    def record(
        self,
        run: TradeColumns,
        quote_rates: Sequence[Decimal | None],
        fee_rates: Sequence[Decimal | None],
        figures: Figures,
    ) -> dict[int, Decimal]:
        """Record a run of this symbol's new trades (as columns), in processing order, in
        ``figures``: each is counted, and each priced one adds its volume and fee and is paired,
        each closed trade recorded.

        ``quote_rates[i]`` and ``fee_rates[i]`` are USD per quote unit and per fee currency unit
        at the trade's time (``None``: unpriced; :data:`ONE` and a zero fee's rate 0, as the ledger
        gives them, skip their products). Returns the run's pnl by UTC day of the closing trade,
        summed exactly (the caller adds them to ``figures.daily_pnl_usd``). If a trade raises, the
        book and ``figures`` are left part-way: the ledger rebuilds the symbol from its stored
        trades.

        One loop with every running sum in locals, written back once: it runs for every trade.
        """
        times = run.timestamp
        if not times:
            return {}
        figures.trades += len(times)
        first_time, last_time = times[0], times[-1]  # in processing order
        if figures.period_start_ms is None or first_time < figures.period_start_ms:
            figures.period_start_ms = first_time
        if figures.period_end_ms is None or last_time > figures.period_end_ms:
            figures.period_end_ms = last_time
        lots, spot, short = self._lots, self._spot, self._short
        popleft, open_lot = lots.popleft, lots.append
        position, unmatched = self.position, self.unmatched
        volume, fees = figures.volume_usd, figures.fees_usd
        realized, winning, losing = figures.realized_pnl_usd, figures.winning_pnl_usd, figures.losing_pnl_usd
        basis_sum = figures.cost_basis_usd
        closed_quantity, holding_sum = figures.closed_quantity, figures.holding_ms_quantity
        largest_win, largest_loss = figures.largest_win_usd, figures.largest_loss_usd
        unpriced = closes = wins = losses = 0
        days: dict[int, Decimal] = {}
        # Closes come in time order: the current day's sum stays in locals until the day changes.
        day: int | None = None
        day_pnl = _ZERO
        for side, amount, price, fee_usd, timestamp, quote_rate, fee_rate in zip(
            run.side,
            run.amount,
            run.price,
            run.fee_cost,
            times,
            quote_rates,
            fee_rates,
            strict=True,
        ):
            if quote_rate is None or fee_rate is None:
                unpriced += 1  # counted, nothing else
                continue
            if fee_rate is not ONE:  # fee_usd is the fee cost until here
                fee_usd = _ZERO if fee_rate is ZERO_FEE_RATE else fee_usd * fee_rate
            # the trade's cost, amount * price, in the ledger's context (as the volume's sum)
            volume += amount * price if quote_rate is ONE else amount * price * quote_rate
            fees += fee_usd
            buy = side == "buy"
            remaining = amount
            if lots and buy is short:  # opposite direction: close lots first
                # Sums over the pieces matched: quote value at the lots' prices, the lots' fee
                # shares, and what the lots' USD rates add to that value where the rate is not
                # ONE (a stablecoin quote's lots: none). A piece's pnl is linear in its quantity,
                # so the closed trade's pnl and cost basis are taken from these sums once instead
                # of piece by piece; its holding weights go straight to the run's sum.
                value = open_fees = rated = _ZERO
                while remaining and lots:
                    quantity, lot_price, lot_time, lot_fee, lot_rate = lots[0]
                    if quantity <= remaining:  # the whole lot, charged the rest of its fee
                        q = quantity
                        remaining -= q
                        popleft()
                        open_fees += lot_fee
                    else:
                        q = remaining
                        remaining = _ZERO
                        share = _divide(lot_fee * q, quantity)
                        open_fees += share
                        lots[0] = (quantity - q, lot_price, lot_time, lot_fee - share, lot_rate)
                    lot_cost = q * lot_price
                    value += lot_cost
                    if lot_rate is not ONE:
                        rated += lot_cost * lot_rate - lot_cost
                    holding_sum += q * (timestamp - lot_time)
                basis_sum += value if rated is _ZERO else value + rated  # sum of q * o.price * o.rate
                matched = amount - remaining if remaining else amount  # (skips a subtraction of 0)
                # sum of q * (c.price - o.price) for a long, q * (o.price - c.price) for a short
                move = value - price * matched if short else price * matched - value
                if quote_rate is not ONE:  # a stablecoin quote's rate is 1: skip the product
                    move *= quote_rate
                # the closing trade's fee shares sum to fee_share(c, matched): all of it when
                # nothing remains, else a share, and the rest goes with the remaining quantity
                if remaining:
                    share = _divide(fee_usd * matched, amount)
                    pnl = move - open_fees - share
                    fee_usd -= share
                else:
                    pnl = move - open_fees - fee_usd
                if short:
                    position += matched
                else:
                    position -= matched
                # The closed trade.
                closed_quantity += matched
                closes += 1
                if pnl > _ZERO:  # (a decimal: comparing with the int 0 converts it each time)
                    wins += 1
                    winning += pnl
                    if largest_win is None or pnl > largest_win:
                        largest_win = pnl
                elif pnl < _ZERO:
                    losses += 1
                    losing += pnl
                    if largest_loss is None or pnl < largest_loss:
                        largest_loss = pnl
                if timestamp // DAY_MS != day:
                    if day is not None:
                        days[day] = day_pnl
                    day = timestamp // DAY_MS
                    day_pnl = _ZERO
                day_pnl += pnl
            if remaining:
                if buy or not spot:
                    open_lot((remaining, price, timestamp, fee_usd, quote_rate))
                    short = not buy
                    if buy:
                        position += remaining
                    else:
                        position -= remaining
                else:
                    unmatched += remaining
        if day is not None:
            days[day] = day_pnl
        for pnl in days.values():  # the closed trades' pnl, summed exactly by day
            realized += pnl
        self._short, self.position, self.unmatched = short, position, unmatched
        figures.volume_usd, figures.fees_usd = volume, fees
        figures.realized_pnl_usd, figures.winning_pnl_usd, figures.losing_pnl_usd = (
            realized,
            winning,
            losing,
        )
        figures.cost_basis_usd = basis_sum
        figures.closed_quantity, figures.holding_ms_quantity = closed_quantity, holding_sum
        figures.largest_win_usd, figures.largest_loss_usd = largest_win, largest_loss
        figures.unpriced_trades += unpriced
        figures.closed_trades += closes
        figures.winning_trades += wins
        figures.losing_trades += losses
        return days
