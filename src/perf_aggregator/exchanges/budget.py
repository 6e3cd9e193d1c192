"""Request budgets per exchange host, shared by every session of the process.

The enclave has one egress IP, so an exchange sees all sessions as one client:
a single budget per host keeps the sum under the exchange's documented limit,
and a 429/418 penalty pauses every session using that host, not only the one
that was told. Requests wait in FIFO order; since each session has at most one
request in flight, a new session's backfill queues behind live polls instead of
starving them (a bounded wait of one request per session).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

HEADROOM = 0.8
"""Fraction of the documented limit we allow ourselves (other clients, clock drift)."""

BURST = 0.1
"""Bucket capacity as a fraction of the per-minute limit: with HEADROOM, any 60 s window
stays within ``(HEADROOM + BURST) * limit``, below the limit."""


class RequestBudget:
    """Request weight per minute with bursts, as a GCRA schedule, and a shared penalty pause.

    Each spend reserves its slot at once (so callers are served in arrival order) and then
    waits for it; no lock is held, so one budget serves any number of event loops.
    """

    def __init__(
        self,
        limit_per_minute: float,
        *,
        headroom: float = HEADROOM,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._headroom = headroom
        self.set_limit(limit_per_minute)
        self._clock = clock
        self._tat = clock()  # theoretical arrival time: when all weight spent so far is paid back
        self._paused_until = 0.0

    def set_limit(self, limit_per_minute: float) -> None:
        """Adopt the limit the exchange declares (e.g. Binance's ``exchangeInfo.rateLimits``)."""
        self.limit_per_minute = limit_per_minute
        self._seconds_per_weight = 60.0 / (limit_per_minute * self._headroom)
        self._capacity = max(1.0, limit_per_minute * BURST)
        self._tolerance = self._capacity * self._seconds_per_weight

    def reserve(self, weight: float) -> float:
        """Reserve ``weight`` now; returns when it may be sent (a ``clock()`` time)."""
        weight = min(weight, self._capacity)
        now = self._clock()
        tat = max(self._tat, now) + weight * self._seconds_per_weight
        self._tat = tat
        return max(now, tat - self._tolerance, self._paused_until)

    async def spend(self, weight: float) -> None:
        """Wait until ``weight`` may be spent, then return (it is spent)."""
        allowed_at = self.reserve(weight)
        while (delay := max(allowed_at, self._paused_until) - self._clock()) > 0:
            await asyncio.sleep(delay)

    def penalize(self, retry_after_s: float) -> None:
        """The exchange said stop: nobody sends for ``retry_after_s``, and no burst follows."""
        now = self._clock()
        self._paused_until = max(self._paused_until, now + retry_after_s)
        self._tat = max(self._tat, self._paused_until + self._tolerance)

    @property
    def paused_for(self) -> float:
        """Seconds left in the current penalty pause (0 when none)."""
        return max(0.0, self._paused_until - self._clock())


_BUDGETS: dict[str, RequestBudget] = {}


def budget_for(host_key: str, limit_per_minute: float) -> RequestBudget:
    """The process-wide budget of ``host_key`` (an origin, or origin plus API family)."""
    budget = _BUDGETS.get(host_key)
    if budget is None:
        budget = _BUDGETS[host_key] = RequestBudget(limit_per_minute)
    return budget
