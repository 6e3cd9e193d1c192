"""Choosing the attestation provider from ``PERF_AGG_TEE`` (API.md "Configuration").

An explicit TEE type whose device is missing is an error at start (fail
closed): the service never downgrades to simulated attestation on its own
when told to use a TEE. ``auto`` looks, in this order, for a dstack guest
agent, configfs-tsm, Gramine's ``/dev/attestation``; once an interface is
found, that provider is used or start fails with its error (a TEE that is
present but broken is not silently replaced by simulation). Only when no TEE
interface exists at all does ``auto`` fall back to simulated attestation,
with a loud warning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from perf_aggregator.tee.attestation.base import AttestationProvider
from perf_aggregator.tee.attestation.configfs_tsm import DEFAULT_TSM_ROOT, ConfigFsTsm
from perf_aggregator.tee.attestation.dstack import Dstack
from perf_aggregator.tee.attestation.gramine import DEFAULT_GRAMINE_ROOT, GramineSgx
from perf_aggregator.tee.attestation.simulated import SimulatedProvider
from perf_aggregator.tee.errors import AttestationUnavailable, UnsupportedTeeError

log = logging.getLogger(__name__)

TEE_SETTINGS: Final = ("auto", "simulated", "tdx", "sev-snp", "sgx", "dstack")
DSTACK_SOCKETS: Final = (
    Path("/var/run/dstack.sock"),
    Path("/run/dstack.sock"),
    Path("/var/run/dstack/dstack.sock"),
    Path("/run/dstack/dstack.sock"),
)
"""The guest agent sockets dstack-sdk tries, in its order."""
DSTACK_ENDPOINT_ENV: Final = "DSTACK_SIMULATOR_ENDPOINT"


def find_dstack_endpoint(
    explicit: str | None = None,
    sockets: Sequence[Path] = DSTACK_SOCKETS,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """The dstack endpoint: ``explicit``, else ``DSTACK_SIMULATOR_ENDPOINT``, else an existing socket."""
    if explicit:
        return explicit
    env = os.environ if environ is None else environ
    if env.get(DSTACK_ENDPOINT_ENV):
        return env[DSTACK_ENDPOINT_ENV]
    for socket_path in sockets:
        if socket_path.exists():
            return str(socket_path)
    return None


def _tsm_usable(root: Path) -> bool:
    return root.is_dir() and os.access(root, os.W_OK | os.X_OK)


def select_provider(
    setting: str,
    data_dir: Path,
    *,
    tsm_root: Path = DEFAULT_TSM_ROOT,
    gramine_root: Path = DEFAULT_GRAMINE_ROOT,
    dstack_endpoint: str | None = None,
    dstack_sockets: Sequence[Path] = DSTACK_SOCKETS,
    environ: Mapping[str, str] | None = None,
) -> AttestationProvider:
    """The provider for ``PERF_AGG_TEE`` = ``setting``; roots and endpoints are injectable for tests.

    Raises ``UnsupportedTeeError`` for an unknown setting and
    ``AttestationUnavailable`` / ``QuoteError`` when the TEE asked for (or
    detected) cannot attest.
    """
    match setting:
        case "simulated":
            log.warning(
                "PERF_AGG_TEE=simulated: attestation is SIMULATED and proves nothing; "
                "the sealing key is a plaintext file."
            )
            return SimulatedProvider(data_dir=data_dir)
        case "tdx" | "sev-snp":
            if not tsm_root.is_dir():
                raise AttestationUnavailable(
                    f"PERF_AGG_TEE={setting} but the configfs-tsm report directory {tsm_root} does not "
                    "exist; refusing to start without the TEE that was asked for"
                )
            return ConfigFsTsm(setting, root=tsm_root)
        case "sgx":
            if not gramine_root.is_dir():
                raise AttestationUnavailable(
                    f"PERF_AGG_TEE=sgx but Gramine's {gramine_root} does not exist (not running under "
                    "gramine-sgx); refusing to start without the TEE that was asked for"
                )
            return GramineSgx(root=gramine_root)
        case "dstack":
            endpoint = find_dstack_endpoint(dstack_endpoint, dstack_sockets, environ)
            if endpoint is None:
                raise AttestationUnavailable(
                    "PERF_AGG_TEE=dstack but no dstack socket exists "
                    f"({', '.join(map(str, dstack_sockets))}) and {DSTACK_ENDPOINT_ENV} is unset; "
                    "refusing to start without the TEE that was asked for"
                )
            return Dstack(endpoint)
        case "auto":
            return _detect(data_dir, tsm_root, gramine_root, dstack_endpoint, dstack_sockets, environ)
    raise UnsupportedTeeError(f"PERF_AGG_TEE={setting!r} is not one of {', '.join(TEE_SETTINGS)}")


def _detect(
    data_dir: Path,
    tsm_root: Path,
    gramine_root: Path,
    dstack_override: str | None,
    dstack_sockets: Sequence[Path],
    environ: Mapping[str, str] | None,
) -> AttestationProvider:
    endpoint = find_dstack_endpoint(dstack_override, dstack_sockets, environ)
    if endpoint is not None:
        log.info("PERF_AGG_TEE=auto: dstack guest agent found at %s", endpoint)
        return Dstack(endpoint)
    if _tsm_usable(tsm_root):
        log.info("PERF_AGG_TEE=auto: configfs-tsm found at %s", tsm_root)
        return ConfigFsTsm(root=tsm_root)
    if gramine_root.is_dir():
        log.info("PERF_AGG_TEE=auto: Gramine attestation found at %s", gramine_root)
        return GramineSgx(root=gramine_root)
    log.warning(
        "NO TEE DETECTED: running with SIMULATED attestation. Evidence proves nothing and the sealing "
        "key is a plaintext file; clients must refuse this enclave unless explicitly told to accept "
        "simulated quotes. Set PERF_AGG_TEE explicitly in a TEE image so a missing device stops the start."
    )
    return SimulatedProvider(data_dir=data_dir)
