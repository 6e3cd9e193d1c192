import base64
import copy
import os

import pytest

from perf_aggregator import protocol
from perf_aggregator.client import (
    AttestationError,
    EvidenceError,
    PolicyError,
    VerificationPolicy,
    VerifiedEnclave,
    verify_attestation,
)

NONCE = bytes(range(32))


def test_simulated_attestation_is_accepted_when_the_policy_allows_it(enclave, dev_policy):
    verified = verify_attestation(enclave.attestation(NONCE), dev_policy, NONCE)
    assert verified == VerifiedEnclave(
        tee="simulated",
        measurement=enclave.measurement.hex(),
        hpke_public_key=enclave.hpke_public,
        signing_public_key=enclave.signing_public,
    )


def test_simulated_attestation_is_refused_by_default(enclave):
    with pytest.raises(AttestationError, match="simulated"):
        verify_attestation(enclave.attestation(NONCE), VerificationPolicy(), NONCE)


def test_tee_outside_accepted_tees_is_refused(enclave):
    policy = VerificationPolicy(allow_simulated=True, accepted_tees=frozenset({"tdx"}))
    with pytest.raises(AttestationError, match="not accepted"):
        verify_attestation(enclave.attestation(NONCE), policy, NONCE)


@pytest.mark.parametrize(
    ("tee", "message"),
    [
        ("tdx", "TDX quote does not parse"),
        ("dstack", r"dstack \(TDX\) quote does not parse"),
        ("sgx", "SGX quote does not parse"),
        ("sev-snp", "SEV-SNP report is 122 bytes, not 1184"),
    ],
)
def test_simulated_evidence_claimed_as_a_real_tee_is_refused_as_evidence(enclave, dev_policy, tee, message):
    doc = {**enclave.attestation(NONCE), "tee": tee}
    with pytest.raises(EvidenceError, match=message):
        verify_attestation(doc, dev_policy, NONCE)


def test_simulated_refusal_says_how_to_accept_it(enclave):
    with pytest.raises(PolicyError, match=r"simulated evidence refused: .*--allow-simulated"):
        verify_attestation(enclave.attestation(NONCE), VerificationPolicy(), NONCE)


def test_wrong_nonce_is_refused(enclave, dev_policy):
    with pytest.raises(AttestationError, match="nonce"):
        verify_attestation(enclave.attestation(NONCE), dev_policy, os.urandom(32))


def test_replayed_attestation_without_nonce_is_refused(enclave, dev_policy):
    with pytest.raises(AttestationError, match="nonce"):
        verify_attestation(enclave.attestation(b""), dev_policy, NONCE)


def test_unset_expected_nonce_binds_the_documents_own_nonce(enclave, dev_policy):
    assert verify_attestation(enclave.attestation(NONCE), dev_policy, None).tee == "simulated"


def test_flipped_report_data_is_refused(enclave, dev_policy):
    doc = enclave.attestation(NONCE)
    report = bytearray(bytes.fromhex(doc["report_data"]))
    report[10] ^= 0x01
    with pytest.raises(AttestationError, match="report data"):
        verify_attestation({**doc, "report_data": report.hex()}, dev_policy, NONCE)


def test_evidence_binding_other_data_is_refused_even_when_consistent(enclave, dev_policy):
    forged = os.urandom(64)
    doc = {
        **enclave.attestation(NONCE),
        "quote": base64.b64encode(protocol.simulated_quote(enclave.measurement, forged)).decode(),
        "report_data": forged.hex(),
    }
    with pytest.raises(AttestationError, match="does not bind"):
        verify_attestation(doc, dev_policy, NONCE)


def test_swapped_keys_are_refused(enclave, dev_policy):
    doc = copy.deepcopy(enclave.attestation(NONCE))
    doc["hpke"]["public_key"], doc["signing_key"]["public_key"] = (
        doc["signing_key"]["public_key"],
        doc["hpke"]["public_key"],
    )
    with pytest.raises(AttestationError, match="does not bind"):
        verify_attestation(doc, dev_policy, NONCE)


def test_substituted_hpke_key_is_refused(enclave, dev_policy):
    doc = copy.deepcopy(enclave.attestation(NONCE))
    doc["hpke"]["public_key"] = base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(AttestationError, match="does not bind"):
        verify_attestation(doc, dev_policy, NONCE)


def test_measurement_outside_the_policy_is_refused(enclave):
    policy = VerificationPolicy(allow_simulated=True, measurements=frozenset({"ab" * 32}))
    with pytest.raises(AttestationError, match=r"measurement .* is not one the policy accepts"):
        verify_attestation(enclave.attestation(NONCE), policy, NONCE)


def test_measurement_listed_in_the_policy_is_accepted_in_any_case(enclave):
    policy = VerificationPolicy(
        allow_simulated=True, measurements=frozenset({enclave.measurement.hex().upper()})
    )
    assert (
        verify_attestation(enclave.attestation(NONCE), policy, NONCE).measurement == enclave.measurement.hex()
    )


def test_document_measurement_differing_from_the_evidence_is_refused(enclave, dev_policy):
    doc = {**enclave.attestation(NONCE), "measurement": "ab" * 32}
    with pytest.raises(AttestationError, match="measurement in the evidence differs"):
        verify_attestation(doc, dev_policy, NONCE)


def test_unparseable_evidence_is_refused(enclave, dev_policy):
    doc = {**enclave.attestation(NONCE), "quote": base64.b64encode(b"not a quote").decode()}
    with pytest.raises(AttestationError, match="evidence does not parse"):
        verify_attestation(doc, dev_policy, NONCE)


def test_unpadded_base64_is_refused(enclave, dev_policy):
    doc = {**enclave.attestation(NONCE)}
    doc["quote"] = doc["quote"].rstrip("=")
    assert doc["quote"] != enclave.attestation(NONCE)["quote"]
    with pytest.raises(AttestationError, match="quote is not valid base64"):
        verify_attestation(doc, dev_policy, NONCE)


@pytest.mark.parametrize(("member", "field"), [("hpke", "kem_id"), ("hpke", "kdf_id"), ("hpke", "aead_id")])
def test_other_hpke_suite_is_refused(enclave, dev_policy, member, field):
    doc = copy.deepcopy(enclave.attestation(NONCE))
    doc[member][field] = 2
    with pytest.raises(AttestationError, match="HPKE suite"):
        verify_attestation(doc, dev_policy, NONCE)


def test_short_key_is_refused(enclave, dev_policy):
    doc = copy.deepcopy(enclave.attestation(NONCE))
    doc["signing_key"]["public_key"] = base64.b64encode(enclave.signing_public[:31]).decode()
    with pytest.raises(AttestationError, match="signing public key is 31 bytes"):
        verify_attestation(doc, dev_policy, NONCE)


@pytest.mark.parametrize("field", ["quote", "report_data", "hpke", "nonce"])
def test_missing_field_is_refused_by_name(enclave, dev_policy, field):
    doc = enclave.attestation(NONCE)
    del doc[field]
    with pytest.raises(AttestationError, match=f"malformed attestation document .*{field}"):
        verify_attestation(doc, dev_policy, NONCE)


def test_upper_case_report_data_is_malformed(enclave, dev_policy):
    doc = enclave.attestation(NONCE)
    doc["report_data"] = doc["report_data"].upper()
    with pytest.raises(AttestationError, match="report_data"):
        verify_attestation(doc, dev_policy, NONCE)


def test_policy_refuses_non_hex_measurements_and_unknown_tees():
    with pytest.raises(ValueError, match="hex"):
        VerificationPolicy(measurements=frozenset({"not hex"}))
    with pytest.raises(ValueError, match="unknown TEE"):
        VerificationPolicy(accepted_tees=frozenset({"tpm"}))
