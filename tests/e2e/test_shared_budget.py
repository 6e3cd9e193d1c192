"""Many sessions share one egress IP: together they stay under the exchange's weight limit."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from conftest import enclave_settings
from perf_aggregator.api.app import create_app
from perf_aggregator.client import Credentials, EnclaveClient, VerificationPolicy
from perf_aggregator.clock import now_ms
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.simulator.binance import SimulatedBinance, create_binance_app

WEIGHT_LIMIT = 2400
SESSIONS = 6


class StatusCounter:
    """Counts the simulator's answers by HTTP status, as an exchange-side observer would."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.statuses: Counter[int] = Counter()
        self.peak_weight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def observe(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] += 1
                for name, value in message.get("headers", []):
                    if name.lower() == b"x-mbx-used-weight-1m":
                        self.peak_weight = max(self.peak_weight, int(value))
            await send(message)

        await self.app(scope, receive, observe)  # type: ignore[arg-type]


@pytest.fixture
def tight_exchange() -> Iterator[tuple[SimulatedBinance, StatusCounter, str]]:
    sim = SimulatedBinance(seed=17, weight_limit=WEIGHT_LIMIT)
    counter = StatusCounter(create_binance_app(sim))
    with serve_in_thread(counter) as url:
        yield sim, counter, url


async def test_concurrent_backfills_never_provoke_429_or_418(
    tight_exchange: tuple[SimulatedBinance, StatusCounter, str], tmp_path: Path
) -> None:
    sim, counter, url = tight_exchange
    start = now_ms() - 2 * 86_400_000
    accounts = [
        sim.create_account(100 + i, 150, start_ms=start, end_ms=now_ms() - 600_000) for i in range(SESSIONS)
    ]
    policy = VerificationPolicy(allow_simulated=True, allowed_data_sources=frozenset({url}))
    settings = enclave_settings(tmp_path, url, registrations_per_minute=100)
    with serve_in_thread(create_app(settings)) as enclave:
        async with EnclaveClient(enclave, timeout=120) as client:

            async def one(account: Any) -> dict[str, Any]:
                credentials = Credentials(
                    exchange="binance", api_key=account.api_key, api_secret=account.api_secret
                )
                registration = await client.register(credentials, policy=policy)
                deadline = time.monotonic() + 150
                while time.monotonic() < deadline:
                    metrics = await client.metrics(registration.session_id, registration.token)
                    if metrics["sync"]["backfill_complete"]:
                        return metrics
                    await asyncio.sleep(0.5)
                raise AssertionError("backfill did not complete")

            results = await asyncio.gather(*(one(a) for a in accounts))

    for account, metrics in zip(accounts, results, strict=True):
        assert metrics["sync"]["trades_fetched"] == len(account.raw_trades())
    assert counter.statuses[429] == 0 and counter.statuses[418] == 0, counter.statuses
    assert 0 < counter.peak_weight <= WEIGHT_LIMIT
