"""Backfill throughput: our Binance spot connector versus ccxt's ``fetch_my_trades``, same pages, same run.

One process starts the wire-faithful Binance simulator on loopback (uvicorn in a
background thread), generates one account, then reads its whole spot history twice:

* ours: ``BinanceSpot.fetch_trades`` from cursor ``None`` until ``done`` for each symbol
  (the connector's own strategy: latest page, 24-hour window scan, ``fromId`` walk);
  raw ``myTrades`` JSON parsed into exact-decimal ``Trade`` records;
* ccxt: ``ccxt.async_support.binance.fetch_my_trades`` walking the same strategy with
  the same parameters (unified dicts with floats).

Both go through ccxt's aiohttp transport against the same server; markets are loaded
before timing (warm-up excluded) and the request sequences are checked to be identical.
A small ASGI wrapper records every request's path, parameters, the weight the simulator
charged and its ``X-MBX-USED-WEIGHT-1M`` header. The simulator's weight limit is set
very high so that the timing measures parsing and transport, not pacing; the weight is
then compared with Binance's real 6000/minute limit.

    python bench/backfill.py            # 200k trades
    python bench/backfill.py --quick    # 20k trades, under a minute

The last line is ``backfill_trades_per_s=<n> ccxt_trades_per_s=<n> ratio=<x>`` (ours/ccxt).
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import gc
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import ccxt.async_support as ccxt_async

from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.exchanges.binance import PAGE_LIMIT, WEIGHT_LIMIT_PER_MINUTE, WINDOW_MS, BinanceSpot
from perf_aggregator.exchanges.budget import BURST, HEADROOM
from perf_aggregator.exchanges.endpoints import override_ccxt_urls
from perf_aggregator.simulator.accounts import DEFAULT_SYMBOLS, Account
from perf_aggregator.simulator.binance import SimulatedBinance, create_binance_app
from perf_aggregator.simulator.market import DAY_MS
from perf_aggregator.simulator.ratelimit import Verdict, WeightLimiter
from perf_aggregator.tee.credentials import ExchangeCredentials

HISTORY_DAYS = 60
QUICK_TRADES = 20_000
MY_TRADES = "/api/v3/myTrades"
_SIGNING = frozenset({"timestamp", "signature", "recvWindow"})


# -- request recording ---------------------------------------------------------------------------------


@dataclass
class Hit:
    """One request the simulator served."""

    path: str
    params: tuple[tuple[str, str], ...]
    """Query parameters without the signing ones, sorted: what identifies a page."""
    weight: int = 0
    status: int = 0
    used_1m: int | None = None
    server_s: float = 0.0
    """Wall time from the request reaching the app to its last response byte being handed over."""

    @property
    def kind(self) -> str:
        names = {name for name, _ in self.params}
        if self.path != MY_TRADES:
            return self.path
        if "fromId" in names:
            return "myTrades fromId"
        if "startTime" in names:
            return "myTrades 24h window"
        return "myTrades latest"


_CURRENT: contextvars.ContextVar[Hit | None] = contextvars.ContextVar("bench_hit", default=None)


class Recorder:
    """ASGI wrapper recording each HTTP request and its response status and weight header."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.hits: list[Hit] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        hit = Hit(scope["path"], tuple(sorted((k, v) for k, v in query if k not in _SIGNING)))
        self.hits.append(hit)
        token = _CURRENT.set(hit)

        async def send_recording(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                hit.status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"x-mbx-used-weight-1m":
                        hit.used_1m = int(value)
            await send(message)

        began = time.perf_counter()
        try:
            await self.app(scope, receive, send_recording)
        finally:
            hit.server_s = time.perf_counter() - began
            _CURRENT.reset(token)

    def since(self, start: int) -> list[Hit]:
        return self.hits[start:]


class CountingLimiter(WeightLimiter):
    """The simulator's own weight accounting, also noting each charge on the request being served."""

    def charge(self, ip: str, family: str, weight: int, now_ms: int) -> Verdict:
        hit = _CURRENT.get()
        if hit is not None:
            hit.weight += weight
        return super().charge(ip, family, weight, now_ms)


# -- the two backfills --------------------------------------------------------------------------------


async def backfill_ours(connector: BinanceSpot, symbols: list[str], since_ms: int) -> list[Any]:
    """Every page of every symbol, the way the sync loop reads a new account's history."""
    trades: list[Any] = []
    for symbol in symbols:
        cursor: object | None = None
        while True:
            page = await connector.fetch_trades(symbol, cursor, since_ms)
            trades.extend(page.trades)
            cursor = page.cursor
            if page.done:
                break
    return trades


async def backfill_ccxt(exchange: Any, symbols: list[str], since_ms: int) -> list[dict[str, Any]]:
    """The same pages through ``fetch_my_trades``: latest page, 24-hour windows from ``since_ms``
    up to the first trade (an empty window read twice), then ``fromId`` = the last id seen, 1000
    a page, until a short page. Like the connector, it keeps the latest page's trades only when
    that page is the whole history (otherwise the walk reads them again, in order)."""
    trades: list[dict[str, Any]] = []

    async def page(symbol: str, since: int | None = None, **params: int) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = await exchange.fetch_my_trades(symbol, since, PAGE_LIMIT, params)
        return got

    for symbol in symbols:
        latest = await page(symbol)
        if len(latest) < PAGE_LIMIT or latest[0]["timestamp"] < since_ms:
            trades.extend(latest)
            continue  # the latest page holds the whole history: done
        from_id: int | None = None
        scan = since_ms
        confirmed = False
        while from_id is None:
            window = await page(symbol, scan, endTime=scan + WINDOW_MS - 1)
            trades.extend(window)
            if window:
                from_id = int(window[0]["id"])
            elif not confirmed:
                confirmed = True
            else:
                scan += WINDOW_MS
                confirmed = False
                if scan > time.time() * 1000:
                    from_id = int(latest[0]["id"])
        while True:
            walked = await page(symbol, fromId=from_id)
            trades.extend(walked)
            if not walked:
                break
            from_id = int(walked[-1]["id"])
            if len(walked) < PAGE_LIMIT:
                break
    return trades


@dataclass
class Result:
    name: str
    seconds: float
    rows: int
    trades: int
    hits: list[Hit]

    @property
    def weight(self) -> int:
        return sum(h.weight for h in self.hits)

    @property
    def server_s(self) -> float:
        return sum(h.server_s for h in self.hits)

    @property
    def per_s(self) -> float:
        return self.trades / self.seconds


async def timed(
    name: str,
    recorder: Recorder,
    run: Callable[[], Awaitable[list[Any]]],
    key: Callable[[Any], tuple[str, str, str]],
) -> Result:
    gc.collect()
    start = len(recorder.hits)
    began = time.perf_counter()
    rows = await run()
    seconds = time.perf_counter() - began
    hits = recorder.since(start)
    unique = len({key(t) for t in rows})
    return Result(name, seconds, len(rows), unique, hits)


# -- reporting -------------------------------------------------------------------------------------


def breakdown(hits: list[Hit]) -> str:
    counts = Counter((h.kind, h.weight) for h in hits)
    return ", ".join(f"{kind} {n} x {w}" for (kind, w), n in sorted(counts.items()))


def report(
    args: argparse.Namespace,
    origin: str,
    account: Account,
    rounds: list[tuple[Result, Result]],
    warm: dict[str, list[Hit]],
) -> None:
    """The table of the fastest round of each, the weight figures, then the summary line."""
    ours = min((r[0] for r in rounds), key=lambda r: r.seconds)
    theirs = min((r[1] for r in rounds), key=lambda r: r.seconds)
    print(
        f"Binance spot backfill of a {len(account.trades)}-trade account ({len(account.books)} symbols, "
        f"{HISTORY_DAYS} days, seed {args.seed}) from the simulator at {origin}; "
        f"best of {len(rounds)} alternating rounds"
    )
    print(
        f"{'':24} {'requests':>8} {'weight':>7} {'rows':>8} {'trades':>8} "
        f"{'seconds':>8} {'server s':>8} {'trades/s':>9}"
    )
    for r in (ours, theirs):
        print(
            f"{r.name:24} {len(r.hits):8d} {r.weight:7d} {r.rows:8d} {r.trades:8d} "
            f"{r.seconds:8.2f} {r.server_s:8.2f} {r.per_s:9.0f}"
        )
    for name, index in ((ours.name, 0), (theirs.name, 1)):
        print(f"{name} trades/s by round: {', '.join(f'{r[index].per_s:.0f}' for r in rounds)}")
    print(f"requests (every run, identical): {breakdown(ours.hits)}")
    print(
        "trades: distinct (symbol, id, side); rows: all handed over, including re-reads (the fromId walk "
        "starts at the first window page's first id and ends on the latest page again, and "
        "consecutive pages share the last id seen)"
    )
    print("server s: time inside the simulator app (same process, same GIL), part of both runs' seconds")
    for name, hits in warm.items():
        print(f"warm-up, not timed ({name}): {len(hits)} requests, weight {sum(h.weight for h in hits)}")
    weight = ours.weight
    paced = WEIGHT_LIMIT_PER_MINUTE * HEADROOM
    first = rounds[0][0]  # round 1 runs ours first: its minute holds only the warm-up before it
    peak = max((h.used_1m or 0 for h in first.hits), default=0)
    print(
        f"weight versus Binance's documented {WEIGHT_LIMIT_PER_MINUTE}/min limit: this backfill costs "
        f"{weight} weight = {weight / paced:.2f} minutes of the limit at {HEADROOM:.0%} headroom "
        f"({paced:.0f}/min; the first {WEIGHT_LIMIT_PER_MINUTE * BURST:.0f} as a burst), "
        f"{weight / len(account.trades) * 1000:.0f} weight per 1000 trades"
    )
    print(
        f"unpaced, X-MBX-USED-WEIGHT-1M peaked at {peak} in round 1 (warm-up in the same minute "
        f"included; simulator limit {args.weight_limit}, Binance answers 429 above {WEIGHT_LIMIT_PER_MINUTE})"
    )
    ratio = ours.per_s / theirs.per_s
    print(f"backfill_trades_per_s={ours.per_s:.0f} ccxt_trades_per_s={theirs.per_s:.0f} ratio={ratio:.2f}")


# -- main ----------------------------------------------------------------------------------------------


def check(account: Account, ours: Result, theirs: Result) -> None:
    """Both read every trade, through the same pages, and nothing was refused."""
    for r in (ours, theirs):
        refused = [h for h in r.hits if h.status != 200]
        assert not refused, f"{r.name}: {len(refused)} requests refused, e.g. {refused[0]}"
    assert [(h.path, h.params) for h in ours.hits] == [(h.path, h.params) for h in theirs.hits], (
        "the two backfills did not request the same pages"
    )
    assert ours.rows == theirs.rows, (ours.rows, theirs.rows)
    assert ours.trades == theirs.trades == len(account.trades), (ours.trades, theirs.trades)


async def measure(args: argparse.Namespace, origin: str, account: Account, recorder: Recorder) -> None:
    since_ms = min(t.time for t in account.trades)
    credentials = ExchangeCredentials(
        exchange="binance",
        api_key=account.api_key,
        api_secret=account.api_secret,
        passphrase=None,
        account_type="spot",
        since_ms=since_ms,
        symbols=(),
    )
    connector = BinanceSpot(credentials, origin_override=origin)
    exchange = ccxt_async.binance(
        {"apiKey": account.api_key, "secret": account.api_secret, "enableRateLimit": False}
    )
    override_ccxt_urls(exchange, origin)
    rounds: list[tuple[Result, Result]] = []
    try:
        warm: dict[str, list[Hit]] = {}
        start = len(recorder.hits)
        markets = await connector.markets()  # exchangeInfo: adopts the simulator's declared limit
        warm["ours: markets()"] = recorder.since(start)
        start = len(recorder.hits)
        await exchange.load_markets()
        warm["ccxt: load_markets()"] = recorder.since(start)
        by_id = {m.id: m.symbol for m in markets.values()}
        symbols = [by_id[s] for s in sorted(account.books)]

        def run_ours() -> Awaitable[Result]:
            return timed(
                "ours (BinanceSpot)",
                recorder,
                lambda: backfill_ours(connector, symbols, since_ms),
                lambda t: (t.symbol, t.id, t.side),
            )

        def run_ccxt() -> Awaitable[Result]:
            return timed(
                "ccxt fetch_my_trades",
                recorder,
                lambda: backfill_ccxt(exchange, symbols, since_ms),
                lambda t: (t["symbol"], t["id"], t["side"]),
            )

        for number in range(args.rounds):
            # Alternate which goes first, so that neither always follows the other.
            if number % 2 == 0:
                ours = await run_ours()
                theirs = await run_ccxt()
            else:
                theirs = await run_ccxt()
                ours = await run_ours()
            check(account, ours, theirs)
            rounds.append((ours, theirs))
    finally:
        await connector.close()
        await exchange.close()
    report(args, origin, account, rounds, warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trades", type=int, default=200_000, help="trades in the account (default 200000)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TRADES} trades, under a minute")
    parser.add_argument("--seed", type=int, default=1, help="simulator and account seed (default 1)")
    parser.add_argument(
        "--weight-limit", type=int, default=10**9, help="the simulator's weight limit per minute"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds of both backfills; the best counts"
    )
    args = parser.parse_args()
    if args.quick:
        args.trades = QUICK_TRADES
    if args.rounds < 1 or args.trades < 1:
        parser.error("--rounds and --trades must be at least 1")

    sim = SimulatedBinance(args.seed, weight_limit=args.weight_limit)
    sim.limiter = CountingLimiter(
        sim.limiter.limits, ban_ms=sim.limiter.ban_ms, tolerated_429s=sim.limiter.tolerated_429s
    )
    end_ms = sim.now_ms() // DAY_MS * DAY_MS  # today's midnight UTC: the same account all day
    began = time.perf_counter()
    account = sim.create_account(
        args.seed,
        args.trades,
        start_ms=end_ms - HISTORY_DAYS * DAY_MS,
        end_ms=end_ms,
        symbols=DEFAULT_SYMBOLS,
    )
    print(f"generated {len(account.trades)} trades in {time.perf_counter() - began:.1f} s (not timed)")
    recorder = Recorder(create_binance_app(sim))
    with serve_in_thread(recorder) as origin:
        asyncio.run(measure(args, origin, account, recorder))


if __name__ == "__main__":
    main()
