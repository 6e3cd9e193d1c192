"""One session's ledger: deduplicated trades, their valuation, FIFO pairing and running figures."""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from itertools import islice

from perf_aggregator.ledger.fifo import FifoBook
from perf_aggregator.ledger.prices import PriceBook, valuation_needs
from perf_aggregator.ledger.trades import OrderKey, Trade, TradeKey
from perf_aggregator.metrics import documents
from perf_aggregator.metrics.figures import SymbolFigures
from perf_aggregator.metrics.precision import CONTEXT

_Rank = tuple[OrderKey, str]
"""Processing order within a symbol: the order key, then the raw id, so that ids equal as
integers but spelled differently (``7``, ``007``) still have one order whatever the arrival."""

_Valuation = tuple[Decimal, Decimal, Decimal]
"""``(value_usd, fee_usd, quote_rate)`` of a priced trade."""


@dataclass(frozen=True, slots=True)
class PricedTrade:
    """A stored trade with its USD value and fee (both ``None`` while unpriced)."""

    trade: Trade
    value_usd: Decimal | None
    fee_usd: Decimal | None


@dataclass(slots=True)
class _Entry:
    trade: Trade
    rank: _Rank
    valuation: _Valuation | None = None  # set once, when first priced: rates are final


@dataclass(slots=True)
class _SymbolState:
    figures: SymbolFigures
    book: FifoBook
    entries: list[_Entry] = field(default_factory=list)
    """Every trade of the symbol; sorted by rank unless the symbol is stale."""
    unpriced: list[_Entry] = field(default_factory=list)


def _rank(entry: _Entry) -> _Rank:
    return entry.rank


class Ledger:
    """Trades of one session, processed in order into FIFO lots and running per-symbol figures.

    Prices come from the exchange's shared :class:`PriceBook`. A trade older than one already
    processed, or a trade that becomes priceable, marks its symbol stale; a stale symbol is
    replayed from its stored trades before the next read, so results never depend on arrival
    order and each read pays at most once for the late arrivals since the previous one.
    """

    __slots__ = ("_keys", "_prices", "_stale", "_states")

    def __init__(self, prices: PriceBook) -> None:
        self._prices = prices
        self._keys: set[TradeKey] = set()
        self._states: dict[str, _SymbolState] = {}
        self._stale: set[str] = set()

    def __len__(self) -> int:
        """Distinct trades stored."""
        return len(self._keys)

    def add(self, trades: Iterable[Trade]) -> int:
        """Store and process the trades not seen yet (by ``trade.key``); returns how many were new."""
        keys = self._keys
        fresh: list[_Entry] = []
        for trade in trades:
            key = trade.key
            if key not in keys:
                keys.add(key)
                fresh.append(_Entry(trade, (trade.order, trade.id)))
        fresh.sort(key=_rank)
        stale = self._stale
        with localcontext(CONTEXT):
            for entry in fresh:
                symbol = entry.trade.symbol
                state = self._states.get(symbol) or self._new_state(entry.trade)
                entries = state.entries
                entries.append(entry)
                if symbol in stale or (len(entries) > 1 and entry.rank < entries[-2].rank):
                    stale.add(symbol)  # replayed in order before the next read
                else:
                    self._process(state, entry)
        return len(fresh)

    def revalue(self) -> bool:
        """Re-process the symbols whose unpriced trades can now be priced; whether any could."""
        self._settle()
        changed = False
        for symbol, state in self._states.items():
            if any(self._valuation(e.trade) is not None for e in state.unpriced):
                self._stale.add(symbol)
                changed = True
        return changed

    def unpriced_needs(self) -> set[tuple[str, int]]:
        """``(currency, t_ms)`` pairs of the unpriced trades, for ``PriceBook.missing_ranges``."""
        self._settle()
        return valuation_needs(entry.trade for state in self._states.values() for entry in state.unpriced)

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
            states = list(self._states.values())
        else:
            states = [self._states[symbol]] if symbol in self._states else []
        sources: list[Iterator[_Entry]] = []
        for state in states:
            entries = state.entries
            if after is None:
                start = 0
            elif after_symbol is not None and state.figures.symbol > after_symbol:
                start = bisect_left(entries, after, key=_order_of)  # (after, this symbol) not yet listed
            else:
                start = bisect_right(entries, after, key=_order_of)
            sources.append(map(entries.__getitem__, range(start, len(entries))))
        page = islice(heapq.merge(*sources, key=_listing_key), max(limit, 0))
        return [_priced(e) for e in page]

    def figures(self) -> list[SymbolFigures]:
        """The running figures of each traded symbol, ordered by symbol (live objects: read only)."""
        self._settle()
        return [self._states[s].figures for s in sorted(self._states)]

    def symbol_documents(self) -> list[documents.Document]:
        """The metrics document's ``symbols``."""
        return documents.symbol_documents(self.figures())

    def totals_document(self) -> documents.Document:
        """The metrics document's ``totals``."""
        return documents.totals_document(self.figures())

    def summary_figures(self, as_of_ms: int) -> documents.Document:
        """The figure fields of the signed summary as of ``as_of_ms``."""
        return documents.summary_figures(self.figures(), as_of_ms)

    def _new_state(self, trade: Trade) -> _SymbolState:
        state = _SymbolState(_new_figures(trade), FifoBook(trade.market_type))
        self._states[trade.symbol] = state
        return state

    def _settle(self) -> None:
        """Replay the stale symbols from their stored trades."""
        if not self._stale:
            return
        with localcontext(CONTEXT):
            for symbol in self._stale:
                state = self._states[symbol]
                state.entries.sort(key=_rank)
                first = state.entries[0].trade
                state.figures = _new_figures(first)
                state.book = FifoBook(first.market_type)
                state.unpriced = []
                for entry in state.entries:
                    self._process(state, entry)
        self._stale.clear()

    def _process(self, state: _SymbolState, entry: _Entry) -> None:
        """Apply one trade, the newest of its symbol so far (runs in the ledger's decimal context)."""
        trade = entry.trade
        figures = state.figures
        figures.record_trade(trade.timestamp)
        valuation = entry.valuation
        if valuation is None:
            valuation = entry.valuation = self._valuation(trade)
            if valuation is None:
                figures.record_unpriced()
                state.unpriced.append(entry)
                return
        value_usd, fee_usd, quote_rate = valuation
        figures.record_valued(value_usd, fee_usd)
        book = state.book
        closed = book.apply(trade, fee_usd, quote_rate)
        if closed is not None:
            figures.record_close(
                closed.timestamp,
                closed.quantity,
                closed.pnl_usd,
                closed.cost_basis_usd,
                closed.holding_ms_quantity,
            )
        figures.open_quantity = book.position
        figures.unmatched_quantity = book.unmatched

    def _valuation(self, trade: Trade) -> _Valuation | None:
        # The quote's rate is needed even for the value (cost > 0), and again for the lot's cost
        # basis and the pnl of closes, so it is looked up once and kept.
        quote_rate = self._prices.rate(trade.quote, trade.timestamp)
        if quote_rate is None:
            return None
        fee_usd = self._prices.usd(trade.fee_cost, trade.fee_currency, trade.timestamp)
        if fee_usd is None:
            return None
        return (trade.cost * quote_rate, fee_usd, quote_rate)


def _new_figures(trade: Trade) -> SymbolFigures:
    return SymbolFigures(trade.symbol, trade.base, trade.quote, trade.market_type)


def _order_of(entry: _Entry) -> OrderKey:
    return entry.rank[0]


def _listing_key(entry: _Entry) -> tuple[OrderKey, str]:
    return (entry.rank[0], entry.trade.symbol)


def _priced(entry: _Entry) -> PricedTrade:
    valuation = entry.valuation
    if valuation is None:
        return PricedTrade(entry.trade, None, None)
    return PricedTrade(entry.trade, valuation[0], valuation[1])
