"""A simulated Binance (spot and USD-M futures) on loopback, and futures accounts on it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.simulator import SimulatedBinance, create_binance_app
from perf_aggregator.simulator.binance_usdm import enable_futures

DAY_MS = 86_400_000


@dataclass
class FuturesSim:
    """A running simulator: its state, origin, and helpers for futures accounts."""

    sim: SimulatedBinance
    origin: str

    def account(
        self, trades: int, seed: int, days: int = 20, end: int | None = None, **options: Any
    ) -> dict[str, Any]:
        """A futures account whose history ends at ``end`` (ten minutes ago), with its raw fills."""
        end = int(time.time() * 1000) - 10 * 60_000 if end is None else end
        body = {"seed": seed, "trades": trades, "start": end - days * DAY_MS, "end": end, **options}
        created = httpx.post(f"{self.origin}/_simulator/futures/accounts", json=body, timeout=60)
        created.raise_for_status()
        key = created.json()["api_key"]
        raw = httpx.get(f"{self.origin}/_simulator/futures/accounts/{key}/trades", timeout=60).json()
        return {**created.json(), "start": body["start"], "end": end, "raw": raw}


@pytest.fixture(scope="module")
def futures_sim() -> Iterator[FuturesSim]:
    sim = SimulatedBinance(seed=9)
    enable_futures(sim)  # list the perpetuals before the first futures account exists
    with serve_in_thread(create_binance_app(sim)) as origin:
        yield FuturesSim(sim, origin)
