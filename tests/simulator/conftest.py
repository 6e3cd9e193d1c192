"""Simulated Binance servers on loopback and a raw Binance client for the simulator tests."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.simulator import SimulatedBinance, create_binance_app
from perf_aggregator.simulator.binance import wall_clock_ms

# A fixed past window: the generated histories are then the same on every run.
WINDOW_START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
WINDOW_END_MS = 1_738_368_000_000  # 2025-02-01T00:00:00Z


class FakeClock:
    """A settable exchange clock; starts at the real time so that ccxt-like timestamps fit."""

    def __init__(self) -> None:
        self.now: int = wall_clock_ms()

    def __call__(self) -> int:
        return self.now


@dataclass
class Binance:
    """A raw client of one simulated Binance: plain HTTP, own HMAC signing."""

    sim: SimulatedBinance
    origin: str
    http: httpx.Client

    def get(self, path: str, params: dict[str, Any] | None = None, key: str | None = None) -> httpx.Response:
        headers = {"X-MBX-APIKEY": key} if key is not None else {}
        query = urlencode(params or {})
        return self.http.get(f"{self.origin}{path}" + (f"?{query}" if query else ""), headers=headers)

    def signed(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        key: str,
        secret: str,
        timestamp: int | None = None,
        tamper: Callable[[str], str] = lambda signature: signature,
    ) -> httpx.Response:
        stamp = self.sim.now_ms() if timestamp is None else timestamp
        query = urlencode({**(params or {}), "timestamp": stamp})
        signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        url = f"{self.origin}{path}?{query}&signature={tamper(signature)}"
        return self.http.get(url, headers={"X-MBX-APIKEY": key})

    def create_account(self, **body: Any) -> dict[str, Any]:
        response = self.http.post(f"{self.origin}/_simulator/accounts", json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def raw_trades(self, api_key: str) -> list[dict[str, Any]]:
        response = self.http.get(f"{self.origin}/_simulator/accounts/{api_key}/trades")
        assert response.status_code == 200, response.text
        trades: list[dict[str, Any]] = response.json()
        return trades


def _serve(sim: SimulatedBinance) -> Iterator[Binance]:
    with serve_in_thread(create_binance_app(sim)) as origin, httpx.Client(timeout=30) as http:
        yield Binance(sim, origin, http)


@pytest.fixture(scope="module")
def binance() -> Iterator[Binance]:
    """A simulated Binance on the real clock, shared by a module's tests."""
    yield from _serve(SimulatedBinance(seed=42))


@pytest.fixture(scope="module")
def account(binance: Binance) -> dict[str, Any]:
    """Credentials and raw trades of an account with 600 trades in January 2025."""
    created = binance.create_account(seed=7, trades=600, start=WINDOW_START_MS, end=WINDOW_END_MS)
    return {**created, "raw": binance.raw_trades(created["api_key"])}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limited(clock: FakeClock) -> Iterator[Binance]:
    """A simulated Binance on a fake clock with a 50-weight budget, for rate-limit tests."""
    yield from _serve(SimulatedBinance(seed=1, weight_limit=50, now_ms=clock))
