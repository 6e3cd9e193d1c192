"""Offline verification of signed summaries (``GET /enclave/summary/{session_id}``)."""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from perf_aggregator.client.attestation import verify_attestation
from perf_aggregator.client.errors import (
    AttestationError,
    DataSourceRejectedError,
    InvalidSignatureError,
    MalformedSummaryError,
    SigningKeyMismatchError,
    SummaryAttestationError,
)
from perf_aggregator.client.policy import VerificationPolicy

_T = TypeVar("_T")


def verify_summary(
    document: dict[str, Any], policy: VerificationPolicy, *, now: float | None = None
) -> dict[str, Any]:
    """Verify a signed summary document and return its ``summary`` object.

    ``now`` (epoch seconds, default the current time) is when the embedded
    attestation's collateral, certificates and age are judged.

    Checks, in order: the embedded attestation (empty nonce), that the signing
    key is the attested one, the Ed25519 signature over the RFC 8785 canonical
    JSON of ``summary``, and that ``summary.data_source`` is allowed by the
    policy. Each failure raises its own ``SummaryVerificationError`` subclass.
    """
    summary = _member(document, "summary", dict)
    signature = _member(document, "signature", dict)
    attestation = _member(document, "attestation", dict)
    if signature.get("alg") != "Ed25519":
        raise MalformedSummaryError("signature.alg is not Ed25519")
    public_key = _b64(_member(signature, "public_key", str), "signature.public_key")
    value = _b64(_member(signature, "value", str), "signature.value")

    try:
        # The summary's attestation is fetched without a nonce: it proves the key, not freshness.
        enclave = verify_attestation(attestation, policy, expected_nonce=b"", now=now)
    except AttestationError as exc:
        raise SummaryAttestationError(f"summary attestation: {exc}") from exc
    if public_key != enclave.signing_public_key:
        raise SigningKeyMismatchError("summary was not signed with the attested signing key")

    try:
        message = rfc8785.dumps(summary)
    except rfc8785.CanonicalizationError as exc:
        raise MalformedSummaryError(f"summary is not canonicalizable JSON: {exc}") from None
    try:
        Ed25519PublicKey.from_public_bytes(enclave.signing_public_key).verify(value, message)
    except InvalidSignature:
        raise InvalidSignatureError("signature does not match the summary") from None

    data_source = _member(summary, "data_source", str)
    if data_source not in policy.allowed_data_sources:
        raise DataSourceRejectedError(
            f"summary data_source {data_source!r} is not allowed by the policy "
            "(the figures were read from that origin)"
        )
    return summary


def _member(obj: dict[str, Any], name: str, kind: type[_T]) -> _T:
    value = obj.get(name)
    if not isinstance(value, kind):
        raise MalformedSummaryError(f"{name} is missing or not a {kind.__name__}")
    return value


def _b64(text: str, field: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedSummaryError(f"{field} is not valid base64") from None
