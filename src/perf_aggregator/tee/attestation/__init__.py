"""Attestation providers: who produces the evidence that binds our keys to our code.

One module per provider behind one ``Protocol`` (``AttestationProvider``):

- ``SimulatedProvider`` (``simulated``): no TEE; evidence proves nothing.
- ``ConfigFsTsm`` (``tdx``, ``sev-snp``): the Linux configfs-tsm report interface.
- ``GramineSgx`` (``sgx``): Gramine's ``/dev/attestation``.
- ``Dstack`` (``dstack``): the dstack guest agent through ``dstack-sdk``.

``select_provider`` maps ``PERF_AGG_TEE`` to one of them.
"""

from perf_aggregator.tee.attestation.base import REPORT_DATA_BYTES, AttestationProvider
from perf_aggregator.tee.attestation.configfs_tsm import DEFAULT_TSM_ROOT, ConfigFsTsm
from perf_aggregator.tee.attestation.detect import DSTACK_SOCKETS, find_dstack_endpoint, select_provider
from perf_aggregator.tee.attestation.dstack import SEALING_KEY_PATH, Dstack
from perf_aggregator.tee.attestation.gramine import DEFAULT_GRAMINE_ROOT, GramineSgx
from perf_aggregator.tee.attestation.simulated import (
    SIMULATED_KEY_FILE,
    SimulatedProvider,
    source_measurement,
)

__all__ = [
    "DEFAULT_GRAMINE_ROOT",
    "DEFAULT_TSM_ROOT",
    "DSTACK_SOCKETS",
    "REPORT_DATA_BYTES",
    "SEALING_KEY_PATH",
    "SIMULATED_KEY_FILE",
    "AttestationProvider",
    "ConfigFsTsm",
    "Dstack",
    "GramineSgx",
    "SimulatedProvider",
    "find_dstack_endpoint",
    "select_provider",
    "source_measurement",
]
