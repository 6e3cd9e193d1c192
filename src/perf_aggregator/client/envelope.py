"""Sealing credentials into the ``POST /enclave/submit_key`` envelope (HPKE, RFC 9180 base mode)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from pyhpke import KEMKey

from perf_aggregator import protocol
from perf_aggregator.client.attestation import VerifiedEnclave
from perf_aggregator.client.errors import EnvelopeError
from perf_aggregator.client.models import Credentials
from perf_aggregator.formats import rfc3339_ms

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def seal_credentials(
    enclave: VerifiedEnclave, credentials: Credentials, metadata: dict[str, Any]
) -> dict[str, Any]:
    """Encrypt ``credentials`` to the attested HPKE key; return the ``submit_key`` request body.

    ``metadata`` travels in clear but is authenticated as the AAD (its RFC 8785
    canonical JSON), so the enclave refuses an envelope whose metadata was changed.
    """
    if metadata.get("exchange") != credentials.exchange:
        raise EnvelopeError("metadata.exchange must equal the credentials' exchange")
    try:
        aad = rfc8785.dumps(metadata)
    except rfc8785.CanonicalizationError as exc:
        raise EnvelopeError(f"metadata is not canonicalizable JSON: {exc}") from None
    recipient = KEMKey.from_pyca_cryptography_key(X25519PublicKey.from_public_bytes(enclave.hpke_public_key))
    enc, context = protocol.hpke_suite().create_sender_context(recipient, info=protocol.CREDENTIALS_INFO)
    plaintext = json.dumps(_plaintext(credentials), separators=(",", ":")).encode()
    ciphertext = context.seal(plaintext, aad=aad)
    return {
        "enc": base64.b64encode(enc).decode("ascii"),
        "ciphertext": base64.b64encode(ciphertext).decode("ascii"),
        "metadata": metadata,
    }


def _plaintext(credentials: Credentials) -> dict[str, Any]:
    """The API.md plaintext object, secrets revealed (the only place they are).

    ``since`` is left out when unset so the enclave applies its documented default.
    """
    secret = credentials.passphrase
    body: dict[str, Any] = {
        "exchange": credentials.exchange,
        "api_key": credentials.api_key.get_secret_value(),
        "api_secret": credentials.api_secret.get_secret_value(),
        "passphrase": None if secret is None else secret.get_secret_value(),
        "account_type": credentials.account_type,
        "symbols": list(credentials.symbols),
    }
    if credentials.since is not None:
        body["since"] = rfc3339_ms((credentials.since - _EPOCH) // timedelta(milliseconds=1))
    return body
