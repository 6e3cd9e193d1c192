"""Symbol discovery of the Binance connectors spends little weight: the account (and the futures
income) is read at most every ``DISCOVERY_REFRESH_MS``, counted at the simulator over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import enclave_settings
from perf_aggregator.api.app import create_app
from perf_aggregator.client import Credentials, EnclaveClient, VerificationPolicy
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.exchanges.binance import DISCOVERY_REFRESH_MS, BinanceSpot
from perf_aggregator.exchanges.binance_usdm import BinanceUsdm
from perf_aggregator.simulator.binance import SimulatedBinance, create_binance_app
from perf_aggregator.simulator.binance_usdm import enable_futures
from perf_aggregator.simulator.units import SCALE
from perf_aggregator.tee.credentials import ExchangeCredentials
from request_log import RequestLog

DAY_MS = 86_400_000
SPOT_ACCOUNT = "/api/v3/account"
FUTURES_ACCOUNT = "/fapi/v2/account"
INCOME = "/fapi/v1/income"


class FakeClock:
    """The connector's clock, moved by hand (the simulator keeps the real one)."""

    def __init__(self) -> None:
        self.now = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.now


@dataclass
class Exchange:
    sim: SimulatedBinance
    origin: str
    log: RequestLog


@pytest.fixture(scope="module")
def exchange() -> Iterator[Exchange]:
    sim = SimulatedBinance(seed=21)
    enable_futures(sim)
    log = RequestLog(create_binance_app(sim))
    with serve_in_thread(log) as origin:
        yield Exchange(sim, origin, log)


def credentials(key: str, secret: str, account_type: str = "spot", since_ms: int = 0) -> ExchangeCredentials:
    return ExchangeCredentials("binance", key, secret, None, account_type, since_ms, ())


async def test_spot_reads_the_account_once_per_refresh_period(
    exchange: Exchange, opened: list[BinanceSpot]
) -> None:
    account = exchange.sim.create_account(61, 40, symbols=["BTCUSDT"], bnb_fee_share=0.0)
    clock = FakeClock()
    connector = BinanceSpot(credentials(account.api_key, account.api_secret), exchange.origin, clock)
    opened.append(connector)
    before = exchange.log.count(SPOT_ACCOUNT)

    await connector.validate()
    polls = [await connector.discover_symbols(["ETH/USDT", "DOGE/USDT"]) for _ in range(5)]
    clock.now += DISCOVERY_REFRESH_MS - 1
    polls.append(await connector.discover_symbols([]))

    # validate's read served the first discovery; five more polls within the period read nothing.
    assert exchange.log.count(SPOT_ACCOUNT) - before == 1
    held = ["BTC/USDC", "BTC/USDT"]  # BTC against the stablecoins; no ETH to pair with BTC
    assert polls[0] == [*held, "ETH/USDT"]  # plus the hint that names a market
    assert polls[1:5] == polls[:4] and polls[5] == held

    account.balances["SOL"] = 3 * SCALE  # a new holding shows once the period is over
    assert await connector.discover_symbols([]) == held
    clock.now += 1
    assert await connector.discover_symbols([]) == [*held, "SOL/USDT"]
    assert exchange.log.count(SPOT_ACCOUNT) - before == 2

    account.balances["SOL"] = 0  # a market once found stays listed
    clock.now += DISCOVERY_REFRESH_MS
    assert await connector.discover_symbols([]) == [*held, "SOL/USDT"]
    assert exchange.log.count(SPOT_ACCOUNT) - before == 3


async def test_spot_discovery_without_validation_reads_the_account(
    exchange: Exchange, opened: list[BinanceSpot]
) -> None:
    account = exchange.sim.create_account(62, 30, symbols=["ETHUSDT"], bnb_fee_share=0.0)
    connector = BinanceSpot(credentials(account.api_key, account.api_secret), exchange.origin, FakeClock())
    opened.append(connector)
    before = exchange.log.count(SPOT_ACCOUNT)
    assert await connector.discover_symbols([]) == ["ETH/USDT"]
    assert await connector.discover_symbols([]) == ["ETH/USDT"]
    assert exchange.log.count(SPOT_ACCOUNT) - before == 1


async def test_futures_reads_positions_once_and_income_once_per_refresh_period(
    exchange: Exchange, opened: list[BinanceSpot]
) -> None:
    end = int(time.time() * 1000) - 10 * 60_000
    body = {"seed": 63, "trades": 40, "start": end - 2 * DAY_MS, "end": end, "symbols": ["SOLUSDT"]}
    created = httpx.post(f"{exchange.origin}/_simulator/futures/accounts", json=body, timeout=60)
    key, secret = created.raise_for_status().json()["api_key"], created.json()["api_secret"]
    clock = FakeClock()
    connector = BinanceUsdm(credentials(key, secret, "futures", body["start"]), exchange.origin, clock)
    opened.append(connector)
    accounts, incomes = exchange.log.count(FUTURES_ACCOUNT), exchange.log.count(INCOME)

    await connector.validate()
    polls = [await connector.discover_symbols([]) for _ in range(4)]
    assert polls == [["SOL/USDT:USDT"]] * 4
    assert (exchange.log.count(FUTURES_ACCOUNT) - accounts, exchange.log.count(INCOME) - incomes) == (1, 1)

    clock.now += DISCOVERY_REFRESH_MS
    assert await connector.discover_symbols(["BTC/USDT:USDT"]) == ["BTC/USDT:USDT", "SOL/USDT:USDT"]
    assert (exchange.log.count(FUTURES_ACCOUNT) - accounts, exchange.log.count(INCOME) - incomes) == (1, 2)


async def test_an_enclave_session_reads_the_account_once_across_polls(
    exchange: Exchange, enclave_data_dir: Path
) -> None:
    end = int(time.time() * 1000) - 10 * 60_000
    body = {"seed": 64, "trades": 60, "start": end - DAY_MS, "end": end}
    created = httpx.post(f"{exchange.origin}/_simulator/accounts", json=body, timeout=60).raise_for_status()
    user = Credentials(
        exchange="binance",
        api_key=created.json()["api_key"],
        api_secret=created.json()["api_secret"],
        since=datetime.fromtimestamp(body["start"] / 1000, tz=UTC),
    )
    policy = VerificationPolicy(allow_simulated=True, allowed_data_sources=frozenset({exchange.origin}))
    before = exchange.log.count(SPOT_ACCOUNT)
    polls: set[str] = set()
    with serve_in_thread(create_app(enclave_settings(enclave_data_dir, exchange.origin))) as enclave:
        async with EnclaveClient(enclave) as client:
            registration = await client.register(user, policy=policy)
            deadline = time.monotonic() + 30
            while len(polls) < 4:  # polls 0.2 s apart, doubling up to 1 s while nothing is new
                assert time.monotonic() < deadline, f"only {len(polls)} polls"
                sync: dict[str, Any] = (await client.metrics(registration.session_id, registration.token))[
                    "sync"
                ]
                if sync["last_poll_at"] is not None:
                    polls.add(sync["last_poll_at"])
                await asyncio.sleep(0.05)
    assert sync["last_error"] is None
    assert exchange.log.count(SPOT_ACCOUNT) - before == 1  # the registration's validation, reused
