"""Fault injection around any simulator: what real exchanges and networks do on bad days.

``FaultInjector`` wraps an ASGI app. Each request to an exchange route (admin
routes under ``/_simulator/`` are spared) draws, from a seeded generator, one of:
an HTTP 5xx, a connection reset mid-answer, a timeout (held, then reset), a
truncated body, a stale answer (the previous answer to the same request, as a
misbehaving cache or an overlapping page would give), or a normal answer; every
request may also be delayed. Clock skew is the simulator's own ``now_ms``.

A stale answer replays the last successful (2xx) answer to the same caller, path and
market, whatever the rest of the request, as a lagging cache or replica would: for
paged listings that is a duplicated page (the previous page again, with its own
cursor) or an older, overlapping one (an earlier page, or the same listing as it stood
before newer entries arrived). Error answers are not replayed: a replica serves old
data, not old refusals. The caller is the API key header (Binance ``X-MBX-APIKEY``,
Kraken ``API-Key``) or, for a bearer JWT (Coinbase, fresh for every request), the
token's ``sub`` claim: the key name.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import random
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ADMIN_PREFIX = "/_simulator/"
_KEY_HEADERS = frozenset({b"x-mbx-apikey", b"api-key"})


@dataclass
class FaultPlan:
    """Shares of requests that fail each way (their sum at most 1), and latency."""

    server_error_rate: float = 0.0
    reset_rate: float = 0.0
    timeout_rate: float = 0.0
    malformed_rate: float = 0.0
    stale_rate: float = 0.0
    latency_s: float = 0.0
    timeout_hold_s: float = 15.0
    seed: int = 0

    @classmethod
    def evenly(cls, total_rate: float, seed: int = 0, **overrides: Any) -> FaultPlan:
        """``total_rate`` of requests fail, spread evenly over the five kinds."""
        share = total_rate / 5
        return cls(share, share, share, share, share, seed=seed, **overrides)


class ConnectionReset(Exception):
    """Raised inside the server after a partial answer, so the client sees the connection drop."""


class FaultInjector:
    """ASGI wrapper applying a :class:`FaultPlan`; ``counts`` says what was injected."""

    def __init__(self, app: ASGIApp, plan: FaultPlan) -> None:
        self.app = app
        self.plan = plan
        self._random = random.Random(plan.seed)  # noqa: S311 - fault schedule, not security
        self._last: dict[str, tuple[list[Message], bytes]] = {}
        self.counts: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        plan = self.plan
        if plan.latency_s:
            await asyncio.sleep(self._random.uniform(0, plan.latency_s))
        fault = self._draw()
        self.counts[fault] = self.counts.get(fault, 0) + 1
        key = self._request_key(scope)
        if fault == "server_error":
            await _answer(
                send, 503, b'{"code":-1001,"msg":"Internal error; unable to process your request."}'
            )
        elif fault == "stale" and key in self._last:
            previous_starts, previous_body = self._last[key]
            for message in previous_starts:
                await send(message)
            await send({"type": "http.response.body", "body": previous_body})
        else:
            starts: list[Message] = []
            chunks: list[bytes] = []

            async def capture(message: Message) -> None:
                if message["type"] == "http.response.start":
                    starts.append(message)
                else:
                    chunks.append(message.get("body", b""))

            await self.app(scope, receive, capture)
            body = b"".join(chunks)
            if starts and 200 <= starts[0]["status"] < 300:
                self._last[key] = (starts, body)
            for message in starts:
                await send(message)
            if fault in ("reset", "timeout"):
                if fault == "timeout":
                    await asyncio.sleep(plan.timeout_hold_s)
                await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
                raise ConnectionReset(fault)
            if fault == "malformed":
                # Same length as announced, but not the JSON it should be.
                body = body[: len(body) // 2] + b" " * (len(body) - len(body) // 2)
            await send({"type": "http.response.body", "body": body})

    def _draw(self) -> str:
        plan = self.plan
        roll = self._random.random()
        for name, rate in (
            ("server_error", plan.server_error_rate),
            ("reset", plan.reset_rate),
            ("timeout", plan.timeout_rate),
            ("malformed", plan.malformed_rate),
            ("stale", plan.stale_rate),
        ):
            if roll < rate:
                return name
            roll -= rate
        return "ok"

    @staticmethod
    def _request_key(scope: Scope) -> str:
        # Caller, path and market only: a stale answer is then an older, overlapping page of the
        # same account and market (what a lagging cache or replica serves), the case that can
        # fool a cursor. Never another account's answer.
        query = scope.get("query_string", b"").decode("latin-1")
        market = sorted(p for p in query.split("&") if p.startswith(("symbol=", "pair=", "product_id")))
        path: str = scope["path"]
        return _caller(scope.get("headers", [])) + " " + path + "?" + "&".join(market)


def _caller(headers: list[tuple[bytes, bytes]]) -> str:
    """Who sends the request: the API key header, or the ``sub`` of a bearer JWT."""
    keys = b"".join(v for k, v in headers if k in _KEY_HEADERS)
    if keys:
        return keys.decode("latin-1")
    authorization = b"".join(v for k, v in headers if k == b"authorization").decode("latin-1")
    token = authorization.removeprefix("Bearer ").strip()
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims["sub"])
    except (IndexError, KeyError, TypeError, ValueError, binascii.Error):
        return authorization


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
