"""The whole seed flow over HTTP: client → enclave → Binance simulator, figures checked
against an independent METRICS.md implementation fed with the simulator's raw data."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from e2e.conftest import Stack
from perf_aggregator.client import Credentials, EnclaveClient, EnclaveError, seal_credentials, verify_summary
from perf_aggregator.formats import parse_rfc3339, rfc3339_ms
from reference import Prices, compute

STABLE = {"USD", "USDT", "USDC", "FDUSD", "BUSD", "DAI", "TUSD", "USDP", "PYUSD", "USDS"}


async def wait_backfill(
    client: EnclaveClient, session_id: str, token: str, timeout_s: float = 90
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        metrics = await client.metrics(session_id, token)
        if metrics["sync"]["backfill_complete"]:
            return metrics
        await asyncio.sleep(0.2)
    raise AssertionError("backfill did not complete")


def simulator_prices(simulator: str, currencies: set[str], start_ms: int, end_ms: int) -> tuple[Prices, dict]:
    """Closes of every pricing market from the simulator's public klines, and its markets."""
    info = httpx.get(f"{simulator}/api/v3/exchangeInfo").json()
    markets = {s["symbol"]: (s["baseAsset"], s["quoteAsset"]) for s in info["symbols"]}
    by_pair = {f"{b}/{q}": sid for sid, (b, q) in markets.items()}
    pricing: dict[str, str] = {}
    closes: dict[str, dict[int, Any]] = {}
    for currency in currencies - STABLE:
        pair = next(
            (f"{currency}/{q}" for q in ("USDT", "USDC", "USD") if f"{currency}/{q}" in by_pair), None
        )
        if pair is None:
            continue
        pricing[currency] = pair
        series: dict[int, Any] = {}
        cursor = start_ms - 3_600_000
        while cursor <= end_ms:
            params = {
                "symbol": by_pair[pair],
                "interval": "1m",
                "startTime": cursor,
                "endTime": end_ms,
                "limit": 1000,
            }
            page = httpx.get(f"{simulator}/api/v3/klines", params=params).raise_for_status().json()
            series.update({k[0]: Decimal(k[4]) for k in page})
            if len(page) < 1000:
                break
            cursor = page[-1][0] + 60_000
        closes[pair] = series
    return Prices(closes, pricing), markets


async def test_backfill_metrics_and_signed_summary_match_an_independent_computation(stack: Stack) -> None:
    account = stack.account(trades=1500, seed=11, days=8)
    since = account["start"] + 2 * 86_400_000  # earlier trades exist and must be left out
    credentials = Credentials(
        exchange="binance",
        api_key=account["api_key"],
        api_secret=account["api_secret"],
        since=datetime.fromtimestamp(since / 1000, tz=UTC),
    )
    async with EnclaveClient(stack.enclave) as client:
        registration = await client.register(credentials, label="e2e", ttl=3600, policy=stack.policy)
        assert registration.status == "backfilling"
        metrics = await wait_backfill(client, registration.session_id, registration.token)
        signed = await client.summary(registration.session_id, registration.token)
        listed = []
        cursor = None
        while True:
            page = await client.trades(registration.session_id, registration.token, limit=400, cursor=cursor)
            listed.extend(page["trades"])
            cursor = page["next_cursor"]
            if cursor is None:
                break

    raw = httpx.get(f"{stack.simulator}/_simulator/accounts/{account['api_key']}/trades").json()
    currencies = {t["commissionAsset"] for t in raw} | {"BTC", "BNB", "ETH", "SOL"}
    prices, markets = simulator_prices(stack.simulator, currencies, since, account["end"])
    summary = verify_summary(signed, stack.policy)
    as_of = parse_rfc3339(summary["as_of"])
    expected = compute(raw, markets, prices, since, as_of)

    # Every trade since `since` exactly once, self-trades as two.
    in_period = {(t["symbol"], t["id"], t["isBuyer"]) for t in raw if t["time"] >= since}
    assert metrics["sync"]["trades_fetched"] == len(in_period) == len(listed)
    assert len({(t["symbol"], t["id"], t["side"]) for t in listed}) == len(listed)
    assert [parse_rfc3339(t["timestamp"]) for t in listed] == sorted(
        parse_rfc3339(t["timestamp"]) for t in listed
    )
    assert any(t["commissionAsset"] == "BNB" for t in raw if t["time"] >= since)
    assert any(markets[t["symbol"]][1] not in STABLE for t in raw if t["time"] >= since)

    got = {s["symbol"]: s for s in metrics["symbols"]}
    assert set(got) == set(expected["symbols"])
    assert len(got) >= 3
    for symbol, want in expected["symbols"].items():
        for field, value in want.items():
            if isinstance(value, float):
                assert got[symbol][field] == pytest.approx(value, rel=1e-12), (symbol, field)
            else:
                assert got[symbol][field] == value, (symbol, field)

    want = expected["summary"]
    assert metrics["totals"]["unpriced_trades"] == want["unpriced_trades"] == 0
    for field in ("trades", "volume_usd", "fees_usd", "realized_pnl_usd", "closed_trades"):
        assert metrics["totals"][field] == want[field], field
    for field, value in want.items():
        if field in ("unpriced_trades",):
            continue
        if field in ("period_start", "period_end"):
            assert summary[field] == rfc3339_ms(value)
        elif isinstance(value, float):
            assert summary[field] == pytest.approx(value, rel=1e-9), field
        else:
            assert summary[field] == value, field
    assert summary["backfill_complete"] is True
    assert summary["data_source"] == stack.simulator
    assert summary["exchange"] == "binance" and summary["account_type"] == "spot"


async def test_session_lifecycle_replay_renew_revoke(stack: Stack) -> None:
    account = stack.account(trades=200, seed=12, days=2)
    credentials = Credentials(
        exchange="binance", api_key=account["api_key"], api_secret=account["api_secret"]
    )
    async with EnclaveClient(stack.enclave) as client:
        enclave = await client.verify(stack.policy)
        body = seal_credentials(enclave, credentials, {"exchange": "binance", "label": "x", "ttl": 600})
        first = httpx.post(f"{stack.enclave}/enclave/submit_key", json=body, timeout=30)
        assert first.status_code == 201
        session_id, token = first.json()["session_id"], first.json()["token"]
        assert len(token) >= 43 and len(session_id) >= 22

        replay = httpx.post(f"{stack.enclave}/enclave/submit_key", json=body, timeout=30)
        assert replay.status_code == 409 and replay.json()["error"]["code"] == "envelope_replayed"

        renewed = await client.renew(session_id, token, 7200)
        remaining = renewed.expires_at.timestamp() - time.time()
        assert 7100 < remaining <= 7200

        other = await client.register(credentials, policy=stack.policy)
        with pytest.raises(EnclaveError) as wrong:
            await client.metrics(session_id, other.token)  # another session's token
        assert wrong.value.status == 401

        await client.revoke(session_id, token)
        for call in (client.metrics, client.summary):
            with pytest.raises(EnclaveError) as gone:
                await call(session_id, token)
            assert gone.value.status == 401 and gone.value.code == "unauthorized"
        assert (await client.health())["sessions"] == 1


async def test_rejected_and_withdrawal_enabled_keys_leave_nothing(stack: Stack) -> None:
    good = stack.account(trades=50, seed=13, days=1)
    withdrawing = stack.account(trades=50, seed=14, days=1, can_withdraw=True)
    cases = [
        (
            Credentials(exchange="binance", api_key=good["api_key"], api_secret="x" * 64),
            "credentials_rejected",
        ),
        (
            Credentials(exchange="binance", api_key="A" * 64, api_secret=good["api_secret"]),
            "credentials_rejected",
        ),
        (
            Credentials(
                exchange="binance", api_key=withdrawing["api_key"], api_secret=withdrawing["api_secret"]
            ),
            "key_not_read_only",
        ),
    ]
    async with EnclaveClient(stack.enclave) as client:
        for credentials, code in cases:
            with pytest.raises(EnclaveError) as refused:
                await client.register(credentials, policy=stack.policy)
            assert (refused.value.status, refused.value.code) == (422, code)
        assert (await client.health())["sessions"] == 0
