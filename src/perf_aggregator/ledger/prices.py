"""USD valuation from the exchange's own 1-minute candles (METRICS.md "Valuation in USD")."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType

from perf_aggregator.ledger.trades import Trade, is_price

STABLECOINS: frozenset[str] = frozenset(
    {"USD", "USDT", "USDC", "FDUSD", "BUSD", "DAI", "TUSD", "USDP", "PYUSD", "USDS"}
)
"""Currencies worth exactly 1 USD."""

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
MAX_CANDLES_PER_FETCH = 1000

_PRICING_QUOTES = ("USDT", "USDC", "USD")
ONE = Decimal(1)
"""The rate of every stablecoin (one shared object: callers may test ``rate is ONE``)."""
_ZERO = Decimal(0)
ZERO_FEE_RATE = _ZERO
"""The rate a zero fee is valued at, whatever its currency's price (its USD value is 0): one shared
object, so that callers may test ``rate is ZERO_FEE_RATE`` and skip the product."""


class _Coverage:
    """Minute starts already fetched, as sorted, disjoint, merged inclusive intervals.

    1m candles open on whole UTC minutes, so coverage is kept in minute starts: two fetches
    that leave no minute start between them are one interval.
    """

    __slots__ = ("_ends", "_starts")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def add(self, start: int, end: int) -> None:
        start, end = _ceil_minute(start), _floor_minute(end)
        if start > end:
            return
        i = bisect_left(self._ends, start - MINUTE_MS)
        j = bisect_right(self._starts, end + MINUTE_MS)
        if i < j:
            start = min(start, self._starts[i])
            end = max(end, self._ends[j - 1])
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]

    def covers(self, start: int, end: int) -> bool:
        """Whether every minute start of ``[start, end]`` was fetched."""
        start, end = _ceil_minute(start), _floor_minute(end)
        i = bisect_right(self._starts, start) - 1
        return start > end or (i >= 0 and self._ends[i] >= end)

    def gaps(self, start: int, end: int) -> list[tuple[int, int]]:
        """The minute starts of ``[start, end]`` not fetched, as ``(first, last)`` intervals."""
        cursor, end = _ceil_minute(start), _floor_minute(end)
        gaps: list[tuple[int, int]] = []
        i = bisect_left(self._ends, cursor)
        while i < len(self._starts) and self._starts[i] <= end:
            if self._starts[i] > cursor:
                gaps.append((cursor, self._starts[i] - MINUTE_MS))
            cursor = self._ends[i] + MINUTE_MS
            i += 1
        if cursor <= end:
            gaps.append((cursor, end))
        return gaps


def _floor_minute(ms: int) -> int:
    return ms - ms % MINUTE_MS


def _ceil_minute(ms: int) -> int:
    return -_floor_minute(-ms)


class _Candles:
    """One market's candle closes by open time, and which open times have been fetched."""

    __slots__ = ("by_minute", "closes", "coverage", "times")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.closes: list[Decimal] = []
        self.coverage = _Coverage()
        self.by_minute: dict[int, Decimal] | None = {}
        """Closes by open time while every open time is a whole minute (else ``None``): the
        candle opening at ``t``'s minute start is the one ``t`` is valued at, no search needed."""

    def add(self, candles: Iterable[tuple[int, Decimal]]) -> None:
        fresh = dict(candles)  # a candle seen twice keeps its latest close
        if not fresh:
            return
        if self.by_minute is not None:
            if any(t % MINUTE_MS for t in fresh):
                self.by_minute = None
            else:
                self.by_minute.update(fresh)
        times, closes = self.times, self.closes
        first, last = min(fresh), max(fresh)
        # Only the stored stretch the batch overlaps is rebuilt (fetches normally fill gaps).
        i, j = bisect_left(times, first), bisect_right(times, last)
        merged = dict(zip(times[i:j], closes[i:j], strict=True))
        merged.update(fresh)
        ordered = sorted(merged)
        times[i:j] = ordered
        closes[i:j] = [merged[t] for t in ordered]

    def close_at(self, t_ms: int) -> Decimal | None:
        i = bisect_right(self.times, t_ms) - 1
        if i < 0:
            return None
        open_time = self.times[i]
        if open_time <= t_ms - HOUR_MS:
            return None
        # Answer only once final: a candle not fetched yet in (open_time, t] would be the one to use.
        if not self.coverage.covers(open_time + 1, t_ms):
            return None
        return self.closes[i]


_NOTHING_FETCHED = _Coverage()
_NO_CLOSES: Mapping[int, Decimal] = MappingProxyType({})


class PriceBook:
    """Candle closes of one exchange, shared by all its sessions, and the USD rates they give.

    A rate is given only when it is final: the candle found is the latest one that can exist
    in ``(t - 1h, t]``, as the fetched coverage proves. Callers must therefore record as fetched
    only minutes whose candle has closed. Candles open on whole UTC minutes.
    """

    __slots__ = ("_candles", "_markets", "_pricing", "_series")

    def __init__(self, markets: Iterable[str]) -> None:
        """``markets``: the exchange's unified market symbols (``BTC/USDT``, ``ETH/BTC``, ...)."""
        self._markets = frozenset(markets)
        self._pricing: dict[str, str | None] = {}
        self._candles: dict[str, _Candles] = {}
        self._series: dict[str, _Candles] = {}
        """The candles of each currency's pricing market, once it has some (a shortcut for :meth:`rate`)."""

    def minute_closes(self, currency: str) -> Mapping[int, Decimal]:
        """Closes of ``currency``'s pricing market by whole-minute open time, for a quick look-up
        before :meth:`rate`: the close found for ``t``'s minute start is ``rate(currency, t)``
        (the candle containing ``t``); a minute not found decides nothing. Empty when there is
        none to give. Live: read it before the book changes again."""
        series = None if currency in STABLECOINS else self._series_of(currency)
        by_minute = None if series is None else series.by_minute
        return _NO_CLOSES if by_minute is None else by_minute

    def _series_of(self, currency: str) -> _Candles | None:
        """The candles of ``currency``'s pricing market, once it has some (kept in ``_series``)."""
        series = self._series.get(currency)
        if series is None:
            market = self.pricing_market(currency)
            series = None if market is None else self._candles.get(market)
            if series is not None:
                self._series[currency] = series
        return series

    def pricing_market(self, currency: str) -> str | None:
        """The one market that prices ``currency``: first existing of CUR/USDT, CUR/USDC, CUR/USD.

        ``None`` for stablecoins and for currencies with none of these markets.
        """
        try:
            return self._pricing[currency]
        except KeyError:
            pass
        market = None
        if currency not in STABLECOINS:
            market = next((m for q in _PRICING_QUOTES if (m := f"{currency}/{q}") in self._markets), None)
        self._pricing[currency] = market
        return market

    def add_candles(
        self, market: str, start_ms: int, end_ms: int, candles: Iterable[tuple[int, Decimal]]
    ) -> None:
        """Store 1m candles ``(open_time_ms, close)`` fetched for open times in ``[start_ms, end_ms]``.

        The interval is recorded as fetched even where it holds no candle, so that "no candle
        there" is told from "not fetched yet". Candles may arrive in any order. A close that is
        not a price a market can have (:func:`is_price`: NaN, 0, 1E+30...) is no candle: it would
        make every value computed at that rate absurd, or every read of it raise.
        """
        series = self._candles.get(market)
        if series is None:
            series = self._candles[market] = _Candles()
        series.add((t, close) for t, close in candles if is_price(close))
        if start_ms <= end_ms:
            series.coverage.add(start_ms, end_ms)

    def rate(self, currency: str, t_ms: int) -> Decimal | None:
        """USD per unit of ``currency`` at ``t_ms``; ``None`` when it cannot be computed (yet).

        1 for stablecoins; else the close of the pricing market's latest candle with an open
        time in ``(t - 1h, t]``.
        """
        if currency in STABLECOINS:
            return ONE
        series = self._series.get(currency) or self._series_of(currency)
        if series is None:
            return None
        by_minute = series.by_minute
        if by_minute is not None:
            close = by_minute.get(t_ms - t_ms % MINUTE_MS)
            if close is not None:
                return close  # the candle containing t: nothing can open after it and before t
        return series.close_at(t_ms)

    def usd(self, amount: Decimal, currency: str, t_ms: int) -> Decimal | None:
        """``amount`` of ``currency`` in USD at ``t_ms``: 0 for a zero amount, ``None`` without a rate."""
        if not amount:
            return _ZERO
        rate = self.rate(currency, t_ms)
        return None if rate is None else amount * rate

    def missing(self, currency: str, t_ms: int) -> tuple[str, int, int] | None:
        """``(market, start_ms, end_ms)`` to fetch so that ``rate(currency, t_ms)`` can be decided.

        ``None`` when nothing is to fetch: a stablecoin, no pricing market, the rate is known,
        or the whole hour before ``t_ms`` was fetched and holds no candle.
        """
        market = self.pricing_market(currency)
        if market is None or self.rate(currency, t_ms) is not None:
            return None
        gaps = self._gaps(market, t_ms)
        return (market, gaps[0][0], gaps[-1][1]) if gaps else None

    def missing_ranges(
        self, needs: Iterable[tuple[str, int]], max_candles: int = MAX_CANDLES_PER_FETCH
    ) -> list[tuple[str, int, int]]:
        """Few ``(market, start_ms, end_ms)`` fetches that decide the rates of all ``needs``.

        ``needs`` are ``(currency, t_ms)`` pairs. Each range spans at most ``max_candles``
        minutes, and the unfetched parts of a market are packed greedily into as few ranges as
        possible (gaps between them are fetched too: a request costs more than its candles).
        Ranges start and end on needed minute starts (candles open on whole UTC minutes).
        """
        if max_candles < 1:
            raise ValueError("max_candles must be at least 1")
        per_market: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
        for currency, t_ms in needs:
            market = self.pricing_market(currency)
            if market is not None and self.rate(currency, t_ms) is None:
                per_market[market].extend(self._gaps(market, t_ms))
        span = max_candles * MINUTE_MS  # [s, s + span) holds max_candles minute starts
        ranges: list[tuple[str, int, int]] = []
        for market in sorted(per_market):
            first: int | None = None
            last = 0
            for start, end in sorted(per_market[market]):
                if first is not None and start < first + span:
                    if end < first + span:
                        last = max(last, end)
                        continue
                    # [start, end] is all unfetched, so the range can run to its full span.
                    ranges.append((market, first, first + span - MINUTE_MS))
                    start = first + span
                elif first is not None:
                    ranges.append((market, first, last))
                while end - start >= span:
                    ranges.append((market, start, start + span - MINUTE_MS))
                    start += span
                first, last = start, end
            if first is not None:
                ranges.append((market, first, last))
        return ranges

    def _gaps(self, market: str, t_ms: int) -> list[tuple[int, int]]:
        """Unfetched minute starts among those that can price ``t_ms``: ``(t - 1h, t]``."""
        series = self._candles.get(market)
        coverage = _NOTHING_FETCHED if series is None else series.coverage
        return coverage.gaps(t_ms - HOUR_MS + 1, t_ms)


def valuation_needs(trades: Iterable[Trade]) -> set[tuple[str, int]]:
    """``(currency, t_ms)`` pairs that valuing ``trades`` in USD requires."""
    needs: set[tuple[str, int]] = set()
    for trade in trades:
        if trade.quote not in STABLECOINS:
            needs.add((trade.quote, trade.timestamp))
        if trade.fee_cost and trade.fee_currency not in STABLECOINS:
            needs.add((trade.fee_currency, trade.timestamp))
    return needs
