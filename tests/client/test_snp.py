"""SEV-SNP reports against a test ARK ← ASK ← VCEK chain built with the same algorithms as AMD's."""

import base64
import dataclasses
import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from client.tee_evidence import (
    POLICY_DEBUG,
    POLICY_RESERVED_ONE,
    SNP_NOW,
    SnpEnclave,
    certificate,
)
from perf_aggregator import protocol
from perf_aggregator.client import (
    BindingError,
    EvidenceError,
    EvidenceExpiredError,
    PolicyError,
    SummaryAttestationError,
    VerificationPolicy,
    VerifiedEnclave,
    check_policy,
    verify_attestation,
    verify_evidence,
    verify_summary,
)

NONCE = bytes(range(32))
T0 = datetime.fromtimestamp(SNP_NOW, UTC)


@pytest.fixture
def snp_policy(snp_chain, tmp_path):
    return VerificationPolicy(**snp_chain.write(tmp_path / "amd"))


@pytest.fixture
def snp(snp_chain, enclave):
    return SnpEnclave(snp_chain, enclave)


def test_snp_report_signed_by_the_vcek_is_accepted(snp, snp_policy):
    verified = verify_attestation(snp.attestation(NONCE, issued_at=SNP_NOW), snp_policy, NONCE, now=SNP_NOW)
    assert verified == VerifiedEnclave(
        tee="sev-snp",
        measurement=snp.measurement.hex(),
        hpke_public_key=snp.hpke_public,
        signing_public_key=snp.signing_public,
        registers={"measurement": snp.measurement.hex(), "host_data": "00" * 32, "id_key_digest": "00" * 48},
    )
    assert verified.tcb_status is None and verified.advisory_ids == ()


def test_snp_measurement_policy(snp, snp_policy):
    doc = snp.attestation(NONCE)
    listed = dataclasses.replace(
        snp_policy, tee_measurements={"sev-snp": {"measurement": [snp.measurement.hex()]}}
    )
    assert verify_attestation(doc, listed, NONCE, now=SNP_NOW).measurement == snp.measurement.hex()
    other = dataclasses.replace(snp_policy, tee_measurements={"sev-snp": {"measurement": ["ab" * 48]}})
    with pytest.raises(PolicyError, match=f"MEASUREMENT {snp.measurement.hex()[:16]}… is not in the policy"):
        verify_attestation(doc, other, NONCE, now=SNP_NOW)


@pytest.mark.parametrize(
    "offset",
    [0x004, 0x008, 0x050, 0x090 + 47, 0x1A0, 0x29F, 0x2A0, 0x2A0 + 71, 0x2E8, 0x2E8 + 10],
    ids=hex,
)
def test_one_flipped_byte_in_the_signed_report_or_its_signature_is_refused(snp, snp_policy, offset):
    report = bytearray(base64.b64decode(snp.attestation(NONCE)["quote"]))
    report[offset] ^= 0x01
    with pytest.raises(EvidenceError, match="SEV-SNP report signature does not verify with the VCEK"):
        verify_evidence("sev-snp", bytes(report), snp_policy, now=SNP_NOW)


def test_report_signed_by_another_vcek_is_refused(snp_chain, snp, tmp_path):
    other_key = ec.generate_private_key(ec.SECP384R1())
    other_vcek = snp_chain.vcek_certificate(
        other_key.public_key(), T0 - timedelta(days=1), T0 + timedelta(days=30)
    )
    policy = VerificationPolicy(**snp_chain.write(tmp_path, vcek=other_vcek))
    with pytest.raises(EvidenceError, match="report signature does not verify with the VCEK"):
        verify_attestation(snp.attestation(NONCE), policy, NONCE, now=SNP_NOW)


def test_ask_not_signed_by_the_policy_ark_is_refused(snp_chain, snp, tmp_path):
    # A genuine self-signed ARK with the same names but another RSA-4096 key (the test ASK's):
    # only the signature tells it from the real one.
    key = snp_chain.ask_key
    foreign = certificate(
        "ARK-Test",
        key.public_key(),
        "ARK-Test",
        key,
        T0 - timedelta(days=365),
        T0 + timedelta(days=3650),
        True,
    )
    policy = VerificationPolicy(**snp_chain.write(tmp_path, ark=foreign))
    with pytest.raises(EvidenceError, match="the ASK certificate is not issued and signed by the ARK"):
        verify_attestation(snp.attestation(NONCE), policy, NONCE, now=SNP_NOW)


def test_ark_that_is_not_self_signed_is_refused(snp_chain, snp, tmp_path):
    policy = VerificationPolicy(**snp_chain.write(tmp_path, ark=snp_chain.ask))
    with pytest.raises(EvidenceError, match="the ARK certificate is not issued and signed by the ARK itself"):
        verify_evidence("sev-snp", base64.b64decode(snp.attestation(NONCE)["quote"]), policy, now=SNP_NOW)


def test_vcek_signed_without_pss_is_refused(snp_chain, snp, tmp_path):
    pkcs1 = snp_chain.vcek_certificate(
        snp_chain.vcek_key.public_key(), T0 - timedelta(days=1), T0 + timedelta(days=30), pss=False
    )
    policy = VerificationPolicy(**snp_chain.write(tmp_path, vcek=pkcs1))
    with pytest.raises(EvidenceError, match="VCEK certificate is not signed with RSASSA-PSS/SHA-384"):
        verify_attestation(snp.attestation(NONCE), policy, NONCE, now=SNP_NOW)


def test_vcek_that_is_not_p384_is_refused(snp_chain, tmp_path):
    p256 = ec.generate_private_key(ec.SECP256R1())
    vcek = snp_chain.vcek_certificate(p256.public_key(), T0 - timedelta(days=1), T0 + timedelta(days=30))
    policy = VerificationPolicy(**snp_chain.write(tmp_path, vcek=vcek))
    report = snp_chain.report(os.urandom(64), os.urandom(48))
    with pytest.raises(EvidenceError, match="VCEK key is not ECDSA P-384"):
        verify_evidence("sev-snp", report, policy, now=SNP_NOW)


def test_expired_vcek_is_refused_as_expired(snp_chain, snp, tmp_path):
    expired = snp_chain.vcek_certificate(
        snp_chain.vcek_key.public_key(), T0 - timedelta(days=60), T0 - timedelta(days=30)
    )
    policy = VerificationPolicy(**snp_chain.write(tmp_path, vcek=expired))
    with pytest.raises(
        EvidenceExpiredError, match="SEV-SNP VCEK certificate is not valid at 2026-01-01T00:00:00Z"
    ):
        verify_attestation(snp.attestation(NONCE), policy, NONCE, now=SNP_NOW)


@pytest.mark.parametrize("days", [-2, 31])
def test_verification_time_outside_the_vcek_validity_is_refused(snp, snp_policy, days):
    later = SNP_NOW + days * 86400
    with pytest.raises(EvidenceExpiredError, match="VCEK certificate is not valid"):
        verify_attestation(snp.attestation(NONCE, issued_at=later), snp_policy, NONCE, now=later)


def test_wrong_report_data_is_refused_for_the_binding(snp_chain, snp, snp_policy):
    forged = os.urandom(64)
    doc = snp.attestation(NONCE)
    doc["quote"] = base64.b64encode(snp_chain.report(forged, snp.measurement)).decode()
    with pytest.raises(BindingError, match="report data in the evidence differs"):
        verify_attestation(doc, snp_policy, NONCE, now=SNP_NOW)
    doc["report_data"] = forged.hex()
    with pytest.raises(BindingError, match="report data does not bind the document's keys and nonce"):
        verify_attestation(doc, snp_policy, NONCE, now=SNP_NOW)


def test_snp_report_for_another_nonce_is_refused(snp, snp_policy):
    with pytest.raises(BindingError, match="nonce"):
        verify_attestation(snp.attestation(b""), snp_policy, NONCE, now=SNP_NOW)


def test_document_measurement_must_be_the_reports(snp, snp_policy):
    doc = {**snp.attestation(NONCE), "measurement": "ab" * 48}
    with pytest.raises(BindingError, match="measurement in the evidence differs"):
        verify_attestation(doc, snp_policy, NONCE, now=SNP_NOW)


def test_debug_guest_is_refused(snp, snp_policy):
    doc = snp.attestation(NONCE, guest_policy=POLICY_RESERVED_ONE | POLICY_DEBUG)
    with pytest.raises(EvidenceError, match="DEBUG"):
        verify_attestation(doc, snp_policy, NONCE, now=SNP_NOW)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"signature_algo": 2}, "signature algorithm 2 is not ECDSA P-384"),
        ({"key_info": 1 << 2}, "signed by key type 1"),
        ({"version": 1}, "unsupported SEV-SNP report version 1"),
    ],
)
def test_unsupported_report_fields_are_refused(snp, snp_policy, options, message):
    with pytest.raises(EvidenceError, match=message):
        verify_attestation(snp.attestation(NONCE, **options), snp_policy, NONCE, now=SNP_NOW)


def test_truncated_report_is_refused(snp, snp_policy):
    report = base64.b64decode(snp.attestation(NONCE)["quote"])[:-1]
    with pytest.raises(EvidenceError, match="1183 bytes, not 1184"):
        verify_evidence("sev-snp", report, snp_policy, now=SNP_NOW)


def test_policy_without_amd_certificates_cannot_verify_snp(snp):
    with pytest.raises(EvidenceError, match="names no ARK certificate"):
        verify_attestation(snp.attestation(NONCE), VerificationPolicy(), NONCE, now=SNP_NOW)


def test_certificate_file_with_two_certificates_is_refused(snp_chain, snp, tmp_path):
    paths = snp_chain.write(tmp_path)
    paths["snp_ask"].write_bytes(paths["snp_ask"].read_bytes() + paths["snp_ark"].read_bytes())
    with pytest.raises(EvidenceError, match="holds 2 certificates"):
        verify_attestation(snp.attestation(NONCE), VerificationPolicy(**paths), NONCE, now=SNP_NOW)


def test_der_certificates_are_read_too(snp_chain, snp, tmp_path):
    from cryptography.hazmat.primitives.serialization import Encoding

    paths = snp_chain.write(tmp_path)
    paths["snp_vcek"].write_bytes(snp_chain.vcek.public_bytes(Encoding.DER))
    assert (
        verify_attestation(snp.attestation(NONCE), VerificationPolicy(**paths), NONCE, now=SNP_NOW).tee
        == "sev-snp"
    )


def test_evidence_age_policy(snp, snp_policy):
    aged = dataclasses.replace(snp_policy, max_evidence_age_s=600)
    assert verify_attestation(snp.attestation(NONCE, issued_at=SNP_NOW - 599), aged, NONCE, now=SNP_NOW)
    with pytest.raises(
        PolicyError, match=r"evidence is too old: .* over the policy's max_evidence_age_s of 600"
    ):
        verify_attestation(snp.attestation(NONCE, issued_at=SNP_NOW - 601), aged, NONCE, now=SNP_NOW)
    with pytest.raises(PolicyError, match="in the future"):
        verify_attestation(snp.attestation(NONCE, issued_at=SNP_NOW + 3600), aged, NONCE, now=SNP_NOW)
    # Without a limit, an old document still verifies (a stored summary, for instance).
    assert verify_attestation(
        snp.attestation(NONCE, issued_at=SNP_NOW - 86400), snp_policy, NONCE, now=SNP_NOW
    )


def test_check_policy_alone_refuses_an_unaccepted_tee(snp, snp_policy):
    evidence = verify_evidence(
        "sev-snp", base64.b64decode(snp.attestation()["quote"]), snp_policy, now=SNP_NOW
    )
    assert evidence.report_data == protocol.report_data(snp.hpke_public, snp.signing_public, b"")
    check_policy(evidence, VerificationPolicy())
    with pytest.raises(PolicyError, match="TEE type 'sev-snp' is not accepted"):
        check_policy(evidence, VerificationPolicy(accepted_tees=frozenset({"tdx"})))


def test_signed_summary_with_snp_attestation_verifies_offline(snp, snp_policy):
    summary = {"version": 1, "trades": 3, "data_source": "https://api.kraken.com"}
    signed = snp.signed_summary(summary)
    assert verify_summary(signed, snp_policy, now=SNP_NOW) == summary
    with pytest.raises(SummaryAttestationError) as caught:
        verify_summary(signed, snp_policy, now=SNP_NOW + 90 * 86400)
    assert isinstance(caught.value.__cause__, EvidenceExpiredError)
