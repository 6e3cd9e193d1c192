"""The wall clock, in one place so that tests can inject their own."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]
"""A function returning epoch milliseconds."""


def now_ms() -> int:
    """Current epoch milliseconds."""
    return time.time_ns() // 1_000_000
