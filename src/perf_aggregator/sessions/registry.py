"""The session registry: registration, authentication, renewal, revocation, expiry, and
resumption of the sessions kept in the sealed store after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import sqlite3
from dataclasses import dataclass, replace
from typing import Any

from perf_aggregator.clock import Clock, now_ms
from perf_aggregator.config import Settings
from perf_aggregator.exchanges.base import ExchangeConnector
from perf_aggregator.exchanges.errors import ExchangeError
from perf_aggregator.exchanges.registry import (
    account_connector,
    market_data_connector,
    supports,
    supports_exchange,
)
from perf_aggregator.ledger.book import Ledger
from perf_aggregator.ledger.trades import ImpossibleTrade, is_possible
from perf_aggregator.polling.pricing import PriceService
from perf_aggregator.polling.scheduler import PollingBounds, PollProgress, SessionPoller, SyncState
from perf_aggregator.sessions.errors import (
    EnvelopeReplayed,
    Unauthorized,
    UnsupportedAccountType,
    UnsupportedExchange,
)
from perf_aggregator.sessions.session import Session, token_digest
from perf_aggregator.sessions.store import SessionRecord, SessionStore, StoredSession
from perf_aggregator.tee.credentials import ExchangeCredentials, open_credentials
from perf_aggregator.tee.enclave import Enclave
from perf_aggregator.telemetry import SESSIONS

log = logging.getLogger(__name__)

PURGE_EVERY_S = 15.0
_DUMMY_HASH = token_digest(secrets.token_urlsafe(32))


class PurgeFailed(Exception):
    """The sealed store could not delete a session; it stays live, so revoking can be retried."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded ``submit_key`` body; ``metadata`` exactly as the client sent it (it is the AAD)."""

    enc: bytes
    ciphertext: bytes
    metadata: dict[str, Any]
    label: str
    ttl_s: int


class SessionRegistry:
    """Every live session of this enclave, in memory and in the sealed store.

    Seen envelope ids are kept in memory only: the HPKE key is generated at each start and
    never stored, so an envelope from before a restart no longer opens at all (it answers
    ``invalid_envelope``), and a replay guard across restarts would protect nothing.
    """

    def __init__(
        self,
        enclave: Enclave,
        settings: Settings,
        store: SessionStore,
        clock_ms: Clock = now_ms,
    ) -> None:
        self.enclave = enclave
        self._settings = settings
        self._store = store
        self.clock_ms = clock_ms
        self._sessions: dict[str, Session] = {}
        self._unrestored: dict[str, StoredSession] = {}
        """Stored sessions not live yet, by id: waiting for their exchange, or being restored. Each
        stays here until it is live or dropped, so that its owner can revoke it meanwhile."""
        self._unresumable: dict[str, SessionRecord] = {}
        """Stored sessions whose restore failed unexpectedly (a bug): kept in the store for a later
        version, not retried before a restart, revocable by their owner, dropped when expired."""
        self._envelopes_seen: set[bytes] = set()
        self._prices: dict[str, PriceService] = {}
        self._purger: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._sessions)

    async def start(self) -> None:
        """Resume the sessions of the sealed store, then start the background purge."""
        self._unrestored = {stored.record.id: stored for stored in self._store.load(self.clock_ms())}
        await self._restore_pending()
        self._purger = asyncio.create_task(self._purge_loop())

    async def close(self) -> None:
        """Stop every poller and release every connection (shutdown); the store keeps the sessions."""
        if self._purger is not None:
            self._purger.cancel()
        for session in list(self._sessions.values()):
            await self._stop(session)
        for service in self._prices.values():
            await service.close()

    def _price_service(self, exchange: str) -> PriceService:
        if exchange not in self._prices:
            origin = self._settings.exchange_urls.get(exchange)
            self._prices[exchange] = PriceService(market_data_connector(exchange, origin))
        return self._prices[exchange]

    async def register(self, envelope: Envelope) -> tuple[Session, str]:
        """Open, validate with the exchange, store and start a session; returns it with its token.

        Nothing is kept when this raises.
        """
        exchange = envelope.metadata.get("exchange")
        if not supports_exchange(exchange):
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
        connector = self._connector(credentials)
        try:
            await connector.validate()
            prices = self._price_service(credentials.exchange)
            book = await prices.book()
            token = secrets.token_urlsafe(32)
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
                sync=SyncState(),
                connector=connector,
            )
            self._store.create(_record(session), credentials)
        except BaseException:
            await connector.close()
            raise
        self._start(session, prices, credentials, PollProgress())
        log.info("session registered (exchange=%s, sessions=%d)", session.exchange, len(self._sessions))
        return session, token

    def _connector(self, credentials: ExchangeCredentials) -> ExchangeConnector:
        return account_connector(credentials, self._settings.exchange_urls.get(credentials.exchange))

    def _start(
        self, session: Session, prices: PriceService, credentials: ExchangeCredentials, progress: PollProgress
    ) -> None:
        """Start polling ``session`` from ``progress`` and make it live."""
        poller = SessionPoller(
            session.connector,
            session.ledger,
            prices,
            credentials.since_ms,
            credentials.symbols,
            PollingBounds(self._settings.poll_min_s, self._settings.poll_max_s),
            session.sync,
            self._store.sink(session.id),
            progress,
            self.clock_ms,
        )
        session.task = asyncio.create_task(poller.run(), name=f"poll-{session.id[:6]}")
        self._sessions[session.id] = session
        SESSIONS.set(len(self._sessions))

    async def _restore_pending(self) -> None:
        """Resume the stored sessions not yet live; those whose exchange cannot be reached wait.

        A waiting session is retried by the purge loop; meanwhile it answers 401, except that
        its owner can DELETE it (:meth:`revoke_authorized`). One whose restore fails otherwise (a
        bug) stays stored, answering the same, until a restart, its expiry or its revocation.
        """
        pending = list(self._unrestored.items())
        unreachable: set[str] = set()
        now = self.clock_ms()
        for session_id, stored in pending:
            exchange = stored.record.exchange
            if self._unrestored.get(session_id) is not stored:
                continue  # revoked while another one was being restored
            if stored.record.expires_ms <= now:
                del self._unrestored[session_id]
                self._store.delete(session_id)
                continue
            if exchange in unreachable:
                continue
            try:
                await self._restore(stored)
            except ExchangeError as exc:
                log.warning("stored sessions wait for %s: %s", exchange, type(exc).__name__)
                unreachable.add(exchange)
            except Exception as exc:  # a bug must not stop the service from starting
                log.error("a stored session cannot be resumed and is kept stored: %s", type(exc).__name__)
                if self._unrestored.pop(session_id, None) is not None:  # (not revoked meanwhile)
                    self._unresumable[session_id] = stored.record
        if pending:
            log.info("resumed stored sessions (live=%d, waiting=%d)", len(self), len(self._unrestored))

    async def _restore(self, stored: StoredSession) -> None:
        """Rebuild a stored session: its connector, ledger and poller from where it stopped."""
        record, credentials = stored.record, stored.credentials
        connector = self._connector(credentials)
        try:
            if connector.data_source != record.data_source:
                # Summaries name the origin every trade came from: one session, one origin.
                log.warning("a stored session is dropped: its exchange origin was changed by the operator")
                await connector.close()
                self._unrestored.pop(record.id, None)
                self._store.delete(record.id)
                return
            prices = self._price_service(record.exchange)
            ledger = Ledger(await prices.book())
            try:
                ledger.add(stored.trades)
            except ImpossibleTrade:
                # Stored before trades were checked: the session resumes without them (they made
                # every read fail) rather than being dropped.
                kept = [trade for trade in stored.trades if is_possible(trade)]
                log.warning(
                    "a stored session resumes without %d trades whose numbers no market can have",
                    len(stored.trades) - len(kept),
                )
                ledger.add(kept)
            complete = stored.progress.backfill_complete
            if complete:
                try:
                    await prices.ensure(ledger.unpriced_needs())
                    ledger.revalue()
                except ExchangeError:
                    # Unpriced for now: reported as backfilling until the poller's first pass,
                    # so that no summary claims a complete history with trades left out.
                    complete = False
            if self._unrestored.get(record.id) is not stored:  # its owner revoked it meanwhile
                await connector.close()
                return
            session = Session(
                id=record.id,
                token_hash=record.token_hash,
                exchange=record.exchange,
                account_type=record.account_type,
                label=record.label,
                created_ms=record.created_ms,
                expires_ms=record.expires_ms,
                data_source=record.data_source,
                ledger=ledger,
                sync=SyncState(status="active" if complete else "backfilling", backfill_complete=complete),
                connector=connector,
            )
            self._start(session, prices, credentials, replace(stored.progress, backfill_complete=complete))
        except BaseException:  # still waiting, for the caller to keep (or drop, if it was revoked)
            await connector.close()
            raise
        del self._unrestored[record.id]  # live

    def authenticate(self, session_id: str, token: str | None) -> Session:
        """The session if ``token`` is its bearer token and it has not expired; else :class:`Unauthorized`."""
        session = self._sessions.get(session_id)
        expected = session.token_hash if session is not None else _DUMMY_HASH
        if session is None or not self._valid(token, expected, session.expires_ms):
            raise Unauthorized("missing or invalid credentials for this session")
        return session

    def _valid(self, token: str | None, expected_hash: bytes, expires_ms: int) -> bool:
        matches = hmac.compare_digest(token_digest(token or ""), expected_hash)
        return bool(token) and matches and expires_ms > self.clock_ms()

    async def revoke_authorized(self, session_id: str, token: str | None) -> None:
        """Revoke the session if ``token`` is its bearer token, else :class:`Unauthorized`.

        A stored session still waiting for its exchange after a restart counts too: its owner
        can end it (and purge its sealed credentials) without waiting for the exchange.
        """
        waiting = self._unrestored.get(session_id)
        stored = waiting.record if waiting is not None else self._unresumable.get(session_id)
        if stored is None:
            await self.revoke(self.authenticate(session_id, token).id)
            return
        if not self._valid(token, stored.token_hash, stored.expires_ms):
            raise Unauthorized("missing or invalid credentials for this session")
        self._delete_stored(session_id)
        if waiting is not None:
            del self._unrestored[session_id]
        self._unresumable.pop(session_id, None)
        log.info("a stored session not resumed was revoked")

    def renew(self, session: Session, ttl_s: int) -> None:
        """Set the expiry to now + ``ttl_s``, in the store and in memory."""
        expires_ms = self.clock_ms() + ttl_s * 1000
        self._store.update_record(replace(_record(session), expires_ms=expires_ms))
        session.expires_ms = expires_ms

    async def revoke(self, session_id: str) -> None:
        """Drop everything the session holds, in the store, then in memory (its poller stopped).

        The store goes first: if it cannot delete, :class:`PurgeFailed` is raised and the
        session stays live, so that neither a retry nor a restart finds it half revoked.
        """
        session = self._sessions.get(session_id)
        if session is None:
            return
        self._delete_stored(session_id)
        await self._stop(session)
        log.info("session ended (sessions=%d)", len(self._sessions))

    def _delete_stored(self, session_id: str) -> None:
        """Delete the session's rows from the sealed store, or raise :class:`PurgeFailed`."""
        try:
            self._store.delete(session_id)
        except sqlite3.Error as exc:
            log.error("the sealed store could not delete a session: %s", type(exc).__name__)
            raise PurgeFailed("the session could not be deleted from the sealed store") from None

    async def _stop(self, session: Session) -> None:
        """Take ``session`` out of memory: stop its poller and close its connector."""
        if self._sessions.pop(session.id, None) is None:
            return
        if session.task is not None:
            session.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await session.task
        await session.connector.close()
        SESSIONS.set(len(self._sessions))

    async def purge_expired(self) -> int:
        """Revoke every expired session; returns how many."""
        now = self.clock_ms()
        expired = [sid for sid, s in self._sessions.items() if s.expires_ms <= now]
        for session_id in expired:
            await self.revoke(session_id)
        unresumable = [sid for sid, r in self._unresumable.items() if r.expires_ms <= now]
        for session_id in unresumable:
            self._delete_stored(session_id)
            del self._unresumable[session_id]
        return len(expired) + len(unresumable)

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(PURGE_EVERY_S)
            try:
                await self.purge_expired()
                if self._unrestored:
                    await self._restore_pending()
            except Exception:
                log.exception("purge of expired sessions failed")


def _record(session: Session) -> SessionRecord:
    """What the store keeps of ``session``'s description."""
    return SessionRecord(
        id=session.id,
        token_hash=session.token_hash,
        exchange=session.exchange,
        account_type=session.account_type,
        label=session.label,
        created_ms=session.created_ms,
        expires_ms=session.expires_ms,
        data_source=session.data_source,
    )
