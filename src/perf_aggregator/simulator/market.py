"""The simulated exchange's spot markets and their deterministic 1-minute candles.

Every asset has a USD price path: a common crypto factor plus the asset's own
factor, each a smooth random anchor per UTC day joined by a minute-level
Brownian bridge. A market's price is ``base_usd / quote_usd``, so cross pairs
agree with the USDT pairs (ETHBTC ≈ ETHUSDT / BTCUSDT) up to tick rounding.
Everything is derived from ``(seed, name, day)`` with a hash-seeded PRNG, so any
minute of any day can be computed lazily, in any order, with the same result.
"""

from __future__ import annotations

import hashlib
import math
import random
from array import array
from dataclasses import dataclass, fields
from functools import lru_cache

from perf_aggregator.simulator.units import SCALE, fmt8, to_units

MINUTE_MS = 60_000
DAY_MINUTES = 1440
DAY_MS = DAY_MINUTES * MINUTE_MS

STABLE_ASSETS = frozenset({"USDT", "USDC"})
"""Assets valued at one USD when converting fees."""


@dataclass(frozen=True, slots=True)
class Market:
    """A spot market as ``exchangeInfo`` describes it; amounts in units of 1e-8."""

    symbol: str
    base: str
    quote: str
    tick_units: int
    step_units: int
    min_notional_units: int
    listed_ms: int
    margin: bool
    minute_volume: float
    """Typical base volume traded per minute (shapes the candles' volumes)."""

    @property
    def listed_minute(self) -> int:
        """Index of the market's first 1-minute candle."""
        return self.listed_ms // MINUTE_MS


def _market(
    symbol: str,
    base: str,
    quote: str,
    tick: str,
    step: str,
    min_notional: str,
    listed_ms: int,
    margin: bool,
    minute_volume: float,
) -> Market:
    tick_units, step_units, notional_units = (to_units(text) for text in (tick, step, min_notional))
    return Market(
        symbol, base, quote, tick_units, step_units, notional_units, listed_ms, margin, minute_volume
    )


# Tick and step are chosen so that decimals(tick) + decimals(step) <= 8: price * qty
# is then exact in 8 decimals, as Binance prints quoteQty (real ETHBTC steps 0.0001).
# Columns: symbol, base, quote, tick size, step size, min notional, listing time
# (about Binance's), margin trading, typical base volume per minute.
MARKETS: dict[str, Market] = {
    m.symbol: m
    for m in (
        _market("BTCUSDT", "BTC", "USDT", "0.01", "0.00001", "5", 1502942400000, True, 15),
        _market("ETHUSDT", "ETH", "USDT", "0.01", "0.0001", "5", 1502942400000, True, 250),
        _market("BNBUSDT", "BNB", "USDT", "0.01", "0.001", "5", 1509940440000, True, 120),
        _market("SOLUSDT", "SOL", "USDT", "0.01", "0.001", "5", 1597125600000, True, 1500),
        _market("ETHBTC", "ETH", "BTC", "0.00001", "0.001", "0.0001", 1500004800000, True, 25),
        _market("BTCUSDC", "BTC", "USDC", "0.01", "0.00001", "5", 1544760000000, True, 2),
        _market("SOLBNB", "SOL", "BNB", "0.0001", "0.001", "0.01", 1597125600000, False, 40),
    )
}

ASSETS: tuple[str, ...] = tuple(sorted({a for m in MARKETS.values() for a in (m.base, m.quote)}))

# asset -> (USD price level the path fluctuates around, loading on the common factor)
_CRYPTO: dict[str, tuple[float, float]] = {
    "BTC": (60_000.0, 1.0),
    "ETH": (3_000.0, 1.15),
    "BNB": (600.0, 0.8),
    "SOL": (150.0, 1.4),
}
# factor -> daily scale of its log-price moves; MKT is the common crypto factor.
_FACTOR_SCALE: dict[str, float] = {
    "MKT": 0.022,
    "BTC": 0.008,
    "ETH": 0.012,
    "BNB": 0.014,
    "SOL": 0.022,
    "USDC": 0.0001,
}
# (period in days, weight): value noise at three scales gives daily moves plus
# weekly swings and multi-month trends while staying near the price level.
_OCTAVES = ((1, 1.0), (8, 1.5), (64, 4.0))
_WICK = 0.00025  # relative size of a candle's wicks beyond its body


def seeded_rng(*parts: object) -> random.Random:
    """A PRNG seeded from ``parts``: the same parts always give the same stream."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))  # noqa: S311 - simulated data, not secrets


def _ticks(base_usd: float, quote_usd: float, tick_units: int) -> int:
    return max(1, round(base_usd / quote_usd * SCALE / tick_units))


@dataclass(frozen=True, slots=True)
class Candle:
    """One kline; prices and amounts in units of 1e-8."""

    open_ms: int
    close_ms: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    quote_volume: int
    trades: int
    taker_base: int
    taker_quote: int

    def to_wire(self) -> list[int | str]:
        """The ``/api/v3/klines`` element."""
        return [
            self.open_ms,
            fmt8(self.open),
            fmt8(self.high),
            fmt8(self.low),
            fmt8(self.close),
            fmt8(self.volume),
            self.close_ms,
            fmt8(self.quote_volume),
            self.trades,
            fmt8(self.taker_base),
            fmt8(self.taker_quote),
            "0",
        ]


@dataclass(frozen=True, slots=True)
class _DayCandles:
    """The 1440 one-minute candles of a market for one UTC day, column-wise (units)."""

    open: array[int]
    high: array[int]
    low: array[int]
    close: array[int]
    volume: array[int]
    quote_volume: array[int]
    trades: array[int]
    taker_base: array[int]
    taker_quote: array[int]


class PriceModel:
    """Deterministic prices and candles of every market in ``MARKETS`` for a seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        # Per-instance caches, bounded (about a year of price paths, two months of
        # candles for every market); entries are cheap to recompute.
        self._factor_day = lru_cache(maxsize=2048)(self._compute_factor_day)
        self._usd_day = lru_cache(maxsize=2048)(self._compute_usd_day)
        self._day_candles = lru_cache(maxsize=512)(self._compute_day_candles)

    # -- price paths -------------------------------------------------------

    def _lattice(self, factor: str, period: int, index: int) -> float:
        return seeded_rng(self.seed, "lattice", factor, period, index).gauss(0.0, 1.0)

    def _anchor(self, factor: str, day: int) -> float:
        """Log-price deviation of ``factor`` at 00:00 UTC of ``day``."""
        total = 0.0
        for period, weight in _OCTAVES:
            index, rest = divmod(day, period)
            t = rest / period
            t = t * t * (3 - 2 * t)
            g0, g1 = self._lattice(factor, period, index), self._lattice(factor, period, index + 1)
            total += weight * (g0 + (g1 - g0) * t)
        return _FACTOR_SCALE[factor] * total

    def _compute_factor_day(self, factor: str, day: int) -> array[float]:
        """1441 log-price points of ``factor`` (minute boundaries of ``day``, both ends)."""
        start, end = self._anchor(factor, day), self._anchor(factor, day + 1)
        sigma = _FACTOR_SCALE[factor] / math.sqrt(DAY_MINUTES)
        gauss = seeded_rng(self.seed, "bridge", factor, day).gauss
        walk = [0.0] * (DAY_MINUTES + 1)
        level = 0.0
        for i in range(1, DAY_MINUTES + 1):
            level += gauss(0.0, sigma)
            walk[i] = level
        # Brownian bridge: bend the walk so that it ends exactly on the next day's anchor.
        drift = (end - start - level) / DAY_MINUTES
        return array("d", (start + x + drift * i for i, x in enumerate(walk)))

    def _compute_usd_day(self, asset: str, day: int) -> array[float]:
        if asset == "USDT":
            return array("d", [1.0]) * (DAY_MINUTES + 1)
        if asset == "USDC":
            return array("d", (math.exp(x) for x in self._factor_day("USDC", day)))
        level, beta = _CRYPTO[asset]
        log_level = math.log(level)
        common, own = self._factor_day("MKT", day), self._factor_day(asset, day)
        return array("d", (math.exp(log_level + beta * m + a) for m, a in zip(common, own, strict=True)))

    def body_units(self, symbol: str, minute: int) -> tuple[int, int]:
        """Open and close (units) of ``symbol``'s 1-minute candle number ``minute`` (epoch minutes).

        Cheaper than :meth:`candle` (no wicks or volumes), and every price between
        the two lies within the candle.
        """
        market = MARKETS[symbol]
        day, index = divmod(minute, DAY_MINUTES)
        base, quote = self._usd_day(market.base, day), self._usd_day(market.quote, day)
        tick = market.tick_units
        return (
            _ticks(base[index], quote[index], tick) * tick,
            _ticks(base[index + 1], quote[index + 1], tick) * tick,
        )

    def close_units(self, symbol: str, minute: int) -> int:
        """Close price (units) of ``symbol``'s 1-minute candle number ``minute``."""
        return self.body_units(symbol, minute)[1]

    def usd_units(self, asset: str, minute: int) -> int:
        """USD value (units) of one ``asset`` at the close of ``minute``, from the USDT market."""
        if asset in STABLE_ASSETS:
            return SCALE
        return self.close_units(f"{asset}USDT", minute)

    # -- candles -----------------------------------------------------------

    def _compute_day_candles(self, symbol: str, day: int) -> _DayCandles:
        market = MARKETS[symbol]
        tick, step = market.tick_units, market.step_units
        base, quote = self._usd_day(market.base, day), self._usd_day(market.quote, day)
        ticks = [_ticks(b, q, tick) for b, q in zip(base, quote, strict=True)]
        rand = seeded_rng(self.seed, "candles", symbol, day).random
        log = math.log
        steps_per_minute = market.minute_volume * SCALE / step
        cols: list[list[int]] = [[] for _ in fields(_DayCandles)]
        opens, highs, lows, closes, volumes, quote_volumes, trades, taker_bases, taker_quotes = cols
        for j in range(DAY_MINUTES):
            o, c = ticks[j], ticks[j + 1]
            # Exponential wicks beyond the body; a right-skewed volume around the typical one.
            h = max(o, c) + int(-log(1.0 - rand()) * _WICK * o)
            lo = max(1, min(o, c) - int(-log(1.0 - rand()) * _WICK * o))
            volume_steps = max(1, int(steps_per_minute * (0.2 + 1.6 * rand()) ** 2))
            volume = volume_steps * step
            average = (o + h + lo + c) * tick // 4
            taker = int(volume_steps * (0.35 + 0.3 * rand())) * step
            opens.append(o * tick)
            highs.append(h * tick)
            lows.append(lo * tick)
            closes.append(c * tick)
            volumes.append(volume)
            quote_volumes.append(volume * average // SCALE)
            trades.append(max(1, int(40 * volume_steps / steps_per_minute * (0.7 + 0.6 * rand()))))
            taker_bases.append(taker)
            taker_quotes.append(taker * average // SCALE)
        return _DayCandles(*(array("q", col) for col in cols))

    def candle(self, symbol: str, first_minute: int, minutes: int, now_ms: int) -> Candle | None:
        """The candle opening at ``first_minute`` and spanning ``minutes`` minutes, as seen at ``now_ms``.

        Minutes before the market's listing or after ``now_ms`` are left out (``None``
        when none remain); the minute containing ``now_ms`` is still open, so it
        only holds the part of its trading that has happened so far.
        """
        market = MARKETS[symbol]
        now_minute = now_ms // MINUTE_MS
        lo = max(first_minute, market.listed_minute)
        hi = min(first_minute + minutes, now_minute + 1)
        if lo >= hi:
            return None
        parts: list[tuple[int, ...]] = []
        minute = lo
        closed_end = min(hi, now_minute)
        while minute < closed_end:
            day, index = divmod(minute, DAY_MINUTES)
            stop = min(closed_end - day * DAY_MINUTES, DAY_MINUTES)
            block = self._day_candles(symbol, day)
            parts.append(
                (
                    block.open[index],
                    max(block.high[index:stop]),
                    min(block.low[index:stop]),
                    block.close[stop - 1],
                    sum(block.volume[index:stop]),
                    sum(block.quote_volume[index:stop]),
                    sum(block.trades[index:stop]),
                    sum(block.taker_base[index:stop]),
                    sum(block.taker_quote[index:stop]),
                )
            )
            minute = day * DAY_MINUTES + stop
        if hi > now_minute:
            parts.append(self._open_minute(market, now_minute, now_ms))
        return Candle(
            open_ms=first_minute * MINUTE_MS,
            close_ms=(first_minute + minutes) * MINUTE_MS - 1,
            open=parts[0][0],
            high=max(p[1] for p in parts),
            low=min(p[2] for p in parts),
            close=parts[-1][3],
            volume=sum(p[4] for p in parts),
            quote_volume=sum(p[5] for p in parts),
            trades=sum(p[6] for p in parts),
            taker_base=sum(p[7] for p in parts),
            taker_quote=sum(p[8] for p in parts),
        )

    def _open_minute(self, market: Market, minute: int, now_ms: int) -> tuple[int, ...]:
        """The still-open minute's candle so far: its final candle scaled by the elapsed fraction."""
        day, index = divmod(minute, DAY_MINUTES)
        block = self._day_candles(market.symbol, day)
        elapsed = (now_ms - minute * MINUTE_MS + 1) / MINUTE_MS
        tick, step = market.tick_units, market.step_units
        o, c = block.open[index], block.close[index]
        close = o + round((c - o) / tick * elapsed) * tick
        high = max(o, close) + round((block.high[index] - max(o, c)) / tick * elapsed) * tick
        low = max(tick, min(o, close) - round((min(o, c) - block.low[index]) / tick * elapsed) * tick)
        volume = int(block.volume[index] / step * elapsed) * step
        taker = int(block.taker_base[index] / step * elapsed) * step
        average = (o + high + low + close) // 4
        trades = int(block.trades[index] * elapsed)
        quote_volume, taker_quote = volume * average // SCALE, taker * average // SCALE
        return (o, high, low, close, volume, quote_volume, trades, taker, taker_quote)
