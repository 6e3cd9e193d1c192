"""Building submit_key bodies in tests with the project's own client code."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from perf_aggregator.client import Credentials, VerificationPolicy, seal_credentials, verify_attestation

ALLOW_SIMULATED = VerificationPolicy(allow_simulated=True)


def sealed_body(
    base_url: str,
    api_key: str = "K" * 64,
    api_secret: str = "S" * 64,
    metadata: dict[str, Any] | None = None,
    exchange: str = "binance",
    **fields: Any,
) -> dict[str, Any]:
    """A submit_key body sealed to the enclave at ``base_url`` (its simulated quote verified)."""
    document = httpx.get(f"{base_url}/attestation/quote", params={"nonce": "00" * 32}).json()
    enclave = verify_attestation(document, ALLOW_SIMULATED, bytes(32))
    credentials = Credentials(exchange=exchange, api_key=api_key, api_secret=api_secret, **fields)
    meta = metadata if metadata is not None else {"exchange": exchange, "label": "test", "ttl": 3600}
    if meta.get("exchange") != exchange:
        # seal_credentials refuses mismatches; seal with matching metadata, then swap it in.
        body = seal_credentials(enclave, credentials, {**meta, "exchange": exchange})
        body["metadata"] = meta
        return body
    return seal_credentials(enclave, credentials, meta)


def flip_ciphertext_byte(body: dict[str, Any], index: int = 5) -> dict[str, Any]:
    """``body`` with one ciphertext byte flipped."""
    raw = bytearray(base64.b64decode(body["ciphertext"]))
    raw[index] ^= 0x01
    return {**body, "ciphertext": base64.b64encode(bytes(raw)).decode()}
