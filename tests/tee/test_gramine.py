"""GramineSgx against a fake /dev/attestation tree where the test plays Gramine."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from perf_aggregator.evidence import parse_sgx_quote
from perf_aggregator.tee.attestation import GramineSgx
from perf_aggregator.tee.errors import AttestationUnavailable, QuoteError, ReportDataError, SealingKeyError
from tee.conftest import MRENCLAVE
from tee.fake_devices import FakeGramine

REPORT = bytes(range(64))


def test_quote_carries_our_report_data_and_mrenclave(gramine: FakeGramine) -> None:
    provider = GramineSgx(root=gramine.root)
    assert provider.tee == "sgx"
    assert provider.measurement == MRENCLAVE
    quote = provider.quote(REPORT)
    assert parse_sgx_quote(quote).report_data == REPORT
    assert (gramine.root / "user_report_data").read_bytes() == REPORT
    assert gramine.quotes == 2  # the start quote over zeros, then ours


def test_sealing_key_is_the_mrenclave_key_expanded_with_hkdf(gramine: FakeGramine) -> None:
    key = GramineSgx(root=gramine.root).sealing_key()
    expected = HKDF(hashes.SHA256(), 32, None, b"perf-aggregator/gramine-sgx-sealing/v1").derive(b"\x42" * 16)
    assert key == expected and len(key) == 32
    assert b"\x42" * 16 not in key


def test_missing_device_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(AttestationUnavailable, match="gramine-sgx"):
        GramineSgx(root=tmp_path / "dev" / "attestation")


def test_attestation_type_none_is_unavailable(tmp_path: Path) -> None:
    with FakeGramine(tmp_path / "attestation", attestation_type="none") as device:
        with pytest.raises(AttestationUnavailable, match="none"):
            GramineSgx(root=device.root)


def test_target_info_disagreeing_with_the_quote_fails_start(tmp_path: Path) -> None:
    with FakeGramine(tmp_path / "attestation", MRENCLAVE, target_info_mrenclave=b"\x00" * 32) as device:
        with pytest.raises(QuoteError, match="my_target_info"):
            GramineSgx(root=device.root)


def test_wrong_report_data_size(gramine: FakeGramine) -> None:
    provider = GramineSgx(root=gramine.root)
    with pytest.raises(ReportDataError):
        provider.quote(b"\x01" * 65)
    assert gramine.quotes == 1


def test_sealing_key_missing_or_malformed(gramine: FakeGramine) -> None:
    provider = GramineSgx(root=gramine.root)
    (gramine.root / "keys" / "_sgx_mrenclave").write_bytes(b"\x01" * 15)
    with pytest.raises(SealingKeyError, match="15 bytes"):
        provider.sealing_key()
    (gramine.root / "keys" / "_sgx_mrenclave").unlink()
    with pytest.raises(SealingKeyError):
        provider.sealing_key()


def test_quote_file_vanishing_is_unavailable(gramine: FakeGramine) -> None:
    provider = GramineSgx(root=gramine.root)
    (gramine.root / "user_report_data").unlink()
    with pytest.raises(AttestationUnavailable, match="user_report_data"):
        provider.quote(REPORT)
