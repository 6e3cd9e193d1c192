"""EnclaveClient against a small in-test service speaking API.md (the real service is built elsewhere)."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from perf_aggregator.client import (
    AttestationError,
    Credentials,
    EnclaveClient,
    EnclaveError,
    NetworkError,
    Registration,
    UnexpectedResponseError,
    VerificationPolicy,
    verify_summary,
)
from perf_aggregator.devserver import serve_in_thread

SESSION = "sess-abc"
TOKEN = "tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
POLICY = VerificationPolicy(allow_simulated=True)
SUMMARY = {"version": 1, "session_id": SESSION, "trades": 3, "data_source": "https://api.kraken.com"}


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def build_app(enclave, state: dict[str, Any]) -> FastAPI:
    app = FastAPI()

    def authorized(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    def unauthorized(request: Request) -> JSONResponse:
        # A careless service echoing the presented credential: the client must still not show it.
        return error(401, "unauthorized", f"bad {request.headers.get('authorization')}")

    @app.get("/attestation/quote")
    async def quote(nonce: str = "") -> dict[str, Any]:
        # A hostile or stale service replays an attestation made for another nonce.
        return enclave.attestation(b"" if state["replay"] else bytes.fromhex(nonce))

    @app.post("/enclave/submit_key")
    async def submit_key(request: Request) -> Response:
        body = await request.json()
        state["submitted"].append(body)
        plaintext = enclave.open(body)
        if plaintext["exchange"] != body["metadata"]["exchange"]:
            return error(400, "invalid_envelope", "the envelope cannot be opened")
        if plaintext["api_secret"] == "refused":
            return error(422, "credentials_rejected", f"exchange refused key {plaintext['api_key']}")
        if state["garbled"]:
            return JSONResponse({"session_id": SESSION, "token": TOKEN, "status": "active"}, status_code=201)
        answer = {
            "session_id": SESSION,
            "token": TOKEN,
            "expires_at": "2026-02-01T12:00:00.000Z",
            "status": "backfilling",
        }
        if state["warnings"] is not None:
            answer["warnings"] = state["warnings"]
        return JSONResponse(answer, status_code=201)

    @app.get("/enclave/metrics/{session_id}")
    async def metrics(session_id: str, request: Request) -> Response:
        if not authorized(request):
            return unauthorized(request)
        return JSONResponse({"session_id": session_id, "status": "active"})

    @app.get("/enclave/summary/{session_id}")
    async def summary(session_id: str, request: Request) -> Response:
        if not authorized(request):
            return unauthorized(request)
        return JSONResponse(enclave.signed_summary(SUMMARY))

    @app.get("/enclave/trades/{session_id}")
    async def trades(session_id: str, request: Request) -> Response:
        if not authorized(request):
            return unauthorized(request)
        return JSONResponse({"trades": [], "next_cursor": None, "query": dict(request.query_params)})

    @app.post("/enclave/sessions/{session_id}/renew")
    async def renew(session_id: str, request: Request) -> Response:
        if not authorized(request):
            return unauthorized(request)
        ttl = (await request.json())["ttl"]
        if not 60 <= ttl <= 604800:
            return error(400, "invalid_request", "ttl must be between 60 and 604800 seconds")
        return JSONResponse(
            {"session_id": session_id, "expires_at": "2026-02-03T12:00:00.000Z", "status": "active"}
        )

    @app.delete("/enclave/sessions/{session_id}")
    async def revoke(session_id: str, request: Request) -> Response:
        if not authorized(request):
            return unauthorized(request)
        return Response(status_code=204)

    @app.get("/health")
    async def health() -> Response:
        if state["garbled"]:
            return Response("ok", media_type="text/plain")
        if state["rate_limited"]:
            return error(429, "rate_limited", "too many requests", {"Retry-After": "7"})
        return JSONResponse(
            {"status": "ok", "tee": "simulated", "version": "0.1.0", "sessions": 0, "uptime_s": 1.0}
        )

    return app


@pytest.fixture(scope="module")
def server(module_enclave) -> Iterator[tuple[str, dict[str, Any]]]:
    state: dict[str, Any] = {}
    with serve_in_thread(build_app(module_enclave, state)) as url:
        yield url, state


@pytest.fixture
def service(server) -> tuple[str, dict[str, Any]]:
    url, state = server
    state.update(replay=False, rate_limited=False, garbled=False, submitted=[], warnings=None)
    return url, state


@pytest.fixture
def credentials() -> Credentials:
    return Credentials(exchange="kraken", api_key="k-123456", api_secret="s-abcdef")


def assert_hidden(exc: BaseException, *secrets: str) -> None:
    for text in (str(exc), repr(exc), str(exc.args)):
        for secret in secrets:
            assert secret not in text


async def test_register_verifies_seals_and_returns_the_registration(service, module_enclave, credentials):
    url, state = service
    async with EnclaveClient(url) as client:
        registration = await client.register(credentials, label="main", ttl=3600, policy=POLICY)

    assert isinstance(registration, Registration)
    assert registration.model_dump(include={"session_id", "token", "status"}) == {
        "session_id": SESSION,
        "token": TOKEN,
        "status": "backfilling",
    }
    assert TOKEN not in repr(registration) and TOKEN not in str(registration)
    [body] = state["submitted"]
    assert body["metadata"] == {"exchange": "kraken", "label": "main", "ttl": 3600}
    assert module_enclave.open(body)["api_secret"] == "s-abcdef"


async def test_registration_carries_the_enclaves_warnings(service, credentials):
    url, state = service
    async with EnclaveClient(url) as client:
        assert (await client.register(credentials, policy=POLICY)).warnings == ()  # an older service
        state["warnings"] = []
        assert (await client.register(credentials, policy=POLICY)).warnings == ()
        state["warnings"] = ["cannot check that the key cannot withdraw"]
        registration = await client.register(credentials, policy=POLICY)
        assert registration.warnings == ("cannot check that the key cannot withdraw",)
        state["warnings"] = "not a list"
        with pytest.raises(UnexpectedResponseError, match="warnings"):
            await client.register(credentials, policy=POLICY)


async def test_register_refuses_before_posting_when_verification_fails(service, credentials):
    url, state = service
    state["replay"] = True
    async with EnclaveClient(url) as client:
        with pytest.raises(AttestationError, match="nonce"):
            await client.register(credentials, policy=POLICY)
        with pytest.raises(AttestationError, match="simulated"):
            await client.register(credentials, policy=VerificationPolicy())
    assert state["submitted"] == []


async def test_register_refuses_simulated_enclave_under_default_policy(service, credentials):
    url, state = service
    async with EnclaveClient(url) as client:
        with pytest.raises(AttestationError):
            await client.register(credentials, policy=VerificationPolicy())
    assert state["submitted"] == []


async def test_rejected_credentials_raise_without_echoing_them(service):
    url, _ = service
    credentials = Credentials(exchange="kraken", api_key="k-visible-in-reply", api_secret="refused")
    async with EnclaveClient(url) as client:
        with pytest.raises(EnclaveError) as info:
            await client.register(credentials, policy=POLICY)
    assert (info.value.status, info.value.code) == (422, "credentials_rejected")
    assert_hidden(info.value, "k-visible-in-reply")


async def test_unauthorized_is_an_enclave_error_that_never_shows_the_token(service):
    url, _ = service
    wrong = "tok-WRONG-0123456789abcdef"
    async with EnclaveClient(url) as client:
        with pytest.raises(EnclaveError) as info:
            await client.metrics(SESSION, wrong)
    refused = info.value
    assert (refused.status, refused.code, refused.retry_after) == (401, "unauthorized", None)
    assert refused.message == "bad Bearer [redacted]"
    assert_hidden(refused, wrong)


async def test_rate_limit_carries_retry_after(service):
    url, state = service
    state["rate_limited"] = True
    async with EnclaveClient(url) as client:
        with pytest.raises(EnclaveError) as info:
            await client.health()
    assert (info.value.status, info.value.code, info.value.retry_after) == (429, "rate_limited", 7)
    assert "retry after 7 s" in str(info.value)


async def test_error_without_the_api_body_is_reported_as_unexpected(service):
    url, _ = service
    async with EnclaveClient(url + "/missing") as client:
        with pytest.raises(EnclaveError) as info:
            await client.health()
    assert (info.value.status, info.value.code) == (404, "unexpected_response")


async def test_success_that_is_not_the_documented_shape_is_an_unexpected_response(service, credentials):
    url, state = service
    state["garbled"] = True
    async with EnclaveClient(url) as client:
        with pytest.raises(UnexpectedResponseError, match="not JSON"):
            await client.health()
        with pytest.raises(UnexpectedResponseError, match="expires_at") as info:
            await client.register(credentials, policy=POLICY)
    assert_hidden(info.value, TOKEN)


async def test_reading_routes_with_the_token(service):
    url, _ = service
    async with EnclaveClient(url) as client:
        assert await client.metrics(SESSION, TOKEN) == {"session_id": SESSION, "status": "active"}
        page = await client.trades(SESSION, TOKEN, symbol="BTC/USD", limit=5, cursor="c1")
        assert page["query"] == {"symbol": "BTC/USD", "limit": "5", "cursor": "c1"}
        assert verify_summary(await client.summary(SESSION, TOKEN), POLICY) == SUMMARY
        renewed = await client.renew(SESSION, TOKEN, 172800)
        assert (renewed.session_id, renewed.status) == (SESSION, "active")
        assert await client.revoke(SESSION, TOKEN) is None
        assert (await client.health())["status"] == "ok"


async def test_invalid_request_error_is_mapped(service):
    url, _ = service
    async with EnclaveClient(url) as client:
        with pytest.raises(EnclaveError) as info:
            await client.renew(SESSION, TOKEN, 10)
    assert (info.value.status, info.value.code) == (400, "invalid_request")
    assert_hidden(info.value, TOKEN)


async def test_session_id_cannot_escape_its_route(service):
    url, _ = service
    async with EnclaveClient(url) as client:
        with pytest.raises(EnclaveError) as info:
            await client.metrics("../../health", TOKEN)
    assert info.value.status == 404


async def test_malformed_token_is_refused_without_quoting_it(service):
    url, _ = service
    async with EnclaveClient(url) as client:
        with pytest.raises(ValueError, match="bearer token") as info:
            await client.metrics(SESSION, "tok with\nnewline")
    assert "newline" not in str(info.value)


async def test_unreachable_service_is_a_network_error():
    async with EnclaveClient("http://127.0.0.1:9", timeout=2) as client:
        with pytest.raises(NetworkError):
            await client.metrics(SESSION, TOKEN)
