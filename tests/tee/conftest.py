"""Fixtures of the tee tests: fake devices and a fake dstack guest agent, never patched code."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tee.fake_devices import FakeGramine, FakeTsmKernel
from tee.fake_dstack import FakeDstackAgent, serve_unix

TDX_MRTD = bytes.fromhex("9d" * 48)
SNP_MEASUREMENT = bytes.fromhex("5e" * 48)
MRENCLAVE = bytes.fromhex("e1" * 32)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The enclave's ``PERF_AGG_DATA_DIR`` for one test (created, empty)."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def tdx_kernel(tmp_path: Path) -> Iterator[FakeTsmKernel]:
    """A TDX guest's configfs-tsm report folder, with the fake kernel active."""
    with FakeTsmKernel(tmp_path / "tsm" / "report", "tdx_guest", TDX_MRTD) as kernel:
        yield kernel


@pytest.fixture
def snp_kernel(tmp_path: Path) -> Iterator[FakeTsmKernel]:
    """A SEV-SNP guest's configfs-tsm report folder, with the fake kernel active."""
    with FakeTsmKernel(tmp_path / "tsm" / "report", "sev_guest", SNP_MEASUREMENT) as kernel:
        yield kernel


@pytest.fixture
def gramine(tmp_path: Path) -> Iterator[FakeGramine]:
    """Gramine's ``/dev/attestation`` with the fake active."""
    with FakeGramine(tmp_path / "dev" / "attestation", MRENCLAVE, b"\x42" * 16) as device:
        yield device


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory for unix sockets (their paths are limited to about 100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="pa-tee-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def dstack_agent() -> FakeDstackAgent:
    """The fake guest agent's state (its answers, recorded requests)."""
    return FakeDstackAgent()


@pytest.fixture
def dstack_socket(dstack_agent: FakeDstackAgent, short_dir: Path) -> Iterator[str]:
    """The fake guest agent served on a unix socket; yields the socket path."""
    with serve_unix(dstack_agent, short_dir / "dstack.sock") as path:
        yield path
