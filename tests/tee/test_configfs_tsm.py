"""ConfigFsTsm against a fake configfs-tsm tree where the test plays the kernel."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest

from perf_aggregator.evidence import parse_snp_report, parse_tdx_quote
from perf_aggregator.tee.attestation import ConfigFsTsm
from perf_aggregator.tee.errors import AttestationUnavailable, QuoteError, ReportDataError
from tee.conftest import SNP_MEASUREMENT, TDX_MRTD
from tee.fake_devices import FakeTsmKernel

REPORT = bytes(range(64))


def test_tdx_quote_carries_our_report_data_and_mrtd(tdx_kernel: FakeTsmKernel) -> None:
    provider = ConfigFsTsm(root=tdx_kernel.root)
    assert provider.tee == "tdx"
    assert provider.measurement == TDX_MRTD
    assert provider.registers["rtmr0"] == "01" * 48
    quote = provider.quote(REPORT)
    fields = parse_tdx_quote(quote)
    assert fields.report_data == REPORT and fields.measurement == TDX_MRTD
    # The start quote (64 zero bytes) and ours, each written once to a fresh entry.
    assert tdx_kernel.log.inblobs == [bytes(64), REPORT]
    assert len(set(tdx_kernel.log.created)) == 2


def test_sev_snp_report_carries_our_report_data_and_measurement(snp_kernel: FakeTsmKernel) -> None:
    provider = ConfigFsTsm("sev-snp", root=snp_kernel.root)
    assert provider.tee == "sev-snp"
    assert provider.measurement == SNP_MEASUREMENT
    report = provider.quote(REPORT)
    assert len(report) == 0x4A0
    assert report[0x50:0x90] == REPORT and report[0x90:0xC0] == SNP_MEASUREMENT
    assert parse_snp_report(report).report_data == REPORT


def test_entries_are_removed_after_every_report(tdx_kernel: FakeTsmKernel) -> None:
    provider = ConfigFsTsm(root=tdx_kernel.root)
    for i in range(3):
        provider.quote(bytes([i]) * 64)
    assert tdx_kernel.entries() == []
    assert sorted(tdx_kernel.log.removed) == sorted(tdx_kernel.log.created)
    assert all(name.startswith(f"perf-aggregator-{os.getpid()}-") for name in tdx_kernel.log.created)


def test_missing_report_directory_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(AttestationUnavailable, match="does not exist"):
        ConfigFsTsm(root=tmp_path / "no" / "tsm" / "report")


def test_kernel_without_a_tsm_provider_is_unavailable(tmp_path: Path) -> None:
    # configfs-tsm loaded but no TDX/SEV guest driver: mkdir fails with ENXIO.
    with FakeTsmKernel(tmp_path / "report", mkdir_errno=errno.ENXIO) as kernel:
        with pytest.raises(AttestationUnavailable, match="cannot create a configfs-tsm report entry"):
            ConfigFsTsm(root=kernel.root)


def test_device_error_while_reporting_is_a_quote_error(tdx_kernel: FakeTsmKernel) -> None:
    provider = ConfigFsTsm(root=tdx_kernel.root)
    tdx_kernel.mkdir_errno = errno.EIO
    with pytest.raises(QuoteError, match="report entry"):
        provider.quote(REPORT)


def test_provider_changing_after_start_is_a_quote_error(tdx_kernel: FakeTsmKernel) -> None:
    provider = ConfigFsTsm(root=tdx_kernel.root)
    tdx_kernel.provider = "sev_guest"
    with pytest.raises(QuoteError, match="provider changed"):
        provider.quote(REPORT)
    assert tdx_kernel.entries() == []


@pytest.mark.parametrize("size", [0, 32, 63, 65])
def test_wrong_report_data_size_is_refused_before_touching_the_device(
    tdx_kernel: FakeTsmKernel, size: int
) -> None:
    provider = ConfigFsTsm(root=tdx_kernel.root)
    created = list(tdx_kernel.log.created)
    with pytest.raises(ReportDataError) as error:
        provider.quote(bytes(size))
    assert isinstance(error.value, ValueError)
    assert tdx_kernel.log.created == created


def test_explicit_tee_must_match_the_kernel_provider(snp_kernel: FakeTsmKernel) -> None:
    with pytest.raises(AttestationUnavailable, match="sev_guest"):
        ConfigFsTsm("tdx", root=snp_kernel.root)
    assert snp_kernel.entries() == []


def test_generation_moving_once_is_retried(
    tdx_kernel: FakeTsmKernel, caplog: pytest.LogCaptureFixture
) -> None:
    provider = ConfigFsTsm(root=tdx_kernel.root)
    tdx_kernel.races = 1
    created = len(tdx_kernel.log.created)
    with caplog.at_level(logging.WARNING):
        quote = provider.quote(REPORT)
    assert parse_tdx_quote(quote).report_data == REPORT
    assert len(tdx_kernel.log.created) == created + 2
    assert "another writer" in caplog.text
    assert tdx_kernel.entries() == []


def test_generation_moving_every_time_gives_up(tdx_kernel: FakeTsmKernel) -> None:
    provider = ConfigFsTsm(root=tdx_kernel.root, max_attempts=4)
    tdx_kernel.races = 1_000
    created = len(tdx_kernel.log.created)
    with pytest.raises(QuoteError, match=r"generation kept moving .* 4 attempts"):
        provider.quote(REPORT)
    assert len(tdx_kernel.log.created) == created + 4
    assert tdx_kernel.entries() == []


def test_race_during_start_is_retried_too(tmp_path: Path) -> None:
    with FakeTsmKernel(tmp_path / "report", "tdx_guest", TDX_MRTD, races=2) as kernel:
        assert ConfigFsTsm(root=kernel.root).measurement == TDX_MRTD
        assert len(kernel.log.created) == 3


def test_evidence_without_our_report_data_is_refused(tdx_kernel: FakeTsmKernel) -> None:
    provider = ConfigFsTsm(root=tdx_kernel.root)
    original = tdx_kernel.evidence
    tdx_kernel.evidence = lambda inblob: original(bytes(64))  # type: ignore[method-assign]
    with pytest.raises(QuoteError, match="report data"):
        provider.quote(REPORT)


def test_sealing_key_is_random_per_boot_and_memory_only(tdx_kernel: FakeTsmKernel) -> None:
    first, second = ConfigFsTsm(root=tdx_kernel.root), ConfigFsTsm(root=tdx_kernel.root)
    assert len(first.sealing_key()) == 32
    assert first.sealing_key() == first.sealing_key()
    assert first.sealing_key() != second.sealing_key()
