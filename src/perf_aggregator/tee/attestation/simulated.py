"""No TEE at all: evidence in the documented simulated layout, which proves nothing."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
from pathlib import Path

from perf_aggregator.protocol import simulated_quote
from perf_aggregator.tee.attestation.base import SEALING_KEY_BYTES, check_report_data
from perf_aggregator.tee.errors import SealingKeyError

log = logging.getLogger(__name__)

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
SIMULATED_KEY_FILE = "simulated-sealing.key"
"""Name of the simulated sealing key file inside ``PERF_AGG_DATA_DIR``."""


def source_measurement(root: Path = _PACKAGE_ROOT) -> bytes:
    """SHA-256 over the service's own source files (path and content, sorted by path)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.digest()


class SimulatedProvider:
    """Simulated attestation (API.md layout) and a sealing key kept in a 0600 file.

    The key file is the one documented exception to "no key material on
    disk": without a TEE nothing can protect a key from the host, so the file
    only gives persistence across restarts during development. It is created
    on the first ``sealing_key()`` call, never before.
    """

    tee = "simulated"

    def __init__(self, measurement: bytes | None = None, data_dir: Path | None = None) -> None:
        self.measurement = measurement if measurement is not None else source_measurement()
        self._data_dir = data_dir
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def quote(self, report_data: bytes) -> bytes:
        """``PERFAGG-SIMULATED-QUOTE-V1 || measurement || report_data``."""
        return simulated_quote(self.measurement, check_report_data(report_data))

    @property
    def key_path(self) -> Path | None:
        """Where the simulated sealing key lives (``None`` without a data directory)."""
        return None if self._data_dir is None else self._data_dir / SIMULATED_KEY_FILE

    def sealing_key(self) -> bytes:
        """The 32-byte key from ``<data_dir>/simulated-sealing.key``, created (mode 0600) if absent."""
        with self._lock:
            if self._key is None:
                self._key = self._load_or_create()
            return self._key

    def _load_or_create(self) -> bytes:
        path = self.key_path
        if path is None:
            raise SealingKeyError("the simulated provider has no data directory for its sealing key file")
        log.warning(
            "SIMULATED SEALING KEY in %s: it is stored in plaintext and protects NOTHING against the "
            "host or the operator. Never hold real user data with PERF_AGG_TEE=simulated.",
            path,
        )
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            # Created with its final mode in the same call: there is no moment at
            # which the file exists with wider permissions.
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            return self._read(path)
        except OSError as exc:
            raise SealingKeyError(
                f"cannot create the simulated sealing key file {path}: {exc.strerror}"
            ) from None
        key = os.urandom(SEALING_KEY_BYTES)
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        return key

    @staticmethod
    def _read(path: Path) -> bytes:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise SealingKeyError(
                f"cannot open the simulated sealing key file {path}: {exc.strerror}"
            ) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077:
                raise SealingKeyError(
                    f"simulated sealing key file {path} is not a regular file of mode 0600; refusing it"
                )
            key = os.read(fd, SEALING_KEY_BYTES + 1)
        finally:
            os.close(fd)
        if len(key) != SEALING_KEY_BYTES:
            raise SealingKeyError(f"simulated sealing key file {path} does not hold exactly 32 bytes")
        return key
