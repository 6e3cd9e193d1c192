"""Fixtures shared by the suites: real servers on loopback, never patched clients."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from perf_aggregator.api.app import create_app
from perf_aggregator.config import Settings
from perf_aggregator.devserver import serve_in_thread


def closed_port_origin() -> str:
    """An origin on loopback where nothing listens (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def enclave_settings(data_dir: Path, binance_origin: str, **overrides: object) -> Settings:
    """Settings of a simulated-TEE enclave reading Binance from ``binance_origin``."""
    values: dict[str, object] = {
        "tee": "simulated",
        "data_dir": data_dir,
        "exchange_urls": {"binance": binance_origin},
        "poll_min_s": 0.2,
        "poll_max_s": 1.0,
        "log_level": "debug",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def enclave_data_dir(tmp_path: Path) -> Path:
    """The enclave's ``PERF_AGG_DATA_DIR`` for one test."""
    path = tmp_path / "enclave-data"
    path.mkdir()
    return path


@pytest.fixture
def offline_enclave(enclave_data_dir: Path) -> Iterator[str]:
    """An enclave whose Binance origin refuses connections; yields its base URL."""
    settings = enclave_settings(enclave_data_dir, closed_port_origin(), registrations_per_minute=1000)
    with serve_in_thread(create_app(settings)) as url:
        yield url
