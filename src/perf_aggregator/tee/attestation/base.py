"""The one interface every attestation provider implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from perf_aggregator.evidence import EvidenceFields, EvidenceLayoutError
from perf_aggregator.tee.errors import QuoteError, ReportDataError

REPORT_DATA_BYTES = 64
SEALING_KEY_BYTES = 32


class AttestationProvider(Protocol):
    """One TEE's way of producing evidence over 64 bytes of report data, and its sealing key.

    ``tee`` is the API.md TEE type (``simulated``, ``tdx``, ``sev-snp``,
    ``sgx``, ``dstack``); ``measurement`` the code identity the evidence
    reports (MRTD, SNP MEASUREMENT, MRENCLAVE, or the simulated source hash),
    fixed for the life of the process.
    """

    tee: str
    measurement: bytes

    def quote(self, report_data: bytes) -> bytes:
        """Raw evidence whose report-data field holds ``report_data`` (exactly 64 bytes).

        Raises ``ReportDataError`` (a ``ValueError``) for any other size,
        ``AttestationUnavailable`` if the TEE interface is gone and
        ``QuoteError`` if it produced no usable evidence.
        """
        ...

    def sealing_key(self) -> bytes:
        """32 bytes bound to this TEE (see docs/sealing.md for what each provider binds).

        Never written to disk in plaintext, except by the simulated provider.
        Raises ``SealingKeyError`` when the key cannot be obtained.
        """
        ...


def check_report_data(report_data: bytes) -> bytes:
    """``report_data`` as bytes if it is exactly 64 bytes, else ``ReportDataError``."""
    if not isinstance(report_data, bytes | bytearray) or len(report_data) != REPORT_DATA_BYTES:
        size = len(report_data) if isinstance(report_data, bytes | bytearray) else "not bytes"
        raise ReportDataError(f"report data must be exactly {REPORT_DATA_BYTES} bytes (got {size})")
    return bytes(report_data)


def read_evidence(
    parse: Callable[[bytes], EvidenceFields],
    evidence: bytes,
    report_data: bytes,
    measurement: bytes | None,
    source: str,
) -> EvidenceFields:
    """Our own evidence's fields; ``QuoteError`` unless it parses and carries ``report_data``
    (and, when given, the ``measurement`` seen at start)."""
    try:
        fields = parse(evidence)
    except EvidenceLayoutError as exc:
        raise QuoteError(f"{source} returned malformed evidence: {exc}") from None
    if fields.report_data != report_data:
        raise QuoteError(f"{source} returned evidence that does not carry the report data requested")
    if measurement is not None and fields.measurement != measurement:
        raise QuoteError(f"{source} returned evidence with another measurement than at start")
    return fields
