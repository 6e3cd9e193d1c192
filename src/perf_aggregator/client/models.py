"""Typed models of the API.md documents the client sends and reads.

Metrics, summary, trades and health documents stay plain dicts: the client
only displays them (and verifies summaries as raw JSON, since the signature
covers the exact values).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, StringConstraints

_LowerHex = Annotated[str, StringConstraints(pattern=r"^(?:[0-9a-f]{2})*$")]


class Credentials(BaseModel):
    """Read-only exchange credentials to seal to the enclave.

    Secrets are ``SecretStr`` so neither repr, str nor a validation error ever
    shows them; only ``seal_credentials`` reveals them, into the HPKE plaintext.
    """

    # Validation errors would otherwise quote the input, secrets included.
    model_config = ConfigDict(frozen=True, hide_input_in_errors=True, extra="forbid")

    exchange: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=32)]
    api_key: SecretStr = Field(min_length=1)
    api_secret: SecretStr = Field(min_length=1)
    passphrase: SecretStr | None = None
    account_type: Literal["spot", "futures"] = "spot"
    since: AwareDatetime | None = None
    symbols: tuple[str, ...] = ()


class HpkeKeyInfo(BaseModel):
    """The ``hpke`` member of an attestation document."""

    model_config = ConfigDict(frozen=True, strict=True)

    kem_id: int
    kdf_id: int
    aead_id: int
    public_key: str


class SigningKeyInfo(BaseModel):
    """The ``signing_key`` member of an attestation document."""

    model_config = ConfigDict(frozen=True, strict=True)

    alg: str
    public_key: str


class AttestationDocument(BaseModel):
    """The ``GET /attestation/quote`` answer, as received (nothing in it is verified yet)."""

    model_config = ConfigDict(frozen=True, strict=True)

    tee: Annotated[str, StringConstraints(max_length=32)]
    quote: str
    report_data: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{128}$")]
    nonce: Annotated[_LowerHex, StringConstraints(max_length=64)]
    hpke: HpkeKeyInfo
    signing_key: SigningKeyInfo
    measurement: Annotated[_LowerHex, StringConstraints(min_length=2)]
    version: str
    issued_at: str


class SessionState(BaseModel):
    """A session's identity, expiry and status (the ``renew`` answer)."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    session_id: Annotated[str, StringConstraints(min_length=1)]
    expires_at: AwareDatetime
    status: str


class Registration(SessionState):
    """The ``POST /enclave/submit_key`` answer; the token is shown once and kept out of repr.

    ``warnings`` says what the enclave could not check about the key (e.g. that it cannot
    withdraw); empty normally, and from services that do not send it."""

    token: str = Field(repr=False, min_length=1)
    warnings: tuple[str, ...] = ()
