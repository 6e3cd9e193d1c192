"""Compact storage of one symbol's trades, in processing order, with the USD rates they were valued at.

A session may hold millions of fills, so a stored trade is not a :class:`Trade` object
(about 600 bytes with its decimals and strings) but about 100 bytes: its time, id and side in
typed columns (what ordering, paging and deduplication read), the rest in one short text
record (exact decimal strings, which keep their exponent, then the fee currency and the order
id), and references to the two rate objects it was valued with (shared with the price book).
:meth:`SymbolTrades.trade` rebuilds an equal ``Trade``.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from decimal import Decimal
from itertools import islice
from operator import add, lt

from perf_aggregator.ledger.chunks import UNSIGNED, Chunks, TextChunks
from perf_aggregator.ledger.trades import (
    MarketType,
    OrderKey,
    Side,
    Trade,
    TradeColumns,
    columns_of,
    order_key,
)

Rank = tuple[OrderKey, str]
"""Processing order within a symbol: the order key, then the raw id, so that ids equal as
integers but spelled differently (``7``, ``007``) still have one order whatever the arrival."""

_SIDES: tuple[Side, Side] = ("buy", "sell")
_MAX_DIGITS = 18
"""Ids of at most 18 digits fit the 64-bit id column."""
_ID_LIMIT = 10**_MAX_DIGITS
_SIDE_CODES = {"buy": 0, "sell": 1}


def numeric_id(trade_id: str) -> int | None:
    """``trade_id`` as an integer when it is the canonical spelling of one that fits the column."""
    if (
        trade_id.isdigit()
        and trade_id.isascii()
        and len(trade_id) <= _MAX_DIGITS
        and (trade_id[0] != "0" or trade_id == "0")
    ):
        return int(trade_id)
    return None


def gallop(count: int, rank_at: Callable[[int], Rank], rank: Rank, start: int) -> int:
    """The first position from ``start`` on (``count`` if none) whose rank, ascending with the
    position, is above ``rank``: found by galloping, so that ranks are rebuilt for a few positions
    only when the answer is near ``start``."""
    lo = hi = start
    step = 1
    while hi < count and rank_at(hi) <= rank:
        lo, hi, step = hi + 1, hi + step, step * 2
    return bisect_right(range(count), rank, lo, min(hi, count), key=rank_at)


def rank_of(trade: Trade) -> Rank:
    """Where ``trade`` goes in its symbol's processing order."""
    return (trade.order, trade.id)


class SymbolTrades:
    """One symbol's trades, appended in processing order (or, for late ones, in arrival order),
    each ``(id, side)`` once.

    Ids are kept as integers while every id is a canonical number (exchanges with numeric
    ids), else as strings. While the ``(id, side)`` pairs also ascend in processing order (ids
    that grow with time, as on Binance), order and novelty of the next trade are decided from
    the last one and duplicates found by binary search; otherwise through an index of the keys,
    built on first need.
    """

    __slots__ = (
        "_keys",
        "_last_rank",
        "_ordered",
        "_records",
        "base",
        "fee_rates",
        "ids",
        "market_type",
        "quote",
        "quote_rates",
        "sides",
        "symbol",
        "times",
    )

    def __init__(
        self, symbol: str, base: str, quote: str, market_type: MarketType, *, ordered: bool = True
    ) -> None:
        """``ordered=False`` keeps trades in arrival order instead, only refusing repeats (for late
        trades waiting for their symbol's replay: compact, and no Trade object stays alive)."""
        self.symbol, self.base, self.quote, self.market_type = symbol, base, quote, market_type
        self._ordered = ordered
        self.times = array(UNSIGNED)  # check_values: from 1970
        self.ids: array[int] | Chunks[str] = array(UNSIGNED)
        self.sides = bytearray()
        self._records = TextChunks()
        self.quote_rates: Chunks[Decimal | None] = Chunks()
        """USD per quote unit at each trade's time; ``None`` while the trade is unpriced."""
        self.fee_rates: Chunks[Decimal | None] = Chunks()
        """USD per fee currency unit (any rate, 0 here, for a zero fee: its ``fee_usd`` is 0)."""
        self._keys: dict[str, None] | None = None
        """The ``(id, side)`` pairs as :func:`_key` strings, once needed: a dictionary of strings,
        which the garbage collector does not track (a set, or tuples, it would visit in full)."""
        self._last_rank: Rank | None = None
        """The last trade's rank, kept once the keys are indexed (ranks are costly to rebuild)."""

    def __len__(self) -> int:
        return len(self.times)

    def append(
        self, trade: Trade, quote_rate: Decimal | None, fee_rate: Decimal | None, record: str | None = None
    ) -> bool:
        """Store ``trade`` if it comes after every stored trade (when ordered) and is new; whether it did.

        ``quote_rate`` and ``fee_rate`` are the rates it was valued at (``None``: unpriced);
        ``record`` is the trade's :meth:`record` from another store, when it has one.
        """
        side = 0 if trade.side == "buy" else 1
        ids, times = self.ids, self.times
        if self._keys is None and isinstance(ids, array):
            # Pages read forward: the pair above the last one is new and, not older, comes after.
            value = numeric_id(trade.id)
            if value is not None and (
                not times
                or (
                    trade.timestamp >= times[-1]
                    and (value > ids[-1] or (value == ids[-1] and side > self.sides[-1]))
                )
            ):
                ids.append(value)
            elif not self._append_id(trade, side):
                return False
        elif not self._append_id(trade, side):
            return False
        times.append(trade.timestamp)
        self.sides.append(side)
        self._records.append(_record(trade) if record is None else record)
        self.quote_rates.append(quote_rate)
        self.fee_rates.append(fee_rate)
        return True

    def extend(
        self,
        run: TradeColumns,
        quote_rates: Sequence[Decimal | None],
        fee_rates: Sequence[Decimal | None],
        records: Sequence[str] | None = None,
    ) -> int | None:
        """Store a run of trades (as columns) in one go (rates as for :meth:`append`), when the ids
        are canonical numbers, each ``(id, side)`` is above the one before and no time goes back
        (pages read forward on Binance), skipping leading repeats (a page polled from the last id
        seen). Returns how many leading repeats were skipped, or ``None`` (nothing stored) when the
        run does not fit: the caller then appends one at a time. ``records``: the trades'
        :meth:`record` from another store, when they have one.
        """
        ids, tids = self.ids, run.id
        if self._keys is not None or not isinstance(ids, array) or not tids:
            return None
        # Column passes at C speed: this runs for every page fetched.
        try:
            values = list(map(int, tids))
            sides = list(map(_SIDE_CODES.__getitem__, run.side))
            # Canonical spellings only: ASCII digits without a leading zero (int() also reads signs,
            # spaces, "_", leading zeros and non-ASCII digits; "0" itself goes one at a time).
            spaced = (" " + " ".join(tids)).encode("ascii")
        except (ValueError, KeyError, UnicodeEncodeError):
            return None
        digits = spaced.replace(b" ", b"")  # no more spaces than those put in
        if b" 0" in spaced or len(digits) + len(tids) != len(spaced) or not digits.isdigit():
            return None
        codes = list(map(add, map(add, values, values), sides))  # 2 * id + side
        times = list(run.timestamp)
        if not (all(map(lt, codes, islice(codes, 1, None))) and sorted(times) == times):
            return None
        if values[-1] >= _ID_LIMIT:
            return None
        skip = 0
        if self.times:
            last_code, last_time = 2 * ids[-1] + self.sides[-1], self.times[-1]
            while skip < len(tids) and codes[skip] <= last_code:
                if not self.contains(tids[skip], run.side[skip]):
                    return None  # older than the last stored trade
                skip += 1
            if skip < len(tids) and times[skip] < last_time:
                return None
            if skip:
                del values[:skip], sides[:skip], times[:skip]
                run, quote_rates, fee_rates = run.tail(skip), quote_rates[skip:], fee_rates[skip:]
                records = None if records is None else records[skip:]
        self.times.fromlist(times)
        ids.fromlist(values)
        self.sides.extend(sides)
        self._records.extend(_records(run) if records is None else records)
        self.quote_rates.extend(quote_rates)
        self.fee_rates.extend(fee_rates)
        return skip

    def _append_id(self, trade: Trade, side: int) -> bool:
        """Append the id of a trade the shortcut could not place, if it comes after every stored
        trade and is new; whether it did. Switches to the key set (and to text ids) as needed."""
        keys, ordered = self._keys, self._ordered
        if keys is None:
            if self.times and (
                (ordered and trade.timestamp < self.times[-1]) or self.contains(trade.id, trade.side)
            ):
                return False  # decided without giving up the shortcut
            keys = self._index_keys()
        key = _key(trade.id, side)
        if key in keys:
            return False
        if ordered:
            rank = rank_of(trade)
            if self._last_rank is not None and rank <= self._last_rank:
                return False
            self._last_rank = rank
        keys[key] = None
        ids = self.ids
        value = numeric_id(trade.id) if isinstance(ids, array) else None
        if isinstance(ids, array) and value is not None:
            ids.append(value)
        else:
            if isinstance(ids, array):  # the first id that is not a canonical number
                self.ids = ids = Chunks(map(str, ids))
            ids.append(trade.id)
        return True

    def contains(self, trade_id: str, side: Side) -> bool:
        """Whether a trade with this id and side is stored."""
        bit = 0 if side == "buy" else 1
        if self._keys is not None:
            return _key(trade_id, bit) in self._keys
        value = numeric_id(trade_id)
        if value is None:
            return False  # every stored id is a canonical number
        ids, sides = self.ids, self.sides
        i = bisect_left(ids, value)
        while i < len(ids) and ids[i] == value:
            if sides[i] == bit:
                return True
            i += 1
        return False

    def trade(self, i: int) -> Trade:
        """The ``i``-th stored trade, equal to the one appended."""
        amount, price, fee_cost, pnl, length, rest = self._records[i].split(" ", 5)
        size = int(length)
        # Positional, in field order (keywords cost a third more, and replays rebuild every trade).
        return Trade(
            str(self.ids[i]),  # id
            rest[size:],  # order_id
            self.symbol,
            self.base,
            self.quote,
            self.market_type,
            _SIDES[self.sides[i]],  # side
            Decimal(amount),
            Decimal(price),
            Decimal(fee_cost),
            rest[:size],  # fee_currency
            self.times[i],  # timestamp
            Decimal(pnl) if pnl else None,  # exchange_realized_pnl
        )

    def order(self, i: int) -> OrderKey:
        """The order key of the ``i``-th stored trade."""
        ids = self.ids
        if isinstance(ids, array):  # canonical numbers: what order_key would make of them
            return (self.times[i], (0, ids[i]), self.sides[i])
        return order_key(self.times[i], ids[i], _SIDES[self.sides[i]])

    def rank(self, i: int) -> Rank:
        """The processing rank of the ``i``-th stored trade."""
        return (self.order(i), str(self.ids[i]))

    def in_rank_order(self) -> range | list[int]:
        """The indexes in processing order: as stored when ordered, or when every trade came after
        the one before (late pages read forward), else sorted."""
        if self._ordered or self._keys is None:
            return range(len(self.times))
        return sorted(range(len(self.times)), key=self.rank)

    def record(self, i: int) -> str:
        """The ``i``-th trade's text record, for :meth:`append` to reuse when replaying it."""
        return self._records[i]

    def _index_keys(self) -> dict[str, None]:
        if self._keys is None:
            self._keys = {_key(str(i), s): None for i, s in zip(self.ids, self.sides, strict=True)}
            self._last_rank = self.rank(len(self) - 1) if len(self) and self._ordered else None
        return self._keys


def _key(trade_id: str, side: int) -> str:
    """An ``(id, side)`` pair as one string (side 0 buy, 1 sell)."""
    return _KEY_SIDES[side] + trade_id


_KEY_SIDES = ("b", "s")


def _record(trade: Trade) -> str:
    """The fields of ``trade`` without a column, as text (:func:`_records`)."""
    (record,) = _records(columns_of([trade]))
    return record


def _records(run: TradeColumns) -> list[str]:
    """The records of the trades of ``run``: the decimals (``str`` keeps their exponent; no exchange
    pnl, an empty field), then the fee currency's length, the fee currency and the order id (which
    may hold any character). One comprehension, without a call per trade: this runs for every trade
    stored."""
    currencies = {currency: f"{len(currency)} {currency}" for currency in set(run.fee_currency)}
    pnls = run.exchange_realized_pnl
    if pnls.count(None) == len(pnls):  # none reported (spot)
        return [
            f"{amount!s} {price!s} {fee_cost!s}  {currencies[currency]}{order_id}"
            for amount, price, fee_cost, currency, order_id in zip(
                run.amount, run.price, run.fee_cost, run.fee_currency, run.order_id, strict=True
            )
        ]
    return [
        f"{amount!s} {price!s} {fee_cost!s} {'' if pnl is None else pnl!s} {currencies[currency]}{order_id}"
        for amount, price, fee_cost, pnl, currency, order_id in zip(
            run.amount, run.price, run.fee_cost, pnls, run.fee_currency, run.order_id, strict=True
        )
    ]
