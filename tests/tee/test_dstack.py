"""Dstack against a fake guest agent speaking the routes dstack-sdk calls, on a unix socket and loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from perf_aggregator.evidence import parse_tdx_quote
from perf_aggregator.tee.attestation import SEALING_KEY_PATH, Dstack
from perf_aggregator.tee.errors import AttestationUnavailable, QuoteError, ReportDataError, SealingKeyError
from tee.fake_dstack import FakeDstackAgent, serve_tcp, serve_unix

REPORT = bytes(range(64))


def test_quote_over_our_report_data(dstack_agent: FakeDstackAgent, dstack_socket: str) -> None:
    provider = Dstack(dstack_socket)
    assert provider.tee == "dstack"
    quote = provider.quote(REPORT)
    fields = parse_tdx_quote(quote)
    assert fields.report_data == REPORT and fields.measurement == dstack_agent.mrtd
    assert ("/GetQuote", {"report_data": REPORT.hex()}) in dstack_agent.requests


def test_measurement_is_mrtd_and_info_registers_are_kept(
    dstack_agent: FakeDstackAgent, dstack_socket: str
) -> None:
    provider = Dstack(dstack_socket)
    assert provider.measurement == dstack_agent.mrtd
    assert provider.registers["compose_hash"] == dstack_agent.compose_hash
    assert provider.registers["app_id"] == dstack_agent.app_id
    assert [provider.registers[f"rtmr{i}"] for i in range(4)] == [r.hex() for r in dstack_agent.rtmrs]
    assert dstack_agent.requests[0] == ("/Info", {})


def test_sealing_key_comes_from_get_key_with_the_fixed_path(
    dstack_agent: FakeDstackAgent, dstack_socket: str
) -> None:
    key = Dstack(dstack_socket).sealing_key()
    raw = dstack_agent.derived_key(SEALING_KEY_PATH, "sealing")
    assert key == HKDF(hashes.SHA256(), 32, None, b"perf-aggregator/dstack-sealing/v1").derive(raw)
    get_key = [body for path, body in dstack_agent.requests if path == "/GetKey"]
    assert get_key == [{"path": "perf-aggregator/sealing/v1", "purpose": "sealing", "algorithm": "secp256k1"}]
    assert Dstack(dstack_socket).sealing_key() == key  # same app, same path: same key across restarts


def test_http_endpoint_works_like_the_simulator_variable(dstack_agent: FakeDstackAgent) -> None:
    with serve_tcp(dstack_agent) as url:
        provider = Dstack(url)
        assert parse_tdx_quote(provider.quote(REPORT)).report_data == REPORT


def test_socket_missing_is_unavailable(short_dir: Path) -> None:
    with pytest.raises(AttestationUnavailable, match="does not exist"):
        Dstack(str(short_dir / "dstack.sock"))


def test_endpoint_down_is_unavailable(dstack_agent: FakeDstackAgent, short_dir: Path) -> None:
    socket_path = short_dir / "dstack.sock"
    with serve_unix(dstack_agent, socket_path):
        provider = Dstack(str(socket_path))
    assert socket_path.exists()  # the socket file stays, nobody listens
    with pytest.raises(AttestationUnavailable, match="unreachable"):
        provider.quote(REPORT)
    with pytest.raises(AttestationUnavailable):
        Dstack(str(socket_path))


def test_http_endpoint_down_is_unavailable(dstack_agent: FakeDstackAgent) -> None:
    with serve_tcp(dstack_agent) as url:
        pass
    with pytest.raises(AttestationUnavailable):
        Dstack(url)


def test_agent_errors(dstack_agent: FakeDstackAgent, dstack_socket: str) -> None:
    provider = Dstack(dstack_socket)
    dstack_agent.fail.update(GetQuote=500, GetKey=403)
    with pytest.raises(QuoteError, match="HTTP 500"):
        provider.quote(REPORT)
    with pytest.raises(SealingKeyError, match="HTTP 403"):
        provider.sealing_key()
    with pytest.raises(ReportDataError):
        provider.quote(b"short")


def test_info_mrtd_disagreeing_with_the_quote_fails_start(
    dstack_agent: FakeDstackAgent, dstack_socket: str
) -> None:
    dstack_agent.info_mrtd = "00" * 48
    with pytest.raises(QuoteError, match="MRTD"):
        Dstack(dstack_socket)


def test_unreadable_info_falls_back_to_the_quote(dstack_agent: FakeDstackAgent, dstack_socket: str) -> None:
    dstack_agent.fail["Info"] = 404  # an agent without the 0.5 Info method
    provider = Dstack(dstack_socket)
    assert provider.measurement == dstack_agent.mrtd
    assert "compose_hash" not in provider.registers
