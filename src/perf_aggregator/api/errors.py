"""Every error the API answers, in the API.md shape, mapped in this one place."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from perf_aggregator.exchanges.errors import (
    CredentialsRejected,
    ExchangeError,
    ExchangeUnavailable,
    KeyNotReadOnly,
)
from perf_aggregator.sessions.errors import (
    EnvelopeReplayed,
    Unauthorized,
    UnsupportedAccountType,
    UnsupportedExchange,
)
from perf_aggregator.sessions.registry import PurgeFailed
from perf_aggregator.tee.credentials import CredentialsFormatError, EnvelopeError, MetadataError

log = logging.getLogger(__name__)

PURGE_RETRY_AFTER_S = 5
"""``Retry-After`` of a revocation the sealed store could not carry out."""


class ApiError(Exception):
    """An error answer: HTTP status, API.md code, human message, optional headers."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """``{"error": {"code", "message"}}`` with ``status``."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _from_domain(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, Unauthorized):
        return ApiError(
            401,
            "unauthorized",
            "Missing or invalid bearer token for this session.",
            {"WWW-Authenticate": "Bearer"},
        )
    if isinstance(exc, EnvelopeError):
        return ApiError(400, "invalid_envelope", f"The envelope cannot be used: {exc}.")
    if isinstance(exc, CredentialsFormatError | UnsupportedAccountType):
        return ApiError(400, "invalid_request", f"{exc}.")
    if isinstance(exc, MetadataError):
        return ApiError(400, "invalid_request", f"Invalid request: {exc}.")
    if isinstance(exc, EnvelopeReplayed):
        return ApiError(409, "envelope_replayed", "This envelope was already submitted; encrypt again.")
    if isinstance(exc, UnsupportedExchange):
        return ApiError(422, "unsupported_exchange", f"{exc}.")
    if isinstance(exc, CredentialsRejected):
        # Connector messages are ours and name no credential (exchanges/errors.py).
        return ApiError(422, "credentials_rejected", f"The exchange refused these credentials: {exc}.")
    if isinstance(exc, KeyNotReadOnly):
        return ApiError(
            422,
            "key_not_read_only",
            "The exchange reports that this key can withdraw funds; use a read-only key.",
        )
    if isinstance(exc, ExchangeUnavailable):
        retry = str(max(1, int(exc.retry_after_s)))
        return ApiError(
            503,
            "exchange_unavailable",
            "The exchange could not be reached to validate the key.",
            {"Retry-After": retry},
        )
    if isinstance(exc, PurgeFailed):
        return ApiError(
            503,
            "service_unavailable",
            "The session could not be deleted right now; it is still live, retry.",
            {"Retry-After": str(PURGE_RETRY_AFTER_S)},
        )
    if isinstance(exc, ExchangeError):
        return ApiError(
            503,
            "exchange_unavailable",
            "The exchange did not accept the validation request.",
            {"Retry-After": "60"},
        )
    raise TypeError(type(exc).__name__)


DOMAIN_ERRORS: tuple[type[Exception], ...] = (
    ApiError,
    Unauthorized,
    EnvelopeError,
    CredentialsFormatError,
    MetadataError,
    UnsupportedAccountType,
    EnvelopeReplayed,
    UnsupportedExchange,
    ExchangeError,
    PurgeFailed,
)


def _validation_message(exc: RequestValidationError) -> str:
    # Only locations and pydantic's generic texts: never the offending input.
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return "The body is not valid JSON."
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return f"Invalid request: {loc or 'body'}: {first.get('msg', 'invalid value')}."


def install_error_handlers(app: FastAPI) -> None:
    """Make every error, including validation errors and unknown routes, an API.md error body."""

    async def domain(_: Request, exc: Exception) -> JSONResponse:
        err = _from_domain(exc)
        return error_response(err.status, err.code, err.message, err.headers)

    async def validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, "invalid_request", _validation_message(exc))

    async def http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return error_response(404, "not_found", "No such route.")
        if exc.status_code == 405:
            return error_response(
                405,
                "method_not_allowed",
                "This method is not allowed on this route.",
                dict(exc.headers or {}),
            )
        return error_response(exc.status_code, "invalid_request", str(exc.detail))

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled %s", type(exc).__name__, exc_info=exc)
        return error_response(500, "internal_error", "Internal error.")

    for exc_type in DOMAIN_ERRORS:
        app.add_exception_handler(exc_type, domain)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http)
    app.add_exception_handler(Exception, unexpected)
