"""TDX, dstack and SGX quotes: the genuine Intel fixtures verified offline with dcap-qvl."""

import asyncio
import base64
import re
import sys

import dcap_qvl
import pytest

from client.tee_evidence import (
    FIXTURES,
    SGX_COLLATERAL,
    SGX_MRENCLAVE,
    SGX_MRSIGNER,
    SGX_NOW,
    SGX_QUOTE,
    SGX_REPORT_DATA,
    TDX_BODY_BYTES,
    TDX_COLLATERAL,
    TDX_HEADER_BYTES,
    TDX_MRTD,
    TDX_NOW,
    TDX_QUOTE,
    TDX_REPORT_DATA,
    TDX_RTMR0,
    TDX_RTMR1,
    TDX_RTMR2,
    TDX_RTMR3,
    document,
    tdx_document,
)
from perf_aggregator.client import (
    BindingError,
    EvidenceError,
    EvidenceExpiredError,
    PolicyError,
    SummaryAttestationError,
    VerificationPolicy,
    check_policy,
    verify_attestation,
    verify_evidence,
    verify_summary,
)

TDX_POLICY = VerificationPolicy(collateral_file=TDX_COLLATERAL)
SGX_POLICY = VerificationPolicy(collateral_file=SGX_COLLATERAL)
YEAR_2030 = 1893456000


def test_fixtures_are_found_from_the_test_file():
    assert FIXTURES.parts[-3:] == ("shared", "fixtures", "attestation")
    assert TDX_QUOTE.is_file() and SGX_QUOTE.is_file()


@pytest.mark.parametrize("tee", ["tdx", "dstack"])
def test_genuine_tdx_quote_verifies_with_its_collateral(tee):
    evidence = verify_evidence(tee, TDX_QUOTE.read_bytes(), TDX_POLICY, now=TDX_NOW)
    assert evidence.tee == tee
    assert evidence.tcb_status == "UpToDate"
    assert evidence.advisory_ids == ()
    assert evidence.report_data == TDX_REPORT_DATA
    assert evidence.measurement == TDX_MRTD
    assert {k: evidence.registers[k] for k in ("mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3")} == {
        "mrtd": TDX_MRTD,
        "rtmr0": TDX_RTMR0,
        "rtmr1": TDX_RTMR1,
        "rtmr2": TDX_RTMR2,
        "rtmr3": TDX_RTMR3,
    }
    check_policy(evidence, VerificationPolicy())  # UpToDate passes the default policy


@pytest.mark.parametrize("tee", ["tdx", "dstack"])
def test_genuine_tdx_document_is_refused_for_the_binding_not_the_chain(tee):
    # The chain verifies (above); the document fails only because its report data was not made by us.
    with pytest.raises(BindingError, match="report data does not bind the document's keys and nonce"):
        verify_attestation(tdx_document(tee), TDX_POLICY, b"", now=TDX_NOW)


def test_binding_is_checked_before_the_measurement_policy():
    strict = VerificationPolicy(
        collateral_file=TDX_COLLATERAL, tee_measurements={"tdx": {"mrtd": ["ab" * 48]}}
    )
    with pytest.raises(BindingError):
        verify_attestation(tdx_document(), strict, b"", now=TDX_NOW)


def test_document_whose_report_data_is_not_the_quotes_is_refused():
    doc = {**tdx_document(), "report_data": "00" * 64}
    with pytest.raises(BindingError, match="report data in the evidence differs"):
        verify_attestation(doc, TDX_POLICY, b"", now=TDX_NOW)


@pytest.mark.parametrize(
    "offset",
    [
        0,  # header: version
        TDX_HEADER_BYTES + 136,  # body: MRTD
        TDX_HEADER_BYTES + 376,  # body: RTMR0
        TDX_HEADER_BYTES + TDX_BODY_BYTES - 1,  # body: last byte of REPORTDATA
    ],
)
def test_one_flipped_byte_in_the_signed_quote_is_refused(offset):
    quote = bytearray(TDX_QUOTE.read_bytes())
    quote[offset] ^= 0x01
    with pytest.raises(EvidenceError) as caught:
        verify_evidence("tdx", bytes(quote), TDX_POLICY, now=TDX_NOW)
    assert not isinstance(caught.value, EvidenceExpiredError)
    assert "TDX quote" in str(caught.value)


def test_flipped_report_body_fails_as_evidence_in_verify_attestation():
    quote = bytearray(TDX_QUOTE.read_bytes())
    quote[TDX_HEADER_BYTES + 200] ^= 0x80
    with pytest.raises(EvidenceError, match="TDX quote signature chain does not verify"):
        verify_attestation(tdx_document(quote=bytes(quote)), TDX_POLICY, b"", now=TDX_NOW)


@pytest.mark.parametrize("now", [YEAR_2030, TDX_NOW + 40 * 86400])
def test_expired_collateral_is_refused_as_expired(now):
    with pytest.raises(EvidenceExpiredError, match="expired"):
        verify_evidence("tdx", TDX_QUOTE.read_bytes(), TDX_POLICY, now=now)


def test_collateral_not_yet_valid_is_refused_as_such():
    with pytest.raises(EvidenceExpiredError, match="not yet valid"):
        verify_evidence("tdx", TDX_QUOTE.read_bytes(), TDX_POLICY, now=1600000000)


def test_verify_attestation_judges_collateral_at_the_given_time():
    with pytest.raises(EvidenceExpiredError):
        verify_attestation(tdx_document(), TDX_POLICY, b"", now=YEAR_2030)


def test_tdx_measurement_outside_the_policy_is_refused():
    evidence = verify_evidence("tdx", TDX_QUOTE.read_bytes(), TDX_POLICY, now=TDX_NOW)
    with pytest.raises(PolicyError, match=r"MRTD 91eb2b44d141d4ec… is not in the policy for tdx"):
        check_policy(evidence, VerificationPolicy(tee_measurements={"tdx": {"mrtd": ["ab" * 48]}}))
    with pytest.raises(PolicyError, match=r"RTMR2 .* is not in the policy"):
        check_policy(
            evidence,
            VerificationPolicy(tee_measurements={"tdx": {"mrtd": [TDX_MRTD], "rtmr2": ["cd" * 48]}}),
        )
    with pytest.raises(PolicyError, match="not one the policy accepts"):
        check_policy(evidence, VerificationPolicy(measurements=frozenset({"ab" * 48})))


def test_tdx_measurements_in_the_policy_are_accepted_in_any_case():
    evidence = verify_evidence("dstack", TDX_QUOTE.read_bytes(), TDX_POLICY, now=TDX_NOW)
    pinned = {"mrtd": [TDX_MRTD.upper(), "ab" * 48], "rtmr0": [TDX_RTMR0], "rtmr3": [TDX_RTMR3], "rtmr1": []}
    check_policy(evidence, VerificationPolicy(tee_measurements={"dstack": pinned}))
    # Pins for another TEE type do not apply to dstack evidence.
    check_policy(evidence, VerificationPolicy(tee_measurements={"tdx": {"mrtd": ["ab" * 48]}}))


def test_genuine_sgx_quote_verifies_with_its_tcb_status_and_advisories():
    evidence = verify_evidence("sgx", SGX_QUOTE.read_bytes(), SGX_POLICY, now=SGX_NOW)
    assert evidence.tcb_status == "ConfigurationAndSWHardeningNeeded"
    assert evidence.advisory_ids == ("INTEL-SA-00289", "INTEL-SA-00615")
    assert evidence.measurement == SGX_MRENCLAVE
    assert evidence.registers == {"mrenclave": SGX_MRENCLAVE, "mrsigner": SGX_MRSIGNER}
    assert evidence.report_data == SGX_REPORT_DATA


def test_sgx_tcb_status_is_refused_by_default_and_accepted_when_listed():
    evidence = verify_evidence("sgx", SGX_QUOTE.read_bytes(), SGX_POLICY, now=SGX_NOW)
    with pytest.raises(
        PolicyError,
        match=r"TCB status ConfigurationAndSWHardeningNeeded is not accepted \(advisories: INTEL-SA-00289",
    ):
        check_policy(evidence, VerificationPolicy())
    listed = VerificationPolicy(
        accepted_tcb_statuses=frozenset({"UpToDate", "ConfigurationAndSWHardeningNeeded"})
    )
    check_policy(evidence, listed)
    pinned = VerificationPolicy(
        accepted_tcb_statuses=frozenset({"ConfigurationAndSWHardeningNeeded"}),
        tee_measurements={"sgx": {"mrenclave": [SGX_MRENCLAVE], "mrsigner": [SGX_MRSIGNER]}},
    )
    check_policy(evidence, pinned)
    with pytest.raises(PolicyError, match="MRSIGNER"):
        check_policy(
            evidence,
            VerificationPolicy(
                accepted_tcb_statuses=frozenset({"ConfigurationAndSWHardeningNeeded"}),
                tee_measurements={"sgx": {"mrsigner": ["00" * 32]}},
            ),
        )


def test_sgx_document_is_refused_for_the_binding():
    doc = document("sgx", SGX_QUOTE.read_bytes(), SGX_REPORT_DATA, SGX_MRENCLAVE, SGX_NOW)
    listed = VerificationPolicy(
        collateral_file=SGX_COLLATERAL, accepted_tcb_statuses=frozenset({"ConfigurationAndSWHardeningNeeded"})
    )
    with pytest.raises(BindingError, match="does not bind"):
        verify_attestation(doc, listed, b"", now=SGX_NOW)


def test_quote_of_another_tee_than_the_document_claims_is_refused():
    with pytest.raises(
        EvidenceError, match="the document says sgx but its evidence is a TDX quote, not a SGX quote"
    ):
        verify_evidence("sgx", TDX_QUOTE.read_bytes(), TDX_POLICY, now=TDX_NOW)
    with pytest.raises(EvidenceError, match="says dstack but its evidence is a SGX quote, not a TDX quote"):
        verify_evidence("dstack", SGX_QUOTE.read_bytes(), SGX_POLICY, now=SGX_NOW)


def test_collateral_of_another_platform_is_refused():
    with pytest.raises(EvidenceError, match="TDX quote signature chain does not verify"):
        verify_evidence("tdx", TDX_QUOTE.read_bytes(), SGX_POLICY, now=TDX_NOW)


def test_policy_without_collateral_cannot_verify_dcap_quotes():
    with pytest.raises(EvidenceError, match="the policy names no collateral"):
        verify_evidence("tdx", TDX_QUOTE.read_bytes(), VerificationPolicy(), now=TDX_NOW)


def test_unreadable_or_invalid_collateral_file_is_named(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(EvidenceError, match=r"missing\.json cannot be read"):
        verify_evidence(
            "tdx", TDX_QUOTE.read_bytes(), VerificationPolicy(collateral_file=missing), now=TDX_NOW
        )
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{}")
    with pytest.raises(EvidenceError, match=r"garbage\.json is not DCAP collateral JSON"):
        verify_evidence(
            "tdx", TDX_QUOTE.read_bytes(), VerificationPolicy(collateral_file=garbage), now=TDX_NOW
        )


def test_tee_type_outside_the_policy_is_refused_before_the_evidence_is_checked():
    # No collateral at all: the refusal comes from the policy, not from a failed evidence check.
    with pytest.raises(PolicyError, match="TEE type 'tdx' is not accepted"):
        verify_attestation(
            tdx_document(), VerificationPolicy(accepted_tees=frozenset({"sgx"})), b"", now=TDX_NOW
        )


def test_summary_with_a_tdx_attestation_fails_on_the_binding(enclave):
    signed = enclave.signed_summary({"data_source": "https://api.binance.com"})
    signed["attestation"] = tdx_document()
    with pytest.raises(SummaryAttestationError) as caught:
        verify_summary(signed, TDX_POLICY, now=TDX_NOW)
    assert isinstance(caught.value.__cause__, BindingError)


@pytest.fixture
def fake_pccs(monkeypatch):
    """dcap_qvl.get_collateral answering from the fixture file: the PCCS path, without a network."""
    calls = []

    async def get_collateral(url, quote):
        calls.append((url, quote))
        await asyncio.sleep(0)
        if url.endswith("down"):
            raise ValueError("connection refused")
        return dcap_qvl.QuoteCollateralV3.from_json(TDX_COLLATERAL.read_text())

    monkeypatch.setattr(dcap_qvl, "get_collateral", get_collateral)
    return calls


def test_collateral_from_a_pccs_url(fake_pccs):
    policy = VerificationPolicy(pccs_url="https://pccs.invalid")
    evidence = verify_evidence("tdx", TDX_QUOTE.read_bytes(), policy, now=TDX_NOW)
    assert evidence.tcb_status == "UpToDate"
    assert fake_pccs == [("https://pccs.invalid", TDX_QUOTE.read_bytes())]


async def test_collateral_from_a_pccs_url_inside_an_event_loop(fake_pccs):
    policy = VerificationPolicy(pccs_url="https://pccs.invalid")
    with pytest.raises(BindingError):
        verify_attestation(tdx_document(), policy, b"", now=TDX_NOW)
    assert len(fake_pccs) == 1


def test_pccs_failure_is_an_evidence_error(fake_pccs):
    policy = VerificationPolicy(pccs_url="https://pccs.invalid/down")
    with pytest.raises(
        EvidenceError, match=re.escape("could not fetch collateral from PCCS https://pccs.invalid/down")
    ):
        verify_evidence("tdx", TDX_QUOTE.read_bytes(), policy, now=TDX_NOW)


def test_garbage_quote_does_not_parse():
    with pytest.raises(EvidenceError, match="TDX quote does not parse"):
        verify_evidence("tdx", base64.b64decode("AAAA"), TDX_POLICY, now=TDX_NOW)


@pytest.mark.parametrize("now", [-1, float("nan"), float("inf")])
def test_invalid_verification_time_is_refused(now):
    with pytest.raises(EvidenceError, match="is not a valid epoch time"):
        verify_evidence("tdx", TDX_QUOTE.read_bytes(), TDX_POLICY, now=now)


def test_without_dcap_qvl_dcap_quotes_are_refused_and_the_rest_works(monkeypatch, enclave):
    monkeypatch.setitem(sys.modules, "dcap_qvl", None)
    with pytest.raises(EvidenceError, match="need the dcap-qvl package"):
        verify_evidence("tdx", TDX_QUOTE.read_bytes(), TDX_POLICY, now=TDX_NOW)
    allowed = VerificationPolicy(allow_simulated=True)
    assert verify_attestation(enclave.attestation(), allowed, b"").tee == "simulated"
