import base64
import copy
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from perf_aggregator.client import (
    DEFAULT_DATA_SOURCES,
    DataSourceRejectedError,
    InvalidSignatureError,
    MalformedSummaryError,
    SigningKeyMismatchError,
    SummaryAttestationError,
    SummaryVerificationError,
    VerificationPolicy,
    verify_summary,
)

SIMULATOR = "http://127.0.0.1:9100"


def make_summary(data_source: str = "https://api.binance.com") -> dict:
    return {
        "version": 1,
        "session_id": "s-1",
        "exchange": "binance",
        "account_type": "spot",
        "as_of": "2026-01-31T12:00:00.123Z",
        "period_start": "2026-01-01T00:00:00.000Z",
        "period_end": "2026-01-31T11:59:00.000Z",
        "backfill_complete": True,
        "trades": 120,
        "symbols_traded": 4,
        "volume_usd": "123456.78",
        "realized_pnl_usd": "-12.5",
        "return_pct": 3.1,
        "win_rate": 0.55,
        "profit_factor": None,
        "sharpe_ratio": 1.2,
        "data_source": data_source,
    }


def test_signed_summary_is_accepted_and_returned(enclave, dev_policy):
    document = enclave.signed_summary(make_summary())
    assert verify_summary(document, dev_policy) == make_summary()


@pytest.mark.parametrize(
    ("field", "value"),
    [("realized_pnl_usd", "12.5"), ("trades", 121), ("win_rate", 0.56), ("profit_factor", 2.0)],
)
def test_changed_summary_field_is_refused(enclave, dev_policy, field, value):
    document = enclave.signed_summary(make_summary())
    document["summary"][field] = value
    with pytest.raises(InvalidSignatureError):
        verify_summary(document, dev_policy)


def test_summary_signed_by_an_unattested_key_is_refused(enclave, dev_policy):
    impostor = Ed25519PrivateKey.generate()
    document = enclave.signed_summary(make_summary())
    document["signature"] = {
        "alg": "Ed25519",
        "public_key": base64.b64encode(impostor.public_key().public_bytes_raw()).decode(),
        "value": base64.b64encode(impostor.sign(b"anything")).decode(),
    }
    with pytest.raises(SigningKeyMismatchError):
        verify_summary(document, dev_policy)


def test_summary_whose_signature_is_not_over_the_summary_is_refused(enclave, dev_policy):
    document = enclave.signed_summary(make_summary())
    other = enclave.signed_summary(make_summary("https://api.kraken.com"))
    document["signature"] = other["signature"]
    with pytest.raises(InvalidSignatureError):
        verify_summary(document, dev_policy)


def test_summary_with_a_failing_attestation_is_refused(enclave, dev_policy):
    document = enclave.signed_summary(make_summary())
    with pytest.raises(SummaryAttestationError, match="simulated"):
        verify_summary(document, VerificationPolicy())
    document["attestation"]["measurement"] = "00" * 32
    with pytest.raises(SummaryAttestationError, match="measurement"):
        verify_summary(document, dev_policy)


def test_summary_attestation_must_have_the_empty_nonce(enclave, dev_policy):
    document = enclave.signed_summary(make_summary())
    document["attestation"] = enclave.attestation(b"\x01" * 32)
    with pytest.raises(SummaryAttestationError, match="nonce"):
        verify_summary(document, dev_policy)


def test_simulator_data_source_is_refused_by_default_policy(enclave, dev_policy):
    assert SIMULATOR not in DEFAULT_DATA_SOURCES
    document = enclave.signed_summary(make_summary(SIMULATOR))
    with pytest.raises(DataSourceRejectedError, match=re.escape(SIMULATOR)):
        verify_summary(document, dev_policy)


def test_simulator_data_source_is_accepted_when_the_policy_allows_it(enclave):
    policy = VerificationPolicy(allow_simulated=True, allowed_data_sources=frozenset({SIMULATOR}))
    document = enclave.signed_summary(make_summary(SIMULATOR))
    assert verify_summary(document, policy)["data_source"] == SIMULATOR


@pytest.mark.parametrize("path", [("summary",), ("signature",), ("signature", "value"), ("attestation",)])
def test_missing_member_is_malformed(enclave, dev_policy, path):
    document = copy.deepcopy(enclave.signed_summary(make_summary()))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    with pytest.raises(MalformedSummaryError, match=path[-1]):
        verify_summary(document, dev_policy)


def test_signed_summary_without_data_source_is_malformed(enclave, dev_policy):
    summary = make_summary()
    del summary["data_source"]
    with pytest.raises(MalformedSummaryError, match="data_source"):
        verify_summary(enclave.signed_summary(summary), dev_policy)


def test_every_summary_failure_is_a_summary_verification_error():
    for error in (
        MalformedSummaryError,
        SummaryAttestationError,
        SigningKeyMismatchError,
        InvalidSignatureError,
        DataSourceRejectedError,
    ):
        assert issubclass(error, SummaryVerificationError)
