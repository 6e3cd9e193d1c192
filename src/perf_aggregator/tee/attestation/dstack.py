"""dstack CVMs (TDX underneath) through the dstack guest agent, with ``dstack-sdk``.

The SDK talks HTTP (JSON bodies, ``POST /<Method>``) to the guest agent on
the unix socket ``/var/run/dstack.sock`` (or the other default socket paths),
or to ``DSTACK_SIMULATOR_ENDPOINT`` when that variable is set. We use:

- ``GetQuote`` → a TDX quote (hex) whose report data is ours;
- ``GetKey`` with the fixed path ``perf-aggregator/sealing/v1`` → a key the
  dstack KMS derives for this application and path; expanded with HKDF to our
  32-byte sealing key;
- ``Info`` → app id, compose hash and the TCB registers (MRTD, RTMR0-3).

Measurement: **MRTD**, read from a quote over 64 zero bytes at start (and
checked against ``Info``). That is what the client's verifier reports as the
measurement of a dstack quote (it verifies dstack evidence as a TDX quote), so
document and evidence agree. MRTD identifies the dstack virtual firmware, not
our application: the application's identity (the compose hash, which pins the
container image digests) is extended into RTMR3 by the guest agent. A
verifier who wants to pin *this service's code* on dstack must pin RTMR3 (or
replay RTMR3's event log to the expected compose hash) in addition to MRTD and
RTMR0-2 (docs/sealing.md, "Measurements").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final, TypeVar

import httpx
from dstack_sdk import DstackClient, GetKeyResponse, GetQuoteResponse
from pydantic import ValidationError

from perf_aggregator.evidence import parse_tdx_quote
from perf_aggregator.tee.attestation.base import check_report_data, read_evidence
from perf_aggregator.tee.errors import AttestationUnavailable, QuoteError, SealingKeyError, TeeError
from perf_aggregator.tee.sealing import derive_key

log = logging.getLogger(__name__)

SEALING_KEY_PATH: Final = "perf-aggregator/sealing/v1"
SEALING_KEY_PURPOSE: Final = "sealing"
SEALING_KEY_LABEL: Final = b"perf-aggregator/dstack-sealing/v1"
DEFAULT_TIMEOUT_S: Final = 10.0

T = TypeVar("T")


def _call(what: str, call: Callable[[], T], error: type[TeeError] = QuoteError) -> T:
    """Run one SDK call: transport failures become ``AttestationUnavailable``, the rest ``error``."""
    try:
        return call()
    except (httpx.ConnectError, httpx.ConnectTimeout, FileNotFoundError, ConnectionError) as exc:
        raise AttestationUnavailable(f"dstack guest agent unreachable ({what}): {exc}") from None
    except httpx.HTTPStatusError as exc:
        raise error(f"dstack {what} failed with HTTP {exc.response.status_code}") from None
    except (httpx.HTTPError, ValidationError, ValueError, KeyError, TypeError) as exc:
        raise error(f"dstack {what} answer unusable: {type(exc).__name__}") from None


class Dstack:
    """Attestation and sealing inside a dstack CVM (``dstack``).

    ``endpoint`` is a unix socket path or an ``http://`` URL; ``None`` lets
    the SDK choose (``DSTACK_SIMULATOR_ENDPOINT``, then its default sockets).
    """

    tee = "dstack"

    def __init__(self, endpoint: str | None = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._lock = threading.Lock()
        try:
            self._client = DstackClient(endpoint, timeout=timeout)
        except FileNotFoundError as exc:
            raise AttestationUnavailable(f"dstack socket does not exist: {exc}") from None
        self.registers: dict[str, str] = {}
        try:
            info = _call("Info", self._client.info)
        except QuoteError as exc:
            # Older guest agents answer Info in another shape; the quote is what counts.
            log.warning("%s; the measurement is taken from the quote alone", exc)
            info = None
        fields = read_evidence(parse_tdx_quote, self._raw_quote(bytes(64)), bytes(64), None, "dstack")
        if info is not None:
            if info.tcb_info.mrtd.lower() != fields.measurement.hex():
                raise QuoteError("MRTD reported by dstack Info differs from the MRTD in its quote")
            self.registers.update(app_id=info.app_id, compose_hash=info.compose_hash)
        self.registers.update(fields.registers_hex())
        self.measurement: bytes = fields.measurement
        if fields.debug:
            log.warning("dstack TD runs in DEBUG mode: verifiers will (and must) refuse its evidence")
        log.info(
            "dstack attestation: mrtd=%s rtmr3=%s compose_hash=%s (pin RTMR3 to pin the application)",
            self.measurement.hex(),
            self.registers.get("rtmr3"),
            self.registers.get("compose_hash", "unknown"),
        )

    def _raw_quote(self, report_data: bytes) -> bytes:
        with self._lock:
            response: GetQuoteResponse = _call("GetQuote", lambda: self._client.get_quote(report_data))
        return _call("GetQuote", response.decode_quote)

    def quote(self, report_data: bytes) -> bytes:
        """The TDX quote the guest agent produces over ``report_data`` (64 bytes)."""
        report_data = check_report_data(report_data)
        quote = self._raw_quote(report_data)
        read_evidence(parse_tdx_quote, quote, report_data, self.measurement, "dstack")
        return quote

    def sealing_key(self) -> bytes:
        """HKDF-SHA256 of the dstack KMS key for ``perf-aggregator/sealing/v1``, 32 bytes."""
        with self._lock:
            response: GetKeyResponse = _call(
                "GetKey",
                lambda: self._client.get_key(SEALING_KEY_PATH, SEALING_KEY_PURPOSE),
                SealingKeyError,
            )
        raw = _call("GetKey", response.decode_key, SealingKeyError)
        if len(raw) < 16:
            raise SealingKeyError(f"dstack GetKey returned a {len(raw)}-byte key, too short to seal with")
        return derive_key(raw, SEALING_KEY_LABEL)
