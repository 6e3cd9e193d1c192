"""Verification of ``GET /attestation/quote`` documents.

Three stages, each usable on its own and each with its own error class:

1. **evidence** (``verify_evidence``, ``EvidenceError``): the TEE's signature
   chain - dcap-qvl for TDX, SGX and dstack quotes, the AMD VCEK chain for
   SEV-SNP reports - read into a ``VerifiedEvidence``;
2. **binding** (``BindingError``): the report data the TEE signed equals the
   document's ``report_data`` and the API.md binding of both keys and the
   expected nonce, and the document's measurement is the evidence's;
3. **policy** (``check_policy``, ``PolicyError``): TEE type, simulated
   evidence, measurements, TCB status and evidence age.

``verify_attestation`` runs them in that order (after refusing a TEE type the
policy excludes, before anything is fetched).
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from perf_aggregator import protocol
from perf_aggregator.client.dcap import DCAP_TEES, verify_dcap_quote
from perf_aggregator.client.errors import AttestationError, BindingError, EvidenceError, PolicyError
from perf_aggregator.client.evidence import VerifiedEvidence, iso
from perf_aggregator.client.models import AttestationDocument
from perf_aggregator.client.policy import CLOCK_SKEW_S, VerificationPolicy
from perf_aggregator.client.snp import verify_snp_report

__all__ = ["VerifiedEnclave", "VerifiedEvidence", "check_policy", "verify_attestation", "verify_evidence"]


@dataclass(frozen=True)
class VerifiedEnclave:
    """The facts an attestation proved: TEE type, code measurement (hex) and the two bound keys.

    ``registers`` holds every measurement register of the evidence by name, as
    hex (``mrtd``, ``rtmr0``... for TDX and dstack; ``mrenclave``, ``mrsigner``
    for SGX; ``measurement``, ``host_data``, ``id_key_digest`` for SEV-SNP;
    empty for simulated evidence). ``tcb_status`` and ``advisory_ids`` are the
    Intel TCB level of DCAP quotes (``None`` and empty otherwise).
    """

    tee: str
    measurement: str
    hpke_public_key: bytes
    signing_public_key: bytes
    registers: Mapping[str, str] = field(default_factory=dict, hash=False)
    tcb_status: str | None = None
    advisory_ids: tuple[str, ...] = ()


def verify_attestation(
    doc: dict[str, Any], policy: VerificationPolicy, expected_nonce: bytes | None, *, now: float | None = None
) -> VerifiedEnclave:
    """Verify an attestation document against ``policy``; raise ``AttestationError`` on any failure.

    ``expected_nonce`` is the nonce the client sent (``b""`` for none), which the
    document must echo and the binding must include; ``None`` skips the
    freshness check and binds with the document's own nonce (e.g. to re-check a
    stored document). ``now`` (epoch seconds, default the current time) is the
    time at which collateral, certificates and evidence age are judged.

    Checks, in order: document shape (``AttestationError``), TEE type against
    the policy (``PolicyError``), evidence (``EvidenceError``), binding of the
    report data, both keys and the nonce (``BindingError``), then the rest of
    the policy: measurements, TCB status, evidence age (``PolicyError``).
    """
    moment = time.time() if now is None else now
    parsed = _parse_document(doc)
    _check_tee_type(parsed.tee, policy)
    evidence = verify_evidence(parsed.tee, _b64(parsed.quote, "quote"), policy, now=moment)
    hpke_pk, signing_pk = _check_binding(evidence, parsed, expected_nonce)
    check_policy(evidence, policy, issued_at=parsed.issued_at, now=moment)
    return VerifiedEnclave(
        tee=parsed.tee,
        measurement=evidence.measurement,
        hpke_public_key=hpke_pk,
        signing_public_key=signing_pk,
        registers=dict(evidence.registers),
        tcb_status=evidence.tcb_status,
        advisory_ids=evidence.advisory_ids,
    )


def verify_evidence(
    tee: str, evidence: bytes, policy: VerificationPolicy, *, now: float | None = None
) -> VerifiedEvidence:
    """Check the raw evidence of a document of TEE type ``tee`` (stage 1 only; no binding, no policy).

    The policy supplies only the means of verification here: the DCAP
    collateral (file or PCCS URL) and the AMD certificate files. ``now``
    defaults to the current time. Raises ``EvidenceError`` (or its subclass
    ``EvidenceExpiredError`` when collateral or certificates are outside their
    validity at ``now``).
    """
    moment = time.time() if now is None else now
    if not math.isfinite(moment) or moment < 0:
        raise EvidenceError(f"verification time {moment} is not a valid epoch time")
    if tee == "simulated":
        try:
            measurement, report = protocol.parse_simulated_quote(evidence)
        except ValueError as exc:
            raise EvidenceError(f"evidence does not parse: {exc}") from None
        return VerifiedEvidence(tee=tee, report_data=report, measurement=measurement.hex())
    if tee in DCAP_TEES:
        return verify_dcap_quote(tee, evidence, policy, moment)
    if tee == "sev-snp":
        return verify_snp_report(evidence, policy, moment)
    raise EvidenceError(f"evidence of TEE type {tee!r} cannot be verified")


def check_policy(
    evidence: VerifiedEvidence,
    policy: VerificationPolicy,
    *,
    issued_at: str | None = None,
    now: float | None = None,
) -> None:
    """Judge verified evidence against ``policy`` (stage 3); raise ``PolicyError`` naming the refusal.

    Checks the TEE type, simulated evidence, the document-level
    ``measurements``, the per-TEE ``tee_measurements``, the TCB status, and,
    when the policy sets ``max_evidence_age_s`` and ``issued_at`` (RFC 3339) is
    given, the evidence age at ``now``.
    """
    _check_tee_type(evidence.tee, policy)
    if policy.measurements and evidence.measurement not in policy.measurements:
        raise PolicyError(f"measurement {evidence.measurement} is not one the policy accepts")
    pinned = policy.tee_measurements.get(evidence.tee, {})
    for register, accepted in sorted(pinned.items()):
        value = evidence.registers.get(register)
        if value is None:
            raise PolicyError(
                f"{register.upper()} is pinned by the policy but absent from the {evidence.tee} evidence"
            )
        if accepted and value not in accepted:
            raise PolicyError(f"{register.upper()} {value[:16]}… is not in the policy for {evidence.tee}")
    if evidence.tcb_status is not None and evidence.tcb_status not in policy.accepted_tcb_statuses:
        advisories = f" (advisories: {', '.join(evidence.advisory_ids)})" if evidence.advisory_ids else ""
        raise PolicyError(
            f"TCB status {evidence.tcb_status} is not accepted{advisories}; "
            f"the policy accepts {', '.join(sorted(policy.accepted_tcb_statuses)) or 'none'}"
        )
    if policy.max_evidence_age_s is not None and issued_at is not None:
        _check_age(issued_at, policy.max_evidence_age_s, time.time() if now is None else now)


def _check_tee_type(tee: str, policy: VerificationPolicy) -> None:
    if tee not in policy.accepted_tees:
        raise PolicyError(f"TEE type {tee!r} is not accepted by the policy")
    if tee == "simulated" and not policy.allow_simulated:
        raise PolicyError(
            "simulated evidence refused: it proves nothing; pass --allow-simulated "
            "(allow_simulated=True) to accept it"
        )


def _check_age(issued_at: str, max_age: float, now: float) -> None:
    try:
        issued = datetime.fromisoformat(issued_at)
    except ValueError:
        raise PolicyError(f"issued_at {issued_at!r} is not an RFC 3339 time") from None
    if issued.tzinfo is None:
        raise PolicyError(f"issued_at {issued_at!r} has no time zone")
    age = now - issued.timestamp()
    if age > max_age:
        raise PolicyError(
            f"evidence is too old: issued at {issued_at}, {age:.0f} s before {iso(now)}, "
            f"over the policy's max_evidence_age_s of {max_age:g}"
        )
    if age < -CLOCK_SKEW_S:
        raise PolicyError(f"evidence issued_at {issued_at} is in the future (now {iso(now)})")


def _parse_document(doc: dict[str, Any]) -> AttestationDocument:
    """Shape checks that need no evidence: fields, types, HPKE suite and signing algorithm."""
    try:
        parsed = AttestationDocument.model_validate(doc)
    except ValidationError as exc:
        fields = ", ".join(sorted({".".join(map(str, e["loc"])) or "document" for e in exc.errors()}))
        raise AttestationError(f"malformed attestation document (fields: {fields})") from None
    suite = (parsed.hpke.kem_id, parsed.hpke.kdf_id, parsed.hpke.aead_id)
    if suite != (protocol.HPKE_KEM_ID, protocol.HPKE_KDF_ID, protocol.HPKE_AEAD_ID):
        raise AttestationError(f"unsupported HPKE suite (kem, kdf, aead) = {suite}")
    if parsed.signing_key.alg != "Ed25519":
        raise AttestationError("signing key algorithm is not Ed25519")
    return parsed


def _check_binding(
    evidence: VerifiedEvidence, parsed: AttestationDocument, expected_nonce: bytes | None
) -> tuple[bytes, bytes]:
    """Stage 2: the signed report data binds the document's keys and the nonce; returns the keys."""
    hpke_pk = _b64(parsed.hpke.public_key, "hpke.public_key")
    signing_pk = _b64(parsed.signing_key.public_key, "signing_key.public_key")
    for name, key in (("hpke", hpke_pk), ("signing", signing_pk)):
        if len(key) != 32:
            raise BindingError(f"{name} public key is {len(key)} bytes, not 32")
    doc_nonce = bytes.fromhex(parsed.nonce)
    if expected_nonce is not None and doc_nonce != expected_nonce:
        raise BindingError("nonce in the document is not the nonce sent (stale or replayed attestation)")
    nonce = doc_nonce if expected_nonce is None else expected_nonce
    if evidence.report_data != bytes.fromhex(parsed.report_data):
        raise BindingError("report data in the evidence differs from the document's report_data")
    if evidence.report_data != protocol.report_data(hpke_pk, signing_pk, nonce):
        raise BindingError("report data does not bind the document's keys and nonce")
    if evidence.measurement != parsed.measurement:
        raise BindingError("measurement in the evidence differs from the document's measurement")
    return hpke_pk, signing_pk


def _b64(text: str, name: str) -> bytes:
    """Strict standard base64 with padding (API.md)."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise AttestationError(f"{name} is not valid base64") from None
