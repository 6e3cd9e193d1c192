"""The session registry: registration, authentication, renewal, revocation and expiry."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from perf_aggregator.clock import Clock, now_ms
from perf_aggregator.config import Settings
from perf_aggregator.exchanges.registry import (
    SUPPORTED_EXCHANGES,
    account_connector,
    market_data_connector,
    supports,
)
from perf_aggregator.ledger.book import Ledger
from perf_aggregator.polling.pricing import PriceService
from perf_aggregator.polling.scheduler import PollingBounds, SessionPoller, SyncState
from perf_aggregator.sessions.errors import (
    EnvelopeReplayed,
    Unauthorized,
    UnsupportedAccountType,
    UnsupportedExchange,
)
from perf_aggregator.sessions.session import Session, token_digest
from perf_aggregator.tee.credentials import open_credentials
from perf_aggregator.tee.enclave import Enclave
from perf_aggregator.telemetry import SESSIONS

log = logging.getLogger(__name__)

PURGE_EVERY_S = 15.0
_DUMMY_HASH = token_digest(secrets.token_urlsafe(32))


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded ``submit_key`` body; ``metadata`` exactly as the client sent it (it is the AAD)."""

    enc: bytes
    ciphertext: bytes
    metadata: dict[str, Any]
    label: str
    ttl_s: int


class SessionRegistry:
    """Every live session of this enclave, in memory only."""

    def __init__(
        self,
        enclave: Enclave,
        settings: Settings,
        clock_ms: Clock = now_ms,
    ) -> None:
        self.enclave = enclave
        self._settings = settings
        self.clock_ms = clock_ms
        self._sessions: dict[str, Session] = {}
        self._envelopes_seen: set[bytes] = set()
        self._prices: dict[str, PriceService] = {}
        self._purger: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._sessions)

    def start(self) -> None:
        """Start the background purge of expired sessions."""
        self._purger = asyncio.create_task(self._purge_loop())

    async def close(self) -> None:
        """Stop every poller and release every connection (shutdown)."""
        if self._purger is not None:
            self._purger.cancel()
        for session_id in list(self._sessions):
            await self.revoke(session_id)
        for service in self._prices.values():
            await service.close()

    def _price_service(self, exchange: str) -> PriceService:
        if exchange not in self._prices:
            origin = self._settings.exchange_urls.get(exchange)
            self._prices[exchange] = PriceService(market_data_connector(exchange, origin))
        return self._prices[exchange]

    async def register(self, envelope: Envelope) -> tuple[Session, str]:
        """Open, validate with the exchange, and start a session; returns it with its token.

        Nothing is kept when this raises.
        """
        exchange = envelope.metadata.get("exchange")
        if exchange not in SUPPORTED_EXCHANGES:
            raise UnsupportedExchange(f"exchange {exchange!r} is not supported")
        enc_id = hashlib.sha256(envelope.enc).digest()
        if enc_id in self._envelopes_seen:
            raise EnvelopeReplayed("this envelope was already submitted")
        # Reserved while validating so a concurrent replay cannot slip in; released on failure.
        self._envelopes_seen.add(enc_id)
        try:
            session, token = await self._open_and_start(envelope)
        except BaseException:
            self._envelopes_seen.discard(enc_id)
            raise
        return session, token

    async def _open_and_start(self, envelope: Envelope) -> tuple[Session, str]:
        now = self.clock_ms()
        credentials = open_credentials(
            self.enclave.keys, envelope.enc, envelope.ciphertext, envelope.metadata, now
        )
        if not supports(credentials.exchange, credentials.account_type):
            raise UnsupportedAccountType(
                f"account_type {credentials.account_type!r} is not supported for {credentials.exchange}"
            )
        connector = account_connector(credentials, self._settings.exchange_urls.get(credentials.exchange))
        try:
            await connector.validate()
            prices = self._price_service(credentials.exchange)
            book = await prices.book()
        except BaseException:
            await connector.close()
            raise
        token = secrets.token_urlsafe(32)
        sync = SyncState()
        session = Session(
            id=secrets.token_urlsafe(16),
            token_hash=token_digest(token),
            exchange=credentials.exchange,
            account_type=credentials.account_type,
            label=envelope.label,
            created_ms=now,
            expires_ms=now + envelope.ttl_s * 1000,
            data_source=connector.data_source,
            ledger=Ledger(book),
            sync=sync,
            connector=connector,
        )
        poller = SessionPoller(
            connector,
            session.ledger,
            prices,
            credentials.since_ms,
            credentials.symbols,
            PollingBounds(self._settings.poll_min_s, self._settings.poll_max_s),
            sync,
            self.clock_ms,
        )
        session.task = asyncio.create_task(poller.run(), name=f"poll-{session.id[:6]}")
        self._sessions[session.id] = session
        SESSIONS.set(len(self._sessions))
        log.info("session registered (exchange=%s, sessions=%d)", session.exchange, len(self._sessions))
        return session, token

    def authenticate(self, session_id: str, token: str | None) -> Session:
        """The session if ``token`` is its bearer token and it has not expired; else :class:`Unauthorized`."""
        session = self._sessions.get(session_id)
        expected = session.token_hash if session is not None else _DUMMY_HASH
        presented = token_digest(token or "")
        matches = hmac.compare_digest(presented, expected)
        if session is None or not token or not matches or session.expires_ms <= self.clock_ms():
            raise Unauthorized("missing or invalid credentials for this session")
        return session

    def renew(self, session: Session, ttl_s: int) -> None:
        """Set the expiry to now + ``ttl_s``."""
        session.expires_ms = self.clock_ms() + ttl_s * 1000

    async def revoke(self, session_id: str) -> None:
        """Stop polling and drop everything the session holds, at once."""
        session = self._sessions.pop(session_id, None)
        if session is None:
            return
        if session.task is not None:
            session.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await session.task
        await session.connector.close()
        SESSIONS.set(len(self._sessions))
        log.info("session ended (sessions=%d)", len(self._sessions))

    async def purge_expired(self) -> int:
        """Revoke every expired session; returns how many."""
        now = self.clock_ms()
        expired = [sid for sid, s in self._sessions.items() if s.expires_ms <= now]
        for session_id in expired:
            await self.revoke(session_id)
        return len(expired)

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(PURGE_EVERY_S)
            try:
                await self.purge_expired()
            except Exception:
                log.exception("purge of expired sessions failed")
