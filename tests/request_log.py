"""ASGI helpers for tests that watch, hold or rewrite what a simulator serves: a wrapper that
records every request (path and query), one that holds requests back while it is closed, and the
pieces of wrappers that rewrite answers."""

from __future__ import annotations

import asyncio
import threading
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def held_answer(app: ASGIApp, scope: Scope, receive: Receive) -> tuple[list[Message], bytes]:
    """``app``'s answer to the request, held back instead of sent: its messages and whole body."""
    messages: list[Message] = []

    async def keep(message: Message) -> None:
        messages.append(message)

    await app(scope, receive, keep)
    return messages, b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


def json_answer(body: bytes) -> list[Message]:
    """The messages of a 200 answer carrying the JSON ``body``."""
    return [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]},
        {"type": "http.response.body", "body": body},
    ]


class RequestLog:
    """Wraps a simulator app; ``requests`` lists ``(path, query)`` in arrival order."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: list[tuple[str, dict[str, list[str]]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.requests.append((scope["path"], parse_qs(scope["query_string"].decode())))
        await self.app(scope, receive, send)

    @property
    def paths(self) -> list[str]:
        """The path of every request, in arrival order."""
        return [path for path, _ in self.requests]

    def count(self, path: str) -> int:
        """How many requests went to ``path``."""
        return self.paths.count(path)


class Gate:
    """Wraps a simulator app served in another thread; while closed (:meth:`close`), requests wait
    at the gate, and ``waiting`` counts them, until :meth:`open`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self.waiting = 0

    def close(self) -> None:
        """Hold the requests that arrive from now on."""
        self._open.clear()

    def open(self) -> None:
        """Let the held requests, and those to come, through."""
        self._open.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._open.is_set():
            with self._lock:
                self.waiting += 1
            while not self._open.is_set():
                await asyncio.sleep(0.01)
            with self._lock:
                self.waiting -= 1
        await self.app(scope, receive, send)
