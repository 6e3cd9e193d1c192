"""Sealing: authenticated encryption of data at rest under the TEE's sealing key.

Blob format, version 1 (all of it authenticated)::

    b"PAS" || 0x01 || nonce (12 bytes, random) || AES-256-GCM ciphertext || tag (16 bytes)

The AES key is HKDF-SHA256 of the provider's sealing key with the label
``perf-aggregator/sealing/v1``. The associated data is::

    b"perf-aggregator/sealing/v1" || header (4 bytes)
        || len(measurement) (u16, big-endian) || measurement
        || len(context) (u32, big-endian) || context

so a blob opens only for the same key, the same code identity (measurement) and
the same caller context (for example a table and row name): a blob written by
other code, or copied into another row, does not open. See ``docs/sealing.md``.
"""

from __future__ import annotations

import os
import struct
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from perf_aggregator.tee.errors import SealedDataError

SEALING_LABEL = b"perf-aggregator/sealing/v1"
MAGIC = b"PAS"
VERSION = 1
HEADER = MAGIC + bytes([VERSION])
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32


def derive_key(ikm: bytes, label: bytes, length: int = KEY_BYTES) -> bytes:
    """HKDF-SHA256 (no salt) of ``ikm`` with ``label`` as info: a key for one purpose only."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label).derive(ikm)


class SealingKeySource(Protocol):
    """What a ``Sealer`` needs from an attestation provider."""

    measurement: bytes

    def sealing_key(self) -> bytes:
        """32 bytes bound to the TEE (and, where the TEE allows, to the code)."""
        ...


class Sealer:
    """Seals and opens blobs under a key derived from the provider's sealing key.

    Only the derived AES key is kept (inside the AESGCM object); the raw
    sealing key given is not stored.
    """

    def __init__(self, key: bytes, measurement: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("the sealing key must be 32 bytes")
        if not measurement or len(measurement) > 0xFFFF:
            raise ValueError("the measurement must be 1 to 65535 bytes")
        self._aead = AESGCM(derive_key(key, SEALING_LABEL))
        self._measurement = bytes(measurement)

    @classmethod
    def for_provider(cls, provider: SealingKeySource) -> Sealer:
        """A sealer for ``provider``'s sealing key and measurement (the usual constructor)."""
        return cls(provider.sealing_key(), provider.measurement)

    def _aad(self, context: bytes) -> bytes:
        if not context:
            raise ValueError("a sealing context (where the blob is stored) is required")
        return b"".join(
            (
                SEALING_LABEL,
                HEADER,
                struct.pack(">H", len(self._measurement)),
                self._measurement,
                struct.pack(">I", len(context)),
                context,
            )
        )

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext`` for ``context``; a fresh random nonce each call."""
        nonce = os.urandom(NONCE_BYTES)
        return HEADER + nonce + self._aead.encrypt(nonce, plaintext, self._aad(context))

    def open(self, blob: bytes, context: bytes) -> bytes:
        """The plaintext of ``blob`` sealed for ``context``; ``SealedDataError`` if it does not open."""
        aad = self._aad(context)
        if len(blob) < len(HEADER) + NONCE_BYTES + TAG_BYTES or blob[: len(HEADER)] != HEADER:
            raise SealedDataError("sealed blob is truncated or of an unknown format version")
        nonce = blob[len(HEADER) : len(HEADER) + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[len(HEADER) + NONCE_BYTES :], aad)
        except InvalidTag:
            raise SealedDataError(
                "sealed blob does not open: tampered, sealed by other code or key, or for another context"
            ) from None

    def __repr__(self) -> str:
        return f"Sealer(measurement={self._measurement.hex()})"
