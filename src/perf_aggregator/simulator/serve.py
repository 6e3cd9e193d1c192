"""Serve the simulated Binance with uvicorn (``perf-aggregator simulator``, ``python -m``)."""

from __future__ import annotations

import uvicorn

from perf_aggregator.simulator.binance import DEFAULT_WEIGHT_LIMIT, SimulatedBinance, create_binance_app


def run(
    host: str = "127.0.0.1",
    port: int = 9100,
    seed: int = 42,
    weight_limit: int = DEFAULT_WEIGHT_LIMIT,
) -> None:
    """Serve a fresh ``SimulatedBinance(seed)`` on ``host:port`` until interrupted."""
    sim = SimulatedBinance(seed, weight_limit=weight_limit)
    uvicorn.run(create_binance_app(sim), host=host, port=port, log_level="info")
