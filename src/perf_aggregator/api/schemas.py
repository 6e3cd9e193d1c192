"""Request and response models of the HTTP contract (API.md), for validation and OpenAPI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

MIN_TTL_S = 60
MAX_TTL_S = 604_800
DEFAULT_TTL_S = 86_400


class Metadata(BaseModel):
    """``metadata`` of a credentials envelope; its canonical JSON is the HPKE AAD."""

    exchange: StrictStr = Field(examples=["binance"])
    label: StrictStr = Field("", max_length=64, examples=["main account"])
    ttl: StrictInt = Field(DEFAULT_TTL_S, ge=MIN_TTL_S, le=MAX_TTL_S, description="Session lifetime (s).")

    @field_validator("label")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.isprintable():
            raise ValueError("label must contain printable characters only")
        return value


class SubmitKeyRequest(BaseModel):
    """``POST /enclave/submit_key`` body: an HPKE envelope of the credentials JSON."""

    enc: StrictStr = Field(description="Base64 of the 32-byte HPKE encapsulated key.")
    ciphertext: StrictStr = Field(description="Base64 of the HPKE ciphertext.")
    metadata: dict[str, Any] = Field(
        description="Kept as sent: its RFC 8785 form is the AAD.",
        examples=[{"exchange": "binance", "label": "main account", "ttl": 86400}],
    )


class Registration(BaseModel):
    """A new session. The token is shown once."""

    session_id: str
    token: str
    expires_at: str
    status: str
    warnings: list[str] = Field(
        default_factory=list,
        description="What the service could not check about the key (e.g. withdrawal permission); "
        "usually empty.",
    )


class RenewRequest(BaseModel):
    """``POST /enclave/sessions/{id}/renew``."""

    model_config = ConfigDict(extra="forbid")
    ttl: StrictInt = Field(DEFAULT_TTL_S, ge=MIN_TTL_S, le=MAX_TTL_S)


class Renewal(BaseModel):
    """The session's new expiry."""

    session_id: str
    expires_at: str
    status: str


class Health(BaseModel):
    """``GET /health``."""

    status: str
    tee: str
    version: str
    sessions: int
    uptime_s: float
    warning: str | None = None


class ErrorBody(BaseModel):
    """Inner object of every error answer."""

    code: str
    message: str


class ErrorResponse(BaseModel):
    """``{"error": {"code", "message"}}``."""

    error: ErrorBody
