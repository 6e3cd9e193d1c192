"""A Binance simulator and an enclave reading from it, both on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import enclave_settings
from perf_aggregator.api.app import create_app
from perf_aggregator.client import VerificationPolicy
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.simulator.binance import SimulatedBinance, create_binance_app

DAY_MS = 86_400_000


@dataclass
class Stack:
    """Base URLs of the running simulator and enclave, and the policy that accepts them."""

    simulator: str
    enclave: str
    policy: VerificationPolicy
    data_dir: Path
    exchange: SimulatedBinance

    def account(self, trades: int, seed: int, days: int = 8, **options: Any) -> dict[str, Any]:
        """Generate a simulator account whose history ends ten minutes ago."""
        end = int(time.time() * 1000) - 10 * 60_000
        body = {"seed": seed, "trades": trades, "start": end - days * DAY_MS, "end": end, **options}
        account = httpx.post(
            f"{self.simulator}/_simulator/accounts", json=body, timeout=60
        ).raise_for_status()
        return {**account.json(), "start": body["start"], "end": end}


@pytest.fixture(scope="module")
def simulator() -> Iterator[tuple[SimulatedBinance, str]]:
    """One simulator per test module (accounts are independent of each other)."""
    exchange = SimulatedBinance(seed=5)
    with serve_in_thread(create_binance_app(exchange)) as url:
        yield exchange, url


@pytest.fixture
def stack(simulator: tuple[SimulatedBinance, str], enclave_data_dir: Path) -> Iterator[Stack]:
    """A fresh enclave (new keys, no sessions) reading Binance from the simulator."""
    exchange, simulator_url = simulator
    settings = enclave_settings(enclave_data_dir, simulator_url)
    policy = VerificationPolicy(allow_simulated=True, allowed_data_sources=frozenset({simulator_url}))
    with serve_in_thread(create_app(settings), access_log=True) as url:
        yield Stack(simulator_url, url, policy, enclave_data_dir, exchange)
