"""Service settings, read once from the environment (API.md "Configuration")."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

TeeSetting = Literal["auto", "simulated", "tdx", "sev-snp", "sgx", "dstack"]


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "perf-aggregator"


def _exchange_url_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    prefix = "PERF_AGG_EXCHANGE_URL_"
    return {
        name[len(prefix) :].lower(): value
        for name, value in environ.items()
        if name.startswith(prefix) and value
    }


class Settings(BaseSettings):
    """Everything the operator can set. Exchange URL overrides are read separately."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    host: str = Field("127.0.0.1", alias="ENCLAVE_HOST")
    port: int = Field(3000, alias="ENCLAVE_PORT", ge=0, le=65535)
    tee: TeeSetting = Field("auto", alias="PERF_AGG_TEE")
    data_dir: Path = Field(default_factory=_default_data_dir, alias="PERF_AGG_DATA_DIR")
    poll_min_s: float = Field(10.0, alias="PERF_AGG_POLL_MIN_S", gt=0)
    poll_max_s: float = Field(300.0, alias="PERF_AGG_POLL_MAX_S", gt=0)
    registrations_per_minute: int = Field(30, alias="PERF_AGG_REGISTRATIONS_PER_MINUTE", ge=1)
    log_level: str = Field("info", alias="PERF_AGG_LOG_LEVEL")
    exchange_urls: dict[str, str] = Field(default_factory=lambda: _exchange_url_overrides(os.environ))
    """Operator-only origin overrides by exchange id, from ``PERF_AGG_EXCHANGE_URL_<ID>``."""
