"""Constants and formulas of the enclave protocol (API.md), shared by enclave and client.

Both sides must agree on these bytes exactly, so they live in one place.
"""

from __future__ import annotations

import hashlib

from pyhpke import AEADId, CipherSuite, KDFId, KEMId

ATTESTATION_LABEL = b"perf-aggregator/attestation/v1"
CREDENTIALS_INFO = b"perf-aggregator/credentials/v1"
SIMULATED_QUOTE_PREFIX = b"PERFAGG-SIMULATED-QUOTE-V1"

HPKE_KEM_ID = 0x0020
HPKE_KDF_ID = 0x0001
HPKE_AEAD_ID = 0x0003

MAX_NONCE_BYTES = 32
MAX_BODY_BYTES = 64 * 1024


def hpke_suite() -> CipherSuite:
    """DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305, base mode."""
    return CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.CHACHA20_POLY1305)


def report_data(hpke_public_key: bytes, signing_public_key: bytes, nonce: bytes) -> bytes:
    """The 64 bytes bound into the quote: SHA-512(label || hpke pk || signing pk || nonce)."""
    if len(hpke_public_key) != 32 or len(signing_public_key) != 32:
        raise ValueError("public keys must be 32 raw bytes")
    if len(nonce) > MAX_NONCE_BYTES:
        raise ValueError("nonce is longer than 32 bytes")
    return hashlib.sha512(ATTESTATION_LABEL + hpke_public_key + signing_public_key + nonce).digest()


def simulated_quote(measurement: bytes, report: bytes) -> bytes:
    """Simulated evidence layout: prefix || measurement (32 bytes) || report_data (64 bytes)."""
    if len(measurement) != 32 or len(report) != 64:
        raise ValueError("measurement must be 32 bytes and report data 64 bytes")
    return SIMULATED_QUOTE_PREFIX + measurement + report


def parse_simulated_quote(quote: bytes) -> tuple[bytes, bytes]:
    """Split simulated evidence into ``(measurement, report_data)``; ``ValueError`` if malformed."""
    prefix = len(SIMULATED_QUOTE_PREFIX)
    if len(quote) != prefix + 96 or not quote.startswith(SIMULATED_QUOTE_PREFIX):
        raise ValueError("not a simulated quote of the v1 layout")
    return quote[prefix : prefix + 32], quote[prefix + 32 :]
