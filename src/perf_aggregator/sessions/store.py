"""The sealed session store: sessions, their trades and their poll progress in SQLite.

Schema (``PRAGMA user_version`` 1); every ``BLOB`` is a :class:`~perf_aggregator.tee.sealing.Sealer`
blob sealed for its table and row, so a blob copied into another row does not open::

    sessions(id TEXT PRIMARY KEY, record BLOB, credentials BLOB)
    batches(session_id TEXT, seq INTEGER, trades BLOB, PRIMARY KEY (session_id, seq))
    state(session_id TEXT PRIMARY KEY, progress BLOB)

Only the public session id and batch numbers are stored in the clear. ``state`` holds the
cursors, the discovered symbols, the backfill flag and the number of batches; it is written
in the same transaction as the batch it accompanies, so stored cursors never pass stored
trades. Writes are synchronous (a 1000-trade page costs about 2 ms; see ``docs/sealing.md``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import stat
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from perf_aggregator.exchanges.cursors import cursor_from_json, cursor_to_json
from perf_aggregator.ledger.trades import Trade
from perf_aggregator.polling.scheduler import PollProgress
from perf_aggregator.tee.credentials import ExchangeCredentials
from perf_aggregator.tee.errors import SealedDataError
from perf_aggregator.tee.sealing import Sealer

log = logging.getLogger(__name__)
_T = TypeVar("_T")

STORE_FILE = "sessions.sqlite3"
"""Name of the store inside ``PERF_AGG_DATA_DIR``."""
SCHEMA_VERSION = 1
_CONTEXT = "perf-aggregator/store/v1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, record BLOB NOT NULL, credentials BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    session_id TEXT NOT NULL, seq INTEGER NOT NULL, trades BLOB NOT NULL, PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS state (session_id TEXT PRIMARY KEY, progress BLOB NOT NULL);
"""
_ACCOUNT_TYPES = ("spot", "futures")
_MARKET_TYPES = ("spot", "swap")
_SIDES = ("buy", "sell")


class StoredDataError(ValueError):
    """An opened blob is not what this code writes (never expected: the measurement matches)."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What the store keeps of a session besides its credentials, trades and progress."""

    id: str
    token_hash: bytes = field(repr=False)
    exchange: str
    account_type: str
    label: str
    created_ms: int
    expires_ms: int
    data_source: str


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A session read back from the store: everything needed to resume it."""

    record: SessionRecord
    credentials: ExchangeCredentials = field(repr=False)
    trades: list[Trade] = field(repr=False)
    progress: PollProgress = field(repr=False)


class SessionStore:
    """Sealed sessions in ``<data_dir>/sessions.sqlite3`` (WAL, mode 0600).

    Thread-safe: the event loop writes pages, while synchronous routes (renewal) run in
    worker threads; one lock serializes every use of the connection.
    """

    def __init__(self, db: sqlite3.Connection, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer
        self._lock = threading.RLock()
        self._batches: dict[str, int] = {}
        """Batches written per live session: the next batch's ``seq``."""

    @classmethod
    def open(cls, data_dir: Path, sealer: Sealer) -> SessionStore:
        """Open (creating if needed) the store in ``data_dir``."""
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = data_dir / STORE_FILE
        _create_private(path)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit is atomic, only the newest may be lost
            db.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten, not left in free pages
            if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                # Another layout is another build's: its blobs would not open anyway.
                db.executescript(
                    "DROP TABLE IF EXISTS sessions; DROP TABLE IF EXISTS batches; DROP TABLE IF EXISTS state;"
                )
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return cls(db, sealer)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def create(self, record: SessionRecord, credentials: ExchangeCredentials) -> None:
        """Store a new session: its record, its credentials and empty progress."""
        sid = record.id
        record_blob = self._seal(_record_json(record), "sessions", sid, "record")
        credentials_blob = self._seal(_credentials_json(credentials), "sessions", sid, "credentials")
        with self._lock:
            with self._transaction():
                self._db.execute(
                    "INSERT INTO sessions (id, record, credentials) VALUES (?, ?, ?)",
                    (sid, record_blob, credentials_blob),
                )
                self._write_state(sid, PollProgress(), 0)
            self._batches[sid] = 0

    def update_record(self, record: SessionRecord) -> None:
        """Replace a stored session's record (renewal)."""
        blob = self._seal(_record_json(record), "sessions", record.id, "record")
        with self._transaction():
            self._db.execute("UPDATE sessions SET record = ? WHERE id = ?", (blob, record.id))

    def append(self, session_id: str, trades: Sequence[Trade], progress: PollProgress) -> None:
        """Store ``trades`` (a batch, if any) and ``progress`` in one transaction."""
        with self._lock:
            if session_id not in self._batches:
                raise KeyError("no such session in the store")
            count = self._batches[session_id]
            with self._transaction():
                if trades:
                    blob = self._seal(_trades_json(trades), "batches", session_id, str(count))
                    self._db.execute(
                        "INSERT INTO batches (session_id, seq, trades) VALUES (?, ?, ?)",
                        (session_id, count, blob),
                    )
                    count += 1
                self._write_state(session_id, progress, count)
            self._batches[session_id] = count

    def sink(self, session_id: str) -> SessionSink:
        """A poller's :class:`~perf_aggregator.polling.scheduler.ProgressSink` for the session."""
        return SessionSink(self, session_id)

    def delete(self, session_id: str) -> None:
        """Delete every row of the session at once, then checkpoint so no copy stays in the WAL."""
        with self._lock:
            with self._transaction():
                for table, column in (("sessions", "id"), ("batches", "session_id"), ("state", "session_id")):
                    self._db.execute(f"DELETE FROM {table} WHERE {column} = ?", (session_id,))  # noqa: S608
            self._batches.pop(session_id, None)
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def load(self, now_ms: int) -> Iterator[StoredSession]:
        """Every stored session that opens, is complete and has not expired; the others are deleted.

        A session is dropped when a blob does not open (another key or build, tampering, a
        blob moved between rows), when its batches do not match its sealed count, or when
        it has expired. One log line counts them; none names a session.
        """
        dropped: Counter[str] = Counter()
        restored = 0
        with self._lock:
            ids = [row[0] for row in self._db.execute("SELECT id FROM sessions ORDER BY id")]
        for sid in ids:
            try:
                with self._lock:
                    stored = self._read(sid)
            except (SealedDataError, StoredDataError):
                dropped["do not open"] += 1
                self.delete(sid)
                continue
            if stored is None:
                dropped["are incomplete"] += 1
                self.delete(sid)
            elif stored.record.expires_ms <= now_ms:
                dropped["have expired"] += 1
                self.delete(sid)
            else:
                restored += 1
                yield stored
        with self._transaction():
            for table in ("batches", "state"):
                orphans = self._db.execute(
                    f"DELETE FROM {table} WHERE session_id NOT IN (SELECT id FROM sessions)"  # noqa: S608
                ).rowcount
                dropped["are orphaned rows"] += orphans
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(dropped.items()) if n) or "none"
        log.info("sealed store: %d sessions read; dropped: %s", restored, reasons)

    def _read(self, sid: str) -> StoredSession | None:
        """The stored session ``sid``, or ``None`` if rows are missing."""
        row = self._db.execute("SELECT record, credentials FROM sessions WHERE id = ?", (sid,)).fetchone()
        state = self._db.execute("SELECT progress FROM state WHERE session_id = ?", (sid,)).fetchone()
        if row is None or state is None:
            return None
        record = _parse_record(sid, self._open(row[0], "sessions", sid, "record"))
        credentials = _parse_credentials(self._open(row[1], "sessions", sid, "credentials"))
        progress, count = _parse_state(self._open(state[0], "state", sid))
        rows = self._db.execute(
            "SELECT seq, trades FROM batches WHERE session_id = ? ORDER BY seq", (sid,)
        ).fetchall()
        if [seq for seq, _ in rows] != list(range(count)):
            return None
        trades: list[Trade] = []
        for seq, blob in rows:
            trades.extend(_parse_trades(self._open(blob, "batches", sid, str(seq))))
        self._batches[sid] = count
        return StoredSession(record, credentials, trades, progress)

    def _write_state(self, sid: str, progress: PollProgress, batches: int) -> None:
        blob = self._seal(_state_json(progress, batches), "state", sid)
        self._db.execute("INSERT OR REPLACE INTO state (session_id, progress) VALUES (?, ?)", (sid, blob))

    def _seal(self, document: Any, *where: str) -> bytes:
        plaintext = json.dumps(document, separators=(",", ":")).encode()
        return self._sealer.seal(plaintext, _context(where))

    def _open(self, blob: bytes, *where: str) -> Any:
        try:
            return json.loads(self._sealer.open(blob, _context(where)))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise StoredDataError("a sealed blob does not hold JSON") from None

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                # A failed COMMIT (SQLITE_BUSY, I/O) leaves the transaction open; one SQLite
                # already rolled back has nothing left to roll back.
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise


@dataclass(frozen=True, slots=True)
class SessionSink:
    """Saves one session's poll progress into the store (a ``ProgressSink``)."""

    store: SessionStore
    session_id: str

    def save(self, trades: Sequence[Trade], progress: PollProgress) -> None:
        """Store ``trades`` and ``progress`` in one transaction."""
        self.store.append(self.session_id, trades, progress)


def _create_private(path: Path) -> None:
    """Create ``path`` with mode 0600 (SQLite gives its ``-wal`` and ``-shm`` files the same mode)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path} is not a regular file")
        if info.st_mode & 0o077:
            log.warning("the sealed store %s was readable by others; setting its mode to 0600", path)
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _context(where: Sequence[str]) -> bytes:
    return "/".join((_CONTEXT, *where)).encode()


# -- documents inside the blobs ------------------------------------------------


def _record_json(record: SessionRecord) -> dict[str, Any]:
    return {
        "token_hash": record.token_hash.hex(),
        "exchange": record.exchange,
        "account_type": record.account_type,
        "label": record.label,
        "created_ms": record.created_ms,
        "expires_ms": record.expires_ms,
        "data_source": record.data_source,
    }


def _parse_record(sid: str, doc: Any) -> SessionRecord:
    try:
        return SessionRecord(
            id=sid,
            token_hash=bytes.fromhex(_typed(doc["token_hash"], str)),
            exchange=_typed(doc["exchange"], str),
            account_type=_typed(doc["account_type"], str),
            label=_typed(doc["label"], str),
            created_ms=_typed(doc["created_ms"], int),
            expires_ms=_typed(doc["expires_ms"], int),
            data_source=_typed(doc["data_source"], str),
        )
    except (KeyError, TypeError, ValueError):
        raise StoredDataError("a stored session record is malformed") from None


def _credentials_json(credentials: ExchangeCredentials) -> dict[str, Any]:
    return {
        "exchange": credentials.exchange,
        "api_key": credentials.api_key,
        "api_secret": credentials.api_secret,
        "passphrase": credentials.passphrase,
        "account_type": credentials.account_type,
        "since_ms": credentials.since_ms,
        "symbols": list(credentials.symbols),
    }


def _parse_credentials(doc: Any) -> ExchangeCredentials:
    try:
        account_type = doc["account_type"]
        passphrase = doc["passphrase"]
        symbols = _typed(doc["symbols"], list)
        if account_type not in _ACCOUNT_TYPES or not all(isinstance(s, str) for s in symbols):
            raise ValueError
        return ExchangeCredentials(
            exchange=_typed(doc["exchange"], str),
            api_key=_typed(doc["api_key"], str),
            api_secret=_typed(doc["api_secret"], str),
            passphrase=None if passphrase is None else _typed(passphrase, str),
            account_type=account_type,
            since_ms=_typed(doc["since_ms"], int),
            symbols=tuple(symbols),
        )
    except (KeyError, TypeError, ValueError):
        raise StoredDataError("stored credentials are malformed") from None


def _state_json(progress: PollProgress, batches: int) -> dict[str, Any]:
    return {
        "batches": batches,
        "backfill_complete": progress.backfill_complete,
        "symbols": sorted(progress.symbols),
        "cursors": {symbol: cursor_to_json(c) for symbol, c in progress.cursors.items()},
    }


def _parse_state(doc: Any) -> tuple[PollProgress, int]:
    try:
        symbols = _typed(doc["symbols"], list)
        cursors = _typed(doc["cursors"], dict)
        if not all(isinstance(s, str) for s in symbols):
            raise ValueError
        progress = PollProgress(
            cursors={symbol: cursor_from_json(c) for symbol, c in cursors.items()},
            symbols=frozenset(symbols),
            backfill_complete=_typed(doc["backfill_complete"], bool),
        )
        return progress, _typed(doc["batches"], int)
    except (KeyError, TypeError, ValueError):
        raise StoredDataError("a stored poll state is malformed") from None


_ROW_WITH_COST, _COST_AT = 14, 9
"""Rows sealed by earlier versions also held ``cost`` (``amount * price``), after the price."""


def _trades_json(trades: Sequence[Trade]) -> list[list[Any]]:
    return [
        [
            t.id, t.order_id, t.symbol, t.base, t.quote, t.market_type, t.side,
            str(t.amount), str(t.price), str(t.fee_cost), t.fee_currency, t.timestamp,
            None if t.exchange_realized_pnl is None else str(t.exchange_realized_pnl),
        ]
        for t in trades
    ]  # fmt: skip


def _parse_trades(doc: Any) -> list[Trade]:
    try:
        trades = []
        for row in _typed(doc, list):
            if len(_typed(row, list)) == _ROW_WITH_COST:  # written before cost was derived
                del row[_COST_AT]
            (trade_id, order_id, symbol, base, quote, market_type, side,
             amount, price, fee_cost, fee_currency, timestamp, pnl) = row  # fmt: skip
            if market_type not in _MARKET_TYPES or side not in _SIDES:
                raise ValueError
            trades.append(
                Trade(
                    id=_typed(trade_id, str),
                    order_id=_typed(order_id, str),
                    symbol=_typed(symbol, str),
                    base=_typed(base, str),
                    quote=_typed(quote, str),
                    market_type=market_type,
                    side=side,
                    amount=Decimal(_typed(amount, str)),
                    price=Decimal(_typed(price, str)),
                    fee_cost=Decimal(_typed(fee_cost, str)),
                    fee_currency=_typed(fee_currency, str),
                    timestamp=_typed(timestamp, int),
                    exchange_realized_pnl=None if pnl is None else Decimal(_typed(pnl, str)),
                )
            )
        return trades
    except (TypeError, ValueError, ArithmeticError):
        raise StoredDataError("a stored batch of trades is malformed") from None


def _typed(value: object, kind: type[_T]) -> _T:
    """``value`` if it is a ``kind`` (a ``bool`` is not an ``int`` here); else ``TypeError``."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError("unexpected type in a stored document")
    return value
