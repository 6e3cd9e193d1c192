"""Client input that once reached ``500 internal_error``, over HTTP: a secret ccxt cannot sign
with (against each exchange's simulator) and metadata with no RFC 8785 form."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from api.envelopes import sealed_body
from conftest import closed_port_origin, enclave_settings
from perf_aggregator.api.app import create_app
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.simulator.binance import SimulatedBinance, create_binance_app
from perf_aggregator.simulator.coinbase import SimulatedCoinbase, create_coinbase_app
from perf_aggregator.simulator.kraken import SimulatedKraken, create_kraken_app

PLANTED = "PLANTEDxSECRETx7f3a9c"
"""Part of every malformed secret below; it must appear in no answer and no log line."""
PEM_LOOKING = f"-----BEGIN PRIVATE KEY-----\n{PLANTED}!!\n-----END PRIVATE KEY-----\n"
SIMULATORS: dict[str, FastAPI] = {
    "binance": create_binance_app(SimulatedBinance(seed=41)),
    "kraken": create_kraken_app(SimulatedKraken(seed=42)),
    "coinbase": create_coinbase_app(SimulatedCoinbase(seed=43)),
}


@pytest.fixture(scope="module")
def exchanges() -> Iterator[dict[str, str]]:
    """Each simulator's origin; ``binanceus`` (the ccxt fallback connector) reads Binance's."""
    with ExitStack() as stack:
        origins = {name: stack.enter_context(serve_in_thread(app)) for name, app in SIMULATORS.items()}
        yield {**origins, "binanceus": origins["binance"]}


@pytest.fixture
def enclave(enclave_data_dir: Path, exchanges: dict[str, str]) -> Iterator[str]:
    settings = enclave_settings(
        enclave_data_dir, closed_port_origin(), exchange_urls=exchanges, registrations_per_minute=1000
    )
    with serve_in_thread(create_app(settings)) as url:
        yield url


@pytest.mark.parametrize(
    ("exchange", "api_key", "api_secret"),
    [
        ("kraken", "K" * 56, f"{PLANTED}!!"),  # not base64
        ("binance", "K" * 64, PEM_LOOKING),  # not a loadable PEM key
        ("coinbase", "organizations/0a1b/apiKeys/2c3d", f"{PLANTED} not an EC key"),
        ("binanceus", "K" * 64, PEM_LOOKING),  # the ccxt fallback connector
    ],
    ids=["kraken", "binance", "coinbase", "ccxt-fallback"],
)
def test_a_secret_ccxt_cannot_sign_with_is_rejected_without_naming_it(
    enclave: str, exchange: str, api_key: str, api_secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = sealed_body(enclave, api_key=api_key, api_secret=api_secret, exchange=exchange)
    answer = httpx.post(f"{enclave}/enclave/submit_key", json=body, timeout=30)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "credentials_rejected"
    assert "not in the form this exchange uses" in error["message"]
    assert PLANTED not in answer.text + str(answer.headers)
    assert caplog.records, "the enclave's logs must be captured"
    assert PLANTED not in caplog.text
    assert all(PLANTED not in str(r.args) for r in caplog.records)


def test_a_secret_that_signs_but_is_wrong_is_still_refused_by_the_exchange(enclave: str) -> None:
    """Only signing failures are caught early: a well-formed wrong secret reaches Kraken."""
    body = sealed_body(enclave, api_key="K" * 56, api_secret="c2VjcmV0", exchange="kraken")
    answer = httpx.post(f"{enclave}/enclave/submit_key", json=body, timeout=30)
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "credentials_rejected"
    assert "not in the form" not in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("extra", "marker"),
    [
        ('"n": 1152921504606846976', "1152921504606846976"),  # 2**60: beyond I-JSON's integers
        ('"n": 1e999', "1e999"),  # parses as infinity
        ('"n": "\\ud800"', "ud800"),  # a lone surrogate
    ],
    ids=["huge-integer", "infinity", "lone-surrogate"],
)
def test_metadata_without_a_canonical_form_is_an_invalid_request(
    offline_enclave: str, extra: str, marker: str
) -> None:
    body = sealed_body(offline_enclave)
    metadata = json.dumps(body["metadata"])
    raw = json.dumps({**body, "metadata": {}}).replace(
        '"metadata": {}', f'"metadata": {metadata[:-1]}, {extra}}}'
    )
    answer = httpx.post(
        f"{offline_enclave}/enclave/submit_key",
        content=raw.encode(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_request"
    assert "metadata" in answer.json()["error"]["message"]
    assert marker not in answer.text
    # Nothing was accepted: once the metadata is fixed, the same envelope is examined again.
    retried = httpx.post(f"{offline_enclave}/enclave/submit_key", json=body, timeout=30)
    assert retried.status_code == 503
    assert retried.json()["error"]["code"] == "exchange_unavailable"
