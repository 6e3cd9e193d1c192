"""Every API.md error reachable without a working exchange, over real HTTP."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest

from api.envelopes import flip_ciphertext_byte, sealed_body
from perf_aggregator.protocol import SIMULATED_QUOTE_PREFIX, report_data
from perf_aggregator.tee.attestation import source_measurement


def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    return response.status_code, body["error"]["code"]


def test_health_reports_simulated_tee(offline_enclave: str) -> None:
    health = httpx.get(f"{offline_enclave}/health").json()
    assert health["status"] == "ok" and health["tee"] == "simulated" and health["sessions"] == 0
    assert "simulated" in health["warning"]


@pytest.mark.parametrize("nonce", ["", "00", "ABcd" * 16])
def test_quote_binds_both_keys_and_the_nonce(offline_enclave: str, nonce: str) -> None:
    doc = httpx.get(f"{offline_enclave}/attestation/quote", params={"nonce": nonce}).json()
    hpke_pk = base64.b64decode(doc["hpke"]["public_key"])
    signing_pk = base64.b64decode(doc["signing_key"]["public_key"])
    expected = hashlib.sha512(b"perf-aggregator/attestation/v1" + hpke_pk + signing_pk + bytes.fromhex(nonce))
    assert (
        doc["report_data"]
        == expected.hexdigest()
        == report_data(hpke_pk, signing_pk, bytes.fromhex(nonce)).hex()
    )
    assert doc["nonce"] == nonce.lower()
    assert (doc["hpke"]["kem_id"], doc["hpke"]["kdf_id"], doc["hpke"]["aead_id"]) == (32, 1, 3)
    quote = base64.b64decode(doc["quote"])
    measurement = source_measurement()
    assert quote == SIMULATED_QUOTE_PREFIX + measurement + bytes.fromhex(doc["report_data"])
    assert doc["measurement"] == measurement.hex() and doc["tee"] == "simulated"
    assert doc["issued_at"].endswith("Z") and len(doc["issued_at"]) == 24


@pytest.mark.parametrize("nonce", ["0", "zz", "00" * 33, "0x00"])
def test_bad_nonce_is_invalid_request(offline_enclave: str, nonce: str) -> None:
    response = httpx.get(f"{offline_enclave}/attestation/quote", params={"nonce": nonce})
    assert error_of(response) == (400, "invalid_request")


def test_unknown_route_and_wrong_method(offline_enclave: str) -> None:
    assert error_of(httpx.get(f"{offline_enclave}/nope")) == (404, "not_found")
    assert error_of(httpx.get(f"{offline_enclave}/enclave/submit_key"))[0] == 405


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b'{"enc": "AA=="}', b'{"enc": 1, "ciphertext": "AA==", "metadata": {}}'],
)
def test_malformed_bodies_are_invalid_request(offline_enclave: str, content: bytes) -> None:
    response = httpx.post(
        f"{offline_enclave}/enclave/submit_key", content=content, headers={"content-type": "application/json"}
    )
    assert error_of(response) == (400, "invalid_request")


@pytest.mark.parametrize(
    "metadata",
    [
        {"label": "x"},
        {"exchange": "binance", "ttl": 59},
        {"exchange": "binance", "ttl": 604801},
        {"exchange": "binance", "ttl": "3600"},
        {"exchange": "binance", "label": "x" * 65},
        {"exchange": "binance", "label": "tab\there"},
    ],
)
def test_bad_metadata_is_invalid_request(offline_enclave: str, metadata: dict[str, object]) -> None:
    body = {"enc": base64.b64encode(bytes(32)).decode(), "ciphertext": "AAAA", "metadata": metadata}
    response = httpx.post(f"{offline_enclave}/enclave/submit_key", json=body)
    assert error_of(response) == (400, "invalid_request")


def test_oversize_body_is_413_declared_or_streamed(offline_enclave: str) -> None:
    big = b'{"pad": "' + b"x" * (64 * 1024) + b'"}'
    declared = httpx.post(f"{offline_enclave}/enclave/submit_key", content=big)
    assert error_of(declared) == (413, "payload_too_large")

    def chunks():  # no Content-Length: the server must count while reading
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    streamed = httpx.post(f"{offline_enclave}/enclave/submit_key", content=chunks())
    assert error_of(streamed) == (413, "payload_too_large")


def test_envelope_errors(offline_enclave: str) -> None:
    url = f"{offline_enclave}/enclave/submit_key"
    good = sealed_body(offline_enclave)

    not_base64 = {**good, "ciphertext": "***"}
    assert error_of(httpx.post(url, json=not_base64)) == (400, "invalid_envelope")
    short_enc = {**good, "enc": base64.b64encode(bytes(16)).decode()}
    assert error_of(httpx.post(url, json=short_enc)) == (400, "invalid_envelope")
    assert error_of(httpx.post(url, json=flip_ciphertext_byte(good))) == (400, "invalid_envelope")

    tampered_metadata = {**good, "metadata": {**good["metadata"], "ttl": 7200}}
    assert error_of(httpx.post(url, json=tampered_metadata)) == (400, "invalid_envelope")

    other_exchange = sealed_body(
        offline_enclave, exchange="kraken", metadata={"exchange": "binance", "ttl": 3600}
    )
    assert error_of(httpx.post(url, json=other_exchange)) == (400, "invalid_envelope")

    unsupported = sealed_body(offline_enclave, exchange="bitmex")
    assert error_of(httpx.post(url, json=unsupported)) == (422, "unsupported_exchange")


def test_envelope_for_another_enclave_cannot_be_opened(
    offline_enclave: str, enclave_data_dir: object
) -> None:
    from conftest import closed_port_origin, enclave_settings
    from perf_aggregator.api.app import create_app
    from perf_aggregator.devserver import serve_in_thread

    settings = enclave_settings(enclave_data_dir, closed_port_origin())  # type: ignore[arg-type]
    with serve_in_thread(create_app(settings)) as other:
        body = sealed_body(other)
    response = httpx.post(f"{offline_enclave}/enclave/submit_key", json=body)
    assert error_of(response) == (400, "invalid_envelope")


def test_unreachable_exchange_is_503_with_retry_after(offline_enclave: str) -> None:
    body = sealed_body(offline_enclave)
    response = httpx.post(f"{offline_enclave}/enclave/submit_key", json=body, timeout=30)
    assert error_of(response) == (503, "exchange_unavailable")
    assert int(response.headers["retry-after"]) >= 1
    # Nothing was kept: the same envelope may be submitted again, and no session exists.
    again = httpx.post(f"{offline_enclave}/enclave/submit_key", json=body, timeout=30)
    assert error_of(again) == (503, "exchange_unavailable")
    assert httpx.get(f"{offline_enclave}/health").json()["sessions"] == 0


def test_unsupported_account_type_is_invalid_request(offline_enclave: str) -> None:
    body = sealed_body(offline_enclave, exchange="kraken", account_type="futures")
    response = httpx.post(f"{offline_enclave}/enclave/submit_key", json=body)
    assert error_of(response) == (400, "invalid_request")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}],
)
@pytest.mark.parametrize("route", ["/enclave/metrics/abc", "/enclave/summary/abc", "/enclave/trades/abc"])
def test_unknown_session_or_bad_token_is_one_401(
    offline_enclave: str, headers: dict[str, str], route: str
) -> None:
    response = httpx.get(f"{offline_enclave}{route}", headers=headers)
    assert error_of(response) == (401, "unauthorized")
    assert response.json()["error"]["message"] == "Missing or invalid bearer token for this session."
    delete = httpx.delete(f"{offline_enclave}/enclave/sessions/abc", headers=headers)
    assert error_of(delete) == (401, "unauthorized")


def test_openapi_document_lists_every_route(offline_enclave: str) -> None:
    paths = set(httpx.get(f"{offline_enclave}/openapi.json").json()["paths"])
    assert {
        "/health",
        "/attestation/quote",
        "/enclave/submit_key",
        "/enclave/metrics/{session_id}",
        "/enclave/summary/{session_id}",
        "/enclave/trades/{session_id}",
        "/enclave/sessions/{session_id}/renew",
        "/enclave/sessions/{session_id}",
    } <= paths


def test_prometheus_metrics_are_operational_only(offline_enclave: str) -> None:
    httpx.get(f"{offline_enclave}/enclave/metrics/some-session-id", headers={"Authorization": "Bearer t0ken"})
    response = httpx.get(f"{offline_enclave}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'route="/enclave/metrics/{session_id}"' in text and 'status="401"' in text
    assert "perf_agg_sessions" in text and "perf_agg_polls_total" in text
    assert "some-session-id" not in text and "t0ken" not in text
