"""A restart resumes every session from the sealed store: same token, same figures, polling
from the stored cursors (no history read again), and new trades arrive exactly once."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import enclave_settings
from perf_aggregator.api.app import create_app
from perf_aggregator.client import (
    Credentials,
    EnclaveClient,
    EnclaveError,
    VerificationPolicy,
    seal_credentials,
    verify_summary,
)
from perf_aggregator.clock import now_ms
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.ledger import book
from perf_aggregator.sessions import registry
from perf_aggregator.sessions.store import STORE_FILE
from perf_aggregator.simulator.accounts import Account, RawTrade, generate_account
from perf_aggregator.simulator.binance import SimulatedBinance, create_binance_app
from perf_aggregator.simulator.faults import FaultInjector, FaultPlan
from request_log import Gate, RequestLog

DAY_MS = 86_400_000
MINUTE_MS = 60_000
MY_TRADES = "/api/v3/myTrades"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


@pytest.fixture
def exchange() -> Iterator[tuple[SimulatedBinance, RequestLog, str]]:
    sim = SimulatedBinance(seed=37)
    log = RequestLog(create_binance_app(sim))
    with serve_in_thread(log) as origin:
        yield sim, log, origin


def with_later_trades(account: Account, sim: SimulatedBinance, start_ms: int, end_ms: int) -> Account:
    """The same account (key, balances, history) plus new fills in ``[start_ms, end_ms)`` on two of
    its markets, numbered after its last trade and order of each market, as the exchange would."""
    later = generate_account(
        99, start_ms, end_ms, trades=40, prices=sim.prices, symbols=SYMBOLS[:2], bnb_fee_share=0.0
    )
    added: list[RawTrade] = []
    for symbol in SYMBOLS[:2]:
        old = [t for t in account.trades if t.symbol == symbol]
        new = [t for t in later.trades if t.symbol == symbol]
        id_shift = max(t.id for t in old) + 1000 - min(t.id for t in new)
        order_shift = max(t.order_id for t in old) + 1000 - min(t.order_id for t in new)
        added += [dataclasses.replace(t, id=t.id + id_shift, order_id=t.order_id + order_shift) for t in new]
    trades = sorted([*account.trades, *added], key=lambda t: (t.time, t.symbol, t.id, not t.is_buyer))
    return Account(
        api_key=account.api_key,
        api_secret=account.api_secret,
        uid=account.uid,
        created_ms=account.created_ms,
        can_withdraw=account.can_withdraw,
        can_trade=account.can_trade,
        balances=account.balances,
        trades=trades,
    )


def figures(metrics: dict[str, Any]) -> dict[str, Any]:
    """What a restart must not change: the trades, per-symbol figures, totals and backfill state."""
    return {
        "status": metrics["status"],
        "backfill_complete": metrics["sync"]["backfill_complete"],
        "trades_fetched": metrics["sync"]["trades_fetched"],
        "symbols": metrics["symbols"],
        "totals": metrics["totals"],
        "expires_at": metrics["expires_at"],
    }


async def until(client: EnclaveClient, sid: str, token: str, done: Any, what: str) -> dict[str, Any]:
    """The metrics once ``done(metrics)`` holds (polled for at most a minute)."""
    deadline = time.monotonic() + 60
    while True:
        metrics = await client.metrics(sid, token)
        if done(metrics):
            return metrics
        assert time.monotonic() < deadline, f"{what}: {metrics['sync']}"
        await asyncio.sleep(0.2)


def settled(metrics: dict[str, Any]) -> bool:
    return bool(metrics["sync"]["backfill_complete"]) and metrics["totals"]["unpriced_trades"] == 0


async def listed_trades(client: EnclaveClient, sid: str, token: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await client.trades(sid, token, limit=1000, cursor=cursor)
        listed += page["trades"]
        cursor = page["next_cursor"]
        if cursor is None:
            return listed


def measurement(url: str) -> str:
    return str(httpx.get(f"{url}/attestation/quote").json()["measurement"])


async def test_a_restart_resumes_sessions_from_their_cursors_with_the_same_token(
    exchange: tuple[SimulatedBinance, RequestLog, str], enclave_data_dir: Path
) -> None:
    sim, log, origin = exchange
    now = now_ms()
    account = sim.create_account(
        53, 300, start_ms=now - 2 * DAY_MS, end_ms=now - 30 * MINUTE_MS, symbols=SYMBOLS
    )
    settings = enclave_settings(enclave_data_dir, origin)
    policy = VerificationPolicy(allow_simulated=True, allowed_data_sources=frozenset({origin}))
    credentials = Credentials(exchange="binance", api_key=account.api_key, api_secret=account.api_secret)

    with serve_in_thread(create_app(settings)) as first:
        async with EnclaveClient(first) as client:
            enclave = await client.verify(policy)
            envelope = seal_credentials(
                enclave, credentials, {"exchange": "binance", "label": "", "ttl": 3600}
            )
            registered = httpx.post(f"{first}/enclave/submit_key", json=envelope, timeout=30)
            assert registered.status_code == 201
            sid, token = registered.json()["session_id"], registered.json()["token"]
            before = await until(client, sid, token, settled, "backfill")
        built = measurement(first)
    assert before["sync"]["trades_fetched"] == len(account.trades)

    restarted_at = len(log.requests)
    with serve_in_thread(create_app(settings)) as second:
        assert measurement(second) == built, "the source changed during the test: sealed data cannot open"
        async with EnclaveClient(second) as client:
            resumed = await client.metrics(sid, token)  # the same token, at once
            assert figures(resumed) == figures(before)
            # The old envelope was sealed to the previous boot's HPKE key: it no longer opens.
            replayed = httpx.post(f"{second}/enclave/submit_key", json=envelope, timeout=30)
            assert (replayed.status_code, replayed.json()["error"]["code"]) == (400, "invalid_envelope")
            assert (await client.health())["sessions"] == 1
            summary = verify_summary(await client.summary(sid, token), policy)  # signed by the new keys
            assert summary["trades"] == before["totals"]["trades"] and summary["backfill_complete"]
            assert summary["volume_usd"] == before["totals"]["volume_usd"]
            assert summary["realized_pnl_usd"] == before["totals"]["realized_pnl_usd"]

            polled = await until(client, sid, token, lambda m: m["sync"]["last_poll_at"], "first poll")
            assert figures(polled) == figures(before)
            reads = [query for path, query in log.requests[restarted_at:] if path == MY_TRADES]
            assert reads, "the resumed session must poll"
            assert not [q for q in reads if "startTime" in q], "history was scanned again"
            assert all("fromId" in q for q in reads if q["symbol"][0] in SYMBOLS)

            # New fills that happened while we looked, in minutes whose candles have closed.
            later_end = now_ms() - 2 * MINUTE_MS
            grown = sim.add_account(with_later_trades(account, sim, later_end - 18 * MINUTE_MS, later_end))
            total = len(grown.trades)
            assert total == len(account.trades) + 40
            after = await until(
                client,
                sid,
                token,
                lambda m: m["sync"]["trades_fetched"] >= total and settled(m),
                "new trades",
            )
            assert after["sync"]["trades_fetched"] == total
            listed = await listed_trades(client, sid, token)
            assert len(listed) == total
            assert {(t["symbol"].replace("/", ""), t["id"], t["side"]) for t in listed} == {
                (t.symbol, str(t.id), "buy" if t.is_buyer else "sell") for t in grown.trades
            }
            await client.revoke(sid, token)

    with sqlite3.connect(enclave_data_dir / STORE_FILE) as db:
        counts = db.execute(
            "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM batches),"
            " (SELECT count(*) FROM state)"
        ).fetchone()
    assert counts == (0, 0, 0)  # revoked: every row of the session is gone
    with serve_in_thread(create_app(settings)) as third:
        async with EnclaveClient(third) as client:
            with pytest.raises(EnclaveError) as gone:
                await client.metrics(sid, token)
            assert gone.value.status == 401
            assert (await client.health())["sessions"] == 0


async def test_a_session_whose_exchange_is_down_at_start_waits_and_resumes_later(
    enclave_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = SimulatedBinance(seed=41)
    faults = FaultInjector(create_binance_app(sim), FaultPlan())
    now = now_ms()
    account = sim.create_account(54, 120, start_ms=now - DAY_MS, end_ms=now - 30 * MINUTE_MS, symbols=SYMBOLS)
    credentials = Credentials(exchange="binance", api_key=account.api_key, api_secret=account.api_secret)
    monkeypatch.setattr(registry, "PURGE_EVERY_S", 0.3)  # retry sooner than every 15 s
    with serve_in_thread(faults) as origin:
        settings = enclave_settings(enclave_data_dir, origin)
        policy = VerificationPolicy(allow_simulated=True, allowed_data_sources=frozenset({origin}))
        with serve_in_thread(create_app(settings)) as first:
            async with EnclaveClient(first) as client:
                registration = await client.register(credentials, ttl=3600, policy=policy)
                sid, token = registration.session_id, registration.token
                before = await until(client, sid, token, settled, "backfill")

        faults.plan = FaultPlan(server_error_rate=1.0)  # every exchange request answers 503
        with serve_in_thread(create_app(settings)) as second:
            async with EnclaveClient(second) as client:
                with pytest.raises(EnclaveError) as waiting:
                    await client.metrics(sid, token)
                assert waiting.value.status == 401
                assert (await client.health())["sessions"] == 0

                faults.plan = FaultPlan()
                deadline = time.monotonic() + 30
                while (await client.health())["sessions"] == 0:
                    assert time.monotonic() < deadline, "the waiting session was not resumed"
                    await asyncio.sleep(0.1)
                resumed = await client.metrics(sid, token)
    assert figures(resumed) == figures(before)


@asynccontextmanager
async def waiting_session(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[EnclaveClient, str, str, FaultInjector, Gate]]:
    """A session registered and backfilled, then an enclave restarted while its exchange answers
    only errors: the session waits, retried by a fast purge loop. Yields the new enclave's client,
    the session's id and token, and the exchange's fault plan and gate (open)."""
    sim = SimulatedBinance(seed=43)
    faults = FaultInjector(create_binance_app(sim), FaultPlan())
    gate = Gate(faults)
    now = now_ms()
    account = sim.create_account(55, 40, start_ms=now - DAY_MS, end_ms=now - 30 * MINUTE_MS, symbols=SYMBOLS)
    credentials = Credentials(exchange="binance", api_key=account.api_key, api_secret=account.api_secret)
    monkeypatch.setattr(registry, "PURGE_EVERY_S", 0.3)
    with serve_in_thread(gate) as origin:
        settings = enclave_settings(data_dir, origin)
        policy = VerificationPolicy(allow_simulated=True, allowed_data_sources=frozenset({origin}))
        with serve_in_thread(create_app(settings)) as first:
            async with EnclaveClient(first) as client:
                registration = await client.register(credentials, ttl=3600, policy=policy)
                sid, token = registration.session_id, registration.token
                await until(client, sid, token, settled, "backfill")

        faults.plan = FaultPlan(server_error_rate=1.0)  # the restore at start fails: the session waits
        with serve_in_thread(create_app(settings)) as second:
            async with EnclaveClient(second) as client:
                yield client, sid, token, faults, gate


async def revoke_as_owner(client: EnclaveClient, sid: str, token: str) -> None:
    """Revoke with a wrong token (401), then with the session's own (204)."""
    with pytest.raises(EnclaveError) as wrong:
        await client.revoke(sid, "not-" + token)
    assert wrong.value.status == 401
    await client.revoke(sid, token)


async def assert_ended(client: EnclaveClient, sid: str, token: str, data_dir: Path) -> None:
    """The session is neither live nor stored."""
    assert (await client.health())["sessions"] == 0
    with pytest.raises(EnclaveError) as gone:
        await client.metrics(sid, token)
    assert gone.value.status == 401
    with sqlite3.connect(data_dir / STORE_FILE) as db:
        assert db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0


async def test_a_session_waiting_for_its_exchange_can_be_revoked_by_its_owner(
    enclave_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with waiting_session(enclave_data_dir, monkeypatch) as (client, sid, token, faults, _):
        await revoke_as_owner(client, sid, token)  # 204 although the session is not live
        with sqlite3.connect(enclave_data_dir / STORE_FILE) as db:
            assert db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
        faults.plan = FaultPlan()
        await asyncio.sleep(1.0)  # a few purge-loop passes: nothing is left to resume
        await assert_ended(client, sid, token, enclave_data_dir)


async def test_a_session_being_restored_can_be_revoked_by_its_owner_and_stays_revoked(
    enclave_data_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """While the purge loop retries a waiting session, the session stays revocable (it was
    invisible during each attempt: its owner got 401), and a restore that succeeds after the
    revocation does not bring it back."""
    caplog.set_level(logging.INFO, logger=registry.__name__)  # each restore pass ends with a line
    async with waiting_session(enclave_data_dir, monkeypatch) as (client, sid, token, faults, gate):
        gate.close()
        faults.plan = FaultPlan()  # the purge loop's next attempt would succeed, once let through
        deadline = time.monotonic() + 30
        while not gate.waiting:
            assert time.monotonic() < deadline, "no restore attempt reached the exchange"
            await asyncio.sleep(0.05)
        await revoke_as_owner(client, sid, token)  # during the attempt
        gate.open()
        while not any("waiting=0" in r.getMessage() for r in caplog.records):  # the attempt's end
            assert time.monotonic() < deadline + 30, "the restore attempt did not end"
            await asyncio.sleep(0.05)
        await assert_ended(client, sid, token, enclave_data_dir)


async def test_a_session_whose_restore_fails_unexpectedly_stays_revocable_by_its_owner(
    enclave_data_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A restore that fails past its exchange calls (a bug: here, starting the poller raises)
    keeps the session stored and revocable by its owner, as a session waiting for its exchange."""

    def broken_poller(*args: object, **kwargs: object) -> None:
        raise RuntimeError("poller bug")

    async with waiting_session(enclave_data_dir, monkeypatch) as (client, sid, token, faults, _):
        monkeypatch.setattr(registry, "SessionPoller", broken_poller)
        faults.plan = FaultPlan()  # the purge loop's next attempt reaches _start, which raises
        deadline = time.monotonic() + 30
        while not any("cannot be resumed" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "no restore attempt failed"
            await asyncio.sleep(0.05)
        await revoke_as_owner(client, sid, token)
        await assert_ended(client, sid, token, enclave_data_dir)


async def test_a_session_stored_with_an_impossible_trade_resumes_without_it(
    enclave_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = SimulatedBinance(seed=43)
    now = now_ms()
    account = sim.create_account(55, 60, start_ms=now - DAY_MS, end_ms=now - 30 * MINUTE_MS, symbols=SYMBOLS)
    spoiled = account.trades[7]  # a negative amount, as an exchange's bad day could send
    sim.add_account(
        dataclasses.replace(
            account,
            trades=[dataclasses.replace(t, qty=-t.qty) if t is spoiled else t for t in account.trades],
        )
    )
    credentials = Credentials(exchange="binance", api_key=account.api_key, api_secret=account.api_secret)
    with serve_in_thread(create_binance_app(sim)) as origin:
        settings = enclave_settings(enclave_data_dir, origin)
        policy = VerificationPolicy(allow_simulated=True, allowed_data_sources=frozenset({origin}))
        # A version that stored trades without checking them.
        monkeypatch.setattr(book, "check_values", lambda run: None)
        with serve_in_thread(create_app(settings)) as first:
            async with EnclaveClient(first) as client:
                registration = await client.register(credentials, ttl=3600, policy=policy)
                sid, token = registration.session_id, registration.token
                before = await until(client, sid, token, settled, "backfill")
        assert before["sync"]["trades_fetched"] == len(account.trades)

        monkeypatch.undo()
        with serve_in_thread(create_app(settings)) as second:
            async with EnclaveClient(second) as client:
                resumed = await client.metrics(sid, token)  # resumed, not dropped
                assert (await client.health())["sessions"] == 1
                assert resumed["sync"]["trades_fetched"] == len(account.trades) - 1
                listed = await listed_trades(client, sid, token)
                assert len(listed) == len(account.trades) - 1
                assert all(Decimal(t["amount"]) > 0 for t in listed)


async def test_a_session_whose_restore_fails_stays_stored_for_the_next_start(
    exchange: tuple[SimulatedBinance, RequestLog, str],
    enclave_data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim, _, origin = exchange
    now = now_ms()
    account = sim.create_account(56, 40, start_ms=now - DAY_MS, end_ms=now - 30 * MINUTE_MS, symbols=SYMBOLS)
    other = sim.create_account(57, 40, start_ms=now - DAY_MS, end_ms=now - 30 * MINUTE_MS, symbols=SYMBOLS)
    settings = enclave_settings(enclave_data_dir, origin)
    policy = VerificationPolicy(allow_simulated=True, allowed_data_sources=frozenset({origin}))
    with serve_in_thread(create_app(settings)) as first:
        async with EnclaveClient(first) as client:
            sessions, befores = [], []
            for acct in (account, other):
                credentials = Credentials(
                    exchange="binance", api_key=acct.api_key, api_secret=acct.api_secret
                )
                registration = await client.register(credentials, ttl=3600, policy=policy)
                sessions.append((registration.session_id, registration.token))
                befores.append(await until(client, *sessions[-1], settled, "backfill"))

    def broken(self: object, trades: object) -> int:
        raise RuntimeError("a bug in this version's restore")

    monkeypatch.setattr(book.Ledger, "add", broken)
    with serve_in_thread(create_app(settings)) as second:
        async with EnclaveClient(second) as client:
            assert (await client.health())["sessions"] == 0
            for sid, token in sessions:
                with pytest.raises(EnclaveError) as refused:
                    await client.metrics(sid, token)
                assert refused.value.status == 401
            await client.revoke(*sessions[1])  # its owner can still end one
    with sqlite3.connect(enclave_data_dir / STORE_FILE) as db:
        assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 1  # the other one is kept

    monkeypatch.undo()  # the next version
    with serve_in_thread(create_app(settings)) as third:
        async with EnclaveClient(third) as client:
            assert (await client.health())["sessions"] == 1
            resumed = await client.metrics(*sessions[0])
            with pytest.raises(EnclaveError) as gone:
                await client.metrics(*sessions[1])
            assert gone.value.status == 401
    assert figures(resumed) == figures(befores[0])
    assert resumed["sync"]["trades_fetched"] == len(account.trades)
