"""Per-session polling: backfill from ``since``, then adaptive polling with backoff.

Each stored page is reported to a :class:`ProgressSink` together with the cursors it
leads to, so that a restarted poller resumes where the last one stopped.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from perf_aggregator.clock import Clock, now_ms
from perf_aggregator.exchanges.base import ExchangeConnector
from perf_aggregator.exchanges.errors import (
    CredentialsRejected,
    ExchangeError,
    ExchangeUnavailable,
    KeyNotReadOnly,
    RateLimited,
)
from perf_aggregator.ledger.book import Ledger
from perf_aggregator.ledger.prices import valuation_needs
from perf_aggregator.ledger.trades import ImpossibleTrade, Trade
from perf_aggregator.polling.pricing import PriceService
from perf_aggregator.telemetry import EXCHANGE_ERRORS, POLLS

log = logging.getLogger(__name__)
_T = TypeVar("_T")

BACKOFF_BASE_S = 2.0
REQUEST_ATTEMPTS = 4
RETRY_BASE_S = 0.25
JITTER = 0.1


@dataclass(slots=True)
class SyncState:
    """What ``sync`` in the metrics document reports."""

    status: str = "backfilling"
    backfill_complete: bool = False
    last_poll_at_ms: int | None = None
    next_poll_at_ms: int | None = None
    poll_interval_s: float = 0.0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class PollingBounds:
    """``PERF_AGG_POLL_MIN_S`` / ``PERF_AGG_POLL_MAX_S``."""

    min_s: float
    max_s: float


@dataclass(frozen=True, slots=True)
class PollProgress:
    """Where a poller stands: what a restart needs to resume without re-reading history."""

    cursors: Mapping[str, object] = field(default_factory=dict)
    """The connector's cursor per symbol (opaque here)."""
    symbols: frozenset[str] = frozenset()
    """Every symbol discovered so far (a symbol once traded stays polled)."""
    backfill_complete: bool = False


class ProgressSink(Protocol):
    """Where a poller reports the trades it stored and the progress they lead to."""

    def save(self, trades: Sequence[Trade], progress: PollProgress) -> None:
        """Persist ``trades`` (possibly none) and ``progress`` atomically: both or neither."""
        ...


def next_interval(current: float, new_trades: int, bounds: PollingBounds) -> float:
    """Halve the interval after new trades, double it after an empty poll, within bounds."""
    proposed = current / 2 if new_trades else current * 2
    return min(bounds.max_s, max(bounds.min_s, proposed))


async def _retrying(call: Callable[[], Awaitable[_T]]) -> _T:
    """``call()``, retried a few times on transient failures, so that one lost request does not
    abandon a whole pass over every symbol (cursors make each retry resume where it stopped)."""
    for attempt in range(REQUEST_ATTEMPTS - 1):
        try:
            return await call()
        except RateLimited:
            raise  # the whole host pauses; the pass waits out Retry-After
        except ExchangeUnavailable:
            await asyncio.sleep(RETRY_BASE_S * 2**attempt * (1 + random.uniform(0, JITTER)))  # noqa: S311
    return await call()


class SessionPoller:
    """Reads one account's history into its ledger, for as long as the session lives."""

    def __init__(
        self,
        connector: ExchangeConnector,
        ledger: Ledger,
        prices: PriceService,
        since_ms: int,
        hints: Sequence[str],
        bounds: PollingBounds,
        state: SyncState,
        sink: ProgressSink,
        restored: PollProgress | None = None,
        clock_ms: Clock = now_ms,
    ) -> None:
        self._connector = connector
        self._ledger = ledger
        self._prices = prices
        self._since_ms = since_ms
        self._hints = tuple(hints)
        self._bounds = bounds
        self.state = state
        self._clock_ms = clock_ms
        self._sink = sink
        restored = restored or PollProgress()
        self._cursors: dict[str, object] = dict(restored.cursors)
        self._symbols: set[str] = set(restored.symbols)
        self._saved = restored
        self._unsaved: list[Trade] = []
        self._failures = 0
        state.poll_interval_s = bounds.min_s

    async def run(self) -> None:
        """Poll until cancelled; errors change the pace, never end the loop."""
        while True:
            delay = await self._poll_with_classification()
            delay *= 1 + random.uniform(-JITTER, JITTER)  # noqa: S311 - jitter, not security
            self.state.next_poll_at_ms = self._clock_ms() + int(delay * 1000)
            await asyncio.sleep(delay)

    async def _poll_with_classification(self) -> float:
        """Run one poll and return the delay before the next one."""
        state = self.state
        exchange = self._connector.exchange_id
        try:
            new = await self.poll_once()
        except (ExchangeError, ImpossibleTrade) as exc:
            POLLS.labels(exchange, "error").inc()
            EXCHANGE_ERRORS.labels(exchange, type(exc).__name__).inc()
            return self._after_failure(exc)
        except Exception as exc:  # a bug must not end this session's polling for good
            POLLS.labels(exchange, "error").inc()
            log.error("poll failed unexpectedly: %s", type(exc).__name__)  # no message: it may hold data
            state.last_error = "internal error while polling"
            self._failures += 1
            return self._bounds.max_s
        POLLS.labels(exchange, "ok").inc()
        self._failures = 0
        state.last_error = None
        state.last_poll_at_ms = self._clock_ms()
        state.status = "active"
        if state.backfill_complete:
            state.poll_interval_s = next_interval(state.poll_interval_s, new, self._bounds)
        else:
            state.backfill_complete = True
            state.poll_interval_s = self._bounds.min_s
        self._save()
        return state.poll_interval_s

    def _after_failure(self, exc: ExchangeError | ImpossibleTrade) -> float:
        """Record ``exc`` in the sync state and return the delay before the next attempt."""
        state = self.state
        state.last_error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, CredentialsRejected | KeyNotReadOnly):
            # The session stays readable; a key that works again brings it back to active.
            state.status = "error"
            return self._bounds.max_s
        if isinstance(exc, RateLimited):
            return max(exc.retry_after_s, self._bounds.min_s)
        self._failures += 1
        if isinstance(exc, ExchangeUnavailable):
            backoff: float = BACKOFF_BASE_S * 2.0 ** min(self._failures, 10)
            return min(self._bounds.max_s, backoff)
        log.warning("poll failed: %s", type(exc).__name__)
        return self._bounds.max_s

    async def poll_once(self) -> int:
        """Read every discovered symbol up to now; returns how many new trades were stored.

        A page refused for impossible numbers (:class:`ImpossibleTrade`) stops its symbol there,
        to be read again on the next pass; the other symbols are read, then it is raised.
        """
        new = 0
        refused: ImpossibleTrade | None = None
        # A symbol once traded stays polled even when its balance is gone.
        self._symbols.update(await self._connector.discover_symbols(self._hints))
        for symbol in sorted(self._symbols):
            while True:
                page = await _retrying(
                    lambda s=symbol: self._connector.fetch_trades(s, self._cursors.get(s), self._since_ms)  # type: ignore[misc]
                )
                if page.trades:
                    await _retrying(lambda p=page: self._prices.ensure(valuation_needs(p.trades)))  # type: ignore[misc]
                    try:
                        added = self._ledger.add(page.trades)
                    except ImpossibleTrade as exc:  # this symbol stops at the page, read again next time
                        refused = refused or exc
                        break
                    if added:
                        self._unsaved.extend(page.trades)  # the few repeats dedup on restore
                    new += added
                self._cursors[symbol] = page.cursor
                self._save()
                if page.done:
                    break
        pending = self._ledger.unpriced_needs()
        if pending:
            await _retrying(lambda: self._prices.ensure(pending))
            self._ledger.revalue()
        if refused is not None:
            raise refused  # the other symbols were read; the pass is reported as failed
        return new

    def progress(self) -> PollProgress:
        """The current cursors, symbols and backfill state."""
        return PollProgress(dict(self._cursors), frozenset(self._symbols), self.state.backfill_complete)

    def _save(self) -> None:
        """Report the unsaved trades and the progress to the sink, when either changed.

        Polls that find nothing new leave the cursors as they were and write nothing. If
        the sink fails, polling goes on from memory and the trades wait for the next save,
        which writes them with the cursors of that moment: stored cursors never pass the
        stored trades.
        """
        progress = self.progress()
        if not self._unsaved and progress == self._saved:
            return
        try:
            self._sink.save(self._unsaved, progress)
        except Exception as exc:  # the session goes on in memory; the next save retries
            log.error("saving poll progress failed: %s", type(exc).__name__)  # no message: may hold data
            return
        self._unsaved = []
        self._saved = progress
