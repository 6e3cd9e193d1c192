"""SimulatedProvider: today's evidence layout, and its key file (mode 0600, created once)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from perf_aggregator.protocol import SIMULATED_QUOTE_PREFIX
from perf_aggregator.tee.attestation import SIMULATED_KEY_FILE, SimulatedProvider, source_measurement
from perf_aggregator.tee.errors import ReportDataError, SealingKeyError
from tee.fake_devices import FileEventRecorder

REPORT = bytes(range(64))


def test_evidence_layout_is_unchanged() -> None:
    provider = SimulatedProvider()
    assert provider.tee == "simulated"
    assert provider.measurement == source_measurement()
    assert provider.quote(REPORT) == SIMULATED_QUOTE_PREFIX + provider.measurement + REPORT
    with pytest.raises(ReportDataError):
        provider.quote(REPORT[:-1])


def test_key_file_is_created_once_with_mode_0600_and_no_chmod(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    previous = os.umask(0)  # even with a permissive umask the file is born 0600
    try:
        with FileEventRecorder(data_dir) as recorder, caplog.at_level(logging.WARNING):
            key = SimulatedProvider(data_dir=data_dir).sealing_key()
    finally:
        os.umask(previous)
    path = data_dir / SIMULATED_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == key and len(key) == 32
    assert not [e for e in recorder.events if e[0] == "os.chmod"]
    assert "protects NOTHING against the host" in caplog.text


def test_second_start_reads_the_same_key(data_dir: Path) -> None:
    first = SimulatedProvider(data_dir=data_dir).sealing_key()
    before = (data_dir / SIMULATED_KEY_FILE).stat()
    second = SimulatedProvider(data_dir=data_dir).sealing_key()
    after = (data_dir / SIMULATED_KEY_FILE).stat()
    assert first == second
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_nothing_is_written_until_a_key_is_asked_for(data_dir: Path) -> None:
    provider = SimulatedProvider(data_dir=data_dir)
    provider.quote(REPORT)
    assert list(data_dir.iterdir()) == []


def test_missing_data_dir_is_created_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    SimulatedProvider(data_dir=data_dir).sealing_key()
    assert stat.S_IMODE(data_dir.stat().st_mode) & 0o077 == 0


def test_unusable_key_files_are_refused(data_dir: Path) -> None:
    path = data_dir / SIMULATED_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, os.urandom(32))
    os.close(fd)
    os.chmod(path, 0o644)  # the test makes a too-open file on purpose
    with pytest.raises(SealingKeyError, match="0600"):
        SimulatedProvider(data_dir=data_dir).sealing_key()
    path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"short")
    os.close(fd)
    with pytest.raises(SealingKeyError, match="32 bytes"):
        SimulatedProvider(data_dir=data_dir).sealing_key()
    with pytest.raises(SealingKeyError, match="no data directory"):
        SimulatedProvider().sealing_key()
