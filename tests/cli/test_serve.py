"""``perf-aggregator serve``: configuration from the environment, connectors loaded and the startup
heap frozen and the collector's young threshold raised before the server runs."""

from __future__ import annotations

import gc
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from perf_aggregator.cli.service import serve
from perf_aggregator.exchanges.registry import ACCOUNT_CONNECTORS, MARKET_DATA
from perf_aggregator.heap import YOUNG_THRESHOLD


def test_serve_loads_every_connector_and_settles_the_collector(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}

    def run(app: FastAPI, **options: Any) -> None:
        seen.update(
            options,
            app=app,
            frozen=gc.get_freeze_count(),
            threshold=gc.get_threshold(),
            modules=set(sys.modules),
        )

    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setenv("ENCLAVE_HOST", "127.0.0.2")
    monkeypatch.setenv("ENCLAVE_PORT", "3999")
    monkeypatch.setenv("PERF_AGG_DATA_DIR", str(tmp_path))
    handlers = logging.root.handlers[:]
    threshold = gc.get_threshold()
    try:
        serve()
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        logging.root.handlers[:] = handlers
    assert isinstance(seen["app"], FastAPI)
    assert (seen["host"], seen["port"]) == ("127.0.0.2", 3999)
    modules = {path.partition(":")[0] for path in [*ACCOUNT_CONNECTORS.values(), *MARKET_DATA.values()]}
    assert modules | {"perf_aggregator.exchanges.ccxt_generic", "ccxt"} <= seen["modules"]
    assert seen["frozen"] > 100_000  # ccxt and the service's modules, out of the collector's passes
    assert seen["threshold"] == (YOUNG_THRESHOLD, *threshold[1:]) and threshold[0] == 700
