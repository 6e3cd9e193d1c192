"""Verification of ``GET /attestation/quote`` documents."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from perf_aggregator import protocol
from perf_aggregator.client.errors import AttestationError
from perf_aggregator.client.models import AttestationDocument
from perf_aggregator.client.policy import VerificationPolicy


@dataclass(frozen=True)
class VerifiedEnclave:
    """The facts an attestation proved: TEE type, code measurement (hex) and the two bound keys."""

    tee: str
    measurement: str
    hpke_public_key: bytes
    signing_public_key: bytes


def verify_attestation(
    doc: dict[str, Any], policy: VerificationPolicy, expected_nonce: bytes | None
) -> VerifiedEnclave:
    """Verify an attestation document against ``policy``; raise ``AttestationError`` on any failure.

    ``expected_nonce`` is the nonce the client sent (``b""`` for none), which the
    document must echo and the binding must include; ``None`` skips the
    freshness check and binds with the document's own nonce (e.g. to re-check a
    stored document). Checks, in order: document shape, TEE type against the
    policy, evidence, binding of both keys and the nonce, measurement, policy
    measurements, HPKE suite.
    """
    try:
        parsed = AttestationDocument.model_validate(doc)
    except ValidationError as exc:
        fields = ", ".join(sorted({".".join(map(str, e["loc"])) or "document" for e in exc.errors()}))
        raise AttestationError(f"malformed attestation document (fields: {fields})") from None

    tee = parsed.tee
    if tee not in policy.accepted_tees:
        raise AttestationError(f"TEE type {tee!r} is not accepted by the policy")
    if tee == "simulated" and not policy.allow_simulated:
        raise AttestationError("simulated attestation proves nothing and the policy does not allow it")
    if tee != "simulated":
        raise AttestationError(f"verification of {tee} quotes is not implemented yet")

    try:
        evidence_measurement, evidence_report = protocol.parse_simulated_quote(_b64(parsed.quote, "quote"))
    except ValueError as exc:
        raise AttestationError(f"evidence does not parse: {exc}") from None

    hpke_pk = _b64(parsed.hpke.public_key, "hpke.public_key")
    signing_pk = _b64(parsed.signing_key.public_key, "signing_key.public_key")
    for name, key in (("hpke", hpke_pk), ("signing", signing_pk)):
        if len(key) != 32:
            raise AttestationError(f"{name} public key is {len(key)} bytes, not 32")
    doc_nonce = bytes.fromhex(parsed.nonce)
    if expected_nonce is not None and doc_nonce != expected_nonce:
        raise AttestationError("nonce in the document is not the nonce sent (stale or replayed attestation)")
    nonce = doc_nonce if expected_nonce is None else expected_nonce
    if evidence_report != bytes.fromhex(parsed.report_data):
        raise AttestationError("report data in the evidence differs from the document's report_data")
    if evidence_report != protocol.report_data(hpke_pk, signing_pk, nonce):
        raise AttestationError("report data does not bind the document's keys and nonce")

    measurement = evidence_measurement.hex()
    if measurement != parsed.measurement:
        raise AttestationError("measurement in the evidence differs from the document's measurement")
    if policy.measurements and measurement not in policy.measurements:
        raise AttestationError(f"measurement {measurement} is not one the policy accepts")

    suite = (parsed.hpke.kem_id, parsed.hpke.kdf_id, parsed.hpke.aead_id)
    if suite != (protocol.HPKE_KEM_ID, protocol.HPKE_KDF_ID, protocol.HPKE_AEAD_ID):
        raise AttestationError(f"unsupported HPKE suite (kem, kdf, aead) = {suite}")
    if parsed.signing_key.alg != "Ed25519":
        raise AttestationError("signing key algorithm is not Ed25519")

    return VerifiedEnclave(tee, measurement, hpke_pk, signing_pk)


def _b64(text: str, field: str) -> bytes:
    """Strict standard base64 with padding (API.md)."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise AttestationError(f"{field} is not valid base64") from None
