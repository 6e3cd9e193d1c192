"""Operational figures for ``GET /metrics``: counts and latencies, never per-user data."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

SESSIONS = Gauge("perf_agg_sessions", "Live sessions.", registry=REGISTRY)
POLLS = Counter(
    "perf_agg_polls_total",
    "Polls of an exchange account, by outcome.",
    ["exchange", "outcome"],
    registry=REGISTRY,
)
EXCHANGE_ERRORS = Counter(
    "perf_agg_exchange_errors_total", "Exchange errors by kind.", ["exchange", "kind"], registry=REGISTRY
)
REQUEST_SECONDS = Histogram(
    "perf_agg_http_request_seconds",
    "HTTP request latency by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
