"""The normalized trade (METRICS.md "Trades"), its identity and its processing order."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation, Rounded, localcontext
from typing import Literal, NamedTuple

from perf_aggregator.metrics.precision import CONTEXT as CONTEXT  # re-exported for the parsers
from perf_aggregator.metrics.precision import EXACT as EXACT

MarketType = Literal["spot", "swap"]
Side = Literal["buy", "sell"]

_exact_product = EXACT.multiply

exchange_decimal = EXACT.create_decimal
"""An exchange's decimal text (amount, price, fee, candle close) as an exact ``Decimal``, read
strictly: anything but a number's text, surrounding spaces and underscores included (which
``Decimal()`` strips or reads), raises :class:`ArithmeticError`, and the connectors refuse the
page. Also a tenth cheaper than ``Decimal()``, which parses keywords."""

TradeKey = tuple[str, str, str]
"""``(symbol, id, side)``: the identity of a fill within one session's exchange."""

OrderKey = tuple[int, tuple[int, int | str], int]


class Trade(NamedTuple):
    """One fill as the exchange reported it, with exact decimal amounts.

    ``timestamp`` is epoch milliseconds; :attr:`cost` is ``amount * price``, taken when read
    (METRICS.md defines it so: no exchange's own figure is kept, and nothing is stored or checked
    twice). Immutable; a named tuple rather than a frozen dataclass because one is made
    for every fill fetched and for every trade a replay rebuilds, and a tuple is made in a third of
    the time.
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
    fee_cost: Decimal
    fee_currency: str
    timestamp: int
    exchange_realized_pnl: Decimal | None = None
    """The exchange's own realized pnl for this fill where it reports one (Binance USD-M
    ``realizedPnl``, average-cost based): shown beside ours for comparison, never used."""

    @property
    def cost(self) -> Decimal:
        """``amount * price`` in quote units, exact whatever the digits (METRICS.md: products are
        exact; the default decimal context would round past 28 significant digits)."""
        return _exact_product(self.amount, self.price)

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


class TradeColumns(NamedTuple):
    """A run of trades field by field: ``columns.amount[i]`` is ``run[i].amount``.

    The loops that run for every trade read these: a trade's fields come out of a column tuple
    several times faster than its attributes do.
    """

    id: tuple[str, ...]
    order_id: tuple[str, ...]
    symbol: tuple[str, ...]
    base: tuple[str, ...]
    quote: tuple[str, ...]
    market_type: tuple[MarketType, ...]
    side: tuple[Side, ...]
    amount: tuple[Decimal, ...]
    price: tuple[Decimal, ...]
    fee_cost: tuple[Decimal, ...]
    fee_currency: tuple[str, ...]
    timestamp: tuple[int, ...]
    exchange_realized_pnl: tuple[Decimal | None, ...]

    def tail(self, start: int) -> TradeColumns:
        """The run's trades from position ``start`` on."""
        return TradeColumns._make(column[start:] for column in self)


_NO_COLUMNS = TradeColumns._make(() for _ in Trade._fields)


def columns_of(run: Sequence[Trade]) -> TradeColumns:
    """The fields of ``run`` as columns (one transposition in C)."""
    return TradeColumns._make(zip(*run, strict=True)) if run else _NO_COLUMNS


class ImpossibleTrade(ValueError):
    """A trade whose numbers no exchange can have reported (METRICS.md "Trades")."""


_SMALLEST = Decimal("1E-30")
_LIMIT = Decimal("1E+30")
"""Amounts and prices are within ``[_SMALLEST, _LIMIT)`` (so costs within ``[_SMALLEST ** 2,
_LIMIT ** 2)``), fees and an exchange's own pnl within ``[-_LIMIT, _LIMIT)`` (a negative fee is a
maker rebate, kept with its sign: Binance USD-M): far beyond any real market, and no product or sum
the ledger takes of such numbers can overflow."""
_ANCHOR = Decimal("1E+40")
_DECIMALS = Context(prec=101, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Rounded])
"""Fees and pnl may be 0 or tiny, so their range does not bound their decimals; a short text such
as ``0E-999999999`` would make every exact sum it enters a billion digits long. A column of
them added exactly to ``_ANCHOR`` fits in these 101 digits when none has more than 60 decimals,
and never when one has more than 61 (for fewer than 10**9 values within range). Amounts and
prices are at least ``_SMALLEST``: their decimals are the digits the exchange sent."""


_TIME_LIMIT = 253_402_300_800_000
"""Timestamps are epoch milliseconds in ``[0, _TIME_LIMIT)``: from 1970, which the stores' time
columns need, to the end of year 9999, the last an RFC 3339 time can name."""


def _within(column: Sequence[Decimal], smallest: Decimal) -> bool:
    """Whether every value of ``column`` is a number in ``[smallest, _LIMIT)``."""
    with localcontext(CONTEXT):  # a NaN compared raises (InvalidOperation is trapped)
        try:
            return bool(smallest <= min(column) and max(column) < _LIMIT)
        except InvalidOperation:
            return False


def _few_decimals(column: Sequence[Decimal]) -> bool:
    """Whether no value of ``column`` (numbers within range) has more than 60 decimals
    (61 may pass: see ``_DECIMALS``)."""
    try:
        with localcontext(_DECIMALS):
            sum(column, _ANCHOR)
    except Rounded:
        return False
    return True


def check_values(run: TradeColumns) -> None:
    """Raise :class:`ImpossibleTrade` unless every trade of ``run`` has a positive amount and price
    and a fee (negative: a rebate), all finite numbers within the ledger's range (the fee with at
    most 60 decimals), as is the exchange's own pnl where it gives one, and a timestamp from
    1970 to the year 9999 (the message names the field, not the values).
    Column passes at C speed: this runs for every page."""
    if not run.id:
        return
    times = run.timestamp
    if min(times) < 0 or max(times) >= _TIME_LIMIT:
        raise ImpossibleTrade("a trade's timestamp is not a time a market can have")
    # (name, column, smallest value, whether its decimals need a bound of their own)
    fields: list[tuple[str, Sequence[Decimal], Decimal, bool]] = [
        ("amount", run.amount, _SMALLEST, False),
        ("price", run.price, _SMALLEST, False),
        ("fee_cost", run.fee_cost, -_LIMIT, True),
    ]
    pnls = run.exchange_realized_pnl
    if pnls.count(None) != len(pnls):  # reported by some exchanges (a spot page has none)
        fields.append(("exchange_realized_pnl", [p for p in pnls if p is not None], -_LIMIT, True))
    for name, column, smallest, may_be_tiny in fields:
        if not _within(column, smallest) or (may_be_tiny and not _few_decimals(column)):
            raise ImpossibleTrade(f"a trade's {name} is not a number a market can have")


def is_price(value: Decimal) -> bool:
    """Whether ``value`` is a price a market can have: finite, within ``[1E-30, 1E+30)``."""
    return _within((value,), _SMALLEST)


def is_possible(trade: Trade) -> bool:
    """Whether :func:`check_values` accepts ``trade``."""
    try:
        check_values(columns_of([trade]))
    except ImpossibleTrade:
        return False
    return True
