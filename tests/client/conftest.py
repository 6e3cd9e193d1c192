"""A locally keyed stand-in for the enclave's cryptographic side, built from ``protocol`` alone."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pyhpke import KEMKey

from client.tee_evidence import SnpChain
from perf_aggregator import protocol
from perf_aggregator.client import VerificationPolicy


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class SimulatedEnclave:
    """Fresh HPKE and signing keys, simulated evidence, envelope opening and summary signing."""

    def __init__(self) -> None:
        self.hpke_private = X25519PrivateKey.generate()
        self.signing_private = Ed25519PrivateKey.generate()
        self.measurement = os.urandom(32)
        self.hpke_public = self.hpke_private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.signing_public = self.signing_private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def attestation(self, nonce: bytes = b"") -> dict[str, Any]:
        report = protocol.report_data(self.hpke_public, self.signing_public, nonce)
        return {
            "tee": "simulated",
            "quote": b64(protocol.simulated_quote(self.measurement, report)),
            "report_data": report.hex(),
            "nonce": nonce.hex(),
            "hpke": {"kem_id": 32, "kdf_id": 1, "aead_id": 3, "public_key": b64(self.hpke_public)},
            "signing_key": {"alg": "Ed25519", "public_key": b64(self.signing_public)},
            "measurement": self.measurement.hex(),
            "version": "0.1.0",
            "issued_at": "2026-01-31T12:00:00.123Z",
        }

    def open(self, body: dict[str, Any]) -> dict[str, Any]:
        """Open a submit_key body as the enclave would; pyhpke.OpenError if it does not open."""
        recipient = KEMKey.from_pyca_cryptography_key(self.hpke_private)
        context = protocol.hpke_suite().create_recipient_context(
            base64.b64decode(body["enc"]), recipient, info=protocol.CREDENTIALS_INFO
        )
        plaintext = context.open(base64.b64decode(body["ciphertext"]), aad=rfc8785.dumps(body["metadata"]))
        result: dict[str, Any] = json.loads(plaintext)
        return result

    def signed_summary(self, summary: dict[str, Any]) -> dict[str, Any]:
        signature = self.signing_private.sign(rfc8785.dumps(summary))
        return {
            "summary": summary,
            "signature": {"alg": "Ed25519", "public_key": b64(self.signing_public), "value": b64(signature)},
            "attestation": self.attestation(),
        }


@pytest.fixture
def enclave() -> SimulatedEnclave:
    return SimulatedEnclave()


@pytest.fixture
def dev_policy() -> VerificationPolicy:
    return VerificationPolicy(allow_simulated=True)


@pytest.fixture(scope="module")
def module_enclave() -> SimulatedEnclave:
    """One enclave for a module's server, which outlives function-scoped fixtures."""
    return SimulatedEnclave()


@pytest.fixture(scope="session")
def snp_chain() -> SnpChain:
    """One test ARK/ASK/VCEK chain for the session (RSA-4096 key generation is the slow part)."""
    return SnpChain.generate()
