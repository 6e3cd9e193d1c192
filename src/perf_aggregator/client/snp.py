"""AMD SEV-SNP attestation reports, verified against an ARK ← ASK ← VCEK certificate chain.

The evidence is the raw ``ATTESTATION_REPORT`` of the SEV-SNP firmware ABI
specification: 0x4A0 bytes, little-endian fields, signed by the chip's VCEK
(ECDSA P-384 with SHA-384) over bytes 0x000-0x29F. The VCEK certificate is
signed by the ASK and the ASK by the ARK (both RSA-4096 keys signing with
RSASSA-PSS/SHA-384); the ARK is self-signed and is the trust anchor, so the
policy must name a genuine one (published by AMD's Key Distribution Service).
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import SignatureAlgorithmOID

from perf_aggregator.client.errors import EvidenceError, EvidenceExpiredError
from perf_aggregator.client.evidence import VerifiedEvidence, iso
from perf_aggregator.client.policy import VerificationPolicy
from perf_aggregator.evidence import EvidenceLayoutError, parse_snp_report

SIGNED_SIZE = 0x2A0
"""The signature covers bytes 0x000 up to (not including) the signature field at 0x2A0."""

# Signature-related offsets (ABI spec, ATTESTATION_REPORT); the other fields come from
# perf_aggregator.evidence, the layout both sides share.
_SIGNATURE_ALGO = 0x034
_KEY_INFO = 0x048
_SIG_R = slice(0x2A0, 0x2A0 + 72)
_SIG_S = slice(0x2E8, 0x2E8 + 72)

SIGNATURE_ALGO_ECDSA_P384_SHA384 = 1
_SIGNING_KEY_VCEK = 0
_MIN_RSA_BITS = 4096


def _cert(path: Path | None, name: str) -> x509.Certificate:
    if path is None:
        raise EvidenceError(
            f"SEV-SNP report cannot be verified: the policy names no {name} certificate (snp.{name.lower()})"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EvidenceError(f"SEV-SNP {name} certificate file {path} cannot be read: {exc}") from None
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise EvidenceError(f"SEV-SNP {name} file {path} is not a PEM or DER certificate: {exc}") from None
    if len(certs) != 1:
        raise EvidenceError(f"SEV-SNP {name} file {path} holds {len(certs)} certificates; name one per file")
    return certs[0]


def _check_issued(
    child: x509.Certificate, child_name: str, issuer: x509.Certificate, issuer_name: str
) -> None:
    """``child`` must be signed by ``issuer``'s RSA key with RSASSA-PSS/SHA-384."""
    if child.signature_algorithm_oid != SignatureAlgorithmOID.RSASSA_PSS or not isinstance(
        child.signature_hash_algorithm, hashes.SHA384
    ):
        raise EvidenceError(
            f"SEV-SNP certificate chain does not verify: the {child_name} certificate is not signed "
            "with RSASSA-PSS/SHA-384"
        )
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        raise EvidenceError(
            f"SEV-SNP certificate chain does not verify: the {child_name} certificate is not "
            f"issued and signed by the {issuer_name}"
        ) from None


def verify_chain(
    ark: x509.Certificate, ask: x509.Certificate, vcek: x509.Certificate, now: float
) -> ec.EllipticCurvePublicKey:
    """Check ARK (self-signed) → ASK → VCEK, key types and validity at ``now``; return the VCEK key."""
    for cert, name in ((ark, "ARK"), (ask, "ASK")):
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < _MIN_RSA_BITS:
            raise EvidenceError(f"SEV-SNP certificate chain does not verify: the {name} key is not RSA-4096")
    vcek_key = vcek.public_key()
    if not isinstance(vcek_key, ec.EllipticCurvePublicKey) or not isinstance(vcek_key.curve, ec.SECP384R1):
        raise EvidenceError("SEV-SNP certificate chain does not verify: the VCEK key is not ECDSA P-384")
    _check_issued(ark, "ARK", ark, "ARK itself (self-signed)")
    _check_issued(ask, "ASK", ark, "ARK")
    _check_issued(vcek, "VCEK", ask, "ASK")
    try:
        moment = datetime.fromtimestamp(now, UTC)
    except (OverflowError, OSError, ValueError):
        raise EvidenceError(f"SEV-SNP verification time {now} is out of range") from None
    for cert, name in ((ark, "ARK"), (ask, "ASK"), (vcek, "VCEK")):
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        if not start <= moment <= end:
            raise EvidenceExpiredError(
                f"SEV-SNP {name} certificate is not valid at {iso(now)} "
                f"(valid from {start:%Y-%m-%dT%H:%M:%SZ} to {end:%Y-%m-%dT%H:%M:%SZ})"
            )
    return vcek_key


def verify_snp_report(report: bytes, policy: VerificationPolicy, now: float) -> VerifiedEvidence:
    """Verify a raw SEV-SNP attestation report with the policy's AMD certificates at ``now``."""
    try:
        fields = parse_snp_report(report)
    except EvidenceLayoutError as exc:
        raise EvidenceError(f"SEV-SNP evidence is malformed: {exc}") from None
    (algo,) = struct.unpack_from("<I", report, _SIGNATURE_ALGO)
    (key_info,) = struct.unpack_from("<I", report, _KEY_INFO)
    if algo != SIGNATURE_ALGO_ECDSA_P384_SHA384:
        raise EvidenceError(f"SEV-SNP report signature algorithm {algo} is not ECDSA P-384 with SHA-384")
    signing_key = (key_info >> 2) & 0x7
    if signing_key != _SIGNING_KEY_VCEK:
        raise EvidenceError(
            f"SEV-SNP report is signed by key type {signing_key} (1: VLEK, 7: none); only VCEK is supported"
        )

    vcek_key = verify_chain(
        _cert(policy.snp_ark, "ARK"), _cert(policy.snp_ask, "ASK"), _cert(policy.snp_vcek, "VCEK"), now
    )
    r = int.from_bytes(report[_SIG_R], "little")
    s = int.from_bytes(report[_SIG_S], "little")
    try:
        vcek_key.verify(encode_dss_signature(r, s), report[:SIGNED_SIZE], ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise EvidenceError("SEV-SNP report signature does not verify with the VCEK") from None
    if fields.debug:
        raise EvidenceError(
            "SEV-SNP guest policy allows debugging (DEBUG bit set): the host can read its memory"
        )

    return VerifiedEvidence(
        tee="sev-snp",
        report_data=fields.report_data,
        measurement=fields.measurement.hex(),
        registers=fields.registers_hex(),
    )
