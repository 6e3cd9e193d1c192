"""``EnclaveClient``: the async HTTP client of the enclave API (API.md)."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from perf_aggregator import protocol
from perf_aggregator.client.attestation import VerifiedEnclave, verify_attestation
from perf_aggregator.client.envelope import seal_credentials
from perf_aggregator.client.errors import EnclaveError, NetworkError, UnexpectedResponseError
from perf_aggregator.client.models import Credentials, Registration, SessionState
from perf_aggregator.client.policy import VerificationPolicy

_M = TypeVar("_M", bound=BaseModel)

# Visible ASCII only: an illegal header value makes the HTTP stack raise an
# error that quotes the header, token included.
_TOKEN = re.compile(r"^[\x21-\x7e]+$")
_MAX_MESSAGE = 500


class EnclaveClient:
    """Async client of one enclave service; use as ``async with EnclaveClient(url) as client``.

    Credentials are only ever sent after the enclave's attestation has been
    verified against the caller's policy with a fresh nonce.
    """

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        # Redirects are not followed: the bearer token must only go to base_url.
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, follow_redirects=False)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying connections."""
        await self._http.aclose()

    async def attestation(self, nonce: bytes | None = None) -> dict[str, Any]:
        """``GET /attestation/quote``: the attestation document as received, unverified."""
        if nonce is not None and len(nonce) > protocol.MAX_NONCE_BYTES:
            raise ValueError(f"nonce is longer than {protocol.MAX_NONCE_BYTES} bytes")
        params = {} if nonce is None else {"nonce": nonce.hex()}
        return await self._json("GET", "/attestation/quote", params=params)

    async def verify(self, policy: VerificationPolicy) -> VerifiedEnclave:
        """Fetch the attestation with a fresh random nonce and verify it against ``policy``."""
        nonce = secrets.token_bytes(protocol.MAX_NONCE_BYTES)
        return verify_attestation(await self.attestation(nonce), policy, nonce)

    async def register(
        self, credentials: Credentials, *, label: str = "", ttl: int = 86400, policy: VerificationPolicy
    ) -> Registration:
        """Verify the enclave, seal ``credentials`` to it and ``POST /enclave/submit_key``.

        Raises ``AttestationError`` before anything is sent if verification fails. The answer's
        ``warnings`` name what the enclave could not check about the key: show them to the user.
        """
        enclave = await self.verify(policy)
        metadata = {"exchange": credentials.exchange, "label": label, "ttl": ttl}
        body = seal_credentials(enclave, credentials, metadata)
        revealed = [credentials.api_key, credentials.api_secret, credentials.passphrase]
        secret_values = [s.get_secret_value() for s in revealed if s is not None]
        data = await self._json("POST", "/enclave/submit_key", json=body, redact=secret_values)
        return _parse(Registration, data, "registration answer")

    async def metrics(self, session_id: str, token: str) -> dict[str, Any]:
        """``GET /enclave/metrics/{session_id}``: the metrics document."""
        return await self._json("GET", _session_path("metrics", session_id), token=token)

    async def summary(self, session_id: str, token: str) -> dict[str, Any]:
        """``GET /enclave/summary/{session_id}``: the signed summary, unverified (see ``verify_summary``)."""
        return await self._json("GET", _session_path("summary", session_id), token=token)

    async def trades(
        self,
        session_id: str,
        token: str,
        symbol: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """``GET /enclave/trades/{session_id}``: one page, ``{"trades": [...], "next_cursor": ...}``."""
        params: dict[str, str | int] = {"limit": limit}
        if symbol is not None:
            params["symbol"] = symbol
        if cursor is not None:
            params["cursor"] = cursor
        return await self._json("GET", _session_path("trades", session_id), token=token, params=params)

    async def renew(self, session_id: str, token: str, ttl: int) -> SessionState:
        """``POST /enclave/sessions/{session_id}/renew``: the session now expires ``ttl`` seconds from now."""
        path = _session_path("sessions", session_id) + "/renew"
        data = await self._json("POST", path, token=token, json={"ttl": ttl})
        return _parse(SessionState, data, "renew answer")

    async def revoke(self, session_id: str, token: str) -> None:
        """``DELETE /enclave/sessions/{session_id}``: purge the session and everything it holds."""
        await self._request("DELETE", _session_path("sessions", session_id), token=token)

    async def health(self) -> dict[str, Any]:
        """``GET /health``: service status."""
        return await self._json("GET", "/health")

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._request(method, path, **kwargs)
        try:
            data = response.json()
        except ValueError:
            raise UnexpectedResponseError(f"{method} {path}: response is not JSON") from None
        if not isinstance(data, dict):
            raise UnexpectedResponseError(f"{method} {path}: response is not a JSON object")
        return data

    async def _request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        redact: Iterable[str] = (),
    ) -> httpx.Response:
        hidden = list(redact)
        headers = {}
        if token is not None:
            if not _TOKEN.match(token):
                raise ValueError("token is not a valid bearer token")
            headers["Authorization"] = f"Bearer {token}"
            hidden.append(token)
        try:
            response = await self._http.request(method, path, params=params, json=json, headers=headers)
        except httpx.HTTPError as exc:
            raise NetworkError(_redact(f"{method} {path}: {type(exc).__name__}: {exc}", hidden)) from None
        if not response.is_success:
            raise _error(response, hidden)
        return response


def _session_path(route: str, session_id: str) -> str:
    if not session_id:
        raise ValueError("session_id is empty")
    # Quoted so a hostile or mistyped id cannot reach another route ("../", "?").
    return f"/enclave/{route}/{quote(session_id, safe='')}"


def _parse(model: type[_M], data: dict[str, Any], what: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # Only field names: the input holds the token.
        fields = ", ".join(sorted({".".join(map(str, e["loc"])) or "document" for e in exc.errors()}))
        raise UnexpectedResponseError(f"{what} is malformed (fields: {fields})") from None


def _error(response: httpx.Response, hidden: list[str]) -> EnclaveError:
    code, message = "unexpected_response", "the response has no API error body"
    # Anything but {"error": {"code": str, "message": str}} keeps the defaults.
    with contextlib.suppress(ValueError, TypeError, KeyError):
        error = response.json()["error"]
        if isinstance(error["code"], str) and isinstance(error["message"], str):
            code, message = error["code"], error["message"]
    retry = response.headers.get("retry-after", "")
    retry_after = int(retry) if retry.isascii() and retry.isdigit() else None
    # The service promises never to echo secrets; do not rely on it.
    return EnclaveError(
        response.status_code, _redact(code, hidden)[:64], _redact(message, hidden)[:_MAX_MESSAGE], retry_after
    )


def _redact(text: str, hidden: Iterable[str]) -> str:
    for value in hidden:
        if value:
            text = text.replace(value, "[redacted]")
    return text
