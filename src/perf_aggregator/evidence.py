"""Where report data and measurements sit in raw TEE evidence (layouts only, no signature checks).

Shared by both sides, like ``protocol``: the enclave reads its own measurement
from the same bytes a verifier will read and checks every quote carries the
report data it asked for; the client reads the fields of evidence whose
signature it has verified.

Layouts (offsets in bytes; all checked against Intel's genuine sample quotes
in the tests where available):

- Intel TDX quote v4: 48-byte header (version 4, TEE type 0x81), then the
  584-byte TD report body: MRSEAM at 16, TD_ATTRIBUTES at 120, MRTD at 136,
  MRCONFIGID 184, MROWNER 232, MROWNERCONFIG 280, RTMR0..3 at 328/376/424/472
  (48 bytes each), REPORTDATA at 520 (64 bytes). Quote v5 inserts a body type
  (u16) and body size (u32) after the header; the TD 1.0 and 1.5 bodies start
  with the same fields.
- Intel SGX quote v3: 48-byte header, then the 384-byte enclave report body:
  ATTRIBUTES at 48, MRENCLAVE at 64, MRSIGNER at 128, REPORTDATA at 320.
- AMD SEV-SNP ATTESTATION_REPORT (0x4A0 bytes, firmware ABI): POLICY at 0x08,
  REPORT_DATA at 0x50, MEASUREMENT at 0x90 (48 bytes), HOST_DATA at 0xC0,
  ID_KEY_DIGEST at 0xE0.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final


class EvidenceLayoutError(ValueError):
    """The bytes are not evidence of the expected layout (wrong size, version or TEE type)."""


QUOTE_HEADER_BYTES: Final = 48
TDX_TEE_TYPE: Final = 0x81
SGX_TEE_TYPE: Final = 0x00
TD_REPORT10_BYTES: Final = 584
TD_REPORT15_BYTES: Final = 648
SGX_REPORT_BODY_BYTES: Final = 384
SNP_REPORT_BYTES: Final = 0x4A0

_TDX_FIELDS: Final = {
    "mrseam": (16, 48),
    "mrtd": (136, 48),
    "mrconfigid": (184, 48),
    "mrowner": (232, 48),
    "mrownerconfig": (280, 48),
    "rtmr0": (328, 48),
    "rtmr1": (376, 48),
    "rtmr2": (424, 48),
    "rtmr3": (472, 48),
}
_TDX_ATTRIBUTES: Final = 120
_TDX_REPORT_DATA: Final = 520
_TDX_DEBUG: Final = 0x01  # TUD.DEBUG, bit 0 of TD_ATTRIBUTES

_SGX_ATTRIBUTES: Final = 48
_SGX_MRENCLAVE: Final = 64
_SGX_MRSIGNER: Final = 128
_SGX_REPORT_DATA: Final = 320
_SGX_DEBUG: Final = 0x02  # ATTRIBUTES.DEBUG

_SNP_POLICY: Final = 0x08
_SNP_REPORT_DATA: Final = 0x50
_SNP_MEASUREMENT: Final = 0x90
_SNP_HOST_DATA: Final = 0xC0
_SNP_ID_KEY_DIGEST: Final = 0xE0
_SNP_POLICY_DEBUG: Final = 1 << 19


@dataclass(frozen=True)
class EvidenceFields:
    """The fields read from evidence: report data, measurement, debug flag, registers by name."""

    report_data: bytes
    measurement: bytes
    debug: bool
    registers: MappingProxyType[str, bytes] = field(default_factory=lambda: MappingProxyType({}))

    def registers_hex(self) -> dict[str, str]:
        """Every register as lower-case hex (for logs and diagnostics)."""
        return {name: value.hex() for name, value in self.registers.items()}


def _u16(data: bytes, offset: int) -> int:
    value: int = struct.unpack_from("<H", data, offset)[0]
    return value


def _u32(data: bytes, offset: int) -> int:
    value: int = struct.unpack_from("<I", data, offset)[0]
    return value


def parse_tdx_quote(quote: bytes) -> EvidenceFields:
    """MRTD (the measurement), RTMRs and report data of an Intel TDX quote v4 or v5."""
    if len(quote) < QUOTE_HEADER_BYTES + TD_REPORT10_BYTES:
        raise EvidenceLayoutError(f"TDX quote is {len(quote)} bytes, too short for a header and a TD report")
    version, tee_type = _u16(quote, 0), _u32(quote, 4)
    if tee_type != TDX_TEE_TYPE:
        raise EvidenceLayoutError(f"evidence is not a TDX quote (TEE type {tee_type:#x})")
    if version == 4:
        body = QUOTE_HEADER_BYTES
    elif version == 5:
        body_type, body_size = _u16(quote, QUOTE_HEADER_BYTES), _u32(quote, QUOTE_HEADER_BYTES + 2)
        expected = {2: TD_REPORT10_BYTES, 3: TD_REPORT15_BYTES}.get(body_type)
        if expected is None or body_size != expected:
            raise EvidenceLayoutError(
                f"TDX quote v5 has an unsupported body (type {body_type}, {body_size} bytes)"
            )
        body = QUOTE_HEADER_BYTES + 6
        if len(quote) < body + body_size:
            raise EvidenceLayoutError("TDX quote v5 is shorter than its TD report body")
    else:
        raise EvidenceLayoutError(f"unsupported TDX quote version {version}")
    registers = {
        name: quote[body + offset : body + offset + size] for name, (offset, size) in _TDX_FIELDS.items()
    }
    return EvidenceFields(
        report_data=quote[body + _TDX_REPORT_DATA : body + _TDX_REPORT_DATA + 64],
        measurement=registers["mrtd"],
        debug=bool(quote[body + _TDX_ATTRIBUTES] & _TDX_DEBUG),
        registers=MappingProxyType(registers),
    )


def parse_sgx_quote(quote: bytes) -> EvidenceFields:
    """MRENCLAVE (the measurement), MRSIGNER and report data of an Intel SGX quote v3 (or v4)."""
    if len(quote) < QUOTE_HEADER_BYTES + SGX_REPORT_BODY_BYTES:
        raise EvidenceLayoutError(
            f"SGX quote is {len(quote)} bytes, too short for a header and a report body"
        )
    version = _u16(quote, 0)
    if version not in (3, 4) or (version == 4 and _u32(quote, 4) != SGX_TEE_TYPE):
        raise EvidenceLayoutError(f"evidence is not an SGX quote (version {version})")
    body = QUOTE_HEADER_BYTES
    mrenclave = quote[body + _SGX_MRENCLAVE : body + _SGX_MRENCLAVE + 32]
    mrsigner = quote[body + _SGX_MRSIGNER : body + _SGX_MRSIGNER + 32]
    return EvidenceFields(
        report_data=quote[body + _SGX_REPORT_DATA : body + _SGX_REPORT_DATA + 64],
        measurement=mrenclave,
        debug=bool(quote[body + _SGX_ATTRIBUTES] & _SGX_DEBUG),
        registers=MappingProxyType({"mrenclave": mrenclave, "mrsigner": mrsigner}),
    )


def parse_snp_report(report: bytes) -> EvidenceFields:
    """MEASUREMENT, HOST_DATA, ID_KEY_DIGEST and report data of an AMD SEV-SNP attestation report."""
    if len(report) != SNP_REPORT_BYTES:
        raise EvidenceLayoutError(f"SEV-SNP report is {len(report)} bytes, not {SNP_REPORT_BYTES}")
    version = _u32(report, 0)
    if version < 2:
        raise EvidenceLayoutError(f"unsupported SEV-SNP report version {version}")
    (policy,) = struct.unpack_from("<Q", report, _SNP_POLICY)
    measurement = report[_SNP_MEASUREMENT : _SNP_MEASUREMENT + 48]
    registers = {
        "measurement": measurement,
        "host_data": report[_SNP_HOST_DATA : _SNP_HOST_DATA + 32],
        "id_key_digest": report[_SNP_ID_KEY_DIGEST : _SNP_ID_KEY_DIGEST + 48],
    }
    return EvidenceFields(
        report_data=report[_SNP_REPORT_DATA : _SNP_REPORT_DATA + 64],
        measurement=measurement,
        debug=bool(policy & _SNP_POLICY_DEBUG),
        registers=MappingProxyType(registers),
    )
