"""Intel TDX and AMD SEV-SNP evidence through the Linux configfs-tsm report interface.

The kernel ABI (``Documentation/ABI/testing/configfs-tsm-report``): a process
creates a report entry with ``mkdir <root>/<name>``, writes up to 64 bytes to
``inblob``, reads the evidence from ``outblob`` and the format name from
``provider`` (``tdx_guest``: an Intel TDX quote; ``sev_guest``: an AMD SEV-SNP
attestation report), and removes the entry with ``rmdir``. ``generation``
counts writes to the entry; reading it before the write and after the read
tells us whether someone else wrote in between, in which case the evidence may
belong to their inblob and we retry (a bounded number of times) in a fresh
entry.

Measurement: the provider quotes 64 zero bytes at start and reads the code
identity out of that evidence: MRTD for TDX, MEASUREMENT for SEV-SNP.

Sealing: bare TDX and SEV-SNP guests have no sealing key the guest can ask
for, so this provider uses a **memory-only** key: 32 random bytes per boot,
never written anywhere. Anything sealed under it is unreadable after a restart
(docs/sealing.md explains why that is the honest choice here).
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
from pathlib import Path
from typing import Final

from perf_aggregator.evidence import parse_snp_report, parse_tdx_quote
from perf_aggregator.tee.attestation.base import SEALING_KEY_BYTES, check_report_data, read_evidence
from perf_aggregator.tee.errors import AttestationUnavailable, QuoteError

log = logging.getLogger(__name__)

DEFAULT_TSM_ROOT: Final = Path("/sys/kernel/config/tsm/report")
TEE_BY_PROVIDER: Final = {"tdx_guest": "tdx", "sev_guest": "sev-snp"}
_PARSERS: Final = {"tdx": parse_tdx_quote, "sev-snp": parse_snp_report}
_UNAVAILABLE_ERRNOS: Final = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENXIO, errno.ENODEV, errno.EROFS}


def _read(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _write(path: Path, data: bytes) -> None:
    # No O_CREAT/O_TRUNC: configfs attributes exist with the entry; one write, committed on close.
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        if os.write(fd, data) != len(data):
            raise QuoteError(f"short write to {path}")
    finally:
        os.close(fd)


def _generation(entry: Path) -> int:
    raw = _read(entry / "generation").strip()
    try:
        return int(raw)
    except ValueError:
        raise QuoteError(f"configfs-tsm generation of {entry} is not a number") from None


class ConfigFsTsm:
    """Attestation through ``/sys/kernel/config/tsm/report`` (``tdx`` or ``sev-snp``, as the kernel says).

    ``expected_tee`` (``"tdx"`` or ``"sev-snp"``) makes a mismatch with the
    kernel's provider an error; ``None`` accepts either. ``max_attempts``
    bounds the retries when the generation counter shows another writer.
    """

    def __init__(
        self,
        expected_tee: str | None = None,
        *,
        root: Path = DEFAULT_TSM_ROOT,
        max_attempts: int = 3,
    ) -> None:
        if expected_tee not in (None, "tdx", "sev-snp"):
            raise ValueError(f"configfs-tsm provides 'tdx' or 'sev-snp', not {expected_tee!r}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.root = Path(root)
        self.max_attempts = max_attempts
        if not self.root.is_dir():
            raise AttestationUnavailable(
                f"configfs-tsm report directory {self.root} does not exist "
                "(no TDX/SEV-SNP guest kernel support, or configfs not mounted)"
            )
        provider, evidence = self._generate(bytes(64))
        tee = TEE_BY_PROVIDER.get(provider)
        if tee is None:
            raise AttestationUnavailable(
                f"configfs-tsm provider {provider!r} is not supported (tdx_guest, sev_guest)"
            )
        if expected_tee is not None and tee != expected_tee:
            raise AttestationUnavailable(
                f"PERF_AGG_TEE={expected_tee} but the configfs-tsm provider is {provider!r} ({tee})"
            )
        self.tee: str = tee
        self._provider = provider
        fields = read_evidence(_PARSERS[tee], evidence, bytes(64), None, "configfs-tsm")
        self.measurement: bytes = fields.measurement
        self.registers: dict[str, str] = fields.registers_hex()
        if fields.debug:
            log.warning("%s guest runs in DEBUG mode: verifiers will (and must) refuse its evidence", tee)
        # Memory-only: a fresh key per boot, never persisted (docs/sealing.md).
        self._sealing_key = secrets.token_bytes(SEALING_KEY_BYTES)
        log.info("configfs-tsm attestation: tee=%s measurement=%s", tee, self.measurement.hex())

    def quote(self, report_data: bytes) -> bytes:
        """The TDX quote or SEV-SNP report over ``report_data`` (64 bytes), from a fresh report entry."""
        report_data = check_report_data(report_data)
        provider, evidence = self._generate(report_data)
        if provider != self._provider:
            raise QuoteError(f"configfs-tsm provider changed from {self._provider!r} to {provider!r}")
        read_evidence(_PARSERS[self.tee], evidence, report_data, self.measurement, "configfs-tsm")
        return evidence

    def sealing_key(self) -> bytes:
        """The per-boot random key (memory only: nothing sealed with it survives a restart)."""
        return self._sealing_key

    def _generate(self, report_data: bytes) -> tuple[str, bytes]:
        """``(provider, outblob)`` for ``report_data``, retrying while another writer races us."""
        for attempt in range(1, self.max_attempts + 1):
            entry = self.root / f"perf-aggregator-{os.getpid()}-{secrets.token_hex(8)}"
            try:
                os.mkdir(entry)
            except OSError as exc:
                if exc.errno in _UNAVAILABLE_ERRNOS:
                    raise AttestationUnavailable(
                        f"cannot create a configfs-tsm report entry in {self.root}: {exc.strerror}"
                    ) from None
                raise QuoteError(
                    f"cannot create a configfs-tsm report entry in {self.root}: {exc.strerror}"
                ) from None
            try:
                before = _generation(entry)
                _write(entry / "inblob", report_data)
                outblob = _read(entry / "outblob")
                provider = _read(entry / "provider").decode("ascii", "replace").strip()
                after = _generation(entry)
            except OSError as exc:
                raise QuoteError(f"configfs-tsm report failed in {entry.name}: {exc.strerror}") from None
            finally:
                self._remove(entry)
            if after == before + 1:
                if not outblob:
                    raise QuoteError("configfs-tsm returned an empty outblob")
                return provider, outblob
            log.warning(
                "configfs-tsm generation moved from %d to %d (another writer); retrying (%d/%d)",
                before,
                after,
                attempt,
                self.max_attempts,
            )
        raise QuoteError(
            f"configfs-tsm generation kept moving (another writer on our report entry) in "
            f"{self.max_attempts} attempts; giving up rather than returning evidence that may not be ours"
        )

    @staticmethod
    def _remove(entry: Path) -> None:
        try:
            os.rmdir(entry)
        except OSError as exc:
            log.warning("could not remove configfs-tsm report entry %s: %s", entry, exc.strerror)
