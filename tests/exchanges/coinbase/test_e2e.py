"""End to end over HTTP: client → enclave → Coinbase simulator, history and figures checked
against the simulator's own fills and public candles."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import closed_port_origin, enclave_settings
from perf_aggregator.api.app import create_app
from perf_aggregator.client import (
    Credentials,
    EnclaveClient,
    EnclaveError,
    VerificationPolicy,
    verify_summary,
)
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.formats import parse_rfc3339
from perf_aggregator.simulator.coinbase import SimulatedCoinbase, create_coinbase_app
from reference import usd8

HOUR_MS = 3_600_000
STABLE = {"USD", "USDT", "USDC"}


@dataclass
class Stack:
    simulator: str
    enclave: str
    policy: VerificationPolicy

    def account(self, trades: int, seed: int, hours: int, **options: Any) -> dict[str, Any]:
        end = int(time.time() * 1000) - 10 * 60_000
        body = {"seed": seed, "trades": trades, "start": end - hours * HOUR_MS, "end": end, **options}
        created = httpx.post(f"{self.simulator}/_simulator/accounts", json=body, timeout=60)
        return {**created.raise_for_status().json(), "start": body["start"], "end": end}


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    with serve_in_thread(create_coinbase_app(SimulatedCoinbase(seed=8))) as url:
        yield url


@pytest.fixture
def stack(simulator: str, enclave_data_dir: Path) -> Iterator[Stack]:
    settings = enclave_settings(
        enclave_data_dir,
        closed_port_origin(),
        exchange_urls={"binance": closed_port_origin(), "coinbase": simulator},
    )
    policy = VerificationPolicy(allow_simulated=True, allowed_data_sources=frozenset({simulator}))
    with serve_in_thread(create_app(settings)) as url:
        yield Stack(simulator, url, policy)


async def wait_backfill(client: EnclaveClient, session_id: str, token: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        metrics: dict[str, Any] = await client.metrics(session_id, token)
        if metrics["sync"]["backfill_complete"]:
            return metrics
        await asyncio.sleep(0.1)
    raise AssertionError("backfill did not complete")


def closes(simulator: str, product: str, start_ms: int, end_ms: int) -> dict[int, Decimal]:
    """1m closes by open time from the simulator's public candles (300 a call)."""
    series: dict[int, Decimal] = {}
    cursor = start_ms // 60_000 * 60
    while cursor * 1000 <= end_ms:
        params: dict[str, str | int] = {
            "start": cursor,
            "end": cursor + 300 * 60,
            "granularity": "ONE_MINUTE",
        }
        for _ in range(50):
            response = httpx.get(
                f"{simulator}/api/v3/brokerage/market/products/{product}/candles", params=params
            )
            if response.status_code != 429:
                break
            time.sleep(0.2)
        series.update(
            {
                int(c["start"]) * 1000: Decimal(c["close"])
                for c in response.raise_for_status().json()["candles"]
            }
        )
        cursor += 300 * 60
    return series


async def test_backfill_is_complete_once_and_figures_match(stack: Stack) -> None:
    account = stack.account(trades=300, seed=31, hours=20)
    since = account["start"] + 4 * HOUR_MS
    credentials = Credentials(
        exchange="coinbase",
        api_key=account["api_key"],
        api_secret=account["api_secret"],
        since=datetime.fromtimestamp(since / 1000, tz=UTC),
    )
    async with EnclaveClient(stack.enclave) as client:
        registration = await client.register(credentials, label="cb", ttl=3600, policy=stack.policy)
        metrics = await wait_backfill(client, registration.session_id, registration.token)
        signed = await client.summary(registration.session_id, registration.token)
        listed: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = await client.trades(registration.session_id, registration.token, limit=400, cursor=cursor)
            listed.extend(page["trades"])
            cursor = page["next_cursor"]
            if cursor is None:
                break

    key_id = account["api_key"].rsplit("/", 1)[-1]
    fills = httpx.get(f"{stack.simulator}/_simulator/accounts/{key_id}/fills").json()
    in_period = [f for f in fills if parse_rfc3339(f["trade_time"]) >= since]
    assert 0 < len(in_period) < len(fills)
    assert metrics["sync"]["trades_fetched"] == len(in_period) == len(listed)
    assert {t["id"] for t in listed} == {f["trade_id"] for f in in_period}
    assert any(f["size_in_quote"] for f in in_period)

    # Independent figures: value = cost in quote, fee in quote, BTC valued by BTC-USDT 1m closes.
    btc = closes(stack.simulator, "BTC-USDT", since - HOUR_MS, account["end"])
    volume: dict[str, Decimal] = defaultdict(Decimal)
    fees: dict[str, Decimal] = defaultdict(Decimal)
    counts: dict[str, int] = defaultdict(int)
    for fill in in_period:
        base, quote = fill["product_id"].split("-")
        symbol = f"{base}/{quote}"
        t = parse_rfc3339(fill["trade_time"])
        size, price = Decimal(fill["size"]), Decimal(fill["price"])
        cost = size if fill["size_in_quote"] else size * price
        rate = Decimal(1) if quote in STABLE else btc[t // 60_000 * 60_000]
        volume[symbol] += cost * rate
        fees[symbol] += Decimal(fill["commission"]) * rate
        counts[symbol] += 1
    assert "ETH/BTC" in counts
    got = {s["symbol"]: s for s in metrics["symbols"]}
    assert set(got) == set(counts)
    for symbol in counts:
        assert got[symbol]["trades"] == counts[symbol], symbol
        assert got[symbol]["volume_usd"] == usd8(volume[symbol]), symbol
        assert got[symbol]["fees_usd"] == usd8(fees[symbol]), symbol
        assert got[symbol]["unpriced_trades"] == 0
    assert metrics["totals"]["volume_usd"] == usd8(sum(volume.values(), Decimal(0)))
    assert metrics["totals"]["fees_usd"] == usd8(sum(fees.values(), Decimal(0)))

    summary = verify_summary(signed, stack.policy)
    assert summary["exchange"] == "coinbase" and summary["account_type"] == "spot"
    assert summary["data_source"] == stack.simulator and summary["backfill_complete"] is True
    assert summary["trades"] == len(in_period)


async def test_key_that_can_transfer_is_refused(stack: Stack) -> None:
    transferring = stack.account(trades=5, seed=32, hours=1, can_transfer=True)
    credentials = Credentials(
        exchange="coinbase", api_key=transferring["api_key"], api_secret=transferring["api_secret"]
    )
    async with EnclaveClient(stack.enclave) as client:
        with pytest.raises(EnclaveError) as refused:
            await client.register(credentials, policy=stack.policy)
        assert (refused.value.status, refused.value.code) == (422, "key_not_read_only")
        assert (await client.health())["sessions"] == 0
