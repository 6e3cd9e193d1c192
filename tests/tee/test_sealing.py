"""Sealer: AES-256-GCM blobs bound to the key, the code identity and the storage context."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from perf_aggregator.tee.attestation import SimulatedProvider
from perf_aggregator.tee.errors import SealedDataError
from perf_aggregator.tee.sealing import Sealer

KEY = bytes(range(32))
MEASUREMENT = b"\x11" * 48
CONTEXT = b"sessions/credentials/row-1"


def sealer(key: bytes = KEY, measurement: bytes = MEASUREMENT) -> Sealer:
    return Sealer(key, measurement)


def test_round_trip_and_fresh_nonce_each_time() -> None:
    first = sealer().seal(b"api secret", CONTEXT)
    second = sealer().seal(b"api secret", CONTEXT)
    assert first != second
    assert sealer().open(first, CONTEXT) == sealer().open(second, CONTEXT) == b"api secret"
    assert sealer().open(sealer().seal(b"", CONTEXT), CONTEXT) == b""


def test_blob_layout_is_versioned_and_hides_the_plaintext() -> None:
    blob = sealer().seal(b"plaintext-marker", CONTEXT)
    assert blob[:4] == b"PAS\x01"
    assert len(blob) == 4 + 12 + len(b"plaintext-marker") + 16
    assert b"plaintext-marker" not in blob


def test_aes_key_is_hkdf_of_the_sealing_key_with_the_documented_label() -> None:
    # Independent re-derivation from docs/sealing.md: HKDF-SHA256, no salt, info = label.
    aes_key = HKDF(hashes.SHA256(), 32, None, b"perf-aggregator/sealing/v1").derive(KEY)
    blob = sealer().seal(b"x", CONTEXT)
    aad = (
        b"perf-aggregator/sealing/v1"
        + b"PAS\x01"
        + len(MEASUREMENT).to_bytes(2, "big")
        + MEASUREMENT
        + len(CONTEXT).to_bytes(4, "big")
        + CONTEXT
    )
    assert AESGCM(aes_key).decrypt(blob[4:16], blob[16:], aad) == b"x"


@pytest.mark.parametrize("position", [0, 3, 4, 10, 20, -1])
def test_any_flipped_byte_fails(position: int) -> None:
    blob = bytearray(sealer().seal(b"some credentials", CONTEXT))
    blob[position] ^= 0x01
    with pytest.raises(SealedDataError):
        sealer().open(bytes(blob), CONTEXT)


def test_truncated_or_foreign_blobs_fail() -> None:
    blob = sealer().seal(b"some credentials", CONTEXT)
    for bad in (b"", blob[:4], blob[:31], blob[:-1], b"PAS\x02" + blob[4:], os.urandom(64)):
        with pytest.raises(SealedDataError):
            sealer().open(bad, CONTEXT)


def test_wrong_context_fails_so_blobs_cannot_move_between_rows() -> None:
    blob = sealer().seal(b"row one", b"sessions/credentials/row-1")
    with pytest.raises(SealedDataError):
        sealer().open(blob, b"sessions/credentials/row-2")
    with pytest.raises(SealedDataError):
        sealer().open(blob, b"sessions/credentials/row-1\0")


def test_wrong_measurement_fails_so_other_code_cannot_open() -> None:
    blob = sealer().seal(b"secret", CONTEXT)
    with pytest.raises(SealedDataError):
        sealer(measurement=b"\x12" * 48).open(blob, CONTEXT)
    with pytest.raises(SealedDataError):
        sealer(measurement=MEASUREMENT[:-1]).open(blob, CONTEXT)


def test_wrong_key_fails() -> None:
    blob = sealer().seal(b"secret", CONTEXT)
    with pytest.raises(SealedDataError):
        sealer(key=bytes(32)).open(blob, CONTEXT)


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        Sealer(b"short", MEASUREMENT)
    with pytest.raises(ValueError):
        Sealer(KEY, b"")
    with pytest.raises(ValueError):
        sealer().seal(b"x", b"")
    assert KEY.hex() not in repr(sealer())


def test_for_provider_uses_its_sealing_key_and_measurement(data_dir: Path) -> None:
    provider = SimulatedProvider(measurement=b"\x01" * 32, data_dir=data_dir)
    blob = Sealer.for_provider(provider).seal(b"x", CONTEXT)
    assert Sealer(provider.sealing_key(), b"\x01" * 32).open(blob, CONTEXT) == b"x"
    other_code = SimulatedProvider(measurement=b"\x02" * 32, data_dir=data_dir)
    with pytest.raises(SealedDataError):
        Sealer.for_provider(other_code).open(blob, CONTEXT)
