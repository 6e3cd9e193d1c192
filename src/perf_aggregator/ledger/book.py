"""One session's ledger: deduplicated trades, their valuation, FIFO pairing and running figures."""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from itertools import chain, groupby, islice
from operator import attrgetter

from perf_aggregator.ledger.fifo import FifoBook
from perf_aggregator.ledger.prices import (
    MINUTE_MS,
    ONE,
    STABLECOINS,
    ZERO_FEE_RATE,
    PriceBook,
    valuation_needs,
)
from perf_aggregator.ledger.store import Rank, SymbolTrades, gallop, rank_of
from perf_aggregator.ledger.trades import OrderKey, Trade, TradeColumns, check_values, columns_of
from perf_aggregator.metrics import documents
from perf_aggregator.metrics.daily import DailyPnl
from perf_aggregator.metrics.figures import SymbolFigures, Totals
from perf_aggregator.metrics.precision import EXACT

_ZERO = Decimal(0)
_REPLAY_PAGE = 1000
"""Trades rebuilt at once by a replay."""


@dataclass(frozen=True, slots=True)
class PricedTrade:
    """A stored trade with its USD value and fee (both ``None`` while unpriced)."""

    trade: Trade
    value_usd: Decimal | None
    fee_usd: Decimal | None


@dataclass(slots=True)
class _Symbol:
    """One symbol: its stored (processed) trades, FIFO book and figures, and late arrivals."""

    trades: SymbolTrades
    figures: SymbolFigures
    book: FifoBook
    unpriced: list[int] = field(default_factory=list)
    """Indexes in ``trades`` of the unpriced ones."""
    late: SymbolTrades | None = None
    """Trades older than the newest processed one, in arrival order, waiting for the replay
    (they are not in ``trades`` yet)."""
    stale: bool = False
    """Whether the symbol must be replayed before the next read (late trades, or unpriced ones
    that can now be priced)."""
    document: documents.Document | None = None
    """The cached ``symbols`` item; ``None`` when the figures changed since it was built."""

    def holds(self, trade: Trade) -> bool:
        """Whether this trade (by id and side) is already stored or waiting."""
        late = self.late
        return self.trades.contains(trade.id, trade.side) or (
            late is not None and late.contains(trade.id, trade.side)
        )


class Ledger:
    """Trades of one session, processed in order into FIFO lots and running per-symbol figures.

    Prices come from the exchange's shared :class:`PriceBook`. A trade older than one already
    processed, or a trade that becomes priceable, marks its symbol stale; a stale symbol is
    replayed from its stored trades before the next read, so results never depend on arrival
    order and each read pays at most once for the late arrivals since the previous one.

    Reads cost the same whatever the number of trades: per-symbol documents are cached until
    their symbol changes, totals are sums over the symbols, and the summary's daily statistics
    come from the running sums of :class:`~perf_aggregator.metrics.daily.DailyPnl`.
    """

    __slots__ = ("_daily", "_prices", "_stale", "_symbols", "_totals")

    def __init__(self, prices: PriceBook) -> None:
        self._prices = prices
        self._symbols: dict[str, _Symbol] = {}
        self._stale: set[str] = set()
        self._daily = DailyPnl()
        """The session's pnl by day: the sum of every symbol's ``daily_pnl_usd``."""
        self._totals: Totals | None = None
        """Cached sum of the symbols' figures; ``None`` after any change."""

    def __len__(self) -> int:
        """Distinct trades stored (processed or waiting for the replay)."""
        return sum(len(s.trades) + (0 if s.late is None else len(s.late)) for s in self._symbols.values())

    def add(self, trades: Iterable[Trade]) -> int:
        """Store and process the trades not seen yet (by ``trade.key``); returns how many were new.

        Trades that come after everything stored for their symbol are processed as they arrive
        (pages read forward in time), a run of one symbol at a time, repeats dropped; from the
        first older one on, the rest of the batch is deduplicated, sorted and then processed or
        set aside for the replay.
        """
        batch = trades if isinstance(trades, list) else list(trades)
        if not batch:
            return 0
        columns = columns_of(batch)
        check_values(columns)  # before anything is stored
        one_symbol = columns.symbol.count(batch[0].symbol) == len(batch)  # a page, usually
        runs: Iterator[tuple[str, Iterable[Trade]]] = (
            iter(((batch[0].symbol, batch),)) if one_symbol else groupby(batch, _symbol_of)
        )
        added = 0
        symbols = self._symbols
        try:
            with localcontext(EXACT):
                for symbol, group in runs:
                    run = list(group)
                    state = symbols.get(symbol) or self._new_symbol(run[0])
                    if state.stale:
                        count, older = self._set_aside(state, run)
                    else:
                        count, older = self._run(state, run, columns if one_symbol else None)
                    added += count
                    if older >= 0:
                        rest = chain(run[older:], chain.from_iterable(group for _, group in runs))
                        added += self._add_unordered(rest)
                        break
        finally:
            self._totals = None  # also after a failure: what was stored is in the figures, or stale
        return added

    def _run(self, state: _Symbol, run: list[Trade], columns: TradeColumns | None = None) -> tuple[int, int]:
        """Value, store and record ``run`` (trades of ``state``'s symbol, which is not stale; also as
        ``columns`` when the caller has them), up to the first one older than the stored ones,
        skipping repeats. Returns how many were new and the position of that older one (-1 when
        none was)."""
        if columns is None:
            columns = columns_of(run)
        quote_rates, fee_rates = self._valued(columns, state.trades.quote)
        return self._store_and_record(state, run, columns, quote_rates, fee_rates)

    def _set_aside(self, state: _Symbol, run: list[Trade]) -> tuple[int, int]:
        """For a stale symbol: set ``run`` (trades of its symbol) aside for the replay in one go
        when they are all older than its processed trades and fit :meth:`SymbolTrades.extend` on
        its late ones (history pages read forward after the newest one). Returns as :meth:`_run`
        does; position 0 when the run must go through :meth:`_add_unordered` instead."""
        stored = state.trades
        if not stored or rank_of(run[-1]) < stored.rank(0):  # none can be a processed one
            unvalued: list[Decimal | None] = [None] * len(run)
            skipped = _late_of(state).extend(columns_of(run), unvalued, unvalued)
            if skipped is not None:
                return len(run) - skipped, -1
        return 0, 0

    def _valued(self, run: TradeColumns, quote: str) -> tuple[list[Decimal | None], list[Decimal | None]]:
        """USD per quote unit and per fee currency unit of each trade of ``run`` (of one symbol,
        quoted in ``quote``) at its time: both ``None`` when either is missing (unpriced), and a zero
        fee's rate :data:`ZERO_FEE_RATE`. As :meth:`_rates`, for a page: the candles containing the
        trades are looked up by minute, in one pass when every one is there (the usual case), else
        trade by trade, asking the price book for those that are not."""
        prices = self._prices
        closes_of = prices.minute_closes
        times = run.timestamp
        fee_closes = {
            currency: closes_of(currency)
            for currency in set(run.fee_currency)
            if currency != quote and currency not in STABLECOINS
        }
        try:
            if quote in STABLECOINS:
                quote_rates: list[Decimal | None] = [ONE] * len(times)
            else:
                quote_closes = closes_of(quote)
                quote_rates = [quote_closes[t - t % MINUTE_MS] for t in times]
            fee_rates: list[Decimal | None] = [
                ZERO_FEE_RATE
                if not fee_cost
                else quote_rate
                if currency == quote
                else ONE
                if currency in STABLECOINS
                else fee_closes[currency][t - t % MINUTE_MS]
                for fee_cost, currency, t, quote_rate in zip(
                    run.fee_cost, run.fee_currency, times, quote_rates, strict=True
                )
            ]
        except KeyError:  # a candle not there by minute: trade by trade
            rates = self._rates
            quote_rates, fee_rates = [], []
            for trade_rates in map(rates, run.quote, run.fee_currency, run.fee_cost, times):
                quote_rate, fee_rate = trade_rates or (None, None)
                quote_rates.append(quote_rate)
                fee_rates.append(fee_rate)
        return quote_rates, fee_rates

    def _store_and_record(
        self,
        state: _Symbol,
        run: list[Trade],
        columns: TradeColumns,
        quote_rates: list[Decimal | None],
        fee_rates: list[Decimal | None],
        records: list[str] | None = None,
    ) -> tuple[int, int]:
        """Store, in order, the trades of ``run`` (one symbol's, also as ``columns``, valued at the
        given rates, ``None`` for unpriced; ``records`` their stored text when replayed) that are
        new, up to the first one older than the stored ones, then record them in the figures and
        the FIFO book in one :meth:`FifoBook.record`. Returns how many were new and the position
        of that older one (-1 when none was). Runs in the ledger's decimal context.
        """
        stored = state.trades
        older = -1
        skipped = stored.extend(columns, quote_rates, fee_rates, records)
        if skipped is None:  # one at a time
            new: list[Trade] = []
            new_quote_rates: list[Decimal | None] = []
            new_fee_rates: list[Decimal | None] = []
            try:
                for i, trade in enumerate(run):
                    record = None if records is None else records[i]
                    if stored.append(trade, quote_rates[i], fee_rates[i], record):
                        new.append(trade)
                        new_quote_rates.append(quote_rates[i])
                        new_fee_rates.append(fee_rates[i])
                    elif not state.holds(trade):
                        older = i
                        break
                    # else a repeat (pages overlap by a trade)
            finally:  # the stored trades are recorded, also when a later one raised
                self._record(state, columns_of(new), new_quote_rates, new_fee_rates)
            return len(new), older
        if skipped:
            columns, quote_rates, fee_rates = (
                columns.tail(skipped),
                quote_rates[skipped:],
                fee_rates[skipped:],
            )
        self._record(state, columns, quote_rates, fee_rates)
        return len(columns.id), older

    def _record(
        self,
        state: _Symbol,
        run: TradeColumns,
        quote_rates: list[Decimal | None],
        fee_rates: list[Decimal | None],
    ) -> None:
        """Record ``run`` (as columns), the trades just stored last for ``state``'s symbol, in its
        figures, FIFO book and unpriced list, and their pnl in the session's days. If recording
        raises, the symbol is marked stale: its state is rebuilt from the stored trades before the
        next read."""
        if not run.id:
            return
        figures, book = state.figures, state.book
        unpriced = figures.unpriced_trades
        state.document = None
        try:
            days = book.record(run, quote_rates, fee_rates, figures)
        except BaseException:
            self._mark_stale(state)
            raise
        figures.open_quantity, figures.unmatched_quantity = book.position, book.unmatched
        own, add_day = figures.daily_pnl_usd, self._daily.add
        for day, pnl in days.items():
            own[day] = EXACT.add(own.get(day, _ZERO), pnl)
            add_day(day, pnl)
        if figures.unpriced_trades != unpriced:
            first = len(state.trades) - len(run.id)
            state.unpriced.extend(first + i for i, r in enumerate(quote_rates) if r is None)

    def revalue(self) -> bool:
        """Re-process the symbols whose unpriced trades can now be priced; whether any could."""
        self._settle()
        changed = False
        for state in self._symbols.values():
            stored = state.trades
            if any(self._rates(*_valuation_fields(stored.trade(i))) is not None for i in state.unpriced):
                self._mark_stale(state)
                changed = True
        return changed

    def unpriced_needs(self) -> set[tuple[str, int]]:
        """``(currency, t_ms)`` pairs of the unpriced trades, for ``PriceBook.missing_ranges``."""
        self._settle()
        return valuation_needs(s.trades.trade(i) for s in self._symbols.values() for i in s.unpriced)

    def trades(
        self,
        symbol: str | None = None,
        after: OrderKey | None = None,
        limit: int = 100,
        *,
        after_symbol: str | None = None,
    ) -> list[PricedTrade]:
        """Up to ``limit`` stored trades, oldest first, ordered by ``(trade.order, symbol)``.

        ``after`` skips trades up to that order key: all of them, or, with ``after_symbol``,
        those up to ``(after, after_symbol)`` (exact paging when two symbols share an order key,
        as per-symbol ids can on Binance).
        """
        self._settle()
        if symbol is None:
            stores = [s.trades for s in self._symbols.values()]
        else:
            stores = [self._symbols[symbol].trades] if symbol in self._symbols else []
        sources: list[Iterator[tuple[OrderKey, str, int, SymbolTrades]]] = []
        for stored in stores:
            if after is None:
                start = 0
            elif after_symbol is not None and stored.symbol > after_symbol:
                # (after, this symbol) is not listed yet
                start = bisect_left(range(len(stored)), after, key=stored.order)
            else:
                start = bisect_right(range(len(stored)), after, key=stored.order)
            sources.append(_listed(stored, start))
        page = islice(heapq.merge(*sources), max(limit, 0))
        with localcontext(EXACT):
            return [_priced(stored, i) for _, _, i, stored in page]

    def figures(self) -> list[SymbolFigures]:
        """The running figures of each traded symbol, ordered by symbol (live objects: read only)."""
        self._settle()
        return [self._symbols[s].figures for s in sorted(self._symbols)]

    def symbol_documents(self) -> list[documents.Document]:
        """The metrics document's ``symbols``."""
        self._settle()
        items = []
        for symbol in sorted(self._symbols):
            state = self._symbols[symbol]
            if state.document is None:
                (state.document,) = documents.symbol_documents([state.figures])
            items.append(dict(state.document))
        return items

    def totals_document(self) -> documents.Document:
        """The metrics document's ``totals``."""
        return documents.totals_of(self._totals_now())

    def summary_figures(self, as_of_ms: int) -> documents.Document:
        """The figure fields of the signed summary as of ``as_of_ms``."""
        return documents.summary_of(self._totals_now(), self._daily, as_of_ms)

    def _totals_now(self) -> Totals:
        self._settle()
        if self._totals is None:
            self._totals = Totals.of((s.figures for s in self._symbols.values()), daily=False)
        return self._totals

    def _new_symbol(self, like: Trade | SymbolTrades) -> _Symbol:
        """A new, empty state for the symbol of ``like`` (replacing any)."""
        symbol, base, quote, market_type = like.symbol, like.base, like.quote, like.market_type
        state = _Symbol(
            SymbolTrades(symbol, base, quote, market_type),
            SymbolFigures(symbol, base, quote, market_type),
            FifoBook(market_type),
        )
        self._symbols[symbol] = state
        return state

    def _add_unordered(self, trades: Iterable[Trade]) -> int:
        """Deduplicate ``trades`` (first seen wins), then process them in order."""
        symbols = self._symbols
        seen: set[tuple[str, str, str]] = set()
        fresh: list[tuple[Rank, Trade]] = []
        for trade in trades:
            state = symbols.get(trade.symbol)
            key = trade.key
            if key in seen or (state is not None and state.holds(trade)):
                continue
            seen.add(key)
            fresh.append((rank_of(trade), trade))
        fresh.sort(key=_first)
        for _, trade in fresh:
            state = symbols.get(trade.symbol) or self._new_symbol(trade)
            if state.stale or not self._run(state, [trade])[0]:
                _late_of(state).append(trade, None, None)
                self._mark_stale(state)  # replayed in order before the next read
        return len(fresh)

    def _mark_stale(self, state: _Symbol) -> None:
        state.stale = True
        self._stale.add(state.trades.symbol)

    def _settle(self) -> None:
        """Replay the stale symbols: their stored trades and late arrivals, merged in order."""
        if not self._stale:
            return
        with localcontext(EXACT):
            for symbol in sorted(self._stale):
                self._replay(self._symbols[symbol])
        self._stale.clear()
        self._totals = None

    def _replay(self, state: _Symbol) -> None:
        """Rebuild ``state`` from its stored trades and its late ones, merged in order a run at a
        time (runs found by galloping: ranks are costly to rebuild for every trade)."""
        old, daily = state.trades, self._daily
        subtracted: list[tuple[int, Decimal]] = []
        fresh: _Symbol | None = None
        try:
            for day, pnl in state.figures.daily_pnl_usd.items():
                daily.subtract(day, pnl)
                subtracted.append((day, pnl))
            fresh = self._new_symbol(old)
            self._replay_into(fresh, old, state.late)
        except BaseException:  # the old state stays, stale: the next read replays it again
            if fresh is not None:
                for day, pnl in fresh.figures.daily_pnl_usd.items():
                    daily.subtract(day, pnl)
            for day, pnl in subtracted:
                daily.add(day, pnl)
            self._symbols[old.symbol] = state
            raise

    def _replay_into(self, fresh: _Symbol, old: SymbolTrades, late: SymbolTrades | None) -> None:
        """Record ``old``'s trades and the ``late`` ones in ``fresh``, merged in order."""
        i = 0
        if late is not None:
            order = late.in_rank_order()

            def late_rank(k: int) -> Rank:
                return late.rank(order[k])

            k = 0
            while k < len(order) and i < len(old):
                stop = gallop(len(order), late_rank, old.rank(i), k)
                self._replay_run(fresh, late, order[k:stop])
                k = stop
                if k < len(order):
                    stop = gallop(len(old), old.rank, late_rank(k), i)
                    self._replay_run(fresh, old, range(i, stop))
                    i = stop
            self._replay_run(fresh, late, order[k:])
        self._replay_run(fresh, old, range(i, len(old)))

    def _replay_run(self, state: _Symbol, source: SymbolTrades, indexes: Sequence[int]) -> None:
        """Replay ``source``'s trades at ``indexes`` (in processing order) into ``state``, reusing
        their records and the rates they were valued at (final); unpriced ones are looked up again.
        A page at a time, so that only a page of trades is rebuilt at once."""
        rates = self._rates
        for start in range(0, len(indexes), _REPLAY_PAGE):
            chunk = indexes[start : start + _REPLAY_PAGE]
            run = [source.trade(j) for j in chunk]
            quote_rates = [source.quote_rates[j] for j in chunk]
            fee_rates = [source.fee_rates[j] for j in chunk]
            for n, trade in enumerate(run):
                if quote_rates[n] is None or fee_rates[n] is None:
                    quote_rates[n], fee_rates[n] = rates(*_valuation_fields(trade)) or (None, None)
            records = [source.record(j) for j in chunk]
            count, older = self._store_and_record(
                state, run, columns_of(run), quote_rates, fee_rates, records
            )
            if older >= 0 or count != len(run):
                raise AssertionError("a replayed trade is out of order")

    def _rates(
        self, quote: str, fee_currency: str, fee_cost: Decimal, timestamp: int
    ) -> tuple[Decimal, Decimal] | None:
        """USD per quote unit and per fee currency unit of a trade at its time (``None`` if either
        is missing); a zero fee needs no rate and gets 0 (its ``fee_usd`` is 0 whatever the price)."""
        # PriceBook.rate gives ONE for stablecoins too; asking here first saves the call.
        quote_rate = ONE if quote in STABLECOINS else self._prices.rate(quote, timestamp)
        if quote_rate is None:
            return None
        if not fee_cost:
            return quote_rate, ZERO_FEE_RATE
        fee_rate = ONE if fee_currency in STABLECOINS else self._prices.rate(fee_currency, timestamp)
        return None if fee_rate is None else (quote_rate, fee_rate)


def _listed(stored: SymbolTrades, start: int) -> Iterator[tuple[OrderKey, str, int, SymbolTrades]]:
    """The stored trades from ``start`` on, with their listing order ``(order, symbol, index)``."""
    symbol = stored.symbol
    for i in range(start, len(stored)):
        yield stored.order(i), symbol, i, stored


def _late_of(state: _Symbol) -> SymbolTrades:
    """The symbol's late trades (an empty store, new, when it has none)."""
    if state.late is None:
        stored = state.trades
        state.late = SymbolTrades(stored.symbol, stored.base, stored.quote, stored.market_type, ordered=False)
    return state.late


_symbol_of = attrgetter("symbol")
_valuation_fields = attrgetter("quote", "fee_currency", "fee_cost", "timestamp")
"""A trade's fields that :meth:`Ledger._rates` takes."""


def _first(item: tuple[Rank, Trade]) -> Rank:
    return item[0]


def _usd(amount: Decimal, rate: Decimal) -> Decimal:
    """``amount`` at ``rate`` (from :meth:`Ledger._rates`; skips the product for the common rates)."""
    if rate is ONE:
        return amount
    if rate is ZERO_FEE_RATE:
        return _ZERO
    return amount * rate


def _priced(stored: SymbolTrades, i: int) -> PricedTrade:
    trade = stored.trade(i)
    quote_rate, fee_rate = stored.quote_rates[i], stored.fee_rates[i]
    if quote_rate is None or fee_rate is None:
        return PricedTrade(trade, None, None)
    return PricedTrade(trade, _usd(trade.cost, quote_rate), _usd(trade.fee_cost, fee_rate))
