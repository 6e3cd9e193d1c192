"""Registration rate limit per client address."""

from __future__ import annotations

from pathlib import Path

import httpx

from api.envelopes import sealed_body
from conftest import closed_port_origin, enclave_settings
from perf_aggregator.api.app import create_app
from perf_aggregator.api.limits import SlidingWindowLimiter
from perf_aggregator.devserver import serve_in_thread


def test_registrations_over_the_limit_get_429_with_retry_after(enclave_data_dir: Path) -> None:
    settings = enclave_settings(enclave_data_dir, closed_port_origin(), registrations_per_minute=2)
    with serve_in_thread(create_app(settings)) as url:
        codes = [httpx.post(f"{url}/enclave/submit_key", json=sealed_body(url)).status_code for _ in range(3)]
        assert codes == [503, 503, 429]
        limited = httpx.post(f"{url}/enclave/submit_key", json=sealed_body(url))
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60


def test_sliding_window_frees_slots_as_time_passes() -> None:
    now = [0.0]
    limiter = SlidingWindowLimiter(2, window_s=60, clock=lambda: now[0])
    assert [limiter.hit("a"), limiter.hit("a"), limiter.hit("a")] == [0, 0, 60]
    assert limiter.hit("b") == 0
    now[0] = 30.0
    assert limiter.hit("a") == 30
    now[0] = 60.0
    assert limiter.hit("a") == 0
