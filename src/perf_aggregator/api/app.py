"""The FastAPI application: the whole enclave service in one process."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from perf_aggregator import __version__
from perf_aggregator.api.errors import install_error_handlers
from perf_aggregator.api.limits import BodyLimitMiddleware, SlidingWindowLimiter
from perf_aggregator.api.observability import RequestTimingMiddleware
from perf_aggregator.api.routes import router
from perf_aggregator.clock import Clock, now_ms
from perf_aggregator.config import Settings
from perf_aggregator.sessions.registry import SessionRegistry
from perf_aggregator.sessions.store import SessionStore
from perf_aggregator.tee.attestation import select_provider
from perf_aggregator.tee.enclave import Enclave
from perf_aggregator.tee.sealing import Sealer


def create_app(settings: Settings | None = None, clock_ms: Clock | None = None) -> FastAPI:
    """Build the service; the enclave keys are generated when the app starts.

    ``clock_ms`` replaces the wall clock of the session registry (tests of expiry).
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        enclave = Enclave(select_provider(settings.tee, settings.data_dir))
        store = SessionStore.open(settings.data_dir, Sealer.for_provider(enclave.provider))
        registry = SessionRegistry(enclave, settings, store, clock_ms or now_ms)
        try:
            await registry.start()
            app.state.registry = registry
            app.state.started = time.monotonic()
            app.state.registration_limiter = SlidingWindowLimiter(settings.registrations_per_minute)
            yield
        finally:
            await registry.close()
            store.close()

    app = FastAPI(
        title="Perf-Aggregator enclave",
        version=__version__,
        description="Verifiable trading performance computed inside a TEE (API.md v1).",
        lifespan=lifespan,
    )
    app.include_router(router)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RequestTimingMiddleware)
    return app
