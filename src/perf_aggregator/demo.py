"""The end-to-end demo: simulator and enclave as subprocesses, the client SDK in this one.

It shows the whole flow a trader would follow: verify the (simulated) quote,
seal read-only keys to the enclave, watch the backfill, then read the figures
and verify the signed summary offline.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from perf_aggregator.client import (
    Credentials,
    EnclaveClient,
    VerificationPolicy,
    verify_summary,
)
from perf_aggregator.clock import now_ms

DAY_MS = 86_400_000
READY_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited early; see {log_path}:\n{log_path.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready in {READY_TIMEOUT_S} s")


@contextmanager
def _process(args: list[str], env: dict[str, str], log_path: Path, ready_url: str) -> Iterator[None]:
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        try:
            _wait_ready(ready_url, process, log_path)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def run_demo(trades: int = 3000, days: int = 30, seed: int = 7) -> int:
    """Run the demo; returns the process exit code."""
    console = Console()
    if not console.is_terminal:  # logs and pipes: rich would otherwise cut tables at 80 columns
        console = Console(width=120)
    started = time.monotonic()
    sim_port, enclave_port = _free_port(), _free_port()
    sim_url, enclave_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{enclave_port}"
    python = [sys.executable, "-m", "perf_aggregator"]
    with tempfile.TemporaryDirectory(prefix="perf-agg-demo-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PERF_AGG_", "ENCLAVE_"))}
        console.print(f"[bold]1.[/] Binance simulator on {sim_url}")
        with _process(
            [*python, "simulator", "--port", str(sim_port), "--seed", str(seed)],
            env,
            work / "simulator.log",
            f"{sim_url}/api/v3/ping",
        ):
            end_ms = now_ms() - 2 * 60_000  # recent, closed candles only
            start_ms = end_ms - days * DAY_MS
            account = (
                httpx.post(
                    f"{sim_url}/_simulator/accounts",
                    timeout=60,
                    json={
                        "seed": seed,
                        "trades": trades,
                        "start": start_ms,
                        "end": end_ms,
                    },
                )
                .raise_for_status()
                .json()
            )
            console.print(f"   generated an account with {account['trades']} trades over {days} days")
            enclave_env = {
                **env,
                "ENCLAVE_HOST": "127.0.0.1",
                "ENCLAVE_PORT": str(enclave_port),
                "PERF_AGG_TEE": "simulated",
                "PERF_AGG_DATA_DIR": str(work / "data"),
                "PERF_AGG_EXCHANGE_URL_BINANCE": sim_url,
                "PERF_AGG_POLL_MIN_S": "2",
                "PERF_AGG_LOG_LEVEL": "warning",
            }
            console.print(f"[bold]2.[/] enclave (simulated TEE) on {enclave_url}")
            with _process([*python, "serve"], enclave_env, work / "enclave.log", f"{enclave_url}/health"):
                asyncio.run(_client_flow(console, enclave_url, sim_url, account, start_ms))
    elapsed = time.monotonic() - started
    console.print(f"\n[bold green]demo finished[/] in {elapsed:.1f} s wall time")
    return 0


async def _client_flow(
    console: Console, enclave_url: str, sim_url: str, account: dict[str, Any], since_ms: int
) -> None:
    # The demo knowingly accepts simulated evidence and the simulator's origin.
    policy = VerificationPolicy(
        allow_simulated=True,
        allowed_data_sources=VerificationPolicy().allowed_data_sources | {sim_url},
    )
    async with EnclaveClient(enclave_url) as client:
        enclave = await client.verify(policy)
        console.print(
            f"[bold]3.[/] quote verified: tee={enclave.tee}, measurement={enclave.measurement[:16]}…,"
            " keys bound to the report data (simulated evidence, accepted for the demo only)"
        )
        credentials = Credentials(
            exchange="binance",
            api_key=account["api_key"],
            api_secret=account["api_secret"],
            since=datetime.fromtimestamp(since_ms / 1000, tz=UTC),
        )
        registration = await client.register(credentials, label="demo", ttl=3600, policy=policy)
        console.print(
            f"[bold]4.[/] credentials sealed (HPKE) and registered: session {registration.session_id[:8]}…"
        )
        metrics = await _watch_backfill(
            console, client, registration.session_id, registration.token, account["trades"]
        )
        _print_metrics(console, metrics)
        signed = await client.summary(registration.session_id, registration.token)
        summary = verify_summary(signed, policy)
        _print_summary(console, summary)
        console.print(
            "[bold green]summary signature verified[/] (quote → binding → Ed25519 over RFC 8785 JSON)"
        )
        await client.revoke(registration.session_id, registration.token)
        console.print("session revoked: credentials, trades and metrics purged")


async def _watch_backfill(
    console: Console, client: EnclaveClient, session_id: str, token: str, expected: int
) -> dict[str, Any]:
    columns = (TextColumn("[bold]5.[/] backfill"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    started = time.monotonic()
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("backfill", total=expected)
        while True:
            metrics = await client.metrics(session_id, token)
            progress.update(task, completed=metrics["sync"]["trades_fetched"])
            if metrics["sync"]["backfill_complete"]:
                break
            await asyncio.sleep(0.3)
    fetched = metrics["sync"]["trades_fetched"]
    console.print(f"   backfill complete: {fetched} trades in {time.monotonic() - started:.1f} s")
    return metrics


def _print_metrics(console: Console, metrics: dict[str, Any]) -> None:
    # USD shown to the cent here for width; the documents carry the exact 8-place values.
    table = Table(title="Per-symbol metrics", title_justify="left", box=box.SIMPLE_HEAD)
    columns = ("symbol", "trades", "volume $", "fees $", "P&L $", "return %", "closed", "won", "open qty")
    for column in columns:
        table.add_column(column, justify="left" if column == "symbol" else "right", no_wrap=True)
    rows = [(s["symbol"], s) for s in metrics["symbols"]] + [("total", metrics["totals"])]
    for name, s in rows:
        if name == "total":
            table.add_section()
        table.add_row(
            name,
            str(s["trades"]),
            _cents(s["volume_usd"]),
            _cents(s["fees_usd"]),
            _cents(s["realized_pnl_usd"]),
            _ratio(s["return_pct"]),
            str(s["closed_trades"]),
            str(s["winning_trades"]),
            s.get("open_quantity", ""),
        )
    console.print(table)
    console.print(f"unpriced trades: {metrics['totals']['unpriced_trades']}")


def _print_summary(console: Console, summary: dict[str, Any]) -> None:
    table = Table(title="Signed summary", title_justify="left", show_header=False)
    table.add_column("field")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        table.add_row(key, _ratio(value) if isinstance(value, float) else str(value))
    console.print(table)


def _cents(value: str) -> str:
    return f"{Decimal(value):,.2f}"


def _ratio(value: Any) -> str:
    return "—" if value is None else f"{value:.4f}"
