"""The shared request budget: under the limit in every minute, FIFO, penalties shared."""

from __future__ import annotations

import asyncio

import pytest

from perf_aggregator.exchanges.budget import BURST, HEADROOM, RequestBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_any_minute_stays_under_the_limit() -> None:
    clock = FakeClock()
    budget = RequestBudget(6000, clock=clock)
    sent: list[float] = []
    for _ in range(2000):  # 2000 requests of weight 20 = 40000 weight: several minutes' worth
        allowed = budget.reserve(20)
        clock.now = max(clock.now, allowed)
        sent.append(allowed)
    assert sent[0] == 1000.0
    for i, start in enumerate(sent):
        in_window = sum(1 for t in sent[i:] if t < start + 60) * 20
        assert in_window <= 6000 * (HEADROOM + BURST) + 20
    total_minutes = (sent[-1] - sent[0]) / 60
    assert 2000 * 20 / total_minutes == pytest.approx(6000 * HEADROOM, rel=0.05)


def test_reservations_are_served_in_arrival_order_and_penalties_are_shared() -> None:
    clock = FakeClock()
    budget = RequestBudget(600, clock=clock)  # 480 weight/min allowed, burst 60
    first = [budget.reserve(20) for _ in range(3)]
    assert first == [1000.0, 1000.0, 1000.0]  # within the burst
    later = [budget.reserve(20) for _ in range(3)]
    assert later == sorted(later) and later[0] > 1000.0
    budget.penalize(120)
    assert budget.paused_for == 120
    assert budget.reserve(1) >= 1120.0  # every caller of this host waits out the penalty
    clock.now = 1120.0
    assert budget.reserve(20) > 1120.0  # and no burst follows the pause


async def test_spend_waits_for_real() -> None:
    limit = 60 * 60 / HEADROOM  # 60 weight per second after headroom
    budget = RequestBudget(limit)
    await budget.spend(limit * BURST)  # the whole burst: no wait
    loop = asyncio.get_running_loop()
    started = loop.time()
    await budget.spend(6)  # 0.1 s at 60 weight/s
    assert loop.time() - started >= 0.08
