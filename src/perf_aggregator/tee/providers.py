"""Attestation providers: who produces the evidence that binds our keys to our code."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Protocol

from perf_aggregator.protocol import simulated_quote

log = logging.getLogger(__name__)

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class AttestationProvider(Protocol):
    """One TEE's way of producing evidence over 64 bytes of report data."""

    tee: str
    measurement: bytes

    def quote(self, report_data: bytes) -> bytes:
        """Raw evidence whose report-data field holds ``report_data`` (64 bytes)."""
        ...


class UnsupportedTeeError(Exception):
    """The configured TEE type cannot be used by this build or on this machine."""


def source_measurement(root: Path = _PACKAGE_ROOT) -> bytes:
    """SHA-256 over the service's own source files (path and content, sorted by path)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.digest()


class SimulatedProvider:
    """No TEE at all: evidence in the documented simulated layout, which proves nothing."""

    tee = "simulated"

    def __init__(self, measurement: bytes | None = None) -> None:
        self.measurement = measurement if measurement is not None else source_measurement()

    def quote(self, report_data: bytes) -> bytes:
        """``PERFAGG-SIMULATED-QUOTE-V1 || measurement || report_data``."""
        return simulated_quote(self.measurement, report_data)


def select_provider(setting: str) -> AttestationProvider:
    """The provider for ``PERF_AGG_TEE``; ``auto`` falls back to simulated, loudly."""
    if setting in ("auto", "simulated"):
        if setting == "auto":
            log.warning(
                "NO TEE DETECTED: running with SIMULATED attestation. Evidence proves nothing; "
                "clients must refuse this enclave unless explicitly told to accept simulated quotes."
            )
        else:
            log.warning("PERF_AGG_TEE=simulated: attestation is SIMULATED and proves nothing.")
        return SimulatedProvider()
    raise UnsupportedTeeError(f"TEE type {setting!r} is not supported by this build yet")
