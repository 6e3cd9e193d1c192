"""The client CLI against a real enclave: it verifies before sending and says what failed."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from conftest import closed_port_origin, enclave_settings
from perf_aggregator.api.app import create_app
from perf_aggregator.cli import app
from perf_aggregator.cli.client import print_warnings
from perf_aggregator.client import Registration
from perf_aggregator.clock import now_ms
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.simulator.binance import SimulatedBinance, create_binance_app
from perf_aggregator.simulator.kraken import SimulatedKraken, create_kraken_app

runner = CliRunner()


@pytest.fixture(scope="module")
def exchange() -> Iterator[tuple[SimulatedBinance, str]]:
    sim = SimulatedBinance(seed=9)
    with serve_in_thread(create_binance_app(sim)) as url:
        yield sim, url


@pytest.fixture
def enclave(exchange: tuple[SimulatedBinance, str], tmp_path: Path) -> Iterator[str]:
    with serve_in_thread(create_app(enclave_settings(tmp_path / "data", exchange[1]))) as url:
        yield url


@pytest.fixture
def keys(exchange: tuple[SimulatedBinance, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    account = exchange[0].create_account(51, 40)
    monkeypatch.setenv("EXCHANGE_API_KEY", account.api_key)
    monkeypatch.setenv("EXCHANGE_API_SECRET", account.api_secret)
    return {"key": account.api_key, "secret": account.api_secret}


def sessions(enclave: str) -> int:
    count: int = httpx.get(f"{enclave}/health").json()["sessions"]
    return count


def test_simulated_enclave_is_refused_without_the_flag(
    enclave: str, keys: dict[str, str], tmp_path: Path
) -> None:
    session_file = tmp_path / "s.json"
    result = runner.invoke(app, ["register", "--enclave", enclave, "--session-file", str(session_file)])
    assert result.exit_code == 2
    assert "simulated" in result.stderr and "--allow-simulated" in result.stderr
    assert sessions(enclave) == 0 and not session_file.exists()
    quote = runner.invoke(app, ["quote", "--enclave", enclave])
    assert quote.exit_code == 2 and "simulated" in quote.stderr


def test_register_read_summarise_verify_revoke(
    enclave: str, keys: dict[str, str], exchange: tuple[SimulatedBinance, str], tmp_path: Path
) -> None:
    session_file, summary_file = tmp_path / "s.json", tmp_path / "summary.json"
    session = ["--session-file", str(session_file)]
    registered = runner.invoke(app, ["register", "--enclave", enclave, "--allow-simulated", *session])
    assert registered.exit_code == 0, registered.output
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    saved = json.loads(session_file.read_text())
    assert saved["enclave"] == enclave and saved["token"] and sessions(enclave) == 1
    assert keys["key"] not in registered.output and keys["secret"] not in registered.output
    assert "warning:" not in registered.stderr  # Binance checks everything registration needs

    metrics = runner.invoke(app, ["metrics", *session])
    assert metrics.exit_code == 0 and '"session_id"' in metrics.output

    source = ["--allow-data-source", exchange[1]]
    fetched = runner.invoke(
        app, ["summary", *session, "--out", str(summary_file), "--allow-simulated", *source]
    )
    assert fetched.exit_code == 0, fetched.output
    verified = runner.invoke(app, ["verify-summary", str(summary_file), "--allow-simulated", *source])
    assert verified.exit_code == 0 and "summary verified" in verified.output

    wrong_source = runner.invoke(app, ["verify-summary", str(summary_file), "--allow-simulated"])
    assert wrong_source.exit_code == 2 and "data_source" in wrong_source.stderr

    tampered = json.loads(summary_file.read_text())
    tampered["summary"]["realized_pnl_usd"] = "1000000"
    summary_file.write_text(json.dumps(tampered))
    forged = runner.invoke(app, ["verify-summary", str(summary_file), "--allow-simulated", *source])
    assert forged.exit_code == 2 and "signature" in forged.stderr

    revoked = runner.invoke(app, ["revoke", *session])
    assert revoked.exit_code == 0 and sessions(enclave) == 0
    after = runner.invoke(app, ["metrics", *session])
    assert after.exit_code == 2 and "401 unauthorized" in after.stderr


def test_register_shows_the_enclaves_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sim = SimulatedKraken(seed=25, tier="pro")
    with serve_in_thread(create_kraken_app(sim)) as origin:
        now = now_ms()
        account = sim.create_account(73, 10, start_ms=now - 3_600_000, end_ms=now - 60_000)
        monkeypatch.setenv("EXCHANGE_API_KEY", account.api_key)
        monkeypatch.setenv("EXCHANGE_API_SECRET", account.api_secret)
        urls = {"kraken": origin}
        settings = enclave_settings(tmp_path / "data", closed_port_origin(), exchange_urls=urls)
        session = ["--session-file", str(tmp_path / "s.json")]
        with serve_in_thread(create_app(settings)) as enclave:
            registered = runner.invoke(
                app, ["register", "--enclave", enclave, "--exchange", "kraken", "--allow-simulated", *session]
            )
    assert registered.exit_code == 0, registered.output
    assert "registered: session" in registered.stdout and "warning" not in registered.stdout
    assert "warning:" in registered.stderr and "withdraw" in registered.stderr


def test_registration_warnings_are_shown_on_stderr_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    registration = Registration.model_validate(
        {
            "session_id": "s1",
            "token": "t1",
            "expires_at": "2026-02-01T12:00:00Z",
            "status": "backfilling",
            "warnings": ["withdrawals unchecked", "from the [bold]enclave[/]"],
        }
    )
    print_warnings(registration)
    shown = capsys.readouterr()
    assert shown.out == ""
    assert shown.err.splitlines() == ["warning: withdrawals unchecked", "warning: from the [bold]enclave[/]"]


def forging_enclave(real: str, tamper: str) -> FastAPI:
    """An 'enclave' relaying the real one's attestation with one thing changed, recording POSTs."""
    fake = FastAPI()
    fake.state.posts = 0

    @fake.get("/attestation/quote")
    def quote(nonce: str = "") -> dict[str, Any]:
        doc: dict[str, Any] = httpx.get(f"{real}/attestation/quote", params={"nonce": nonce}).json()
        if tamper == "hpke_key":  # an operator swapping in its own key: the binding breaks
            doc["hpke"]["public_key"] = base64.b64encode(bytes(32)).decode()
        elif tamper == "nonce":  # a replayed quote for another nonce
            return httpx.get(f"{real}/attestation/quote", params={"nonce": "ab" * 32}).json()  # type: ignore[no-any-return]
        return doc

    @fake.post("/enclave/submit_key")
    def submit() -> dict[str, str]:
        fake.state.posts += 1
        return {}

    return fake


@pytest.mark.parametrize(("tamper", "named"), [("hpke_key", "bind"), ("nonce", "nonce")])
def test_broken_binding_is_refused_before_sending(
    enclave: str, keys: dict[str, str], tmp_path: Path, tamper: str, named: str
) -> None:
    fake = forging_enclave(enclave, tamper)
    with serve_in_thread(fake) as url:
        result = runner.invoke(
            app,
            ["register", "--enclave", url, "--allow-simulated", "--session-file", str(tmp_path / "s.json")],
        )
    assert result.exit_code == 2
    assert "refused" in result.stderr and named in result.stderr.lower()
    assert fake.state.posts == 0


def test_policy_failures_are_named(enclave: str, keys: dict[str, str], tmp_path: Path) -> None:
    strict = tmp_path / "tdx-only.toml"
    strict.write_text('accepted_tees = ["tdx"]\n')
    result = runner.invoke(
        app, ["register", "--enclave", enclave, "--allow-simulated", "--policy", str(strict)]
    )
    assert result.exit_code == 2 and "refused" in result.stderr and "simulated" in result.stderr
    assert sessions(enclave) == 0

    typo = tmp_path / "typo.toml"
    typo.write_text("allow_simulatd = true\n")
    result = runner.invoke(app, ["quote", "--enclave", enclave, "--policy", str(typo)])
    assert result.exit_code == 2 and "allow_simulatd" in result.stderr
