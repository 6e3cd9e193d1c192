"""Hypothesis strategies: small multi-symbol trade histories and the hourly candles that price them.

Prices of non-USD currencies come from hourly candles (BTC/USDT, BNB/USDT, SOL/USDC) with a few
hours missing, so that some trades are unpriced. ETH has no USD market here, so a fee paid in ETH
leaves its trade unpriced for good. Trade ids are multiples of 10, leaving room to split a
fill into two adjacent ones.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise
from typing import Any

from hypothesis import strategies as st

from perf_aggregator.ledger.book import Ledger
from perf_aggregator.ledger.prices import STABLECOINS, PriceBook
from perf_aggregator.ledger.trades import Side, Trade

from .factory import HOUR, MINUTE, at, make_trade

DAY = 24 * HOUR
DAYS = 3
START = at("2026-01-05T00:00:00")
END = START + DAYS * DAY
AS_OF = END + DAY // 2
"""The summary's ``as_of``: half a day after the last possible trade day (a day without trades)."""

MARKETS = frozenset({"BTC/USDT", "BNB/USDT", "ETH/BTC", "SOL/USDC", "BTC/USDT:USDT", "ETH/USDT:USDT"})
CANDLE_MARKETS = {"BTC": "BTC/USDT", "BNB": "BNB/USDT", "SOL": "SOL/USDC"}
CANDLE_RANGE = (START - 2 * HOUR, END + HOUR)
"""Open times every candle fetch of the complete price book covers."""

_PRICE_SCALE = {
    "BTC/USDT": Decimal(1000),
    "ETH/BTC": Decimal("0.001"),
    "SOL/USDC": Decimal("1.5"),
    "BTC/USDT:USDT": Decimal(1000),
    "ETH/USDT:USDT": Decimal(30),
}
SYMBOLS = tuple(sorted(_PRICE_SCALE))
_IN_HOUR = (0, 1, 30_000, 20 * MINUTE, HOUR - 1)

Candles = dict[str, dict[int, Decimal]]
"""Candle closes by market and open time."""


@dataclass(frozen=True)
class History:
    """Trades (as the exchange reported them, in no particular order) and the exchange's candles."""

    trades: list[Trade]
    candles: Candles

    def price_book(self) -> PriceBook:
        """A price book holding every candle, the whole range fetched."""
        book = PriceBook(MARKETS)
        for market, closes in self.candles.items():
            book.add_candles(market, *CANDLE_RANGE, closes.items())
        return book

    def fetch(self, book: PriceBook, ranges: list[tuple[str, int, int]]) -> None:
        """Serve ``book.missing_ranges`` fetches from the exchange's candles."""
        for market, start, end in ranges:
            closes = self.candles[market]
            book.add_candles(market, start, end, [(t, c) for t, c in closes.items() if start <= t <= end])

    def rate(self, currency: str, t_ms: int) -> Decimal | None:
        """USD per unit, found independently of the ledger: candles open on whole hours here."""
        if currency in STABLECOINS:
            return Decimal(1)
        market = CANDLE_MARKETS.get(currency)
        if market is None:
            return None
        return self.candles[market].get(t_ms - t_ms % HOUR)

    def priced(self, trade: Trade) -> bool:
        """Whether METRICS.md can value ``trade`` (its quote, and its fee unless zero)."""
        quote_ok = self.rate(trade.quote, trade.timestamp) is not None
        return quote_ok and (not trade.fee_cost or self.rate(trade.fee_currency, trade.timestamp) is not None)


def documents(ledger: Ledger) -> dict[str, Any]:
    """Everything the ledger publishes: ``symbols``, ``totals``, the summary figures and the trades."""
    return {
        "symbols": ledger.symbol_documents(),
        "totals": ledger.totals_document(),
        "summary": ledger.summary_figures(AS_OF),
        "trades": ledger.trades(limit=1000),
    }


def figures(ledger: Ledger) -> dict[str, Any]:
    """The figure documents only (no trade listing)."""
    return {
        "symbols": ledger.symbol_documents(),
        "totals": ledger.totals_document(),
        "summary": ledger.summary_figures(AS_OF),
    }


def ledger_of(prices: PriceBook, *batches: list[Trade]) -> Ledger:
    """A ledger fed ``batches`` one ``add`` at a time."""
    ledger = Ledger(prices)
    for batch in batches:
        ledger.add(batch)
    return ledger


def _candles(seed: int) -> Candles:
    rng = random.Random(seed)
    out: Candles = {}
    for market, low, high, scale in (
        ("BTC/USDT", 90_000, 110_000, 1),
        ("BNB/USDT", 2000, 4000, 10),
        ("SOL/USDC", 1000, 2500, 10),
    ):
        out[market] = {
            t: Decimal(rng.randint(low, high)) / scale
            for t in range(START - HOUR, END, HOUR)
            if rng.random() > 0.1  # about one hour in ten has no candle
        }
    return out


@st.composite
def _trade(
    draw: st.DrawFn,
    trade_id: int,
    flat: bool,
    prices: dict[str, Decimal],
    symbols: list[str],
    previous_t: int | None,
) -> Trade:
    symbol = draw(st.sampled_from(symbols))
    side: Side = draw(st.sampled_from(("buy", "sell")))
    amount = Decimal(draw(st.integers(1, 40))) / 10
    price = prices[symbol] if flat else Decimal(draw(st.integers(80, 120))) * _PRICE_SCALE[symbol]
    base, quote = symbol.split("/")[0], symbol.split("/")[1].split(":")[0]
    fee_currency = draw(st.sampled_from((quote, quote, quote, "USDC", "BNB", "BNB", base)))
    fee = Decimal(0) if flat else Decimal(draw(st.integers(0, 300))) / 10_000
    if previous_t is not None and draw(st.integers(0, 4)) == 0:
        t = previous_t  # fills of one order, or a self-trade's other side, share a timestamp
    else:
        # Times on and next to the hour edges where candles (hourly here) start and stop counting.
        t = START + draw(st.integers(0, DAYS * 24 - 1)) * HOUR + draw(st.sampled_from(_IN_HOUR))
    return make_trade(
        str(10 * trade_id),
        side,
        str(amount),
        str(price),
        t,
        symbol=symbol,
        fee=str(fee),
        fee_currency=fee_currency,
    )


@st.composite
def histories(draw: st.DrawFn, max_trades: int = 16, flat: bool = False) -> History:
    """Up to ``max_trades`` fills (plus self-trade twins) over three days on up to three symbols.

    ``flat``: every trade of a symbol has one price and no fee (so every pnl is zero).
    """
    count = draw(st.integers(1, max_trades))
    ids = draw(st.lists(st.integers(1, 10**6), min_size=count, max_size=count, unique=True))
    prices = {s: Decimal(draw(st.integers(80, 120))) * scale for s, scale in _PRICE_SCALE.items()}
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=3, unique=True))
    trades: list[Trade] = []
    for trade_id in ids:
        trade = draw(_trade(trade_id, flat, prices, symbols, trades[-1].timestamp if trades else None))
        trades.append(trade)
        if draw(st.integers(0, 9)) == 0:  # a self-trade: the other side under the same id
            trades.append(trade._replace(side="sell" if trade.side == "buy" else "buy"))
    return History(trades, _candles(draw(st.integers(0, 2**32))))


def processing_order(trades: list[Trade]) -> list[Trade]:
    """``trades`` in METRICS.md processing order: ``(timestamp, id, side)``, numeric ids, buy first."""
    return sorted(trades, key=lambda t: (t.timestamp, int(t.id), t.side != "buy"))


def batches(trades: list[Trade], cuts: list[int]) -> list[list[Trade]]:
    """``trades`` cut at the given positions (taken modulo ``len(trades) + 1``, sorted)."""
    points = sorted({c % (len(trades) + 1) for c in cuts} | {0, len(trades)})
    return [trades[a:b] for a, b in pairwise(points)]
