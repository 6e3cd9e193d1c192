"""The ``perf-aggregator`` command: the service side and the client side."""

from __future__ import annotations

import typer

from perf_aggregator.cli import client, service

app = typer.Typer(
    help="Perf-Aggregator: verifiable trading performance from a TEE.",
    no_args_is_help=True,
    add_completion=False,
)
service.register_commands(app)
client.register_commands(app)
