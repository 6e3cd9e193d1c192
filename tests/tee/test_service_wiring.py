"""The service picks its provider from Settings: a dstack enclave end to end, and a fail-closed start."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from perf_aggregator.api.app import create_app
from perf_aggregator.config import Settings
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.evidence import parse_tdx_quote
from perf_aggregator.protocol import report_data
from perf_aggregator.tee.errors import AttestationUnavailable
from tee.fake_dstack import FakeDstackAgent, serve_tcp


def test_service_attests_through_dstack(
    monkeypatch: pytest.MonkeyPatch, dstack_agent: FakeDstackAgent, tmp_path: Path
) -> None:
    with serve_tcp(dstack_agent) as agent_url:
        monkeypatch.setenv("DSTACK_SIMULATOR_ENDPOINT", agent_url)
        settings = Settings(tee="dstack", data_dir=tmp_path / "data")
        with serve_in_thread(create_app(settings)) as url:
            health = httpx.get(f"{url}/health").json()
            nonce = bytes(range(32))
            doc = httpx.get(f"{url}/attestation/quote", params={"nonce": nonce.hex()}).json()
    assert health["tee"] == "dstack" and not health.get("warning")
    assert doc["tee"] == "dstack" and doc["measurement"] == dstack_agent.mrtd.hex()
    hpke = base64.b64decode(doc["hpke"]["public_key"])
    signing = base64.b64decode(doc["signing_key"]["public_key"])
    fields = parse_tdx_quote(base64.b64decode(doc["quote"]))
    assert fields.report_data == report_data(hpke, signing, nonce) == bytes.fromhex(doc["report_data"])


async def test_service_does_not_start_without_the_configured_tee(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if Path("/dev/attestation").exists():
        pytest.skip("this machine runs under Gramine")
    settings = Settings(tee="sgx", data_dir=tmp_path / "data")
    app = create_app(settings)
    with pytest.raises(AttestationUnavailable, match="PERF_AGG_TEE=sgx"):
        async with app.router.lifespan_context(app):
            pass
    assert not (tmp_path / "data").exists()
