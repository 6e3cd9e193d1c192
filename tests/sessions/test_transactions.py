"""A store write whose COMMIT fails is rolled back, so the next write starts cleanly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from perf_aggregator.sessions.store import STORE_FILE, SessionStore
from sessions.test_store import NOW, credentials, record, sealer


def test_a_failed_commit_is_rolled_back_and_the_next_write_succeeds(tmp_path: Path) -> None:
    SessionStore.open(tmp_path, sealer()).close()  # the schema
    path = tmp_path / STORE_FILE
    # Rollback-journal mode and no busy wait: a COMMIT fails for real (SQLITE_BUSY) while
    # another connection reads, and leaves its transaction open.
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
    db.execute("PRAGMA journal_mode=DELETE")
    store = SessionStore(db, sealer())
    reader = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            store.create(record("refused"), credentials())
        reader.execute("COMMIT")
        assert not db.in_transaction

        store.create(record("kept"), credentials())
        store.delete("kept")
        store.create(record("stored"), credentials())
        assert [s.record.id for s in store.load(NOW)] == ["stored"]
    finally:
        reader.close()
        store.close()
