"""The enclave identity: keys plus attestation, and the documents built from them."""

from __future__ import annotations

import base64
from typing import Any

import rfc8785

from perf_aggregator import __version__
from perf_aggregator.clock import now_ms
from perf_aggregator.formats import rfc3339_ms
from perf_aggregator.protocol import HPKE_AEAD_ID, HPKE_KDF_ID, HPKE_KEM_ID, report_data
from perf_aggregator.tee.attestation import AttestationProvider
from perf_aggregator.tee.keys import EnclaveKeys


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Enclave:
    """Generates keys inside the TEE and attests them through ``provider``."""

    def __init__(self, provider: AttestationProvider) -> None:
        self.provider = provider
        self.keys = EnclaveKeys()
        self._unbound_document: dict[str, Any] | None = None

    @property
    def tee(self) -> str:
        """The TEE type reported in documents (``simulated``, ``tdx``, ...)."""
        return self.provider.tee

    def attestation_document(self, nonce: bytes = b"") -> dict[str, Any]:
        """The ``GET /attestation/quote`` object, with ``nonce`` bound into the report data."""
        if not nonce and self._unbound_document is not None:
            return self._unbound_document
        report = report_data(self.keys.hpke_public_key, self.keys.signing_public_key, nonce)
        document = {
            "tee": self.provider.tee,
            "quote": _b64(self.provider.quote(report)),
            "report_data": report.hex(),
            "nonce": nonce.hex(),
            "hpke": {
                "kem_id": HPKE_KEM_ID,
                "kdf_id": HPKE_KDF_ID,
                "aead_id": HPKE_AEAD_ID,
                "public_key": _b64(self.keys.hpke_public_key),
            },
            "signing_key": {"alg": "Ed25519", "public_key": _b64(self.keys.signing_public_key)},
            "measurement": self.provider.measurement.hex(),
            "version": __version__,
            "issued_at": rfc3339_ms(now_ms()),
        }
        if not nonce:
            self._unbound_document = document
        return document

    def signed(self, summary: dict[str, Any]) -> dict[str, Any]:
        """``{"summary", "signature", "attestation"}``: Ed25519 over the RFC 8785 form of ``summary``."""
        signature = self.keys.sign(rfc8785.dumps(summary))
        return {
            "summary": summary,
            "signature": {
                "alg": "Ed25519",
                "public_key": _b64(self.keys.signing_public_key),
                "value": _b64(signature),
            },
            "attestation": self.attestation_document(),
        }
