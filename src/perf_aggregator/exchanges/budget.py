"""Request budgets per exchange host (or per API key), shared by every session of the process.

The enclave has one egress IP, so an exchange sees all sessions as one client:
a single budget per host keeps the sum under the exchange's documented limit,
and a 429/418 penalty pauses every session using that host, not only the one
that was told. Limits an exchange counts per API key instead (Kraken's call
counter, Coinbase's private endpoints) get one budget per key; the connector
names the scope in the budget's key. Requests wait in FIFO order; since each
session has at most one request in flight, a new session's backfill queues
behind live polls instead of starving them (a bounded wait of one request per
session).

A budget is a GCRA schedule: a limit per window (Binance's weight per minute,
Coinbase's requests per second) paced at ``HEADROOM`` of the limit, with a
burst of ``BURST`` of the limit, so that any window holds at most
``(HEADROOM + BURST) * limit``. Exchanges count requests as they arrive, and requests sent on
schedule can arrive bunched (held up in this process, on the way or at the exchange's door): a
shared budget keeps that promise for any ``window_s + ARRIVAL_SPREAD_S`` of sends. A leaky-bucket
counter (Kraken's: at most ``maximum``, decaying by ``decay`` per second) is the same schedule with
``window_s=1``, ``limit=decay`` and an explicit ``burst`` of the counter's room.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable

HEADROOM = 0.8
"""Fraction of the documented limit we allow ourselves (other clients, clock drift)."""

BURST = 0.1
"""Bucket capacity as a fraction of the limit per window: with HEADROOM, any window
stays within ``(HEADROOM + BURST) * limit``, below the limit."""

MINUTE_S = 60.0

ARRIVAL_SPREAD_S = 0.25
"""How far requests sent on schedule may bunch on their way. Paced at 80% of a per-second limit
of 10 with a burst of 1, eleven requests span 1.25 s: arrivals bunched by more than 1/4 s put
eleven in one second (one such Coinbase 429 was seen in a loaded test run). With the spread, any
1.25 s of sends holds 90% of the limit (6.4 requests a second) and eleven span 1.56 s; on a
per-minute limit it costs 0.4% of the pace."""


class RequestBudget:
    """Request weight per window with bursts, as a GCRA schedule, and a shared penalty pause.

    Each spend reserves its slot at once (so callers are served in arrival order) and then
    waits for it; no lock is held, so one budget serves any number of event loops.
    """

    def __init__(
        self,
        limit: float,
        *,
        window_s: float = MINUTE_S,
        burst: float | None = None,
        headroom: float = HEADROOM,
        spread_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        scope: str | None = None,
    ) -> None:
        """``limit`` weight per ``window_s`` seconds; ``burst`` (weight) defaults to ``BURST``
        of the limit, at least 1; ``spread_s``: how far arrivals may bunch (module docstring);
        ``scope``: the name :func:`budget_for` shares it under, if it does."""
        self.window_s = window_s
        self._scope = scope
        self._spread_s = spread_s
        self._burst = burst
        self._headroom = headroom
        self._clock = clock
        self._tat = clock()  # theoretical arrival time: when all weight spent so far is paid back
        self._seconds_per_weight = 0.0
        self._paused_until = 0.0
        self._shift = 0.0  # how far penalties moved the slots reserved so far
        self.set_limit(limit)

    def set_limit(self, limit: float) -> None:
        """Adopt the limit the exchange declares (e.g. Binance's ``exchangeInfo.rateLimits``).

        The weight already in the bucket is kept and drains at the new rate from now on, so
        a burst spent under a looser default still counts against a tighter declared limit.
        """
        now = self._clock()
        level = max(0.0, self._tat - now) / self._seconds_per_weight if self._seconds_per_weight else 0.0
        self.limit = limit
        self._seconds_per_weight = (self.window_s + self._spread_s) / (limit * self._headroom)
        self._capacity = self._burst if self._burst is not None else max(1.0, limit * BURST)
        self._tolerance = self._capacity * self._seconds_per_weight
        self._tat = now + level * self._seconds_per_weight

    def reserve(self, weight: float) -> float:
        """Reserve ``weight`` now; returns when it may be sent (a ``clock()`` time)."""
        weight = min(weight, self._capacity)
        now = self._clock()
        tat = max(self._tat, now) + weight * self._seconds_per_weight
        self._tat = tat
        self._keep()
        return max(now, tat - self._tolerance, self._paused_until)

    async def spend(self, weight: float) -> None:
        """Wait until ``weight`` may be spent, then return (it is spent)."""
        shift = self._shift
        allowed_at = self.reserve(weight)
        while (delay := allowed_at + self._shift - shift - self._clock()) > 0:
            await asyncio.sleep(delay)

    def penalize(self, retry_after_s: float) -> None:
        """The exchange said stop: nobody sends for ``retry_after_s``, and no burst follows.

        Slots already reserved move back by the pause, keeping their order and spacing (left
        where they were, they would all fire together when the pause ends).
        """
        now = self._clock()
        until = now + retry_after_s
        if until > self._paused_until:
            moved = until - max(now, self._paused_until)
            self._shift += moved
            self._tat += moved
            self._paused_until = until
        self._tat = max(self._tat, self._paused_until + self._tolerance)
        self._keep()

    @property
    def paused_for(self) -> float:
        """Seconds left in the current penalty pause (0 when none)."""
        return max(0.0, self._paused_until - self._clock())

    @property
    def idle(self) -> bool:
        """Whether every weight spent is paid back and no pause is on: a new budget with the same
        limits would schedule exactly as this one does from now on."""
        return self._clock() >= max(self._tat, self._paused_until)

    def _keep(self) -> None:
        """A shared budget that holds spent weight or a pause outlives its holders until idle."""
        if self._scope is not None:
            with _LOCK:
                _BUSY[self._scope] = self


_SHARED: weakref.WeakValueDictionary[str, RequestBudget] = weakref.WeakValueDictionary()
"""The budgets :func:`budget_for` handed out, by scope, for as long as something holds them."""
_BUSY: dict[str, RequestBudget] = {}
"""Shared budgets that may not be idle, held here too: when the last connector of a scope goes
(a session with its own API key ends), what the exchange still counts stays with the scope for
the next one, and an idle budget is then dropped instead of kept for the life of the process."""
_LOCK = threading.Lock()
"""Guards both against event loops of other threads: a budget found idle must not be dropped
after another thread's reservation (whose ``_keep`` waits for the lock), nor a scope created twice."""


def budget_for(
    scope: str,
    limit: float,
    *,
    window_s: float = MINUTE_S,
    burst: float | None = None,
    spread_s: float = ARRIVAL_SPREAD_S,
    clock: Callable[[], float] = time.monotonic,
) -> RequestBudget:
    """The process-wide budget of ``scope`` (an origin plus API family, or plus a key digest).

    The first caller's limit, window, burst, spread and clock create it; later callers share it
    as it is, while anything holds it or it is not idle. Idle budgets nothing holds are dropped
    here.
    """
    with _LOCK:
        for name in [name for name, kept in _BUSY.items() if kept.idle]:
            del _BUSY[name]  # still shared while a connector holds it
        budget = _SHARED.get(scope)
        if budget is None:
            budget = RequestBudget(
                limit, window_s=window_s, burst=burst, spread_s=spread_s, clock=clock, scope=scope
            )
            _SHARED[scope] = budget
    return budget
