"""A simulated Kraken on loopback for the connector tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.simulator.kraken import SimulatedKraken, create_kraken_app, wall_clock_ms


class FakeClock:
    """A settable exchange clock starting at the real time."""

    def __init__(self) -> None:
        self.now = wall_clock_ms()

    def __call__(self) -> int:
        return self.now


@pytest.fixture(scope="module")
def kraken_sim() -> Iterator[tuple[SimulatedKraken, str]]:
    """One simulator (Pro tier, real clock) per test module."""
    sim = SimulatedKraken(seed=8, tier="pro")
    with serve_in_thread(create_kraken_app(sim)) as url:
        yield sim, url
