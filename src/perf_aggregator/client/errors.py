"""Every exception the client raises on purpose, in one hierarchy.

None of them ever carries a bearer token or a credential in its message.
"""

from __future__ import annotations


class ClientError(Exception):
    """Base class of every error raised by ``perf_aggregator.client``."""


class AttestationError(ClientError):
    """Raised when an attestation document fails verification; the message names the failed check."""


class EvidenceError(AttestationError):
    """Raised when the TEE evidence itself does not verify: signature, certificate chain, collateral,
    or a quote of another TEE type than the document claims."""


class EvidenceExpiredError(EvidenceError):
    """Raised when the evidence's collateral or certificates are not valid at the verification time."""


class BindingError(AttestationError):
    """Raised when genuine evidence does not bind the document: its report data differs from the
    document's, or does not commit to the document's keys and the expected nonce."""


class PolicyError(AttestationError):
    """Raised when verified, bound evidence is refused by the policy (TEE type, simulated evidence,
    measurements, TCB status, evidence age)."""


class PolicyFileError(ClientError, ValueError):
    """Raised by ``load_policy`` when a policy file cannot be read or is invalid; names the key."""


class EnvelopeError(ClientError):
    """Raised by ``seal_credentials`` when the metadata cannot be sealed with the credentials
    (it names another exchange, or is not canonicalizable JSON)."""


class SummaryVerificationError(ClientError):
    """Base class of the failures of offline verification of a signed summary."""


class MalformedSummaryError(SummaryVerificationError):
    """Raised when a summary document lacks a field or has one of the wrong type or encoding."""


class SummaryAttestationError(SummaryVerificationError):
    """Raised when the attestation embedded in a summary fails verification (the cause is chained)."""


class SigningKeyMismatchError(SummaryVerificationError):
    """Raised when the summary was signed with a key other than the one bound in its attestation."""


class InvalidSignatureError(SummaryVerificationError):
    """Raised when the Ed25519 signature does not match the canonical JSON of the summary."""


class DataSourceRejectedError(SummaryVerificationError):
    """Raised when the summary's figures were read from an origin the policy does not allow."""


class EnclaveError(ClientError):
    """Raised when the service answers with an HTTP error status.

    ``code`` is the API.md error code, or ``unexpected_response`` when the body
    is not the documented error object; ``retry_after`` is the ``Retry-After``
    header in seconds, when given.
    """

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        text = f"HTTP {status} {code}: {message}"
        if retry_after is not None:
            text += f" (retry after {retry_after} s)"
        super().__init__(text)


class UnexpectedResponseError(ClientError):
    """Raised when a successful response is not the document API.md promises for that route."""


class NetworkError(ClientError):
    """Raised when the service cannot be reached or the exchange of a request fails (connection, timeout)."""
