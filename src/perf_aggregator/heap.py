"""The garbage collector's settings of the service process (``perf-aggregator serve``)."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Containers allocated (net of those freed) between two young collections; CPython's default is
700. Ingest allocates a tuple per fill and frees it with its page, by reference counting: at 700 a
young collection ran every few hundred fills, visiting each new trade once for nothing (0.28 s of
a 1M-trade ingest, about 6% of it, measured with ``gc.callbacks``); at 10 000 none runs while
pages come and go. Cyclic garbage waits for 10 000 new containers at most."""


def settle() -> None:
    """Set the collector for a long-running service, once its code is loaded: what is loaded by
    now (ccxt alone is some 170k objects) lives as long as the process and is frozen, out of the
    collector's passes (each full one would otherwise walk it all, about 0.1 s with the GIL held,
    several times per million trades ingested); young collections wait for
    :data:`YOUNG_THRESHOLD` containers."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
