"""Parsing our own evidence: offsets checked on Intel's genuine quotes and on spec-shaped blobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from perf_aggregator.evidence import EvidenceLayoutError, parse_sgx_quote, parse_snp_report, parse_tdx_quote
from tee.evidence_layouts import sgx_quote, snp_report, tdx_quote

# tests/tee/<this file> -> parents[3] holds the project and ``shared/`` (as in tests/client).
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "attestation"
GENUINE_TDX_MRTD = (
    "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
)
GENUINE_TDX_RTMR0 = (
    "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0"
)
GENUINE_TDX_REPORT_DATA = (
    "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9"
    "eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20"
)
GENUINE_SGX_MRENCLAVE = "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"
GENUINE_SGX_MRSIGNER = "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6"


def genuine(name: str) -> bytes:
    path = FIXTURES / name
    if not path.exists():
        pytest.fail(f"genuine Intel sample {path} is missing: ../shared/fixtures must sit beside the project")
    return path.read_bytes()


def test_genuine_tdx_quote_v4_fields() -> None:
    fields = parse_tdx_quote(genuine("tdx_quote"))
    assert fields.measurement.hex() == GENUINE_TDX_MRTD
    assert fields.registers["mrtd"].hex() == GENUINE_TDX_MRTD
    assert fields.registers["rtmr0"].hex() == GENUINE_TDX_RTMR0
    assert fields.report_data.hex() == GENUINE_TDX_REPORT_DATA
    assert not fields.debug


def test_genuine_sgx_quote_v3_fields() -> None:
    fields = parse_sgx_quote(genuine("sgx_quote"))
    assert fields.measurement.hex() == GENUINE_SGX_MRENCLAVE
    assert fields.registers["mrsigner"].hex() == GENUINE_SGX_MRSIGNER
    assert fields.report_data == b"Hello, world!".ljust(64, b"\0")


@pytest.mark.parametrize("version", [4, 5])
def test_tdx_quote_shapes(version: int) -> None:
    report_data, mrtd = bytes(range(64)), bytes(range(100, 148))
    rtmrs = (b"\x01" * 48, b"\x02" * 48, b"\x03" * 48, b"\x04" * 48)
    fields = parse_tdx_quote(tdx_quote(report_data, mrtd, rtmrs, version=version))
    assert (fields.report_data, fields.measurement) == (report_data, mrtd)
    assert [fields.registers[f"rtmr{i}"] for i in range(4)] == list(rtmrs)
    assert parse_tdx_quote(tdx_quote(report_data, mrtd, version=version, td_attributes=1)).debug


def test_snp_report_shape() -> None:
    report_data, measurement = bytes(range(64)), bytes(range(48))
    fields = parse_snp_report(snp_report(report_data, measurement))
    assert (fields.report_data, fields.measurement) == (report_data, measurement)
    assert not fields.debug and parse_snp_report(snp_report(report_data, measurement, debug=True)).debug


def test_malformed_evidence_is_a_quote_error() -> None:
    tdx = tdx_quote(bytes(64), bytes(48))
    with pytest.raises(EvidenceLayoutError):
        parse_tdx_quote(tdx[:600])
    with pytest.raises(EvidenceLayoutError):
        parse_tdx_quote(sgx_quote(bytes(64), bytes(32)) + bytes(300))  # TEE type 0, not TDX
    with pytest.raises(EvidenceLayoutError):
        parse_tdx_quote(b"\x03" + tdx[1:])  # version 3
    with pytest.raises(EvidenceLayoutError):
        parse_sgx_quote(tdx)
    with pytest.raises(EvidenceLayoutError):
        parse_snp_report(snp_report(bytes(64), bytes(48))[:-1])
    with pytest.raises(EvidenceLayoutError):
        parse_snp_report(snp_report(bytes(64), bytes(48), version=1))
