"""The result of checking TEE evidence on its own, before the key binding and the policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True)
class VerifiedEvidence:
    """What genuine evidence says, as read from the verified bytes.

    ``tee`` is the TEE type of the document the evidence came with (``dstack``
    evidence is a TDX quote); ``report_data`` the 64 bytes the TEE signed;
    ``measurement`` the code identity API.md puts in the document (MRTD,
    MRENCLAVE, SNP MEASUREMENT, or the simulated measurement), lower-case hex;
    ``registers`` every measurement register a policy may pin, by name, as hex
    (empty for simulated evidence); ``tcb_status`` and ``advisory_ids`` the
    platform's TCB level as Intel's collateral rates it (DCAP only).
    """

    tee: str
    report_data: bytes
    measurement: str
    registers: Mapping[str, str] = field(default_factory=dict, hash=False)
    tcb_status: str | None = None
    advisory_ids: tuple[str, ...] = ()


def iso(now: float) -> str:
    """``now`` (epoch seconds) as an RFC 3339 UTC time, for messages."""
    try:
        return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{now} s since the epoch"
