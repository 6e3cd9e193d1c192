"""The shared request budget: under the limit in every window, FIFO, penalties shared."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

import pytest

from perf_aggregator.exchanges.budget import BURST, HEADROOM, RequestBudget, budget_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def send_greedily(budget: RequestBudget, clock: FakeClock, weight: float, count: int) -> list[float]:
    """Send times of ``count`` requests issued as fast as the budget lets them go."""
    sent: list[float] = []
    for _ in range(count):
        allowed = budget.reserve(weight)
        clock.now = max(clock.now, allowed)
        sent.append(allowed)
    return sent


def most_in_a_window(sent: list[float], window_s: float, weight: float) -> float:
    return max(sum(1 for t in sent[i:] if t < start + window_s) for i, start in enumerate(sent)) * weight


def test_any_minute_stays_under_the_limit() -> None:
    clock = FakeClock()
    budget = RequestBudget(6000, clock=clock)
    sent = send_greedily(budget, clock, 20, 2000)  # 40000 weight: several minutes' worth
    assert sent[0] == 1000.0
    assert most_in_a_window(sent, 60, 20) <= 6000 * (HEADROOM + BURST) + 20
    total_minutes = (sent[-1] - sent[0]) / 60
    assert 2000 * 20 / total_minutes == pytest.approx(6000 * HEADROOM, rel=0.05)


def test_a_per_second_limit_holds_in_every_second() -> None:
    """Coinbase's 30 requests per second: a per-minute burst (10% of 1800) would break it."""
    clock = FakeClock()
    budget = RequestBudget(30, window_s=1, clock=clock)
    sent = send_greedily(budget, clock, 1, 600)
    assert most_in_a_window(sent, 1.0, 1) <= 30 * (HEADROOM + BURST) + 1 <= 30
    assert 600 / (sent[-1] - sent[0]) == pytest.approx(30 * HEADROOM, rel=0.05)
    low = RequestBudget(10, window_s=1, clock=clock)  # a burst of 10% is one request
    assert most_in_a_window(send_greedily(low, clock, 1, 200), 1.0, 1) <= 10


def test_a_spread_keeps_bunched_arrivals_within_the_limit() -> None:
    """Coinbase's public 10 per second, counted as requests arrive: without a spread, sends on
    schedule that arrive bunched by 0.3 s (held up on their way) exceed the limit in a second."""
    clock = FakeClock()
    tight = send_greedily(RequestBudget(10, window_s=1, clock=clock), clock, 1, 200)
    assert most_in_a_window(tight, 1.3, 1) > 10
    spread = send_greedily(RequestBudget(10, window_s=1, spread_s=0.25, clock=clock), clock, 1, 200)
    assert most_in_a_window(spread, 1.25, 1) <= 10 * (HEADROOM + BURST) < 10
    assert 200 / (spread[-1] - spread[0]) == pytest.approx(10 * HEADROOM / 1.25, rel=0.05)


def test_a_decaying_call_counter_never_overflows() -> None:
    """Kraken's counter (at most 15, -0.33 per second, TradesHistory costs 2) as a GCRA."""
    clock = FakeClock()
    budget = RequestBudget(0.33, window_s=1, burst=14, clock=clock)
    counter, at = 0.0, clock.now
    for cost in [2, 1, 2, 2] * 40:
        sent = budget.reserve(cost)
        counter = max(0.0, counter - (sent - at) * 0.33) + cost
        at = clock.now = max(clock.now, sent)
        assert counter <= 15
    assert clock.now - 1000.0 > (7 * 40 - 15) / 0.33  # paced by the decay after the first burst


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


def test_a_declared_tighter_limit_still_counts_the_weight_already_spent() -> None:
    clock = FakeClock()
    budget = RequestBudget(6000, clock=clock)
    assert send_greedily(budget, clock, 20, 30)[-1] == 1000.0  # the default's 600 burst
    budget.set_limit(1200)  # 960 per minute allowed, burst 120
    after = budget.reserve(20)
    # 600 in the bucket, 120 of room: 500 weight drain at 16 per second before the next send.
    assert after == pytest.approx(1000.0 + 500 / 16)


def test_budgets_are_shared_per_scope() -> None:
    one = budget_for("https://api.example.test private key-a", 30, window_s=1)
    assert budget_for("https://api.example.test private key-a", 999) is one
    assert budget_for("https://api.example.test private key-b", 30, window_s=1) is not one
    assert one.limit == 30 and one.window_s == 1


def test_a_scope_nothing_holds_is_dropped_once_idle_and_kept_until_then() -> None:
    """Per-key budgets (one per session's API key) must not pile up for the life of the process,
    nor be forgotten while the exchange still counts what they spent."""
    idle = [weakref.ref(budget_for(f"https://api.example.test private idle-{n}", 30)) for n in range(100)]
    spent = budget_for("https://api.example.test private spent", 1, window_s=60)
    spent.reserve(1)  # paid back 75 s from now (60 s / 80% headroom)
    penalized = budget_for("https://api.example.test private penalized", 30, window_s=1)
    penalized.penalize(120)
    kept = [weakref.ref(spent), weakref.ref(penalized)]
    del spent, penalized  # their sessions ended
    budget_for("https://api.example.test private another", 30)  # drops what is idle and unheld
    gc.collect()
    assert all(ref() is None for ref in idle)
    # still what the exchange counts: the next session of the same key inherits it, limits and all
    spent_again = budget_for("https://api.example.test private spent", 999)
    penalized_again = budget_for("https://api.example.test private penalized", 999)
    assert (spent_again, penalized_again) == (kept[0](), kept[1]())
    assert (spent_again.limit, penalized_again.limit) == (1, 30)
    assert penalized_again.paused_for > 100
    # an idle budget that a connector still holds stays shared
    held = budget_for("https://api.example.test private held", 30)
    budget_for("https://api.example.test private another", 30)
    gc.collect()
    assert held.idle and budget_for("https://api.example.test private held", 999) is held


def test_a_spent_budget_nothing_holds_is_dropped_once_paid_back() -> None:
    clock = FakeClock()
    scope = "https://api.example.test private spent-then-idle"
    spent = budget_for(scope, 1, window_s=60, clock=clock)
    spent.reserve(1)  # paid back at 1075.3125: (60 s + the 1/4 s spread) / 80% headroom
    ref = weakref.ref(spent)
    del spent
    clock.now = 1075.3
    budget_for("https://api.example.test private another", 30)
    gc.collect()
    alive = ref()
    assert alive is not None and not alive.idle
    del alive
    clock.now = 1075.3125
    budget_for("https://api.example.test private another", 30)
    gc.collect()
    assert ref() is None
    assert budget_for(scope, 30, clock=clock).limit == 30  # a new one


async def test_spend_waits_for_real() -> None:
    limit = 60 * 60 / HEADROOM  # 60 weight per second after headroom
    budget = RequestBudget(limit)
    await budget.spend(limit * BURST)  # the whole burst: no wait
    loop = asyncio.get_running_loop()
    started = loop.time()
    await budget.spend(6)  # 0.1 s at 60 weight/s
    assert loop.time() - started >= 0.08


async def test_a_penalty_moves_waiting_callers_back_in_order_without_a_burst() -> None:
    budget = RequestBudget(50, window_s=1, burst=1, headroom=1.0)  # one request every 20 ms
    done: list[tuple[int, float]] = []

    async def caller(i: int) -> None:
        await budget.spend(1)
        done.append((i, time.monotonic()))

    reserved_from = time.monotonic()
    tasks = [asyncio.create_task(caller(i)) for i in range(6)]
    await asyncio.sleep(0)  # every caller has reserved its slot, 20 ms apart
    budget.penalize(0.2)
    await asyncio.gather(*tasks)
    assert [i for i, _ in done] == list(range(6))  # FIFO kept
    # The first slot was due at once and went before the penalty; the others moved back by
    # the pause and kept their 20 ms spacing instead of all firing when it ended.
    for k, (_, at) in enumerate(done[1:], start=1):
        assert at >= reserved_from + 0.2 + k * 0.02 - 0.001


WEIGHT = 20
"""Binance's ``myTrades`` weight: every request of this sketch costs the same."""


def live_wait_behind_backfills(
    budget: RequestBudget, clock: FakeClock, backfills: int, remaining: int, live_after: int
) -> tuple[float, int]:
    """``backfills`` clients each keep one request reserved (re-reserving the moment theirs is
    granted) until each has made ``remaining``; after ``live_after`` grants a live client reserves
    once. Returns how long the live client waited and how many backfill grants came between its
    reservation and its own grant."""
    left = dict.fromkeys(range(backfills), remaining)
    # The budget grants in reservation order, so a FIFO queue of reservations models it exactly.
    queue = [(budget.reserve(WEIGHT), client) for client in range(backfills)]
    granted = 0
    live: tuple[float, int] | None = None  # when the live client reserved, grants up to then
    while queue:
        at, client = queue.pop(0)
        assert clock.now <= at  # grants come in reservation order
        clock.now = at
        if client == -1:
            assert live is not None
            return clock.now - live[0], granted - live[1]
        granted += 1
        left[client] -= 1
        if left[client]:
            queue.append((budget.reserve(WEIGHT), client))
        if granted == live_after:
            live = (clock.now, granted)
            queue.append((budget.reserve(WEIGHT), -1))
    raise AssertionError("the live client was never granted")


@pytest.mark.parametrize("live_after", [1, 40, 3000])
def test_a_live_poll_waits_at_most_one_request_per_backfilling_session(live_after: int) -> None:
    """Issue 4: new sessions' backfills cannot starve live sessions, however long they go on."""
    clock = FakeClock()
    budget = RequestBudget(600, clock=clock)  # 480 weight/min: one request of 20 every 2.5 s
    slot = WEIGHT * 60 / (600 * HEADROOM)
    backfills = 8
    waited, overtaken = live_wait_behind_backfills(budget, clock, backfills, 10_000, live_after)
    assert overtaken <= backfills
    assert waited <= (backfills + 1) * slot


def test_the_live_wait_does_not_grow_with_the_backfills_still_to_do() -> None:
    """Backfills that arrived first with thousands of requests still to make delay a live poll by
    the same few slots as backfills about to finish: one request each, not their backlog."""
    slot = WEIGHT * 60 / (600 * HEADROOM)
    backfills = 8
    waits = []
    for remaining in (60, 5_000):
        clock = FakeClock()
        budget = RequestBudget(600, clock=clock)
        waits.append(live_wait_behind_backfills(budget, clock, backfills, remaining, 50))
    assert waits[0] == waits[1]
    waited, overtaken = waits[1]
    assert overtaken <= backfills and waited <= (backfills + 1) * slot
    assert waited < 5_000 * slot / 100  # far sooner than the backlog: 5000 requests per session
    # What the bound rests on: a session with its whole backlog reserved at once would be ahead.
    clock = FakeClock()
    budget = RequestBudget(600, clock=clock)
    for _ in range(5_000):
        budget.reserve(WEIGHT)
    assert budget.reserve(WEIGHT) - clock.now > 4_000 * slot
