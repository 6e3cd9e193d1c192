"""Client-side commands: verify an enclave, register keys, read and verify results.

Nothing is sent to an enclave before its evidence, the key binding and the
policy have been verified; every refusal names the check that failed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from perf_aggregator.client import (
    AttestationError,
    ClientError,
    Credentials,
    EnclaveClient,
    EnclaveError,
    Registration,
    SummaryVerificationError,
    VerificationPolicy,
    load_policy,
    verify_summary,
)

KEY_ENV = "EXCHANGE_API_KEY"
SECRET_ENV = "EXCHANGE_API_SECRET"  # noqa: S105 - the name of a variable, not a secret
PASSPHRASE_ENV = "EXCHANGE_API_PASSPHRASE"  # noqa: S105

console = Console()
errors = Console(stderr=True)

EnclaveOpt = Annotated[str, typer.Option("--enclave", help="Base URL of the enclave service.")]
PolicyOpt = Annotated[
    Path | None, typer.Option("--policy", help="Verification policy (TOML).", exists=True, dir_okay=False)
]
SimulatedOpt = Annotated[
    bool,
    typer.Option("--allow-simulated", help="Accept simulated evidence (proves nothing: development only)."),
]
SessionOpt = Annotated[Path, typer.Option("--session-file", help="Where the session id and token are kept.")]
SourcesOpt = Annotated[
    list[str] | None, typer.Option("--allow-data-source", help="Accept this data origin too (repeatable).")
]
SESSION_FILE = Path("session.json")
SUMMARY_FILE = Path("summary.json")


def _policy(
    path: Path | None, allow_simulated: bool, data_sources: list[str] | None = None
) -> VerificationPolicy:
    policy = load_policy(path) if path is not None else VerificationPolicy()
    if allow_simulated:
        policy = dataclasses.replace(policy, allow_simulated=True)
    if data_sources:
        policy = dataclasses.replace(
            policy, allowed_data_sources=policy.allowed_data_sources | set(data_sources)
        )
    return policy


@contextmanager
def _refusals() -> Iterator[None]:
    """Verification failures and API errors become one clear message and exit code 2."""
    try:
        yield
        return
    except AttestationError as exc:
        errors.print(f"[bold red]refused:[/] the enclave did not verify: {exc}")
    except SummaryVerificationError as exc:
        errors.print(f"[bold red]refused:[/] the summary did not verify: {exc}")
    except EnclaveError as exc:
        errors.print(f"[bold red]error:[/] the enclave answered {exc.status} {exc.code}: {exc.message}")
    except ClientError as exc:
        errors.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(2)


def _secret(env: str, prompt: str, required: bool = True) -> str | None:
    value = os.environ.get(env)
    if value:
        return value
    if not required:
        return None
    entered: str = typer.prompt(prompt, hide_input=True)
    return entered


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Write JSON readable by the owner only (the token is a bearer secret)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)


def _session(path: Path) -> dict[str, str]:
    try:
        data: dict[str, str] = json.loads(path.read_text())
        return {k: data[k] for k in ("enclave", "session_id", "token")}
    except (OSError, ValueError, KeyError):
        errors.print(f"[bold red]error:[/] {path} is not a session file written by 'register'")
        raise typer.Exit(2) from None


def print_warnings(registration: Registration) -> None:
    """Show, on stderr, what the enclave could not check about the registered key."""
    for warning in registration.warnings:
        # The text comes from the enclave: printed as text, never as rich markup.
        errors.print(f"[bold yellow]warning:[/] {escape(warning)}")


def quote(
    enclave: EnclaveOpt,
    policy: PolicyOpt = None,
    allow_simulated: SimulatedOpt = False,
) -> None:
    """Fetch the enclave's attestation with a fresh nonce and verify it against the policy."""

    async def step() -> None:
        async with EnclaveClient(enclave) as client:
            verified = await client.verify(_policy(policy, allow_simulated))
        table = Table(show_header=False, title="Verified enclave", title_justify="left")
        for field in dataclasses.fields(verified):
            value = getattr(verified, field.name)
            table.add_row(field.name, value.hex() if isinstance(value, bytes) else str(value))
        console.print(table)

    with _refusals():
        asyncio.run(step())


def register(
    enclave: EnclaveOpt,
    exchange: Annotated[str, typer.Option(help="Exchange id.")] = "binance",
    account_type: Annotated[str, typer.Option(help="spot or futures.")] = "spot",
    since: Annotated[
        datetime | None, typer.Option(help="Start of the history (UTC); default 90 days ago.")
    ] = None,
    symbol: Annotated[
        list[str] | None, typer.Option(help="Market hints such as BTC/USDT (repeatable).")
    ] = None,
    label: Annotated[str, typer.Option(help="A label for the session (0-64 printable characters).")] = "",
    ttl: Annotated[int, typer.Option(help="Session lifetime in seconds (60 to 604800).")] = 86400,
    policy: PolicyOpt = None,
    allow_simulated: SimulatedOpt = False,
    session_file: SessionOpt = SESSION_FILE,
) -> None:
    """Verify the enclave, seal read-only keys to it and register them.

    Keys come from EXCHANGE_API_KEY / EXCHANGE_API_SECRET / EXCHANGE_API_PASSPHRASE,
    or are asked for without echo; never pass them as arguments.
    """
    credentials = Credentials(
        exchange=exchange,
        api_key=_secret(KEY_ENV, "API key"),
        api_secret=_secret(SECRET_ENV, "API secret"),
        passphrase=_secret(PASSPHRASE_ENV, "passphrase", required=False),
        account_type=account_type,
        since=None if since is None else since.replace(tzinfo=since.tzinfo or UTC),
        symbols=tuple(symbol or ()),
    )

    async def step() -> None:
        async with EnclaveClient(enclave) as client:
            registration = await client.register(
                credentials, label=label, ttl=ttl, policy=_policy(policy, allow_simulated)
            )
        _write_private(
            session_file,
            {
                "enclave": enclave,
                "session_id": registration.session_id,
                "token": registration.token,
                "expires_at": registration.expires_at.isoformat(),
            },
        )
        console.print(
            f"registered: session {registration.session_id}, {registration.status}, "
            f"expires {registration.expires_at.isoformat()}; token kept in {session_file} (mode 0600)"
        )
        print_warnings(registration)

    with _refusals():
        asyncio.run(step())


def metrics(session_file: SessionOpt = SESSION_FILE) -> None:
    """Print the session's metrics document (JSON)."""
    session = _session(session_file)

    async def step() -> None:
        async with EnclaveClient(session["enclave"]) as client:
            document = await client.metrics(session["session_id"], session["token"])
        console.print_json(data=document)

    with _refusals():
        asyncio.run(step())


def summary(
    session_file: SessionOpt = SESSION_FILE,
    out: Annotated[Path, typer.Option(help="Where to save the signed summary.")] = SUMMARY_FILE,
    policy: PolicyOpt = None,
    allow_simulated: SimulatedOpt = False,
    allow_data_source: SourcesOpt = None,
) -> None:
    """Fetch the signed summary, verify it, and save it for anyone to verify offline."""
    session = _session(session_file)

    async def step() -> None:
        async with EnclaveClient(session["enclave"]) as client:
            document = await client.summary(session["session_id"], session["token"])
        verified = verify_summary(document, _policy(policy, allow_simulated, allow_data_source))
        out.write_text(json.dumps(document, indent=2))
        console.print_json(data=verified)
        console.print(f"signature verified; signed summary saved to {out}")

    with _refusals():
        asyncio.run(step())


def verify_summary_file(
    document: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A saved signed summary.")],
    policy: PolicyOpt = None,
    allow_simulated: SimulatedOpt = False,
    allow_data_source: SourcesOpt = None,
) -> None:
    """Verify a signed summary offline: evidence, binding, signature, data source."""

    with _refusals():
        try:
            loaded = json.loads(document.read_text())
        except ValueError:
            raise SummaryVerificationError(f"{document} is not JSON") from None
        verified = verify_summary(loaded, _policy(policy, allow_simulated, allow_data_source))
    console.print_json(data=verified)
    console.print("[bold green]summary verified[/]")


def revoke(session_file: SessionOpt = SESSION_FILE) -> None:
    """Revoke the session: the enclave purges its credentials, trades and metrics."""
    session = _session(session_file)

    async def step() -> None:
        async with EnclaveClient(session["enclave"]) as client:
            await client.revoke(session["session_id"], session["token"])
        console.print(f"session {session['session_id']} revoked")

    with _refusals():
        asyncio.run(step())


def register_commands(app: typer.Typer) -> None:
    """Add the client-side commands to ``app``."""
    app.command()(quote)
    app.command()(register)
    app.command()(metrics)
    app.command()(summary)
    app.command("verify-summary")(verify_summary_file)
    app.command()(revoke)
