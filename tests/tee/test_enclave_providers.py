"""The Enclave over every provider: same document shape, report data bound into the evidence."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest

from perf_aggregator.evidence import (
    EvidenceFields,
    parse_sgx_quote,
    parse_snp_report,
    parse_tdx_quote,
)
from perf_aggregator.protocol import parse_simulated_quote, report_data
from perf_aggregator.tee.attestation import ConfigFsTsm, Dstack, GramineSgx, SimulatedProvider
from perf_aggregator.tee.attestation.base import AttestationProvider
from perf_aggregator.tee.enclave import Enclave
from tee.fake_devices import FakeGramine, FakeTsmKernel


def _simulated(quote: bytes) -> EvidenceFields:
    measurement, report = parse_simulated_quote(quote)
    return EvidenceFields(report_data=report, measurement=measurement, debug=True)


PARSERS: dict[str, Callable[[bytes], EvidenceFields]] = {
    "simulated": _simulated,
    "tdx": parse_tdx_quote,
    "sev-snp": parse_snp_report,
    "sgx": parse_sgx_quote,
    "dstack": parse_tdx_quote,
}


@pytest.fixture(params=["simulated", "tdx", "sev-snp", "sgx", "dstack"])
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> AttestationProvider:
    match request.param:
        case "simulated":
            return SimulatedProvider(data_dir=tmp_path / "data")
        case "tdx":
            return ConfigFsTsm(root=request.getfixturevalue("tdx_kernel").root)
        case "sev-snp":
            return ConfigFsTsm(root=request.getfixturevalue("snp_kernel").root)
        case "sgx":
            return GramineSgx(root=request.getfixturevalue("gramine").root)
        case _:
            return Dstack(request.getfixturevalue("dstack_socket"))


@pytest.mark.parametrize("nonce", [b"", bytes(range(32))])
def test_document_binds_keys_and_nonce_into_the_evidence(provider: AttestationProvider, nonce: bytes) -> None:
    enclave = Enclave(provider)
    doc = enclave.attestation_document(nonce)
    assert doc["tee"] == provider.tee == enclave.tee
    expected = report_data(enclave.keys.hpke_public_key, enclave.keys.signing_public_key, nonce)
    assert doc["report_data"] == expected.hex()
    fields = PARSERS[provider.tee](base64.b64decode(doc["quote"]))
    assert fields.report_data == expected
    assert doc["measurement"] == fields.measurement.hex() == provider.measurement.hex()


def test_every_boot_has_fresh_enclave_keys(tdx_kernel: FakeTsmKernel, gramine: FakeGramine) -> None:
    provider = ConfigFsTsm(root=tdx_kernel.root)
    first, second = Enclave(provider), Enclave(provider)
    assert first.keys.hpke_public_key != second.keys.hpke_public_key
    assert first.keys.signing_public_key != second.keys.signing_public_key
    assert first.attestation_document()["report_data"] != second.attestation_document()["report_data"]
