"""``python -m perf_aggregator`` is the ``perf-aggregator`` command."""

from perf_aggregator.cli import app

app()
