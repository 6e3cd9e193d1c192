"""Perf-Aggregator: verifiable trading performance computed inside a TEE."""

__version__ = "0.1.0"
