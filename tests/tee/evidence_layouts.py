"""Evidence shaped like the real thing, built from the public specifications (not from our parsers).

- Intel TDX quote v4/v5: "Intel TDX DCAP Quoting Library API", quote format appendix.
- Intel SGX quote v3: "Intel SGX ECDSA Quote Library API", quote format appendix.
- AMD SEV-SNP ATTESTATION_REPORT: "SEV Secure Nested Paging Firmware ABI
  Specification", table "ATTESTATION_REPORT Structure".

The signature parts are filler: these blobs have the right shape and fields,
not a valid signature. Offsets are cross-checked against Intel's genuine
sample quotes in ``test_evidence.py``.
"""

from __future__ import annotations

import struct

TDX_DEBUG_ATTRIBUTE = 0x01


def _quote_header(version: int, tee_type: int) -> bytes:
    # version, attestation key type (2 = ECDSA-256 P-256), TEE type, QE SVN, PCE SVN,
    # QE vendor id (Intel's), user data.
    qe_vendor = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
    header = struct.pack("<HHIHH", version, 2, tee_type, 0, 0) + qe_vendor + bytes(20)
    assert len(header) == 48
    return header


def td_report_body(
    report_data: bytes,
    mrtd: bytes,
    rtmrs: tuple[bytes, bytes, bytes, bytes] = (bytes(48),) * 4,
    td_attributes: int = 0,
    tdx15: bool = False,
) -> bytes:
    """The TD report body: TD 1.0 (584 bytes) or TD 1.5 (648 bytes)."""
    assert len(report_data) == 64 and len(mrtd) == 48 and all(len(r) == 48 for r in rtmrs)
    body = b"".join(
        (
            bytes(16),  # TEE_TCB_SVN
            b"\x5e" * 48,  # MRSEAM
            bytes(48),  # MRSIGNERSEAM
            bytes(8),  # SEAMATTRIBUTES
            struct.pack("<Q", td_attributes),  # TDATTRIBUTES
            struct.pack("<Q", 0xE7),  # XFAM
            mrtd,
            b"\xc1" * 48,  # MRCONFIGID
            b"\x0e" * 48,  # MROWNER
            b"\x0c" * 48,  # MROWNERCONFIG
            *rtmrs,
            report_data,
        )
    )
    assert len(body) == 584
    if tdx15:
        body += bytes(16) + bytes(48)  # TEE_TCB_SVN2, MRSERVICETD
    return body


def tdx_quote(
    report_data: bytes,
    mrtd: bytes,
    rtmrs: tuple[bytes, bytes, bytes, bytes] = (bytes(48),) * 4,
    *,
    version: int = 4,
    td_attributes: int = 0,
) -> bytes:
    """An Intel TDX quote (v4, or v5 with a TD 1.5 body) with filler signature data."""
    signature = b"\xa5" * 128
    if version == 4:
        body = td_report_body(report_data, mrtd, rtmrs, td_attributes)
        return _quote_header(4, 0x81) + body + struct.pack("<I", len(signature)) + signature
    body = td_report_body(report_data, mrtd, rtmrs, td_attributes, tdx15=True)
    return (
        _quote_header(5, 0x81)
        + struct.pack("<HI", 3, len(body))
        + body
        + struct.pack("<I", len(signature))
        + signature
    )


def sgx_quote(
    report_data: bytes, mrenclave: bytes, mrsigner: bytes = b"\x51" * 32, debug: bool = False
) -> bytes:
    """An Intel SGX quote v3 with filler signature data."""
    assert len(report_data) == 64 and len(mrenclave) == 32 and len(mrsigner) == 32
    attributes = struct.pack("<QQ", 0x04 | (0x02 if debug else 0), 0xE7)  # INIT (| DEBUG), XFRM
    body = b"".join(
        (
            bytes(16),  # CPUSVN
            struct.pack("<I", 0),  # MISCSELECT
            bytes(28),  # reserved
            attributes,
            mrenclave,
            bytes(32),  # reserved
            mrsigner,
            bytes(96),  # reserved
            struct.pack("<HH", 1, 1),  # ISVPRODID, ISVSVN
            bytes(60),  # reserved
            report_data,
        )
    )
    assert len(body) == 384
    signature = b"\x5a" * 128
    return _quote_header(3, 0) + body + struct.pack("<I", len(signature)) + signature


def snp_report(report_data: bytes, measurement: bytes, *, debug: bool = False, version: int = 3) -> bytes:
    """An AMD SEV-SNP ATTESTATION_REPORT (0x4A0 bytes) with a filler signature."""
    assert len(report_data) == 64 and len(measurement) == 48
    report = bytearray(0x4A0)
    struct.pack_into("<I", report, 0x00, version)
    struct.pack_into("<Q", report, 0x08, (1 << 17) | (1 << 16) | ((1 << 19) if debug else 0))
    struct.pack_into("<I", report, 0x34, 1)  # SIGNATURE_ALGO: ECDSA P-384 with SHA-384
    report[0x50:0x90] = report_data
    report[0x90:0xC0] = measurement
    report[0xC0:0xE0] = b"\x40" * 32  # HOST_DATA
    report[0x2A0 : 0x2A0 + 144] = b"\x33" * 144  # signature R, S (filler)
    return bytes(report)
