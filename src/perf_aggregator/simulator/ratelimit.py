"""Binance's IP request-weight limits: per-minute budgets, 429 when spent, 418 bans for insisting.

Binance counts weight per IP in fixed windows aligned to the clock minute (the
``X-MBX-USED-WEIGHT-1M`` header resets at each minute); each API family (spot
``/api``, ``/sapi``, futures ``/fapi`` and ``/dapi``) has its own budget. The weight
of a refused request is counted too, so the header can exceed the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from perf_aggregator.simulator.market import MINUTE_MS


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of charging one request: ``status`` 200 (go on), 429 (limited) or 418 (banned)."""

    status: int
    used: int
    """Weight used by the IP in this family's current window, this request included."""
    retry_after_s: int = 0
    banned_until_ms: int = 0


@dataclass(slots=True)
class _Window:
    minute: int
    used: int = 0
    refusals: int = 0


class WeightLimiter:
    """Request-weight accounting for every client IP.

    ``limits`` maps an API family to its weight budget per minute. An IP that
    already got ``tolerated_429s`` 429 answers in a window and sends another
    over-limit request is banned for ``ban_ms``: every request then gets 418.
    """

    def __init__(self, limits: dict[str, int], *, ban_ms: int = 120_000, tolerated_429s: int = 2) -> None:
        self.limits = dict(limits)
        self.ban_ms = ban_ms
        self.tolerated_429s = tolerated_429s
        self._windows: dict[tuple[str, str], _Window] = {}
        self._bans: dict[str, int] = {}

    def _window(self, ip: str, family: str, now_ms: int) -> _Window:
        minute = now_ms // MINUTE_MS
        window = self._windows.get((ip, family))
        if window is None or window.minute != minute:
            window = self._windows[(ip, family)] = _Window(minute)
        return window

    def charge(self, ip: str, family: str, weight: int, now_ms: int) -> Verdict:
        """Count a request of ``weight`` from ``ip`` and say whether it may proceed."""
        window = self._window(ip, family, now_ms)
        window.used += weight
        banned_until = self._bans.get(ip, 0)
        if now_ms >= banned_until and window.used <= self.limits[family]:
            return Verdict(200, window.used)
        if now_ms < banned_until:
            return self._banned(window.used, banned_until, now_ms)
        window.refusals += 1
        if window.refusals > self.tolerated_429s:
            self._bans[ip] = now_ms + self.ban_ms
            return self._banned(window.used, now_ms + self.ban_ms, now_ms)
        window_end = (window.minute + 1) * MINUTE_MS
        return Verdict(429, window.used, retry_after_s=-(-(window_end - now_ms) // 1000))

    @staticmethod
    def _banned(used: int, until_ms: int, now_ms: int) -> Verdict:
        return Verdict(418, used, retry_after_s=-(-(until_ms - now_ms) // 1000), banned_until_ms=until_ms)
