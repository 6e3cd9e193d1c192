"""Service-side commands: serve the enclave, run the simulator, run the demo."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from perf_aggregator import heap


def serve() -> None:
    """Run the enclave service on ENCLAVE_HOST:ENCLAVE_PORT (configuration from the environment)."""
    import uvicorn

    from perf_aggregator.api.app import create_app
    from perf_aggregator.config import Settings
    from perf_aggregator.exchanges.registry import load_connectors

    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings)
    load_connectors()
    heap.settle()
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level)


def simulator(
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.")] = 9100,
    seed: Annotated[int, typer.Option(help="Seed of the deterministic market.")] = 42,
    weight_limit: Annotated[int, typer.Option(help="Request weight per minute per IP.")] = 6000,
) -> None:
    """Run the Binance spot simulator (for demos and tests; never for real money)."""
    from perf_aggregator.simulator.__main__ import run

    run(host, port, seed, weight_limit)


def demo(
    trades: Annotated[int, typer.Option(help="Trades in the generated account.")] = 3000,
    days: Annotated[int, typer.Option(help="Days of history in the generated account.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of the generated account.")] = 7,
) -> None:
    """Simulator + enclave (simulated TEE) + client, end to end, ending with the figures."""
    from perf_aggregator.demo import run_demo

    raise typer.Exit(run_demo(trades=trades, days=days, seed=seed))


def register_commands(app: typer.Typer) -> None:
    """Add the service-side commands to ``app``."""
    app.command()(serve)
    app.command()(simulator)
    app.command()(demo)
