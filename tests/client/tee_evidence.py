"""Real-TEE evidence for the client tests: the genuine Intel fixtures, and an honest SEV-SNP test chain.

The Intel quotes and collateral are genuine (``shared/fixtures/attestation``).
No genuine SEV-SNP report is available, so ``SnpChain`` builds an ARK ← ASK ←
VCEK chain with the same algorithms as AMD's (RSA-4096 with RSASSA-PSS/SHA-384,
VCEK on P-384) and ``SnpChain.report`` lays a report out per the SEV-SNP ABI
specification and signs it with that VCEK.
"""

from __future__ import annotations

import base64
import os
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from perf_aggregator import protocol

# tests/client/<this file> -> parents[3] is the folder holding the project and ``shared/``
# (/work here; in CI's fresh clone, ``shared/`` sits beside the project the same way).
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "attestation"

TDX_QUOTE = FIXTURES / "tdx_quote"
TDX_COLLATERAL = FIXTURES / "tdx_quote_collateral.json"
TDX_NOW = 1751624655  # 2025-07-04T10:24:15Z, README: verifies UpToDate
SGX_QUOTE = FIXTURES / "sgx_quote"
SGX_COLLATERAL = FIXTURES / "sgx_quote_collateral.json"
SGX_NOW = 1751624924  # 2025-07-04T10:28:44Z

TDX_MRTD = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
TDX_RTMR0 = "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0"
TDX_RTMR1 = "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378"
TDX_RTMR2 = "d833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132"
TDX_RTMR3 = "00" * 48
TDX_REPORT_DATA = bytes.fromhex(
    "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9"
    "eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20"
)
SGX_MRENCLAVE = "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"
SGX_MRSIGNER = "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6"
SGX_REPORT_DATA = b"Hello, world!".ljust(64, b"\0")

TDX_HEADER_BYTES = 48
TDX_BODY_BYTES = 584  # TD 1.0 report body; the quote signature covers header and body


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def document(
    tee: str,
    quote: bytes,
    report_data: bytes,
    measurement: str,
    issued_at: float,
    hpke_public: bytes | None = None,
    signing_public: bytes | None = None,
    nonce: bytes = b"",
) -> dict[str, Any]:
    """An API.md attestation document around ``quote`` (keys random unless given)."""
    return {
        "tee": tee,
        "quote": b64(quote),
        "report_data": report_data.hex(),
        "nonce": nonce.hex(),
        "hpke": {"kem_id": 32, "kdf_id": 1, "aead_id": 3, "public_key": b64(hpke_public or os.urandom(32))},
        "signing_key": {"alg": "Ed25519", "public_key": b64(signing_public or os.urandom(32))},
        "measurement": measurement,
        "version": "0.1.0",
        "issued_at": iso(issued_at),
    }


def tdx_document(tee: str = "tdx", quote: bytes | None = None) -> dict[str, Any]:
    """The genuine TDX quote in a document, consistent with it; its report data binds nothing of ours."""
    raw = TDX_QUOTE.read_bytes() if quote is None else quote
    return document(tee, raw, TDX_REPORT_DATA, TDX_MRTD, TDX_NOW)


# -- SEV-SNP ----------------------------------------------------------------------------------------

SNP_NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
POLICY_RESERVED_ONE = 1 << 17  # must be one
POLICY_SMT = 1 << 16
POLICY_DEBUG = 1 << 19


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Engineering"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Micro Devices"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def certificate(
    subject: str,
    public_key: Any,
    issuer: str,
    issuer_key: rsa.RSAPrivateKey,
    not_before: datetime,
    not_after: datetime,
    ca: bool,
    pss: bool = True,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA384(), rsa_padding=PSS if pss else padding.PKCS1v15())


@dataclass
class SnpChain:
    """A test ARK (self-signed) → ASK → VCEK chain and the VCEK private key."""

    ark_key: rsa.RSAPrivateKey
    ask_key: rsa.RSAPrivateKey
    vcek_key: ec.EllipticCurvePrivateKey
    ark: x509.Certificate
    ask: x509.Certificate
    vcek: x509.Certificate

    @classmethod
    def generate(cls, now: float = SNP_NOW) -> SnpChain:
        t0 = datetime.fromtimestamp(now, UTC)
        ark_key = rsa.generate_private_key(65537, 4096)
        ask_key = rsa.generate_private_key(65537, 4096)
        vcek_key = ec.generate_private_key(ec.SECP384R1())
        long_before, long_after = t0 - timedelta(days=365), t0 + timedelta(days=365 * 25)
        ark = certificate(
            "ARK-Test", ark_key.public_key(), "ARK-Test", ark_key, long_before, long_after, True
        )
        ask = certificate(
            "SEV-Test", ask_key.public_key(), "ARK-Test", ark_key, long_before, long_after, True
        )
        vcek = certificate(
            "SEV-VCEK",
            vcek_key.public_key(),
            "SEV-Test",
            ask_key,
            t0 - timedelta(days=1),
            t0 + timedelta(days=30),
            False,
        )
        return cls(ark_key, ask_key, vcek_key, ark, ask, vcek)

    def vcek_certificate(
        self, key: Any, not_before: datetime, not_after: datetime, pss: bool = True
    ) -> x509.Certificate:
        """Another VCEK certificate issued by this chain's ASK."""
        return certificate("SEV-VCEK", key, "SEV-Test", self.ask_key, not_before, not_after, False, pss)

    def write(
        self,
        folder: Path,
        ark: x509.Certificate | None = None,
        ask: x509.Certificate | None = None,
        vcek: x509.Certificate | None = None,
    ) -> dict[str, Path]:
        """Write ark.pem, ask.pem, vcek.pem (optionally replaced) and return ``VerificationPolicy`` kwargs."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, cert in (("ark", ark or self.ark), ("ask", ask or self.ask), ("vcek", vcek or self.vcek)):
            path = folder / f"{name}.pem"
            path.write_bytes(cert.public_bytes(Encoding.PEM))
            paths[f"snp_{name}"] = path
        return paths

    def report(
        self,
        report_data: bytes,
        measurement: bytes,
        *,
        guest_policy: int = POLICY_RESERVED_ONE | POLICY_SMT,
        host_data: bytes = bytes(32),
        signing_key: ec.EllipticCurvePrivateKey | None = None,
        version: int = 3,
        signature_algo: int = 1,
        key_info: int = 0,
    ) -> bytes:
        """An ATTESTATION_REPORT (SEV-SNP ABI spec layout) signed over bytes 0x000-0x29F."""
        assert len(report_data) == 64 and len(measurement) == 48 and len(host_data) == 32
        body = bytearray(0x4A0)
        struct.pack_into("<I", body, 0x000, version)
        struct.pack_into("<I", body, 0x004, 1)  # GUEST_SVN
        struct.pack_into("<Q", body, 0x008, guest_policy)
        struct.pack_into("<I", body, 0x030, 0)  # VMPL
        struct.pack_into("<I", body, 0x034, signature_algo)
        struct.pack_into("<Q", body, 0x038, 0x1B_00_00_00_00_00_04_03)  # CURRENT_TCB
        struct.pack_into("<I", body, 0x048, key_info)  # AUTHOR_KEY_EN, MASK_CHIP_KEY, SIGNING_KEY (0: VCEK)
        body[0x050:0x090] = report_data
        body[0x090:0x0C0] = measurement
        body[0x0C0:0x0E0] = host_data
        body[0x140:0x160] = os.urandom(32)  # REPORT_ID
        struct.pack_into("<Q", body, 0x180, 0x1B_00_00_00_00_00_04_03)  # REPORTED_TCB
        body[0x1A0:0x1E0] = os.urandom(64)  # CHIP_ID
        der = (signing_key or self.vcek_key).sign(bytes(body[:0x2A0]), ec.ECDSA(hashes.SHA384()))
        r, s = decode_dss_signature(der)
        body[0x2A0 : 0x2A0 + 72] = r.to_bytes(72, "little")
        body[0x2E8 : 0x2E8 + 72] = s.to_bytes(72, "little")
        return bytes(body)


class SnpEnclave:
    """An enclave's keys with SEV-SNP evidence from a test chain; quacks like conftest's SimulatedEnclave."""

    def __init__(self, chain: SnpChain, base: Any, measurement: bytes | None = None) -> None:
        self.chain = chain
        self.base = base  # a conftest SimulatedEnclave: keys and summary signing
        self.measurement = measurement or os.urandom(48)
        self.hpke_public = base.hpke_public
        self.signing_public = base.signing_public

    def attestation(
        self, nonce: bytes = b"", issued_at: float = SNP_NOW, **report_options: Any
    ) -> dict[str, Any]:
        report_data = protocol.report_data(self.hpke_public, self.signing_public, nonce)
        report = self.chain.report(report_data, self.measurement, **report_options)
        return document(
            "sev-snp",
            report,
            report_data,
            self.measurement.hex(),
            issued_at,
            self.hpke_public,
            self.signing_public,
            nonce,
        )

    def signed_summary(self, summary: dict[str, Any]) -> dict[str, Any]:
        signed: dict[str, Any] = self.base.signed_summary(summary)
        signed["attestation"] = self.attestation()
        return signed
