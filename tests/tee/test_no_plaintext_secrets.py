"""No secret material is written unsealed: only sealed blobs (and the simulated key file) reach the disk."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from perf_aggregator.tee.attestation import (
    SIMULATED_KEY_FILE,
    ConfigFsTsm,
    Dstack,
    GramineSgx,
    SimulatedProvider,
)
from perf_aggregator.tee.attestation.base import AttestationProvider
from perf_aggregator.tee.enclave import Enclave
from perf_aggregator.tee.sealing import Sealer
from tee.fake_devices import FakeGramine, FakeTsmKernel


def encodings(secret: bytes) -> list[bytes]:
    """The forms a leaked secret would most likely take in a file."""
    return [secret, secret.hex().encode(), secret.hex().upper().encode(), base64.b64encode(secret)]


def test_providers_and_sealing_leave_no_plaintext_secret_on_disk(
    tmp_path: Path,
    data_dir: Path,
    tdx_kernel: FakeTsmKernel,
    gramine: FakeGramine,
    dstack_socket: str,
) -> None:
    providers: list[AttestationProvider] = [
        SimulatedProvider(data_dir=data_dir),
        ConfigFsTsm(root=tdx_kernel.root),
        GramineSgx(root=gramine.root),
        Dstack(dstack_socket),
    ]
    planted = b"PLANTED-EXCHANGE-SECRET-" + os.urandom(12).hex().encode()
    secrets: dict[str, list[bytes]] = {}
    for provider in providers:
        enclave = Enclave(provider)
        enclave.attestation_document(b"\x01" * 32)
        enclave.signed({"figures": "x"})
        key = provider.sealing_key()
        aes_key = HKDF(hashes.SHA256(), 32, None, b"perf-aggregator/sealing/v1").derive(key)
        # Read (not replaced) to search the disk for them: the enclave keys must never be persisted.
        hpke_private = enclave.keys._hpke_private.private_bytes(
            Encoding.Raw, PrivateFormat.Raw, NoEncryption()
        )
        signing_private = enclave.keys._signing_private.private_bytes(
            Encoding.Raw, PrivateFormat.Raw, NoEncryption()
        )
        secrets[provider.tee] = [key, aes_key, hpke_private, signing_private]
        sealer = Sealer.for_provider(provider)
        context = f"sessions/credentials/{provider.tee}".encode()
        blob = sealer.seal(planted, context)
        (data_dir / f"sealed-{provider.tee}.bin").write_bytes(blob)
        assert sealer.open((data_dir / f"sealed-{provider.tee}.bin").read_bytes(), context) == planted

    key_file = data_dir / SIMULATED_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len([p for p in files if p.parent == data_dir]) == len(providers) + 1
    for path in files:
        content = path.read_bytes()
        assert planted not in content, path
        for tee, values in secrets.items():
            for index, secret in enumerate(values):
                if path == key_file and tee == "simulated" and index == 0:
                    assert content == secret  # the documented exception, mode 0600 above
                    continue
                assert not any(form in content for form in encodings(secret)), (path, tee, index)
