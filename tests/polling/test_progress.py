"""The poller reports each stored page with its cursors, writes nothing for polls that change
nothing, and a poller given that progress resumes from it: against the Binance simulator over
HTTP, into the real sealed store."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from perf_aggregator.clock import now_ms
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.exchanges.binance import BinanceCursor, BinanceSpot
from perf_aggregator.ledger.book import Ledger
from perf_aggregator.ledger.trades import Trade
from perf_aggregator.polling.pricing import PriceService
from perf_aggregator.polling.scheduler import (
    PollingBounds,
    PollProgress,
    ProgressSink,
    SessionPoller,
    SyncState,
)
from perf_aggregator.sessions.store import SessionRecord, SessionStore
from perf_aggregator.simulator.binance import SimulatedBinance, create_binance_app
from perf_aggregator.tee.credentials import ExchangeCredentials
from perf_aggregator.tee.sealing import Sealer
from request_log import RequestLog

DAY_MS = 86_400_000
BOUNDS = PollingBounds(0.05, 0.1)
MY_TRADES = "/api/v3/myTrades"


class CountingSink:
    """The store's own sink, each save counted; ``refuse`` makes the next saves of trades fail
    like a full disk."""

    def __init__(self, inner: ProgressSink) -> None:
        self.inner = inner
        self.saves: list[tuple[int, PollProgress]] = []
        self.refuse = 0

    def save(self, trades: Sequence[Trade], progress: PollProgress) -> None:
        if self.refuse and trades:
            self.refuse -= 1
            raise sqlite3.OperationalError("database or disk is full")
        self.inner.save(trades, progress)
        self.saves.append((len(trades), progress))


@dataclass
class Account:
    credentials: ExchangeCredentials
    trades: int


@pytest.fixture
def exchange() -> Iterator[tuple[SimulatedBinance, RequestLog, str]]:
    sim = SimulatedBinance(seed=29)  # one per test: the weight budget is per host and port
    log = RequestLog(create_binance_app(sim))
    with serve_in_thread(log) as origin:
        yield sim, log, origin


@pytest.fixture
async def prices(exchange: tuple[SimulatedBinance, RequestLog, str]) -> AsyncIterator[PriceService]:
    service = PriceService(BinanceSpot(None, exchange[2]))
    yield service
    await service.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path, Sealer(os.urandom(32), hashlib.sha256(b"build").digest()))
    yield opened
    opened.close()


def account(sim: SimulatedBinance, seed: int) -> Account:
    end = now_ms() - 10 * 60_000
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    created = sim.create_account(seed, 300, start_ms=end - DAY_MS // 2, end_ms=end, symbols=symbols)
    credentials = ExchangeCredentials(
        "binance", created.api_key, created.api_secret, None, "spot", end - DAY_MS, ()
    )
    return Account(credentials, len(created.raw_trades()))


def new_session(store: SessionStore, sid: str, credentials: ExchangeCredentials) -> None:
    record = SessionRecord(sid, b"\0" * 32, "binance", "spot", "", 0, now_ms() + DAY_MS, "origin")
    store.create(record, credentials)


async def poller_for(
    credentials: ExchangeCredentials,
    origin: str,
    prices: PriceService,
    sink: ProgressSink,
    restored: PollProgress | None = None,
    trades: Sequence[Trade] = (),
) -> tuple[SessionPoller, Ledger, BinanceSpot]:
    connector = BinanceSpot(credentials, origin)
    ledger = Ledger(await prices.book())
    ledger.add(trades)
    sync = SyncState(backfill_complete=restored.backfill_complete if restored else False)
    poller = SessionPoller(connector, ledger, prices, credentials.since_ms, (), BOUNDS, sync, sink, restored)
    return poller, ledger, connector


async def polls_after(poller: SessionPoller, polls: int) -> None:
    """Wait (bounded) until the running poller has finished ``polls`` more polls."""
    seen: list[int | None] = [poller.state.last_poll_at_ms]
    deadline = time.monotonic() + 60
    while len(seen) <= polls:
        assert time.monotonic() < deadline, "the poller stopped polling"
        await asyncio.sleep(0.02)
        if poller.state.last_poll_at_ms != seen[-1]:
            seen.append(poller.state.last_poll_at_ms)


async def test_pages_are_saved_once_and_a_restored_poller_resumes_from_its_cursors(
    exchange: tuple[SimulatedBinance, RequestLog, str], prices: PriceService, store: SessionStore
) -> None:
    sim, log, origin = exchange
    acct = account(sim, 71)
    new_session(store, "s1", acct.credentials)
    sink = CountingSink(store.sink("s1"))
    poller, ledger, connector = await poller_for(acct.credentials, origin, prices, sink)
    task = asyncio.create_task(poller.run())
    try:
        while not poller.state.backfill_complete:
            await polls_after(poller, 1)
        saves = len(sink.saves)
        await polls_after(poller, 3)  # nothing new: no cursor moves, nothing is written
        assert len(sink.saves) == saves
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await connector.close()
    assert len(ledger) == acct.trades
    assert sum(n for n, _ in sink.saves) >= acct.trades  # every trade written (a repeat may come along)
    assert sink.saves[-1][1] == poller.progress() and poller.progress().backfill_complete

    [stored] = list(store.load(now_ms()))
    assert stored.progress == poller.progress()
    assert len({t.key for t in stored.trades}) == acct.trades

    first = len(log.requests)
    resumed_sink = CountingSink(store.sink("s1"))
    resumed, resumed_ledger, connector = await poller_for(
        acct.credentials, origin, prices, resumed_sink, stored.progress, stored.trades
    )
    try:
        assert await resumed.poll_once() == 0
    finally:
        await connector.close()
    reads = [query for path, query in log.requests[first:] if path == MY_TRADES]
    # One page per symbol, from the stored cursor: the trade last seen, or, for a symbol that
    # never traded, the most recent page; no window of history is scanned again.
    by_symbol = {query["symbol"][0]: query for query in reads}
    assert len(reads) == len(by_symbol) == len(stored.progress.symbols)
    for symbol, cursor in stored.progress.cursors.items():
        assert isinstance(cursor, BinanceCursor)
        query = by_symbol[symbol.replace("/", "")]
        assert "startTime" not in query
        assert query.get("fromId") == (None if cursor.from_id is None else [str(cursor.from_id)])
    assert sum("fromId" in query for query in reads) >= 3
    assert len(resumed_ledger) == acct.trades and resumed_sink.saves == []


async def test_trades_of_a_failed_save_are_written_with_the_next_one(
    exchange: tuple[SimulatedBinance, RequestLog, str], prices: PriceService, store: SessionStore
) -> None:
    sim, _, origin = exchange
    acct = account(sim, 72)
    new_session(store, "s2", acct.credentials)
    sink = CountingSink(store.sink("s2"))
    sink.refuse = 2
    poller, ledger, connector = await poller_for(acct.credentials, origin, prices, sink)
    try:
        await poller.poll_once()
    finally:
        await connector.close()
    assert sink.refuse == 0 and any(n for n, _ in sink.saves), "a page must be saved after the refusals"
    assert len(ledger) == acct.trades
    [stored] = list(store.load(now_ms()))
    assert len({t.key for t in stored.trades}) == acct.trades
    assert stored.progress == poller.progress()


class SpoilFirstQty:
    """Wraps a simulator app: while ``on``, the first ``qty`` of every ``myTrades`` answer for
    ``symbol`` reads ``value`` (a number no market has), the body otherwise as the simulator
    wrote it."""

    def __init__(self, app: ASGIApp, symbol: str, value: str) -> None:
        self.app, self.symbol, self.value, self.on = app, symbol, value, True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != MY_TRADES
            or f"symbol={self.symbol}".encode() not in scope["query_string"]
            or not self.on
        ):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def collect(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                body = re.sub(
                    rb'"qty":"[^"]*"', b'"qty":"' + self.value.encode() + b'"', b"".join(chunks), count=1
                )
                headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, collect)


@pytest.mark.parametrize("value", ["NaN", "-0.5", "1E+400000"])
async def test_a_page_with_an_impossible_number_is_refused_whole_and_read_again_later(
    value: str, store: SessionStore
) -> None:
    sim = SimulatedBinance(seed=31)
    spoiler = SpoilFirstQty(create_binance_app(sim), "ETHUSDT", value)
    with serve_in_thread(spoiler) as origin:
        acct = account(sim, 73)
        eth = sum(t["symbol"] == "ETHUSDT" for t in sim.accounts[acct.credentials.api_key].raw_trades())
        new_session(store, "s3", acct.credentials)
        sink = CountingSink(store.sink("s3"))
        prices = PriceService(BinanceSpot(None, origin))
        poller, ledger, connector = await poller_for(acct.credentials, origin, prices, sink)
        try:
            delay = await poller._poll_with_classification()
            assert delay == BOUNDS.max_s
            error = poller.state.last_error
            assert error == "ImpossibleTrade: a trade's amount is not a number a market can have"
            assert value not in error
            # Nothing of ETH/USDT's refused page was kept; the symbols after it were read.
            assert 0 < eth < acct.trades
            assert len(ledger) == acct.trades - eth
            assert sum(n for n, _ in sink.saves) >= len(ledger)  # saved (a repeat may come along)
            assert "SOL/USDT" in {d["symbol"] for d in ledger.symbol_documents()}
            assert not poller.state.backfill_complete
            spoiler.on = False
            await poller._poll_with_classification()
        finally:
            await connector.close()
            await prices.close()
    assert poller.state.last_error is None
    assert len(ledger) == acct.trades
    assert poller.state.backfill_complete
