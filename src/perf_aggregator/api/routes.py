"""The routes: thin, each validating input and calling one service function."""

from __future__ import annotations

import base64
import binascii
import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from perf_aggregator import __version__
from perf_aggregator.api.errors import ApiError
from perf_aggregator.api.schemas import (
    ErrorResponse,
    Health,
    Metadata,
    Registration,
    Renewal,
    RenewRequest,
    SubmitKeyRequest,
)
from perf_aggregator.exchanges.base import connector_warnings
from perf_aggregator.formats import rfc3339_ms
from perf_aggregator.sessions import documents
from perf_aggregator.sessions.registry import Envelope, SessionRegistry
from perf_aggregator.sessions.session import Session
from perf_aggregator.telemetry import REGISTRY

_NONCE = re.compile(r"^(?:[0-9a-fA-F]{2}){0,32}$")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 409, 413, 422, 429, 503)
}

router = APIRouter(responses=ERRORS)


def registry(request: Request) -> SessionRegistry:
    """The app's session registry."""
    reg: SessionRegistry = request.app.state.registry
    return reg


Registry = Annotated[SessionRegistry, Depends(registry)]


SessionId = Annotated[str, Path(max_length=64)]
AuthorizationHeader = Annotated[str | None, Header()]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if that is what it holds."""
    if authorization is None:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def authenticated(reg: Registry, session_id: SessionId, authorization: AuthorizationHeader = None) -> Session:
    """The session named in the path, if the bearer token is its token."""
    return reg.authenticate(session_id, bearer_token(authorization))


Authed = Annotated[Session, Depends(authenticated)]


@router.get("/health", response_model=Health, operation_id="health", tags=["operations"])
def health(request: Request, reg: Registry) -> Health:
    """Liveness, TEE type and session count."""
    tee = reg.enclave.tee
    return Health(
        status="ok",
        tee=tee,
        version=__version__,
        sessions=len(reg),
        uptime_s=round(time.monotonic() - request.app.state.started, 3),
        warning="simulated TEE: attestation proves nothing" if tee == "simulated" else None,
    )


@router.get(
    "/metrics", operation_id="prometheus_metrics", tags=["operations"], response_class=PlainTextResponse
)
def prometheus_metrics() -> PlainTextResponse:
    """Operational figures in the Prometheus text format; never per-user data."""
    return PlainTextResponse(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


@router.get("/attestation/quote", operation_id="get_attestation_quote", tags=["attestation"])
def attestation_quote(reg: Registry, nonce: Annotated[str, Query(max_length=64)] = "") -> dict[str, Any]:
    """Evidence binding the enclave's HPKE and signing keys (and the nonce) to its code."""
    if not _NONCE.match(nonce):
        raise ApiError(400, "invalid_request", "nonce must be an even number (0 to 64) of hex characters.")
    return reg.enclave.attestation_document(bytes.fromhex(nonce))


def _b64(value: str, name: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "invalid_envelope", f"{name} is not valid base64.") from None


@router.post(
    "/enclave/submit_key",
    status_code=201,
    response_model=Registration,
    operation_id="submit_key",
    tags=["sessions"],
)
async def submit_key(body: SubmitKeyRequest, request: Request, reg: Registry) -> Registration:
    """Register exchange credentials sealed to the enclave's HPKE key."""
    try:
        metadata = Metadata.model_validate(body.metadata)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ApiError(
            400, "invalid_request", f"Invalid request: metadata.{where}: {first['msg']}."
        ) from None
    enc = _b64(body.enc, "enc")
    ciphertext = _b64(body.ciphertext, "ciphertext")
    if len(enc) != 32:
        raise ApiError(400, "invalid_envelope", "enc must be 32 bytes.")
    client = request.client.host if request.client else "unknown"
    wait = request.app.state.registration_limiter.hit(client)
    if wait:
        raise ApiError(
            429, "rate_limited", "Too many registrations; retry later.", {"Retry-After": str(wait)}
        )
    session, token = await reg.register(
        Envelope(enc, ciphertext, body.metadata, metadata.label, metadata.ttl)
    )
    return Registration(
        session_id=session.id,
        token=token,
        expires_at=rfc3339_ms(session.expires_ms),
        status=session.sync.status,
        warnings=list(connector_warnings(session.connector)),
    )


@router.get("/enclave/metrics/{session_id}", operation_id="get_metrics", tags=["results"])
def metrics(session: Authed, reg: Registry) -> dict[str, Any]:
    """Per-symbol figures, totals and sync state."""
    return documents.metrics_document(session, reg.clock_ms())


@router.get("/enclave/summary/{session_id}", operation_id="get_summary", tags=["results"])
def summary(session: Authed, reg: Registry) -> dict[str, Any]:
    """The signed, privacy-preserving summary with the attestation attached."""
    return reg.enclave.signed(documents.summary_body(session, reg.clock_ms()))


@router.get("/enclave/trades/{session_id}", operation_id="get_trades", tags=["results"])
def trades(
    session: Authed,
    symbol: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    """The session's normalized trades, oldest first."""
    try:
        return documents.trades_document(session, symbol, limit, cursor)
    except ValueError:
        raise ApiError(400, "invalid_request", "cursor is not valid.") from None


@router.post(
    "/enclave/sessions/{session_id}/renew",
    response_model=Renewal,
    operation_id="renew_session",
    tags=["sessions"],
)
def renew(session: Authed, reg: Registry, body: RenewRequest | None = None) -> Renewal:
    """Extend the session to now + ttl."""
    reg.renew(session, (body or RenewRequest()).ttl)
    return Renewal(
        session_id=session.id, expires_at=rfc3339_ms(session.expires_ms), status=session.sync.status
    )


@router.delete(
    "/enclave/sessions/{session_id}", status_code=204, operation_id="delete_session", tags=["sessions"]
)
async def delete_session(
    reg: Registry, session_id: SessionId, authorization: AuthorizationHeader = None
) -> Response:
    """Revoke the session and purge its credentials, trades and metrics (also a session that
    is still waiting for its exchange after a restart)."""
    await reg.revoke_authorized(session_id, bearer_token(authorization))
    return Response(status_code=204)
