"""One session's ledger: deduplicated trades, their valuation, FIFO pairing and running figures."""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from itertools import chain, islice

from perf_aggregator.ledger.fifo import FifoBook, PricedFill
from perf_aggregator.ledger.prices import ONE, STABLECOINS, PriceBook, valuation_needs
from perf_aggregator.ledger.store import Rank, SymbolTrades, gallop, rank_of
from perf_aggregator.ledger.trades import OrderKey, Trade
from perf_aggregator.metrics import documents
from perf_aggregator.metrics.daily import DailyPnl
from perf_aggregator.metrics.figures import SymbolFigures, Totals
from perf_aggregator.metrics.precision import CONTEXT

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

    __slots__ = ("_count", "_daily", "_prices", "_stale", "_symbols", "_totals")

    def __init__(self, prices: PriceBook) -> None:
        self._prices = prices
        self._symbols: dict[str, _Symbol] = {}
        self._stale: set[str] = set()
        self._daily = DailyPnl()
        """The session's pnl by day: the sum of every symbol's ``daily_pnl_usd``."""
        self._count = 0
        self._totals: Totals | None = None
        """Cached sum of the symbols' figures; ``None`` after any change."""

    def __len__(self) -> int:
        """Distinct trades stored."""
        return self._count

    def add(self, trades: Iterable[Trade]) -> int:
        """Store and process the trades not seen yet (by ``trade.key``); returns how many were new.

        Trades that come after everything stored for their symbol are processed as they arrive
        (pages read forward in time), repeats dropped; from the first older one on, the rest of
        the batch is deduplicated, sorted and then processed or set aside for the replay.
        """
        added = 0
        symbols = self._symbols
        with localcontext(CONTEXT):
            iterator = iter(trades)
            trade = next(iterator, None)
            while trade is not None:
                state = symbols.get(trade.symbol)
                if state is None:
                    state = self._new_symbol(trade)
                    count, trade = self._run(state, trade, iterator)
                else:
                    count, trade = (self._set_aside if state.stale else self._run)(state, trade, iterator)
                added += count
        if added:
            self._count += added
            self._totals = None
        return added

    def _run(self, state: _Symbol, trade: Trade, rest: Iterator[Trade]) -> tuple[int, Trade | None]:
        """Process ``trade`` and the trades after it in ``rest`` while they are of its symbol
        (``state``, not stale) and come in order, skipping repeats; from an older one on, hand the
        rest to :meth:`_add_unordered`. Returns how many were new and the first trade of another
        symbol (``None`` once ``rest`` is used up).

        Pages read forward go a run at a time: the run is valued, then stored in one go when it
        can be (:meth:`SymbolTrades.extend`), then paired (:meth:`_store_and_pair`).
        """
        symbol, quote = state.trades.symbol, state.trades.quote
        run = [trade]
        following = next(rest, None)
        while following is not None and following.symbol == symbol:
            run.append(following)
            following = next(rest, None)
        quote_rates, fee_rates = self._valued(run, quote)
        count, older = self._store_and_pair(state, run, quote_rates, fee_rates)
        if older >= 0:
            later = run[older + 1 :]
            if following is not None:  # already taken from rest
                later.append(following)
            return count + self._add_unordered(run[older], chain(later, rest)), None
        return count, following

    def _set_aside(self, state: _Symbol, trade: Trade, rest: Iterator[Trade]) -> tuple[int, Trade | None]:
        """For a stale symbol: set ``trade`` and the trades after it in ``rest`` while they are of
        its symbol aside for the replay, as :meth:`_add_unordered` would; in one go when they are
        all older than its processed trades and fit :meth:`SymbolTrades.extend` on its late ones
        (history pages read forward after the newest one). Returns as :meth:`_run` does."""
        run = [trade]
        symbol = trade.symbol
        following = next(rest, None)
        while following is not None and following.symbol == symbol:
            run.append(following)
            following = next(rest, None)
        stored = state.trades
        if not stored or rank_of(run[-1]) < stored.rank(0):  # none can be a processed one
            unvalued: list[Decimal | None] = [None] * len(run)
            skipped = _late_of(state).extend(run, unvalued, unvalued)
            if skipped is not None:
                return len(run) - skipped, following
        if following is not None:
            run.append(following)
        return self._add_unordered(run[0], chain(run[1:], rest)), None

    def _valued(self, run: list[Trade], quote: str) -> tuple[list[Decimal | None], list[Decimal | None]]:
        """USD per quote unit and per fee currency unit of each trade of ``run`` (of one symbol,
        quoted in ``quote``) at its time: both ``None`` when either is missing (unpriced), and a zero
        fee's rate 0 (its ``fee_usd`` is 0 whatever the price). As :meth:`_rates`, for a page."""
        rate = self._prices.rate
        stable_quote = quote in STABLECOINS
        quote_rates: list[Decimal | None] = []
        fee_rates: list[Decimal | None] = []
        for trade in run:
            timestamp = trade.timestamp
            quote_rate = ONE if stable_quote else rate(quote, timestamp)
            if not trade.fee_cost:
                fee_rate: Decimal | None = _ZERO
            elif (currency := trade.fee_currency) == quote:
                fee_rate = quote_rate  # the fee currency's rate is the quote's
            else:
                fee_rate = ONE if currency in STABLECOINS else rate(currency, timestamp)
            if quote_rate is None or fee_rate is None:
                quote_rate = fee_rate = None
            quote_rates.append(quote_rate)
            fee_rates.append(fee_rate)
        return quote_rates, fee_rates

    def _store_and_pair(
        self,
        state: _Symbol,
        run: list[Trade],
        quote_rates: list[Decimal | None],
        fee_rates: list[Decimal | None],
        records: list[str] | None = None,
    ) -> tuple[int, int]:
        """Store, in order, the trades of ``run`` (one symbol's, valued at the given rates, ``None``
        for unpriced; ``records`` their stored text when replayed) that are new, up to the first one
        older than the stored ones, then pair the priced ones in one :meth:`FifoBook.pair`. Returns
        how many were new and the position of that older one (-1 when none was). Runs in the
        ledger's decimal context; the symbol's running sums are held in locals and written back
        once, with the same operations in the same order as a trade at a time.
        """
        stored, figures, book = state.trades, state.figures, state.book
        skipped = stored.extend(run, quote_rates, fee_rates, records)
        append = None if skipped is not None else stored.append
        unpriced = state.unpriced
        priced: list[PricedFill] = []
        count = 0
        start, end = figures.period_start_ms, figures.period_end_ms
        volume, fees = figures.volume_usd, figures.fees_usd
        older = -1
        try:
            for i in range(skipped or 0, len(run)):
                trade, quote_rate, fee_rate = run[i], quote_rates[i], fee_rates[i]
                if append is not None and not append(
                    trade, quote_rate, fee_rate, None if records is None else records[i]
                ):
                    if state.holds(trade):
                        continue  # a repeat (pages overlap by a trade)
                    older = i
                    break
                count += 1
                timestamp = trade.timestamp
                if start is None or timestamp < start:
                    start = timestamp
                if end is None or timestamp > end:
                    end = timestamp
                if quote_rate is None or fee_rate is None:
                    unpriced.append(len(stored) - len(run) + i if append is None else len(stored) - 1)
                    figures.unpriced_trades += 1
                    continue
                fee_usd = _usd(trade.fee_cost, fee_rate)
                volume += trade.cost if quote_rate is ONE else trade.cost * quote_rate
                fees += fee_usd
                priced.append((trade, fee_usd, quote_rate))
        finally:
            figures.trades += count
            figures.period_start_ms, figures.period_end_ms = start, end
            if priced:  # paired in one go: the stored trades, also when a later one raised
                figures.volume_usd, figures.fees_usd = volume, fees
                add_day = self._daily.add
                for day, pnl in book.pair(priced, figures).items():
                    add_day(day, pnl)
                figures.open_quantity, figures.unmatched_quantity = book.position, book.unmatched
            if count:
                state.document = None
        return count, older

    def revalue(self) -> bool:
        """Re-process the symbols whose unpriced trades can now be priced; whether any could."""
        self._settle()
        changed = False
        for state in self._symbols.values():
            stored = state.trades
            if any(self._rates(stored.trade(i)) is not None for i in state.unpriced):
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
        with localcontext(CONTEXT):
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

    def _add_unordered(self, first: Trade, rest: Iterator[Trade]) -> int:
        """Deduplicate ``first`` and ``rest`` (first seen wins), then process them in order."""
        symbols = self._symbols
        seen: set[tuple[str, str, str]] = set()
        fresh: list[tuple[Rank, Trade]] = []
        for trade in (first, *rest):
            state = symbols.get(trade.symbol)
            key = trade.key
            if key in seen or (state is not None and state.holds(trade)):
                continue
            seen.add(key)
            fresh.append((rank_of(trade), trade))
        fresh.sort(key=_first)
        for _, trade in fresh:
            state = symbols.get(trade.symbol) or self._new_symbol(trade)
            if (
                state.stale
                or not self._store_and_pair(state, [trade], *self._valued([trade], trade.quote))[0]
            ):
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
        with localcontext(CONTEXT):
            for symbol in sorted(self._stale):
                self._replay(self._symbols[symbol])
        self._stale.clear()
        self._totals = None

    def _replay(self, state: _Symbol) -> None:
        """Rebuild ``state`` from its stored trades and its late ones, merged in order a run at a
        time (runs found by galloping: ranks are costly to rebuild for every trade)."""
        old = state.trades
        for day, pnl in state.figures.daily_pnl_usd.items():
            self._daily.subtract(day, pnl)
        fresh = self._new_symbol(old)
        i = 0
        late = state.late
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
                    quote_rates[n], fee_rates[n] = rates(trade) or (None, None)
            records = [source.record(j) for j in chunk]
            count, older = self._store_and_pair(state, run, quote_rates, fee_rates, records)
            if older >= 0 or count != len(run):
                raise AssertionError("a replayed trade is out of order")

    def _rates(self, trade: Trade) -> tuple[Decimal, Decimal] | None:
        """USD per quote unit and per fee currency unit at the trade's time (``None`` if either
        is missing); a zero fee needs no rate and gets 0 (its ``fee_usd`` is 0 whatever the price)."""
        quote, fee_currency, timestamp = trade.quote, trade.fee_currency, trade.timestamp
        # PriceBook.rate gives ONE for stablecoins too; asking here first saves the call.
        quote_rate = ONE if quote in STABLECOINS else self._prices.rate(quote, timestamp)
        if quote_rate is None:
            return None
        if not trade.fee_cost:
            return quote_rate, _ZERO
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


def _first(item: tuple[Rank, Trade]) -> Rank:
    return item[0]


def _usd(amount: Decimal, rate: Decimal) -> Decimal:
    """``amount`` at ``rate`` (from :meth:`Ledger._rates`; skips the product for the common rates)."""
    if rate is ONE:
        return amount
    if rate is _ZERO:  # the rate of a zero fee
        return _ZERO
    return amount * rate


def _priced(stored: SymbolTrades, i: int) -> PricedTrade:
    trade = stored.trade(i)
    quote_rate, fee_rate = stored.quote_rates[i], stored.fee_rates[i]
    if quote_rate is None or fee_rate is None:
        return PricedTrade(trade, None, None)
    return PricedTrade(trade, _usd(trade.cost, quote_rate), _usd(trade.fee_cost, fee_rate))
