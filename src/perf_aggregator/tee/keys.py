"""The enclave's own key pairs, generated inside at start and never exported."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pyhpke import KEMKey

from perf_aggregator.protocol import hpke_suite


class EnvelopeOpenError(Exception):
    """An HPKE envelope could not be opened (wrong key, tampered ciphertext or AAD)."""


class EnclaveKeys:
    """HPKE (X25519) and signing (Ed25519) keys; only public halves leave this object."""

    def __init__(self) -> None:
        self._hpke_private = X25519PrivateKey.generate()
        self._signing_private = Ed25519PrivateKey.generate()
        self._hpke_kem_key = KEMKey.from_pyca_cryptography_key(self._hpke_private)
        self.hpke_public_key: bytes = self._hpke_private.public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw
        )
        self.signing_public_key: bytes = self._signing_private.public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw
        )

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of ``message`` with the enclave signing key."""
        return self._signing_private.sign(message)

    def open(self, enc: bytes, ciphertext: bytes, info: bytes, aad: bytes) -> bytes:
        """Open an HPKE base-mode envelope addressed to the enclave's HPKE key."""
        try:
            context = hpke_suite().create_recipient_context(enc, self._hpke_kem_key, info=info)
            return context.open(ciphertext, aad=aad)
        except Exception as exc:  # pyhpke raises several types; all mean "cannot be opened"
            raise EnvelopeOpenError("the envelope cannot be opened") from exc

    def __repr__(self) -> str:
        return f"EnclaveKeys(hpke_public_key={self.hpke_public_key.hex()}, ...)"
