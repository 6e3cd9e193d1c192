"""Revoking deletes from the sealed store first: if the store cannot delete, the client gets
a 503 to retry and the session stays live, instead of a 500 and a half-revoked session that
the store would resume after a restart. Over HTTP against the Binance simulator."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from api.envelopes import sealed_body
from conftest import enclave_settings
from perf_aggregator.api.app import create_app
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.sessions.store import STORE_FILE
from perf_aggregator.simulator.binance import SimulatedBinance, create_binance_app


@pytest.fixture
def enclave(enclave_data_dir: Path) -> Iterator[tuple[SimulatedBinance, str]]:
    sim = SimulatedBinance(seed=47)
    with serve_in_thread(create_binance_app(sim)) as origin:
        with serve_in_thread(create_app(enclave_settings(enclave_data_dir, origin))) as url:
            yield sim, url


def stored_sessions(data_dir: Path) -> int:
    with closing(sqlite3.connect(data_dir / STORE_FILE, isolation_level=None)) as db:
        count: int = db.execute("SELECT count(*) FROM sessions").fetchone()[0]
    return count


def test_a_revocation_the_store_refuses_can_be_retried(
    enclave: tuple[SimulatedBinance, str], enclave_data_dir: Path
) -> None:
    sim, url = enclave
    account = sim.create_account(5, 10, start_ms=int(time.time() * 1000) - 3_600_000)
    body = sealed_body(url, api_key=account.api_key, api_secret=account.api_secret)
    registered = httpx.post(f"{url}/enclave/submit_key", json=body, timeout=30)
    assert registered.status_code == 201, registered.text
    session_id, token = registered.json()["session_id"], registered.json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert stored_sessions(enclave_data_dir) == 1
    deadline = time.monotonic() + 30
    while not httpx.get(f"{url}/enclave/metrics/{session_id}", headers=headers).json()["sync"][
        "backfill_complete"
    ]:  # after the backfill, polls that find nothing new write nothing
        assert time.monotonic() < deadline, "backfill did not complete"
        time.sleep(0.1)

    # Another writer holds the database: the store's delete fails after its busy wait.
    blocker = sqlite3.connect(enclave_data_dir / STORE_FILE, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        refused = httpx.delete(f"{url}/enclave/sessions/{session_id}", headers=headers, timeout=30)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "service_unavailable"
    assert int(refused.headers["Retry-After"]) > 0
    assert token not in refused.text
    assert httpx.get(f"{url}/enclave/metrics/{session_id}", headers=headers).status_code == 200
    assert stored_sessions(enclave_data_dir) == 1

    retried = httpx.delete(f"{url}/enclave/sessions/{session_id}", headers=headers, timeout=30)
    assert retried.status_code == 204
    assert httpx.get(f"{url}/enclave/metrics/{session_id}", headers=headers).status_code == 401
    assert stored_sessions(enclave_data_dir) == 0
