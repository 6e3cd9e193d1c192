"""The sealed session store: exact round trips, and anything the host alters drops the session."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from perf_aggregator.exchanges.binance import BinanceCursor
from perf_aggregator.exchanges.coinbase import CoinbaseCursor
from perf_aggregator.ledger.trades import Trade
from perf_aggregator.polling.scheduler import PollProgress
from perf_aggregator.sessions import store as store_module
from perf_aggregator.sessions.store import STORE_FILE, SessionRecord, SessionStore, StoredSession
from perf_aggregator.tee.credentials import ExchangeCredentials
from perf_aggregator.tee.sealing import Sealer

NOW = 1_760_000_000_000
HOUR = 3_600_000
KEY = os.urandom(32)
MEASUREMENT = hashlib.sha256(b"this build").digest()


def sealer(key: bytes = KEY, measurement: bytes = MEASUREMENT) -> Sealer:
    return Sealer(key, measurement)


def record(sid: str, token: str | None = None, expires_ms: int = NOW + HOUR) -> SessionRecord:
    return SessionRecord(
        id=sid,
        token_hash=hashlib.sha256((token or f"token of {sid}").encode()).digest(),
        exchange="binance",
        account_type="spot",
        label="my label",
        created_ms=NOW - HOUR,
        expires_ms=expires_ms,
        data_source="http://127.0.0.1:9100",
    )


def credentials(secret: str = "s" * 64) -> ExchangeCredentials:
    return ExchangeCredentials(
        exchange="binance",
        api_key="k" * 64,
        api_secret=secret,
        passphrase=None,
        account_type="spot",
        since_ms=NOW - 48 * HOUR,
        symbols=("BTC/USDT", "ETH/BTC"),
    )


def trade(n: int, symbol: str = "BTC/USDT", **fields: object) -> Trade:
    values: dict[str, object] = {
        "id": str(1000 + n),
        "order_id": str(70 + n),
        "symbol": symbol,
        "base": symbol.split("/")[0],
        "quote": symbol.split("/")[1],
        "market_type": "spot",
        "side": "buy" if n % 2 else "sell",
        "amount": Decimal("0.00120000"),
        "price": Decimal("64123.10"),
        "fee_cost": Decimal("1.2E-7"),
        "fee_currency": "BNB",
        "timestamp": NOW - HOUR + n,
    }
    values.update(fields)
    return Trade(**values)  # type: ignore[arg-type]


def exact(trades: list[Trade]) -> list[tuple[str, ...]]:
    """Every field as text, so ``Decimal("1.0")`` and ``Decimal("1.00")`` differ."""
    return [tuple(repr(getattr(t, f)) for f in Trade._fields) for t in trades]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path) -> Iterator[SessionStore]:
    opened = SessionStore.open(data_dir, sealer())
    yield opened
    opened.close()


def reopen(store: SessionStore, data_dir: Path, key: bytes = KEY, now_ms: int = NOW) -> list[StoredSession]:
    store.close()
    again = SessionStore.open(data_dir, sealer(key))
    try:
        return list(again.load(now_ms))
    finally:
        again.close()


def host(data_dir: Path) -> sqlite3.Connection:
    """The host's own view of the database file: it may change any byte of it."""
    return sqlite3.connect(data_dir / STORE_FILE, isolation_level=None)


def rows(data_dir: Path, sid: str) -> dict[str, int]:
    with host(data_dir) as db:
        return {
            "sessions": db.execute("SELECT count(*) FROM sessions WHERE id = ?", (sid,)).fetchone()[0],
            "batches": db.execute("SELECT count(*) FROM batches WHERE session_id = ?", (sid,)).fetchone()[0],
            "state": db.execute("SELECT count(*) FROM state WHERE session_id = ?", (sid,)).fetchone()[0],
        }


def two_batch_session(store: SessionStore, sid: str) -> None:
    store.create(record(sid), credentials())
    store.append(sid, [trade(1), trade(2)], PollProgress({"BTC/USDT": BinanceCursor(from_id=1002)}))
    store.append(sid, [trade(3)], PollProgress({"BTC/USDT": BinanceCursor(from_id=1003)}))


def test_a_session_round_trips_exactly(store: SessionStore, data_dir: Path) -> None:
    futures_fill = trade(
        7,
        symbol="BTC/USDT:USDT",
        market_type="swap",
        amount=Decimal("0.010"),
        exchange_realized_pnl=Decimal("-1.23456789"),
    )
    first = [trade(1), trade(2, symbol="ETH/BTC", price=Decimal("0.05310000"))]
    cursors = {
        "BTC/USDT": BinanceCursor(scan_from_ms=NOW - 24 * HOUR, stop_id=1005),
        "ETH/BTC": CoinbaseCursor(lower_ms=NOW - HOUR, page="opaque==", newest_ms=None),
    }
    store.create(record("s1"), credentials())
    store.append("s1", first, PollProgress(cursors, frozenset({"BTC/USDT", "ETH/BTC"})))
    store.append("s1", [futures_fill], PollProgress(cursors, frozenset({"BTC/USDT", "ETH/BTC"}), True))
    final = PollProgress({"BTC/USDT": BinanceCursor(from_id=1007)}, frozenset({"BTC/USDT", "ETH/BTC"}), True)
    store.append("s1", [], final)  # cursors only
    store.create(record("s2", expires_ms=NOW + 2 * HOUR), credentials(secret="t" * 64))

    loaded = {s.record.id: s for s in reopen(store, data_dir)}

    assert set(loaded) == {"s1", "s2"}
    one = loaded["s1"]
    assert one.record == record("s1") and one.record.token_hash == record("s1").token_hash
    assert one.credentials == credentials()
    assert exact(one.trades) == exact([*first, futures_fill])
    assert one.progress == final
    assert loaded["s2"].trades == [] and loaded["s2"].progress == PollProgress()
    assert loaded["s2"].credentials.api_secret == "t" * 64


def test_a_batch_sealed_with_the_earlier_rows_holding_cost_still_opens(
    store: SessionStore, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows written before ``Trade.cost`` was derived held it after the price; it is dropped."""
    written = store_module._trades_json

    def with_cost(trades: list[Trade]) -> list[list[object]]:
        return [[*row[:9], str(t.cost), *row[9:]] for row, t in zip(written(trades), trades, strict=True)]

    monkeypatch.setattr(store_module, "_trades_json", with_cost)
    store.create(record("s1"), credentials())
    store.append("s1", [trade(1), trade(2)], PollProgress())
    monkeypatch.undo()
    store.append("s1", [trade(3)], PollProgress())
    [loaded] = reopen(store, data_dir)
    assert exact(loaded.trades) == exact([trade(1), trade(2), trade(3)])


def test_renewal_replaces_the_record(store: SessionStore, data_dir: Path) -> None:
    store.create(record("s1"), credentials())
    renewed = record("s1", expires_ms=NOW + 5 * HOUR)
    store.update_record(renewed)
    [loaded] = reopen(store, data_dir, now_ms=NOW + 2 * HOUR)
    assert loaded.record == renewed


def test_a_tampered_batch_drops_its_session_only(store: SessionStore, data_dir: Path) -> None:
    two_batch_session(store, "victim")
    two_batch_session(store, "other")
    store.close()
    with host(data_dir) as db:
        blob = db.execute("SELECT trades FROM batches WHERE session_id = 'victim' AND seq = 1").fetchone()[0]
        flipped = blob[:-1] + bytes([blob[-1] ^ 1])
        db.execute("UPDATE batches SET trades = ? WHERE session_id = 'victim' AND seq = 1", (flipped,))
    store = SessionStore.open(data_dir, sealer())
    assert [s.record.id for s in reopen(store, data_dir)] == ["other"]
    assert rows(data_dir, "victim") == {"sessions": 0, "batches": 0, "state": 0}
    assert rows(data_dir, "other") == {"sessions": 1, "batches": 2, "state": 1}


@pytest.mark.parametrize(
    "move",
    [
        # Two batches of one session swapped: each opens only as its own row.
        "UPDATE batches SET seq = 1 - seq + 10 WHERE session_id = 'victim';"
        "UPDATE batches SET seq = seq - 10 WHERE session_id = 'victim'",
        # Another session's (valid, newer) state copied over the victim's.
        "UPDATE state SET progress = (SELECT progress FROM state WHERE session_id = 'other')"
        " WHERE session_id = 'victim'",
        # Another session's credentials under the victim's record.
        "UPDATE sessions SET credentials = (SELECT credentials FROM sessions WHERE id = 'other')"
        " WHERE id = 'victim'",
    ],
    ids=["batches-swapped", "state-copied", "credentials-copied"],
)
def test_a_blob_moved_to_another_row_does_not_open(store: SessionStore, data_dir: Path, move: str) -> None:
    two_batch_session(store, "victim")
    two_batch_session(store, "other")
    store.close()
    with host(data_dir) as db:
        db.executescript(move)
    store = SessionStore.open(data_dir, sealer())
    assert [s.record.id for s in reopen(store, data_dir)] == ["other"]
    assert rows(data_dir, "victim") == {"sessions": 0, "batches": 0, "state": 0}


@pytest.mark.parametrize(
    "damage",
    [
        "DELETE FROM batches WHERE session_id = 'victim' AND seq = 0",
        "DELETE FROM batches WHERE session_id = 'victim' AND seq = 1",
        "DELETE FROM state WHERE session_id = 'victim'",
    ],
    ids=["first-batch", "last-batch", "state"],
)
def test_a_missing_row_drops_the_session(store: SessionStore, data_dir: Path, damage: str) -> None:
    two_batch_session(store, "victim")
    store.close()
    with host(data_dir) as db:
        db.execute(damage)
    store = SessionStore.open(data_dir, sealer())
    assert reopen(store, data_dir) == []
    assert rows(data_dir, "victim") == {"sessions": 0, "batches": 0, "state": 0}


def test_another_key_or_build_opens_nothing_and_expired_sessions_go(
    store: SessionStore, data_dir: Path
) -> None:
    two_batch_session(store, "s1")
    assert reopen(store, data_dir, key=os.urandom(32)) == []  # e.g. TDX: a new key each boot
    assert rows(data_dir, "s1") == {"sessions": 0, "batches": 0, "state": 0}

    again = SessionStore.open(data_dir, sealer())
    two_batch_session(again, "s2")
    again.close()
    other_build = SessionStore.open(data_dir, sealer(measurement=hashlib.sha256(b"next build").digest()))
    assert list(other_build.load(NOW)) == []
    other_build.close()

    again = SessionStore.open(data_dir, sealer())
    two_batch_session(again, "s3")
    assert reopen(again, data_dir, now_ms=NOW + HOUR) == []  # expires_ms == now: expired
    assert rows(data_dir, "s3") == {"sessions": 0, "batches": 0, "state": 0}


def test_delete_removes_every_row_of_the_session_and_its_bytes(store: SessionStore, data_dir: Path) -> None:
    two_batch_session(store, "gone-session")
    two_batch_session(store, "kept")
    with host(data_dir) as db:
        blobs = [row[0] for row in db.execute("SELECT trades FROM batches WHERE session_id = 'gone-session'")]
        blobs += list(
            db.execute("SELECT record, credentials FROM sessions WHERE id = 'gone-session'").fetchone()
        )
    store.delete("gone-session")
    content = b"".join(p.read_bytes() for p in data_dir.iterdir())
    assert b"gone-session" not in content  # overwritten (secure_delete) and out of the WAL
    assert not [blob for blob in blobs if blob[16:48] in content]
    assert b"kept" in content
    assert rows(data_dir, "gone-session") == {"sessions": 0, "batches": 0, "state": 0}
    assert rows(data_dir, "kept") == {"sessions": 1, "batches": 2, "state": 1}
    with pytest.raises(KeyError):
        store.append("gone-session", [trade(9)], PollProgress())
    assert [s.record.id for s in reopen(store, data_dir)] == ["kept"]


def test_sink_saves_through_the_store(store: SessionStore, data_dir: Path) -> None:
    store.create(record("s1"), credentials())
    progress = PollProgress({"BTC/USDT": BinanceCursor(from_id=1001)}, frozenset({"BTC/USDT"}), True)
    store.sink("s1").save([trade(1)], progress)
    [loaded] = reopen(store, data_dir)
    assert exact(loaded.trades) == exact([trade(1)]) and loaded.progress == progress


def test_files_are_private_and_hold_no_plaintext(store: SessionStore, data_dir: Path) -> None:
    secret = "PLANTEDSECRET" + os.urandom(8).hex()
    api_key = "PLANTEDAPIKEY" + os.urandom(8).hex()
    token = "PLANTEDTOKEN" + os.urandom(8).hex()
    symbol = "PLANTEDCOIN/USDT"
    planted = dataclasses.replace(credentials(secret=secret), api_key=api_key)
    sid = "public-session-id"
    store.create(record(sid, token=token), planted)
    cursor = CoinbaseCursor(lower_ms=NOW, page="PLANTEDPAGE")
    progress = PollProgress({symbol: cursor}, frozenset({symbol}), True)
    store.append(sid, [trade(1, symbol=symbol, fee_currency="PLANTEDFEE")], progress)
    store.update_record(record(sid, token=token, expires_ms=NOW + 9 * HOUR))

    files = sorted(data_dir.iterdir())
    assert {p.name for p in files} >= {STORE_FILE, f"{STORE_FILE}-wal"}
    content = b"".join(p.read_bytes() for p in files)
    token_hash = hashlib.sha256(token.encode()).digest()
    for needle in (secret, api_key, token, "PLANTEDCOIN", "PLANTEDPAGE", "PLANTEDFEE", "my label"):
        assert needle.encode() not in content, needle
    assert token_hash not in content and token_hash.hex().encode() not in content
    assert sid.encode() in content  # the control: row keys are stored in the clear
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(data_dir.stat().st_mode) & 0o077 == 0


def test_an_existing_store_readable_by_others_is_made_private(data_dir: Path) -> None:
    data_dir.mkdir()
    path = data_dir / STORE_FILE
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    SessionStore.open(data_dir, sealer()).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
