"""One registered account: its token hash, lifetime, poller and ledger."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

from perf_aggregator.exchanges.base import ExchangeConnector
from perf_aggregator.ledger.book import Ledger
from perf_aggregator.polling.scheduler import SyncState


def token_digest(token: str) -> bytes:
    """SHA-256 of a bearer token: tokens carry 256 random bits, so a fast hash suffices."""
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(eq=False)
class Session:
    """A live session. Its credentials live inside ``connector`` (enclave memory) and, sealed,
    in the session store; nowhere else."""

    id: str
    token_hash: bytes = field(repr=False)
    exchange: str
    account_type: str
    label: str
    created_ms: int
    expires_ms: int
    data_source: str
    ledger: Ledger = field(repr=False)
    sync: SyncState
    connector: ExchangeConnector = field(repr=False)
    task: asyncio.Task[None] | None = field(default=None, repr=False)
