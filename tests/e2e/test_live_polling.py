"""After the backfill: periodic polling picks up new trades, prices them once their candle
closes, and sessions end at their TTL."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from conftest import enclave_settings
from e2e.conftest import Stack
from perf_aggregator.api.app import create_app
from perf_aggregator.client import Credentials, EnclaveClient, EnclaveError, VerificationPolicy
from perf_aggregator.clock import now_ms
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.simulator.accounts import generate_account
from perf_aggregator.simulator.binance import SimulatedBinance


async def test_new_trades_are_polled_and_priced_after_their_candle_closes(stack: Stack) -> None:
    now = now_ms()
    # Trades until 30 s from now: the simulator reveals each one only once its time has come.
    account = stack.exchange.add_account(
        generate_account(31, now - 5 * 60_000, now + 30_000, trades=300, prices=stack.exchange.prices)
    )
    later = [t for t in account.raw_trades() if t["time"] > now + 2_000]
    assert len(later) >= 3
    credentials = Credentials(exchange="binance", api_key=account.api_key, api_secret=account.api_secret)
    async with EnclaveClient(stack.enclave) as client:
        registration = await client.register(credentials, policy=stack.policy)
        first = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            metrics = await client.metrics(registration.session_id, registration.token)
            if metrics["sync"]["backfill_complete"] and first is None:
                first = metrics["sync"]["trades_fetched"]
            done = metrics["sync"]["trades_fetched"] == len(account.raw_trades())
            if done and metrics["totals"]["unpriced_trades"] == 0:
                break
            await asyncio.sleep(0.5)
        else:
            pytest.fail(f"polling did not converge: {metrics['sync']} {metrics['totals']}")
    assert first is not None and first < len(account.raw_trades()), (
        "some trades must arrive after the backfill"
    )
    assert metrics["status"] == "active" and metrics["sync"]["last_error"] is None
    assert metrics["sync"]["last_poll_at"] is not None and metrics["sync"]["next_poll_at"] is not None


async def test_expired_sessions_answer_401_and_are_purged(
    simulator: tuple[SimulatedBinance, str], tmp_path: Path
) -> None:
    exchange, url = simulator
    offset = [0]
    app = create_app(enclave_settings(tmp_path, url), clock_ms=lambda: now_ms() + offset[0])
    account = exchange.create_account(41, 20, start_ms=now_ms() - 3_600_000)
    policy = VerificationPolicy(allow_simulated=True, allowed_data_sources=frozenset({url}))
    with serve_in_thread(app) as enclave:
        async with EnclaveClient(enclave) as client:
            credentials = Credentials(
                exchange="binance", api_key=account.api_key, api_secret=account.api_secret
            )
            registration = await client.register(credentials, ttl=60, policy=policy)
            await client.metrics(registration.session_id, registration.token)
            offset[0] = 61_000
            with pytest.raises(EnclaveError) as expired:
                await client.metrics(registration.session_id, registration.token)
            assert expired.value.status == 401
            deadline = time.monotonic() + 30
            while httpx.get(f"{enclave}/health").json()["sessions"] and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            assert httpx.get(f"{enclave}/health").json()["sessions"] == 0
