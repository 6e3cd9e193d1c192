"""Ingest throughput, memory and read latency of the ledger, with ccxt's ``parse_trades`` alongside.

The chain measured is what a backfill does with each ``myTrades`` page, minus the network:
raw Binance payload dicts -> ``binance.parse_trades`` (exact decimals, a page at a time as the
connector parses) -> ``Ledger.add`` (pages of 1000, symbol by symbol in the poller's order) -> one
read of the metrics and summary documents at the end. One core, one thread, the garbage collector
on and set as ``perf-aggregator serve`` sets it (``heap.settle``: what is imported at startup
frozen, young collections every 10 000 new containers instead of 700).

Trades are a simulated account's (the project's Binance simulator: BTC, ETH, SOL and BNB
against USDT plus ETH/BTC, fees in the received asset or in BNB, a few self-trades, ids
increasing per symbol) over a fixed 30-day window; the shared price book holds the
simulator's 1-minute closes of BTC, ETH, SOL and BNB against USDT for the window, so the
BTC-quoted market and every non-stablecoin fee are valued from candles.

Each size runs in two fresh subprocesses: one generates the account and writes its pages
(and the candles) to a scratch file, the other measures, so that sizes share no heap and the
measuring process holds no account:

* ingest: pages are read from the file one at a time, outside the timed sections (only
  ``parse_trades``, ``Ledger.add``, the release of the page's trades after it and the final read
  are timed), in ``--rounds`` rounds of which the fastest is kept (the host's speed varies from
  minute to minute). Times are the process's CPU time (``time.process_time``), so that other work
  on a shared machine does not count; wall time is printed beside. ccxt's
  ``binance().parse_trades`` (markets set offline from the simulator's ``exchangeInfo``) parses
  the very same pages, timed the same way, a round after each of ours (so that both see the same
  moments of the host), the fastest kept;
* memory: the process's resident set (``VmRSS``) after a full garbage collection, just
  before the first page and just after the final read. The interpreter and the price book
  (shared by all sessions of an exchange, read a kline page at a time so that it leaves no
  free memory behind for the ledger to reuse unseen) are in the baseline; the growth is what
  the session's ledger keeps, plus the memory of the one page being handled;
* reads: after the ingest, one new trade is added (a newer BTC/USDT sell, so the symbol is
  not replayed) and then the metrics ``symbols`` and ``totals``, the summary figures and a
  100-trade page from a cursor in the middle are built; the fastest wall time of several
  such rounds, each part and the total. Run at 1k trades and at the largest size over the
  same window (same days).

    python bench/ingest.py            # 10k, 100k and 1M trades (about 5 minutes)
    python bench/ingest.py --quick    # 10k, 100k and 250k trades, about a minute

The last line is ``ingest_trades_per_s=<n> ccxt_parse_trades_per_s=<n> ratio=<x>
rss_mb_per_1m=<n>`` for the largest size (ours / ccxt; the RSS growth scaled to 1M trades,
measured at 1M without ``--quick``).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ccxt

from perf_aggregator import heap
from perf_aggregator.exchanges.base import Market
from perf_aggregator.exchanges.binance import PAGE_LIMIT, parse_trade, parse_trades
from perf_aggregator.formats import parse_rfc3339
from perf_aggregator.ledger.book import Ledger
from perf_aggregator.ledger.prices import HOUR_MS, MINUTE_MS, PriceBook
from perf_aggregator.ledger.trades import OrderKey, order_key
from perf_aggregator.simulator import documents
from perf_aggregator.simulator.accounts import DEFAULT_SYMBOLS, generate_account
from perf_aggregator.simulator.market import DAY_MS, MARKETS, PriceModel
from perf_aggregator.simulator.units import fmt8

END_MS = parse_rfc3339("2026-01-01T00:00:00Z")
WINDOW_DAYS = 30
START_MS = END_MS - WINDOW_DAYS * DAY_MS
AS_OF_MS = END_MS + HOUR_MS
"""The summary's ``as_of``: the same trading days at every size."""
PRICED_ASSETS = ("BTC", "ETH", "SOL", "BNB")
SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000, 250_000)
READ_SMALL = 1_000
READ_ROUNDS = 15
PAGE_ITEMS = 100


# -- one size, in a worker process ------------------------------------------------------------------


def rss_mb() -> float:
    """Resident set of this process in MB, after a full collection."""
    gc.collect()
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def our_markets() -> dict[str, Market]:
    """The simulator's markets as ``BinanceSpot.markets()`` names them, by exchange id."""
    return {
        m.symbol: Market(f"{m.base}/{m.quote}", m.symbol, m.base, m.quote, "spot") for m in MARKETS.values()
    }


def price_book(path: str) -> PriceBook:
    """The exchange's shared price book, from the candles :func:`write_pages` wrote.

    Read a kline page at a time, as fetched, so that building it leaves no large free memory
    behind for the session's ledger to reuse unseen (the RSS growth would then understate it).
    """
    markets = our_markets()
    book = PriceBook(m.symbol for m in markets.values())
    with open(path + ".candles", encoding="ascii") as lines:
        for line in lines:
            exchange_id, first, closes = json.loads(line)
            candles = [(first + k * MINUTE_MS, Decimal(close)) for k, close in enumerate(closes)]
            book.add_candles(markets[exchange_id].symbol, first, candles[-1][0], candles)
    return book


def write_pages(trades: int, seed: int, path: str) -> None:
    """The account's ``myTrades`` pages as JSON lines ``[exchange id, [payload, ...]]``, each
    symbol's trades in id order, symbols in the poller's (unified name) order; and beside them
    the 1-minute closes of the pricing markets over the window, a kline page per line."""
    model = PriceModel(seed)
    account = generate_account(seed, START_MS, END_MS, trades=trades, prices=model, symbols=DEFAULT_SYMBOLS)
    markets = our_markets()
    with open(path, "w", encoding="ascii") as out:
        for exchange_id in sorted(account.books, key=lambda s: markets[s].symbol):
            book = account.books[exchange_id].trades
            for start in range(0, len(book), PAGE_LIMIT):
                page = [t.to_wire() for t in book[start : start + PAGE_LIMIT]]
                out.write(json.dumps([exchange_id, page]) + "\n")
    minutes = range((START_MS - HOUR_MS) // MINUTE_MS, AS_OF_MS // MINUTE_MS + 1)
    with open(path + ".candles", "w", encoding="ascii") as out:
        for asset in PRICED_ASSETS:
            exchange_id = f"{asset}USDT"
            for start in range(0, len(minutes), PAGE_LIMIT):
                chunk = minutes[start : start + PAGE_LIMIT]
                closes = [fmt8(model.close_units(exchange_id, minute)) for minute in chunk]
                out.write(json.dumps([exchange_id, chunk[0] * MINUTE_MS, closes]) + "\n")


def pages(path: str, newest_first: bool = False) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The pages :func:`write_pages` wrote, one at a time; with ``newest_first``, each symbol's
    last page before its others, so that the whole history arrives late (the worst case for the
    ledger's late-trade replay; ``BinanceSpot`` itself sets a new account's latest page aside
    and reads the history in order)."""
    with open(path, encoding="ascii") as lines:
        if not newest_first:
            for line in lines:
                exchange_id, page = json.loads(line)
                yield exchange_id, page
            return
        starts: dict[str, list[int]] = {}  # line offsets by exchange id (tell() needs readline)
        while True:
            offset = lines.tell()
            line = lines.readline()
            if not line:
                break
            starts.setdefault(line[2 : line.index('"', 2)], []).append(offset)
        for offsets in starts.values():
            for offset in (offsets[-1], *offsets[:-1]):
                lines.seek(offset)
                exchange_id, page = json.loads(lines.readline())
                yield exchange_id, page


def ccxt_exchange() -> Any:
    """A ccxt binance with the simulator's markets set offline (no request is ever made)."""
    exchange = ccxt.binance()
    exchange.options["crossMarginPairsData"] = []
    exchange.options["isolatedMarginPairsData"] = []
    info = documents.exchange_info(MARKETS.values(), 6000, END_MS)
    exchange.set_markets([exchange.parse_market(raw) for raw in info["symbols"]])
    return exchange


def read_once(ledger: Ledger, cursor: tuple[OrderKey, str]) -> dict[str, float]:
    """Seconds to build each part of the metrics and summary documents and one trades page."""
    timings: dict[str, float] = {}
    began = time.perf_counter()
    ledger.symbol_documents()
    timings["symbols"] = time.perf_counter() - began
    began = time.perf_counter()
    ledger.totals_document()
    timings["totals"] = time.perf_counter() - began
    began = time.perf_counter()
    ledger.summary_figures(AS_OF_MS)
    timings["summary"] = time.perf_counter() - began
    began = time.perf_counter()
    page = ledger.trades(None, cursor[0], PAGE_ITEMS, after_symbol=cursor[1])
    timings["page"] = time.perf_counter() - began
    assert len(page) == PAGE_ITEMS
    return timings


def reads(ledger: Ledger, last: dict[str, Any], market: Market) -> dict[str, float]:
    """Fastest read timings, each round after one new in-order trade (after ``last``, on ``market``)."""
    cursor = (order_key(START_MS + WINDOW_DAYS * DAY_MS // 2, "0", "buy"), market.symbol)
    rounds: list[dict[str, float]] = []
    for number in range(1, READ_ROUNDS + 1):
        raw = last | {
            "id": last["id"] + number,
            "orderId": last["orderId"] + number,
            "time": last["time"] + number,
            "isBuyer": False,
            "qty": "0.00001000",
            "commission": "0.00100000",
            "commissionAsset": "USDT",
        }
        assert ledger.add([parse_trade(raw, market)]) == 1
        rounds.append(read_once(ledger, cursor))
    fastest = {part: min(r[part] for r in rounds) for part in rounds[0]}
    fastest["total"] = min(sum(r.values()) for r in rounds)
    return fastest


def ingest(path: str, prices: PriceBook) -> tuple[Ledger, dict[str, Any]]:
    """One ingest round: every page parsed and added to a new ledger, then the final read; the
    parse, ledger and wall seconds, the RSS before the first page and after the final read, and the
    last raw BTC/USDT trade (for :func:`reads`)."""
    markets = our_markets()
    ledger = Ledger(prices)
    last: dict[str, Any] = {}
    before = rss_mb()
    parse_s = ledger_s = wall_s = 0.0
    cpu, wall = time.process_time, time.perf_counter
    for exchange_id, raw in pages(path):
        market = markets[exchange_id]
        began, began_wall = cpu(), wall()
        parsed = parse_trades(raw, market)
        parsed_at = cpu()
        ledger.add(parsed)
        del parsed  # the page's trades released, timed (as ccxt's below, dropped in its timed call)
        ended = cpu()
        parse_s, ledger_s, wall_s = (
            parse_s + parsed_at - began,
            ledger_s + ended - parsed_at,
            wall_s + wall() - began_wall,
        )
        if exchange_id == "BTCUSDT":
            last = raw[-1]
        del raw
    began, began_wall = cpu(), wall()
    ledger.symbol_documents()
    ledger.totals_document()
    summary = ledger.summary_figures(AS_OF_MS)
    ledger_s, wall_s = ledger_s + cpu() - began, wall_s + wall() - began_wall
    after = rss_mb()
    measured = {
        "seconds": parse_s + ledger_s,
        "parse_seconds": parse_s,
        "wall_seconds": wall_s,
        "rss_before_mb": before,
        "rss_growth_mb": after - before,
        "trades": summary["trades"],
        "last": last,
    }
    return ledger, measured


def ccxt_parse(path: str, markets: dict[str, Market], exchange: Any) -> tuple[float, int]:
    """CPU seconds of ccxt's ``parse_trades`` on every page at ``path``, and the trades parsed."""
    cpu = time.process_time
    seconds = 0.0
    count = 0
    for exchange_id, raw in pages(path):
        symbol = markets[exchange_id].symbol
        began = cpu()
        count += len(exchange.parse_trades(raw, exchange.market(symbol)))
        seconds += cpu() - began
    return seconds, count


def worker(trades: int, path: str, rounds: int) -> dict[str, Any]:
    """Everything measured at one size (see the module docstring)."""
    heap.settle()  # as ``perf-aggregator serve`` does once its connectors are loaded
    markets = our_markets()
    prices = price_book(path)
    exchange = ccxt_exchange()
    # Rounds of ours and ccxt's alternate, so that both see the same moments of the host.
    ledger, first = ingest(path, prices)  # the memory is the first round's: a fresh process
    fastest = first
    ccxt_s = math.inf
    for number in range(rounds):
        if number:
            del ledger  # the last round's, released before the next
            gc.collect()
            ledger, measured = ingest(path, prices)
            if measured["seconds"] < fastest["seconds"]:
                fastest = measured
        seconds, count = ccxt_parse(path, markets, exchange)
        assert count == trades
        ccxt_s = min(ccxt_s, seconds)
    if first["trades"] != trades:
        raise AssertionError(f"unexpected summary: {first['trades']} trades")
    unpriced = ledger.totals_document()["unpriced_trades"]
    last = first["last"]
    reads_at_size = reads(ledger, last, markets["BTCUSDT"])
    del ledger

    # The same pages with each symbol's newest page first: every history page arrives late.
    cpu = time.process_time
    ledger = Ledger(prices)
    add_s = 0.0
    for exchange_id, raw in pages(path, newest_first=True):
        market = markets[exchange_id]
        began = cpu()
        ledger.add(parse_trades(raw, market))
        add_s += cpu() - began
    began = cpu()
    ledger.summary_figures(AS_OF_MS)  # replays every symbol
    newest_first = (add_s, cpu() - began)
    return {
        "trades": trades,
        "seconds": fastest["seconds"],
        "parse_seconds": fastest["parse_seconds"],
        "wall_seconds": fastest["wall_seconds"],
        "ccxt_seconds": ccxt_s,
        "rss_before_mb": first["rss_before_mb"],
        "rss_growth_mb": first["rss_growth_mb"],
        "unpriced": unpriced,
        "reads": reads_at_size,
        "newest_first": newest_first,
    }


# -- the parent: one subprocess per size, then the table ------------------------------------------------


def run_worker(trades: int, seed: int, rounds: int, scratch: str) -> dict[str, Any]:
    """Generate the pages of one size in one subprocess, measure them in a fresh one."""
    path = os.path.join(scratch, f"pages-{trades}.jsonl")
    base = [sys.executable, __file__, "--trades", str(trades), "--seed", str(seed), "--pages", path]
    base += ["--rounds", str(rounds)]
    try:
        for step in ("--generate", "--worker"):
            done = subprocess.run([*base, step], capture_output=True, text=True, check=False)  # noqa: S603
            if done.returncode != 0:
                sys.stderr.write(done.stderr)
                raise SystemExit(f"{step[2:]} for {trades} trades failed")
    finally:
        for name in (path, path + ".candles"):
            if os.path.exists(name):
                os.remove(name)
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def report(results: list[dict[str, Any]], small: dict[str, Any], quick: bool) -> None:
    largest = results[-1]
    print(
        f"Binance spot myTrades payloads -> parse_trades -> Ledger.add (pages of {PAGE_LIMIT}) -> metrics "
        f"and summary; simulated account over {WINDOW_DAYS} days, {len(DEFAULT_SYMBOLS)} symbols, "
        "one process per size" + (" (--quick: the largest size is 250k, not 1M)" if quick else "")
    )
    # The interpreter's build moves these figures as much as the code does (bench/README.md).
    print(
        f"interpreter: {platform.python_implementation()} {platform.python_version()} "
        f"({', '.join(platform.python_build())}, {platform.python_compiler()}), "
        f"{os.path.realpath(sys.executable)}"
    )
    print(
        f"{'trades':>9} {'CPU s':>6} {'wall s':>6} {'trades/s':>8} {'us/trade':>8} {'parse':>6} "
        f"{'ledger':>6} {'ccxt/s':>7} {'ratio':>5} {'RSS MB':>6} {'growth MB':>9} {'B/trade':>7}"
    )
    for r in results:
        n, seconds = r["trades"], r["seconds"]
        print(
            f"{n:9d} {seconds:6.2f} {r['wall_seconds']:6.2f} {n / seconds:8.0f} {seconds / n * 1e6:8.2f} "
            f"{r['parse_seconds'] / n * 1e6:6.2f} {(seconds - r['parse_seconds']) / n * 1e6:6.2f} "
            f"{n / r['ccxt_seconds']:7.0f} {r['ccxt_seconds'] / seconds:5.2f} {r['rss_before_mb']:6.0f} "
            f"{r['rss_growth_mb']:9.1f} {r['rss_growth_mb'] * 2**20 / n:7.0f}"
        )
    print(
        "CPU s: the worker's own CPU time (time.process_time) for parsing, Ledger.add, releasing each "
        "page's parsed trades and the final read, so that other work on the machine does not count; "
        "wall s: the same sections' wall time. parse / ledger: us per trade in parse_trades / in "
        "Ledger.add, the release and the read. ccxt/s: parse_trades "
        "on the same pages (CPU time); ratio: ours / ccxt in trades/s. RSS MB: before the first page; "
        "growth: after the final read"
    )
    costs = [r["seconds"] / r["trades"] for r in results]
    print(
        f"per-trade cost, largest / smallest size: {costs[-1] / costs[0]:.2f} "
        f"(range over sizes {min(costs) / max(costs):.2f}..1)"
    )
    print(
        f"read latency, ms (fastest of {READ_ROUNDS} rounds, each after one new trade), "
        f"same {WINDOW_DAYS}-day window:"
    )
    parts = list(small["reads"])
    print(f"{'trades':>9} " + " ".join(f"{p:>9}" for p in parts))
    for r in (small, largest):
        print(f"{r['trades']:9d} " + " ".join(f"{r['reads'][p] * 1000:9.3f}" for p in parts))
    growth = largest["reads"]["total"] / small["reads"]["total"]
    print(f"read total, {largest['trades']} / {small['trades']} trades: {growth:.2f}")
    add_s, replay_s = largest["newest_first"]
    n = largest["trades"]
    print(
        f"{n} trades all late (each symbol's newest page first, then its history; the worst case "
        f"for late trades): {n / (add_s + replay_s):.0f} trades/s CPU (parse and add "
        f"{add_s / n * 1e6:.2f} us/trade, then the first read replays every symbol: {replay_s:.2f} s)"
    )
    for r in results:
        if r["unpriced"]:
            print(f"note: {r['unpriced']} of {r['trades']} trades unpriced")
    per_s = largest["trades"] / largest["seconds"]
    ccxt_per_s = largest["trades"] / largest["ccxt_seconds"]
    rss_per_1m = largest["rss_growth_mb"] * 1_000_000 / largest["trades"]
    print(
        f"ingest_trades_per_s={per_s:.0f} ccxt_parse_trades_per_s={ccxt_per_s:.0f} "
        f"ratio={per_s / ccxt_per_s:.2f} rss_mb_per_1m={rss_per_1m:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k, 100k and 250k trades, under a minute")
    parser.add_argument("--seed", type=int, default=1, help="simulator and account seed (default 1)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="ingest rounds per size, the fastest kept (default 3)"
    )
    # Internal: the two steps of one size, each in its own subprocess.
    parser.add_argument("--trades", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pages", help=argparse.SUPPRESS)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        write_pages(args.trades, args.seed, args.pages)
        return
    if args.worker:
        print(json.dumps(worker(args.trades, args.pages, args.rounds)))
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as scratch:
        for size in QUICK_SIZES if args.quick else SIZES:
            began = time.perf_counter()
            results.append(run_worker(size, args.seed, args.rounds, scratch))
            seconds = time.perf_counter() - began
            print(f"measured {size} trades ({seconds:.0f} s with generation)", file=sys.stderr)
        small = run_worker(READ_SMALL, args.seed, 1, scratch)
    report(results, small, args.quick)


if __name__ == "__main__":
    main()
