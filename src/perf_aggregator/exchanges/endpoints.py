"""Where the enclave connects: exchanges' public origins and operator overrides."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit


def origin_of(url: str) -> str:
    """Scheme, host and (non-default) port of ``url``: ``https://api.binance.com``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def with_origin(url: str, origin: str) -> str:
    """``url`` with its scheme, host and port replaced by ``origin``; path and query kept."""
    new = urlsplit(origin)
    parts = urlsplit(url)
    return urlunsplit((new.scheme, new.netloc, parts.path, parts.query, parts.fragment))


def override_ccxt_urls(exchange: Any, origin: str) -> None:
    """Point every REST URL of a ccxt exchange instance at ``origin`` (paths unchanged).

    ccxt keeps its endpoints in ``urls['api']``, a dict of strings or nested dicts.
    """

    def rewrite(node: Any) -> Any:
        if isinstance(node, str):
            return with_origin(node, origin) if node.startswith(("http://", "https://")) else node
        if isinstance(node, dict):
            return {key: rewrite(value) for key, value in node.items()}
        return node

    exchange.urls = dict(exchange.urls)
    exchange.urls["api"] = rewrite(exchange.urls["api"])
