"""A fake dstack guest agent: the HTTP routes dstack-sdk 0.5.x calls, on a unix socket or on loopback.

The SDK sends ``POST /<Method>`` with a JSON body and ``Content-Type:
application/json`` and reads a JSON object back (``dstack_client.py``:
``_send_rpc_request``). Routes implemented, with the shapes the SDK's pydantic
models require:

- ``/GetQuote`` ``{"report_data": hex}`` → ``{"quote": hex, "event_log": json-string,
  "report_data": hex, "vm_config": str}``; the quote is a TDX quote v4 over the
  report data, zero-padded to 64 bytes like the guest agent does.
- ``/GetKey`` ``{"path", "purpose", "algorithm"}`` → ``{"key": hex, "signature_chain": [hex]}``;
  the key is HMAC-SHA256(master, path || 0 || purpose), so it is deterministic
  per path like the real KMS-derived key.
- ``/Info`` ``{}`` → app id, compose hash, and ``tcb_info`` as a JSON *string*
  holding mrtd, rtmr0-3, the event log and the 0.5.x fields.

Any other route is a 404. ``fail`` maps a method to an HTTP status to answer
with instead. Every request is recorded as ``(path, body)``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tee.evidence_layouts import tdx_quote


@dataclass
class FakeDstackAgent:
    """State and behaviour of the fake guest agent."""

    mrtd: bytes = b"\xd7" * 48
    rtmrs: tuple[bytes, bytes, bytes, bytes] = (b"\x10" * 48, b"\x11" * 48, b"\x12" * 48, b"\x13" * 48)
    master_key: bytes = b"fake-dstack-kms-master-key-32byt"
    compose_hash: str = "c0" * 32
    app_id: str = "ab" * 20
    info_mrtd: str | None = None
    """MRTD that ``Info`` reports (default: the quote's)."""
    fail: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def derived_key(self, path: str, purpose: str) -> bytes:
        """The key ``GetKey`` answers for ``path`` and ``purpose``."""
        return hmac.new(self.master_key, path.encode() + b"\0" + purpose.encode(), hashlib.sha256).digest()

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests.append((path, body))
        method = path.lstrip("/")
        if method in self.fail:
            return self.fail[method], {"error": f"{method} failed"}
        if method == "GetQuote":
            report_data = bytes.fromhex(body["report_data"]).ljust(64, b"\0")
            quote = tdx_quote(report_data, self.mrtd, self.rtmrs)
            events = [{"imr": 3, "event_type": 134217729, "digest": "00" * 48, "event": "compose-hash",
                       "event_payload": self.compose_hash}]  # fmt: skip
            return 200, {
                "quote": quote.hex(),
                "event_log": json.dumps(events),
                "report_data": report_data.hex(),
                "vm_config": "{}",
            }
        if method == "GetKey":
            key = self.derived_key(body["path"], body["purpose"])
            return 200, {"key": key.hex(), "signature_chain": ["5a" * 65, "5b" * 65]}
        if method == "Info":
            tcb_info = {
                "mrtd": self.info_mrtd or self.mrtd.hex(),
                "rtmr0": self.rtmrs[0].hex(),
                "rtmr1": self.rtmrs[1].hex(),
                "rtmr2": self.rtmrs[2].hex(),
                "rtmr3": self.rtmrs[3].hex(),
                "app_compose": "{}",
                "event_log": [],
                "mr_aggregated": "aa" * 32,
                "os_image_hash": "bb" * 32,
                "compose_hash": self.compose_hash,
                "device_id": "dd" * 32,
            }
            return 200, {
                "app_id": self.app_id,
                "instance_id": "1e" * 20,
                "app_cert": "",
                "tcb_info": json.dumps(tcb_info),
                "app_name": "perf-aggregator",
                "device_id": "dd" * 32,
                "key_provider_info": '{"name":"kms"}',
                "compose_hash": self.compose_hash,
            }
        return 404, {"error": "no such method"}


def _handler(agent: FakeDstackAgent) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                status, answer = 400, {"error": "bad json"}
            else:
                status, answer = agent.answer(self.path, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # unix-socket peers have no address
            pass

    return Handler


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _TcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextmanager
def _running(server: socketserver.BaseServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def serve_unix(agent: FakeDstackAgent, socket_path: Path) -> Iterator[str]:
    """Serve ``agent`` on the unix socket ``socket_path``; yields the path. The file stays after exit."""
    server = _UnixServer(str(socket_path), _handler(agent))
    with _running(server):
        yield str(socket_path)


@contextmanager
def serve_tcp(agent: FakeDstackAgent) -> Iterator[str]:
    """Serve ``agent`` on 127.0.0.1 (a free port); yields ``http://127.0.0.1:<port>``."""
    server = _TcpServer(("127.0.0.1", 0), _handler(agent))
    with _running(server):
        yield f"http://127.0.0.1:{server.server_address[1]}"
