"""Instructions per trade of the ingest chain, counted by callgrind: a figure the host's speed does not move.

``bench/ingest.py`` times the chain in CPU seconds, which on a shared host vary from minute to
minute by as much as the optimizations measure. This script counts the instructions instead
(``valgrind --tool=callgrind``, the same count to within a fraction of a percent from run to run)
on the account and candles ``ingest.py`` generates: each part runs in its own process under
callgrind, the instrumentation switched on around the measured loop only
(``callgrind_control -i on|off``), so that start-up, imports and reading the pages do not count.

* ``parse``: ``binance.parse_trades`` on every page;
* ``ledger``: ``Ledger.add`` on every page parsed beforehand, then the metrics and summary
  documents;
* ``ccxt``: ccxt's ``binance().parse_trades`` on the same pages.

    python bench/instructions.py                 # 20k trades (about a minute)
    python bench/instructions.py --trades 5000

The last line is ``parse_instructions_per_trade=<n> ledger_instructions_per_trade=<n>
ccxt_parse_instructions_per_trade=<n> ratio=<ccxt / (parse + ledger)>``. Needs valgrind
(Debian: ``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile

import ingest

from perf_aggregator import heap
from perf_aggregator.exchanges.binance import parse_trades
from perf_aggregator.ledger.book import Ledger

PARTS = ("parse", "ledger", "ccxt")
_COLLECTED = re.compile(r"Collected : (\d+)")


def instrumented(part: str) -> None:
    """Switch callgrind's instrumentation of this process on or off."""
    subprocess.run(["callgrind_control", "-i", part, str(os.getpid())], capture_output=True, check=True)  # noqa: S603, S607


def measure(part: str, path: str) -> int:
    """Run ``part`` on the pages at ``path`` (in this process, under callgrind); the trades run."""
    heap.settle()  # as the service and ingest.py set the collector
    markets = ingest.our_markets()
    pages = [(markets[exchange_id], raw) for exchange_id, raw in ingest.pages(path)]
    count = sum(len(raw) for _, raw in pages)
    if part == "ccxt":
        exchange = ingest.ccxt_exchange()
        gc.collect()
        instrumented("on")
        for market, raw in pages:
            exchange.parse_trades(raw, exchange.market(market.symbol))
    elif part == "parse":
        gc.collect()
        instrumented("on")
        for market, raw in pages:
            parse_trades(raw, market)
    else:
        ledger = Ledger(ingest.price_book(path))
        parsed = [parse_trades(raw, market) for market, raw in pages]
        gc.collect()
        instrumented("on")
        for trades in parsed:
            ledger.add(trades)
        ledger.symbol_documents()
        ledger.totals_document()
        ledger.summary_figures(ingest.AS_OF_MS)
    instrumented("off")
    return count


def count_part(part: str, path: str, scratch: str) -> float:
    """Instructions per trade of ``part``, from a run of this script under callgrind."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={os.path.join(scratch, part + '.out')}",
        sys.executable,
        __file__,
        "--part",
        part,
        "--pages",
        path,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    collected = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or collected is None:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"callgrind run of {part} failed")
    trades = int(done.stdout.split()[-1])
    return int(collected.group(1)) / trades


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trades", type=int, default=20_000, help="trades in the account (default 20000)")
    parser.add_argument("--seed", type=int, default=1, help="simulator and account seed (default 1)")
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # internal: one part, counted
    parser.add_argument("--pages", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        print(measure(args.part, args.pages))
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is needed (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="instructions-bench-") as scratch:
        path = os.path.join(scratch, "pages.jsonl")
        ingest.write_pages(args.trades, args.seed, path)
        per_trade = {part: count_part(part, path, scratch) for part in PARTS}
    ours = per_trade["parse"] + per_trade["ledger"]
    print(f"{args.trades} trades (seed {args.seed}), instructions per trade:")
    for part in PARTS:
        print(f"  {part:7s} {per_trade[part]:10.0f}")
    print(f"  ours    {ours:10.0f}  (parse + ledger)")
    print(
        f"parse_instructions_per_trade={per_trade['parse']:.0f} "
        f"ledger_instructions_per_trade={per_trade['ledger']:.0f} "
        f"ccxt_parse_instructions_per_trade={per_trade['ccxt']:.0f} ratio={per_trade['ccxt'] / ours:.2f}"
    )


if __name__ == "__main__":
    main()
