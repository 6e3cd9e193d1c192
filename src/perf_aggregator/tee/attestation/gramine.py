"""Intel SGX evidence through Gramine's ``/dev/attestation`` pseudo-filesystem.

Gramine exposes, inside the enclave: ``attestation_type`` (``none`` or
``dcap``), ``user_report_data`` (write 64 bytes), ``quote`` (read: an SGX
quote whose report data is the last ``user_report_data`` written),
``my_target_info`` (this enclave's TARGETINFO, MRENCLAVE in its first 32
bytes) and ``keys/_sgx_mrenclave`` (the 16-byte SGX sealing key bound to
MRENCLAVE and the CPU).

Measurement: MRENCLAVE read from the report body of a quote over 64 zero
bytes at start, i.e. from the very bytes a verifier checks; when
``my_target_info`` is present it must agree, else start fails.

Sealing: the MRENCLAVE sealing key, expanded with HKDF-SHA256 (label
``perf-aggregator/gramine-sgx-sealing/v1``) to 32 bytes. Gramine's manual
warns against using that key directly when it is also used elsewhere (for
example for encrypted mounts); the KDF keeps our use separate.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Final

from perf_aggregator.evidence import parse_sgx_quote
from perf_aggregator.tee.attestation.base import check_report_data, read_evidence
from perf_aggregator.tee.errors import AttestationUnavailable, QuoteError, SealingKeyError
from perf_aggregator.tee.sealing import derive_key

log = logging.getLogger(__name__)

DEFAULT_GRAMINE_ROOT: Final = Path("/dev/attestation")
SEALING_KEY_LABEL: Final = b"perf-aggregator/gramine-sgx-sealing/v1"
_SGX_KEY_BYTES: Final = 16


class GramineSgx:
    """Attestation and sealing for an SGX enclave running under Gramine (``sgx``)."""

    tee = "sgx"

    def __init__(self, *, root: Path = DEFAULT_GRAMINE_ROOT) -> None:
        self.root = Path(root)
        # user_report_data and quote are one process-wide pair: serialise write-then-read.
        self._lock = threading.Lock()
        if not self.root.is_dir():
            raise AttestationUnavailable(
                f"Gramine attestation directory {self.root} does not exist (not running under gramine-sgx)"
            )
        kind_path = self.root / "attestation_type"
        if kind_path.exists():
            kind = kind_path.read_bytes().decode("ascii", "replace").strip()
            if kind == "none":
                raise AttestationUnavailable(
                    "Gramine attestation type is 'none': "
                    'enable sgx.remote_attestation = "dcap" in the manifest'
                )
        fields = read_evidence(parse_sgx_quote, self._quote(bytes(64)), bytes(64), None, "Gramine")
        target_info = self.root / "my_target_info"
        if target_info.exists() and target_info.read_bytes()[:32] != fields.measurement:
            raise QuoteError("MRENCLAVE in Gramine's my_target_info differs from the one in its quote")
        self.measurement: bytes = fields.measurement
        self.registers: dict[str, str] = fields.registers_hex()
        if fields.debug:
            log.warning("SGX enclave runs in DEBUG mode: verifiers will (and must) refuse its evidence")
        log.info("Gramine SGX attestation: mrenclave=%s", self.measurement.hex())

    def quote(self, report_data: bytes) -> bytes:
        """The SGX quote over ``report_data`` (64 bytes)."""
        report_data = check_report_data(report_data)
        quote = self._quote(report_data)
        read_evidence(parse_sgx_quote, quote, report_data, self.measurement, "Gramine")
        return quote

    def _quote(self, report_data: bytes) -> bytes:
        with self._lock:
            try:
                fd = os.open(self.root / "user_report_data", os.O_WRONLY | os.O_CLOEXEC)
                try:
                    written = os.write(fd, report_data)
                finally:
                    os.close(fd)
                if written != len(report_data):
                    raise QuoteError("short write to Gramine's user_report_data")
                with open(self.root / "quote", "rb") as f:
                    return f.read()
            except FileNotFoundError as exc:
                raise AttestationUnavailable(f"Gramine attestation file missing: {exc.filename}") from None
            except OSError as exc:
                raise QuoteError(f"Gramine quote generation failed: {exc.strerror}") from None

    def sealing_key(self) -> bytes:
        """HKDF-SHA256 of the 16-byte MRENCLAVE sealing key to 32 bytes."""
        path = self.root / "keys" / "_sgx_mrenclave"
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise SealingKeyError(
                f"cannot read Gramine's MRENCLAVE sealing key {path}: {exc.strerror}"
            ) from None
        if len(raw) != _SGX_KEY_BYTES:
            raise SealingKeyError(f"Gramine's MRENCLAVE sealing key is {len(raw)} bytes, not 16")
        return derive_key(raw, SEALING_KEY_LABEL)
