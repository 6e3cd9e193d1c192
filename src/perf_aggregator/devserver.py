"""Run an ASGI app with uvicorn in a background thread on a free loopback port.

Used by the tests, the benchmarks and anything else that needs a real HTTP
server in-process; the production entry point is ``perf-aggregator serve``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def serve_in_thread(
    app: Any, host: str = "127.0.0.1", startup_timeout_s: float = 20.0, access_log: bool = False
) -> Iterator[str]:
    """Serve ``app`` until the block exits; yields its base URL (``http://127.0.0.1:PORT``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    # log_config=None: leave the process's logging alone, so records reach its handlers.
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="info" if access_log else "warning",
        lifespan="on",
        access_log=access_log,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout_s)
        sock.close()
