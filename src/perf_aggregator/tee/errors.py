"""Errors of the ``tee`` component: one hierarchy, each saying when it is raised.

Messages name devices, paths and endpoints, never key material or report data
contents.
"""

from __future__ import annotations


class TeeError(Exception):
    """Base class of every error raised by the ``tee`` component."""


class UnsupportedTeeError(TeeError, ValueError):
    """``PERF_AGG_TEE`` names a TEE type this build does not know."""


class AttestationUnavailable(TeeError):
    """The TEE interface is missing or cannot be reached.

    Raised when the configfs-tsm report directory, Gramine's
    ``/dev/attestation`` or the dstack socket/endpoint does not exist, is not
    accessible, refuses connections, or belongs to a different TEE than the
    one configured. At start this is fatal for an explicit ``PERF_AGG_TEE``:
    the service never falls back to simulated attestation silently.
    """


class QuoteError(TeeError):
    """The TEE was reached but did not produce usable evidence.

    Raised when the device or agent answers with an error, the evidence does
    not parse, does not carry the report data we asked for, reports another
    measurement than at start, or when configfs-tsm's generation counter kept
    moving (another writer) for every bounded retry.
    """


class ReportDataError(TeeError, ValueError):
    """``quote()`` was given report data that is not exactly 64 bytes."""


class SealingKeyError(TeeError):
    """The provider cannot produce its sealing key.

    Raised when Gramine's ``keys/_sgx_mrenclave`` is missing or malformed,
    dstack refuses ``GetKey``, or the simulated key file is unusable (wrong
    size, too permissive mode, no data directory).
    """


class SealedDataError(TeeError):
    """A sealed blob does not open.

    Raised for a blob that is truncated, of an unknown format version, was
    tampered with, was sealed under another key or measurement (other code),
    or under another context (moved between rows). The cases are deliberately
    indistinguishable.
    """
