"""Client SDK: verify an enclave's attestation, register credentials, read and verify results."""

from perf_aggregator.client.attestation import VerifiedEnclave, verify_attestation
from perf_aggregator.client.envelope import seal_credentials
from perf_aggregator.client.errors import (
    AttestationError,
    ClientError,
    DataSourceRejectedError,
    EnclaveError,
    EnvelopeError,
    InvalidSignatureError,
    MalformedSummaryError,
    NetworkError,
    SigningKeyMismatchError,
    SummaryAttestationError,
    SummaryVerificationError,
    UnexpectedResponseError,
)
from perf_aggregator.client.models import AttestationDocument, Credentials, Registration, SessionState
from perf_aggregator.client.policy import DEFAULT_DATA_SOURCES, TEE_TYPES, VerificationPolicy
from perf_aggregator.client.sdk import EnclaveClient
from perf_aggregator.client.summary import verify_summary

__all__ = [
    "DEFAULT_DATA_SOURCES",
    "TEE_TYPES",
    "AttestationDocument",
    "AttestationError",
    "ClientError",
    "Credentials",
    "DataSourceRejectedError",
    "EnclaveClient",
    "EnclaveError",
    "EnvelopeError",
    "InvalidSignatureError",
    "MalformedSummaryError",
    "NetworkError",
    "Registration",
    "SessionState",
    "SigningKeyMismatchError",
    "SummaryAttestationError",
    "SummaryVerificationError",
    "UnexpectedResponseError",
    "VerificationPolicy",
    "VerifiedEnclave",
    "seal_credentials",
    "verify_attestation",
    "verify_summary",
]
