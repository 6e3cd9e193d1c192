"""Perf-Aggregator: verifiable trading performance computed inside a TEE.

The library surface is the client: ``from perf_aggregator import EnclaveClient,
Credentials, VerificationPolicy, verify_attestation, verify_summary``. Those names
load lazily, so the enclave process never imports client code.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_CLIENT_EXPORTS = frozenset(
    {
        "AttestationError",
        "ClientError",
        "Credentials",
        "EnclaveClient",
        "EnclaveError",
        "Registration",
        "SummaryVerificationError",
        "VerificationPolicy",
        "VerifiedEnclave",
        "seal_credentials",
        "verify_attestation",
        "verify_summary",
    }
)

__all__ = ["__version__", *sorted(_CLIENT_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name in _CLIENT_EXPORTS:
        return getattr(importlib.import_module("perf_aggregator.client"), name)
    raise AttributeError(f"module 'perf_aggregator' has no attribute {name!r}")
