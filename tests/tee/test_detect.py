"""select_provider: explicit settings fail closed; auto tries dstack, configfs-tsm, Gramine, simulated."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from perf_aggregator.tee.attestation import (
    ConfigFsTsm,
    Dstack,
    GramineSgx,
    SimulatedProvider,
    select_provider,
)
from perf_aggregator.tee.attestation.base import AttestationProvider
from perf_aggregator.tee.errors import AttestationUnavailable, UnsupportedTeeError
from tee.fake_devices import FakeGramine, FakeTsmKernel
from tee.fake_dstack import FakeDstackAgent, serve_tcp


def choose(setting: str, tmp_path: Path, **roots: object) -> AttestationProvider:
    """select_provider with every root pointing into ``tmp_path`` (nothing exists unless made)."""
    options: dict[str, object] = {
        "tsm_root": tmp_path / "tsm" / "report",
        "gramine_root": tmp_path / "dev" / "attestation",
        "dstack_sockets": (tmp_path / "dstack.sock",),
        "environ": {},
    }
    options.update(roots)
    return select_provider(setting, tmp_path / "data", **options)


def test_auto_without_any_tee_is_simulated_and_loud(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        provider = choose("auto", tmp_path)
    assert isinstance(provider, SimulatedProvider)
    assert "NO TEE DETECTED" in caplog.text and "SIMULATED" in caplog.text
    assert provider.key_path == tmp_path / "data" / "simulated-sealing.key"


def test_explicit_simulated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert isinstance(choose("simulated", tmp_path), SimulatedProvider)
    assert "proves nothing" in caplog.text


def test_auto_finds_gramine(tmp_path: Path, gramine: FakeGramine) -> None:
    assert isinstance(choose("auto", tmp_path, gramine_root=gramine.root), GramineSgx)


def test_auto_prefers_configfs_tsm_over_gramine(
    tmp_path: Path, gramine: FakeGramine, snp_kernel: FakeTsmKernel
) -> None:
    provider = choose("auto", tmp_path, gramine_root=gramine.root, tsm_root=snp_kernel.root)
    assert isinstance(provider, ConfigFsTsm) and provider.tee == "sev-snp"


def test_auto_prefers_dstack_over_everything(
    tmp_path: Path, dstack_socket: str, tdx_kernel: FakeTsmKernel, gramine: FakeGramine
) -> None:
    provider = choose(
        "auto",
        tmp_path,
        dstack_sockets=(Path("/nonexistent/dstack.sock"), Path(dstack_socket)),
        tsm_root=tdx_kernel.root,
        gramine_root=gramine.root,
    )
    assert isinstance(provider, Dstack)
    assert tdx_kernel.log.created == [] and gramine.quotes == 0


def test_auto_honours_the_dstack_simulator_variable(tmp_path: Path, dstack_agent: FakeDstackAgent) -> None:
    with serve_tcp(dstack_agent) as url:
        provider = choose("auto", tmp_path, environ={"DSTACK_SIMULATOR_ENDPOINT": url})
        assert isinstance(provider, Dstack) and provider.tee == "dstack"


def test_auto_with_a_broken_detected_tee_fails_closed(tmp_path: Path, dstack_agent: FakeDstackAgent) -> None:
    with serve_tcp(dstack_agent) as url:
        pass  # the agent is gone, its endpoint is still configured
    with pytest.raises(AttestationUnavailable):
        choose("auto", tmp_path, environ={"DSTACK_SIMULATOR_ENDPOINT": url})


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("tdx", "configfs-tsm report directory"),
        ("sev-snp", "configfs-tsm report directory"),
        ("sgx", "Gramine"),
        ("dstack", "no dstack socket"),
    ],
)
def test_explicit_tee_with_missing_device_fails_closed(tmp_path: Path, setting: str, message: str) -> None:
    with pytest.raises(AttestationUnavailable, match=message) as error:
        choose(setting, tmp_path)
    assert f"PERF_AGG_TEE={setting}" in str(error.value)
    assert not (tmp_path / "data").exists()  # no simulated key file behind our back


def test_explicit_settings_pick_their_provider(
    tmp_path: Path, tdx_kernel: FakeTsmKernel, gramine: FakeGramine, dstack_socket: str
) -> None:
    roots = {
        "tsm_root": tdx_kernel.root,
        "gramine_root": gramine.root,
        "dstack_sockets": (Path(dstack_socket),),
    }
    assert choose("tdx", tmp_path, **roots).tee == "tdx"
    assert choose("sgx", tmp_path, **roots).tee == "sgx"
    assert choose("dstack", tmp_path, **roots).tee == "dstack"
    with pytest.raises(AttestationUnavailable, match="tdx_guest"):
        choose("sev-snp", tmp_path, **roots)


def test_unknown_setting(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedTeeError):
        choose("nitro", tmp_path)
