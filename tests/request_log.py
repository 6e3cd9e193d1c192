"""An ASGI wrapper that records every request a simulator serves (path and query)."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send


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
