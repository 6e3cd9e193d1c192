"""The ``perf-aggregator`` command: serve the enclave, run the simulator, run the demo."""

from __future__ import annotations

import logging

import typer

app = typer.Typer(
    help="Perf-Aggregator: verifiable trading performance from a TEE.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def serve() -> None:
    """Run the enclave service on ENCLAVE_HOST:ENCLAVE_PORT (configuration from the environment)."""
    import uvicorn

    from perf_aggregator.api.app import create_app
    from perf_aggregator.config import Settings

    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level)


@app.command()
def simulator(
    host: str = typer.Option("127.0.0.1", help="Listen address."),
    port: int = typer.Option(9100, help="Listen port."),
    seed: int = typer.Option(42, help="Seed of the deterministic market."),
    weight_limit: int = typer.Option(6000, help="Request weight per minute per IP."),
) -> None:
    """Run the Binance spot simulator (for demos and tests; never for real money)."""
    from perf_aggregator.simulator.__main__ import run

    run(host, port, seed, weight_limit)


@app.command()
def demo(
    trades: int = typer.Option(3000, help="Trades in the generated account."),
    days: int = typer.Option(30, help="Days of history in the generated account."),
    seed: int = typer.Option(7, help="Seed of the generated account."),
) -> None:
    """Simulator + enclave (simulated TEE) + client, end to end, ending with the figures."""
    from perf_aggregator.demo import run_demo

    raise typer.Exit(run_demo(trades=trades, days=days, seed=seed))
