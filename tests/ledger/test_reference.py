"""The ledger fed a simulated Binance account page by page, against the independent METRICS.md
implementation in ``tests/reference.py``: in order as the poller reads it, and out of order."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from perf_aggregator.exchanges.base import Market
from perf_aggregator.exchanges.binance import parse_trade
from perf_aggregator.formats import rfc3339_ms
from perf_aggregator.ledger.book import Ledger
from perf_aggregator.ledger.prices import HOUR_MS, MINUTE_MS, PriceBook
from perf_aggregator.simulator.accounts import generate_account
from perf_aggregator.simulator.market import DAY_MS, MARKETS, PriceModel
from perf_aggregator.simulator.units import fmt8
from reference import Prices, compute

from .factory import at

START = at("2026-01-05T00:00:00")
END = START + 6 * DAY_MS
AS_OF = END + 5 * HOUR_MS
PAGE = 100
PRICING = {"BTC": "BTCUSDT", "ETH": "ETHUSDT", "SOL": "SOLUSDT", "BNB": "BNBUSDT"}

pytestmark = pytest.mark.filterwarnings("error")


def unified(exchange_id: str) -> str:
    market = MARKETS[exchange_id]
    return f"{market.base}/{market.quote}"


@pytest.fixture(scope="module")
def account() -> tuple[list[dict[str, Any]], dict[str, dict[int, Decimal]]]:
    """Raw myTrades elements of a 3000-trade account, and the closes of the pricing markets."""
    model = PriceModel(7)
    raw = [t.to_wire() for t in generate_account(7, START, END, trades=3000, prices=model).trades]
    minutes = range((START - HOUR_MS) // MINUTE_MS, AS_OF // MINUTE_MS + 1)
    closes = {
        exchange_id: {m * MINUTE_MS: Decimal(fmt8(model.close_units(exchange_id, m))) for m in minutes}
        for exchange_id in PRICING.values()
    }
    return raw, closes


def price_book(closes: dict[str, dict[int, Decimal]]) -> PriceBook:
    book = PriceBook(unified(s) for s in MARKETS)
    for exchange_id, series in closes.items():
        book.add_candles(unified(exchange_id), START - HOUR_MS, AS_OF, series.items())
    return book


def poller_pages(raw: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Each symbol's trades by id, in pages that repeat the previous page's last trade (``fromId``
    is the last id seen), symbols one after the other."""
    pages: list[list[dict[str, Any]]] = []
    for exchange_id in sorted({r["symbol"] for r in raw}, key=unified):
        own = sorted(
            (r for r in raw if r["symbol"] == exchange_id), key=lambda r: (r["id"], not r["isBuyer"])
        )
        pages.extend(own[max(0, start - 1) : start + PAGE] for start in range(0, len(own), PAGE))
    return pages


def fed(book: PriceBook, pages: list[list[dict[str, Any]]], read_between: bool = False) -> Ledger:
    markets = {s: Market(unified(s), s, m.base, m.quote, "spot") for s, m in MARKETS.items()}
    ledger = Ledger(book)
    for page in pages:
        ledger.add(parse_trade(r, markets[r["symbol"]]) for r in page)
        if read_between:
            ledger.symbol_documents()
            ledger.summary_figures(AS_OF)
    return ledger


def documents(ledger: Ledger) -> tuple[Any, ...]:
    return (ledger.symbol_documents(), ledger.totals_document(), ledger.summary_figures(AS_OF), len(ledger))


def with_gaps(closes: dict[str, dict[int, Decimal]]) -> dict[str, dict[int, Decimal]]:
    """The closes with every 7th minute missing (a market without trades that minute) and, for
    BNB, two hours missing: trades there are valued at the candle before or, in the second hour of
    the hole, unpriced (pages then value their trades one at a time)."""
    hole = range(START + 2 * DAY_MS, START + 2 * DAY_MS + 2 * HOUR_MS)
    return {
        exchange_id: {
            t: close
            for t, close in series.items()
            if (t // MINUTE_MS) % 7 and not (exchange_id == "BNBUSDT" and t in hole)
        }
        for exchange_id, series in closes.items()
    }


@pytest.mark.parametrize("gaps", [False, True])
def test_pages_as_the_poller_reads_them_match_the_reference(account: tuple[Any, Any], gaps: bool) -> None:
    raw, closes = account
    if gaps:
        closes = with_gaps(closes)
    ledger = fed(price_book(closes), poller_pages(raw))
    prices = Prices(
        {unified(s): series for s, series in closes.items()}, {c: unified(s) for c, s in PRICING.items()}
    )
    want = compute(raw, {s: (m.base, m.quote) for s, m in MARKETS.items()}, prices, START, AS_OF)
    assert len(ledger) == len(raw)
    assert any(r["commissionAsset"] == "BNB" for r in raw) and any(r["symbol"] == "ETHBTC" for r in raw)
    got = {d["symbol"]: d for d in ledger.symbol_documents()}
    assert set(got) == set(want["symbols"])
    for symbol, fields in want["symbols"].items():
        for name, value in fields.items():
            assert got[symbol][name] == (
                pytest.approx(value, rel=1e-12) if isinstance(value, float) else value
            )
    summary = ledger.summary_figures(AS_OF)
    for name, value in want["summary"].items():
        if name in ("period_start", "period_end"):
            assert summary[name] == rfc3339_ms(value)
        elif name != "unpriced_trades":
            assert summary[name] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value)
    assert summary["closed_trades"] > 500 and summary["sortino_ratio"] is not None
    assert (ledger.totals_document()["unpriced_trades"] > 0) is gaps


def test_pages_in_any_order_with_reads_between_give_the_same_documents(account: tuple[Any, Any]) -> None:
    raw, closes = account
    book = price_book(closes)
    in_order = documents(fed(book, poller_pages(raw)))
    shuffled = poller_pages(raw)
    random.Random(5).shuffle(shuffled)
    assert documents(fed(book, shuffled, read_between=True)) == in_order
    mixed = [raw[i : i + 250] for i in range(0, len(raw), 250)][::-1]  # all symbols, newest pages first
    assert documents(fed(book, mixed, read_between=True)) == in_order
