"""Fields the service adds beyond API.md (service-notes.md), over HTTP against simulated
exchanges: ``warnings`` in the registration answer, ``exchange_realized_pnl`` in trades."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import closed_port_origin, enclave_settings
from perf_aggregator.api.app import create_app
from perf_aggregator.client import Credentials, EnclaveClient, VerificationPolicy, seal_credentials
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.simulator.binance import SimulatedBinance, create_binance_app
from perf_aggregator.simulator.kraken import SimulatedKraken, create_kraken_app


@pytest.fixture
def binance(enclave_data_dir: Path) -> Iterator[tuple[SimulatedBinance, str, VerificationPolicy]]:
    sim = SimulatedBinance(seed=23)
    with serve_in_thread(create_binance_app(sim)) as origin:
        policy = VerificationPolicy(allow_simulated=True, allowed_data_sources=frozenset({origin}))
        with serve_in_thread(create_app(enclave_settings(enclave_data_dir, origin))) as enclave:
            yield sim, enclave, policy


async def test_spot_registration_has_no_warnings_and_trades_no_exchange_pnl(
    binance: tuple[SimulatedBinance, str, VerificationPolicy],
) -> None:
    sim, enclave, policy = binance
    account = sim.create_account(71, 30, start_ms=int(time.time() * 1000) - 3_600_000)
    credentials = Credentials(exchange="binance", api_key=account.api_key, api_secret=account.api_secret)
    async with EnclaveClient(enclave) as client:
        verified = await client.verify(policy)
        body = seal_credentials(verified, credentials, {"exchange": "binance", "label": "", "ttl": 600})
        answer = httpx.post(f"{enclave}/enclave/submit_key", json=body, timeout=30)
        assert answer.status_code == 201
        registered = answer.json()
        assert registered["warnings"] == []  # always present; Binance checks everything it needs

        session_id, token = registered["session_id"], registered["token"]
        deadline = time.monotonic() + 30
        while not (await client.metrics(session_id, token))["sync"]["backfill_complete"]:
            assert time.monotonic() < deadline, "backfill did not complete"
            await asyncio.sleep(0.1)
        trades: list[dict[str, Any]] = (await client.trades(session_id, token, limit=1000))["trades"]
    assert len(trades) == len(account.trades)
    assert all("exchange_realized_pnl" in t and t["exchange_realized_pnl"] is None for t in trades)


async def test_kraken_registration_warns_that_withdrawal_cannot_be_checked(enclave_data_dir: Path) -> None:
    sim = SimulatedKraken(seed=24, tier="pro")
    with serve_in_thread(create_kraken_app(sim)) as origin:
        now = int(time.time() * 1000)
        account = sim.create_account(72, 20, start_ms=now - 3_600_000, end_ms=now - 60_000)
        settings = enclave_settings(enclave_data_dir, closed_port_origin(), exchange_urls={"kraken": origin})
        policy = VerificationPolicy(allow_simulated=True, allowed_data_sources=frozenset({origin}))
        credentials = Credentials(exchange="kraken", api_key=account.api_key, api_secret=account.api_secret)
        with serve_in_thread(create_app(settings)) as enclave:
            async with EnclaveClient(enclave) as client:
                verified = await client.verify(policy)
                body = seal_credentials(
                    verified, credentials, {"exchange": "kraken", "label": "", "ttl": 600}
                )
                answer = httpx.post(f"{enclave}/enclave/submit_key", json=body, timeout=30)
                registration = await client.register(credentials, policy=policy)  # through the SDK
    assert answer.status_code == 201
    [warning] = answer.json()["warnings"]
    assert "withdraw" in warning and account.api_key not in warning
    assert registration.warnings == (warning,)
