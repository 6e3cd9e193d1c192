"""Client SDK: verify an enclave's attestation, register credentials, read and verify results."""

from perf_aggregator.client.attestation import (
    VerifiedEnclave,
    VerifiedEvidence,
    check_policy,
    verify_attestation,
    verify_evidence,
)
from perf_aggregator.client.envelope import seal_credentials
from perf_aggregator.client.errors import (
    AttestationError,
    BindingError,
    ClientError,
    DataSourceRejectedError,
    EnclaveError,
    EnvelopeError,
    EvidenceError,
    EvidenceExpiredError,
    InvalidSignatureError,
    MalformedSummaryError,
    NetworkError,
    PolicyError,
    PolicyFileError,
    SigningKeyMismatchError,
    SummaryAttestationError,
    SummaryVerificationError,
    UnexpectedResponseError,
)
from perf_aggregator.client.models import AttestationDocument, Credentials, Registration, SessionState
from perf_aggregator.client.policy import (
    DEFAULT_DATA_SOURCES,
    MEASUREMENT_REGISTERS,
    TCB_STATUSES,
    TEE_TYPES,
    VerificationPolicy,
    load_policy,
)
from perf_aggregator.client.sdk import EnclaveClient
from perf_aggregator.client.summary import verify_summary

__all__ = [
    "DEFAULT_DATA_SOURCES",
    "MEASUREMENT_REGISTERS",
    "TCB_STATUSES",
    "TEE_TYPES",
    "AttestationDocument",
    "AttestationError",
    "BindingError",
    "ClientError",
    "Credentials",
    "DataSourceRejectedError",
    "EnclaveClient",
    "EnclaveError",
    "EnvelopeError",
    "EvidenceError",
    "EvidenceExpiredError",
    "InvalidSignatureError",
    "MalformedSummaryError",
    "NetworkError",
    "PolicyError",
    "PolicyFileError",
    "Registration",
    "SessionState",
    "SigningKeyMismatchError",
    "SummaryAttestationError",
    "SummaryVerificationError",
    "UnexpectedResponseError",
    "VerificationPolicy",
    "VerifiedEnclave",
    "VerifiedEvidence",
    "check_policy",
    "load_policy",
    "seal_credentials",
    "verify_attestation",
    "verify_evidence",
    "verify_summary",
]
