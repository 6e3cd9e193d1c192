"""The Coinbase Advanced Trade simulator against ccxt's own ``coinbase`` class and raw HTTP."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import ccxt.async_support as ccxt_async
import httpx
import pytest
from ccxt.base import errors as ccxt_errors

from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.exchanges.endpoints import override_ccxt_urls
from perf_aggregator.simulator.coinbase import SimulatedCoinbase, create_coinbase_app, wall_clock_ms
from perf_aggregator.simulator.faults import FaultInjector, FaultPlan

HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def coinbase() -> Iterator[tuple[SimulatedCoinbase, str]]:
    sim = SimulatedCoinbase(seed=7, private_per_second=1000, public_per_second=1000)
    with serve_in_thread(create_coinbase_app(sim)) as url:
        yield sim, url


@pytest.fixture(scope="module")
def account(coinbase: tuple[SimulatedCoinbase, str]) -> dict[str, Any]:
    _, url = coinbase
    end = int(time.time() * 1000) - 10 * 60_000
    body = {"seed": 3, "trades": 420, "start": end - 24 * HOUR_MS, "end": end}
    created: dict[str, Any] = httpx.post(f"{url}/_simulator/accounts", json=body).raise_for_status().json()
    return {**created, "start": body["start"], "end": end}


@pytest.fixture
async def exchange(coinbase: tuple[SimulatedCoinbase, str], account: dict[str, Any]) -> AsyncIterator[Any]:
    _, url = coinbase
    ex = ccxt_async.coinbase(
        {"apiKey": account["api_key"], "secret": account["api_secret"], "enableRateLimit": False}
    )
    override_ccxt_urls(ex, url)
    try:
        yield ex
    finally:
        await ex.close()


def key_id(account: dict[str, Any]) -> str:
    return str(account["api_key"]).rsplit("/", 1)[-1]


def sim_fills(url: str, account: dict[str, Any]) -> list[dict[str, Any]]:
    fills: list[dict[str, Any]] = httpx.get(f"{url}/_simulator/accounts/{key_id(account)}/fills").json()
    return fills


async def test_ccxt_load_markets_balance_and_ohlcv(exchange: Any) -> None:
    markets = await exchange.load_markets()
    assert {"BTC/USD", "ETH/USD", "ETH/BTC", "BTC/USDT"} <= set(markets)
    assert markets["BTC/USD"]["id"] == "BTC-USD" and markets["BTC/USD"]["spot"]
    balance = await exchange.fetch_balance()
    assert balance["total"]["BTC"] is not None and balance["total"]["USD"] > 0
    balance_v3 = await exchange.fetch_balance({"v3": True})
    assert balance_v3["total"]["BTC"] == balance["total"]["BTC"]
    since = (int(time.time()) // 60 - 30) * 60_000
    candles = await exchange.fetch_ohlcv("BTC/USD", "1m", since=since, limit=10)
    assert [c[0] for c in candles] == [since + i * 60_000 for i in range(10)]


async def test_ccxt_fetch_my_trades_pages_through_every_fill(
    coinbase: tuple[SimulatedCoinbase, str], account: dict[str, Any], exchange: Any
) -> None:
    _, url = coinbase
    trades = await exchange.fetch_my_trades(None, None, None, {"paginate": True, "paginationCalls": 20})
    fills = sim_fills(url, account)
    assert len(fills) == account["trades"] == 420
    assert sorted(t["id"] for t in trades) == sorted(f["trade_id"] for f in fills)
    assert any(f["size_in_quote"] for f in fills)
    by_id = {t["id"]: t for t in trades}
    for fill in fills[:50]:
        trade = by_id[fill["trade_id"]]
        assert trade["symbol"] == fill["product_id"].replace("-", "/")
        assert trade["side"] == fill["side"].lower()
        assert trade["fee"]["currency"] == fill["product_id"].split("-")[1]

    # Raw cursor paging: newest first, complete, nothing twice, empty cursor at the end.
    ex = exchange
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = await ex.v3PrivateGetBrokerageOrdersHistoricalFills(params)
        seen.extend(page["fills"])
        cursor = page["cursor"]
        if not cursor:
            break
    assert len(seen) == 420 and len({f["trade_id"] for f in seen}) == 420
    stamps = [f["sequence_timestamp"] for f in seen]
    assert stamps == sorted(stamps, reverse=True)


async def test_fills_filters_by_product_and_sequence_window(
    coinbase: tuple[SimulatedCoinbase, str], account: dict[str, Any], exchange: Any
) -> None:
    _, url = coinbase
    fills = sim_fills(url, account)
    middle = fills[len(fills) // 2]["sequence_timestamp"]
    page = await exchange.v3PrivateGetBrokerageOrdersHistoricalFills(
        {"product_ids": "BTC-USD", "start_sequence_timestamp": middle, "limit": 1000}
    )
    want = [f for f in fills if f["product_id"] == "BTC-USD" and f["sequence_timestamp"] >= middle]
    assert {f["trade_id"] for f in page["fills"]} == {f["trade_id"] for f in want}
    assert page["cursor"] == ""


def _forge(token: str, claims_update: dict[str, Any]) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(claims_update)
    encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


def test_jwt_refused_when_tampered_expired_or_for_another_uri(
    coinbase: tuple[SimulatedCoinbase, str], account: dict[str, Any]
) -> None:
    sim, url = coinbase
    signer = ccxt_async.coinbase({"apiKey": account["api_key"], "secret": account["api_secret"]})
    path = "/api/v3/brokerage/key_permissions"
    now = int(time.time())

    def get(token: str | None, target: str = path) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.get(f"{url}{target}", headers=headers)

    good = signer.create_auth_token(now, "GET", f"{url}{path}")
    ok = get(good)
    assert ok.status_code == 200 and ok.json()["can_transfer"] is False
    # The host form without the scheme, as Coinbase documents it, is accepted too.
    bare = signer.create_auth_token(now, "GET", f"{url.removeprefix('http://')}{path}")
    assert get(bare).status_code == 200

    refused = [
        get(None),
        get("not.a.jwt"),
        get(_forge(good, {"exp": now + 3600})),  # payload changed after signing
        get(signer.create_auth_token(now - 600, "GET", f"{url}{path}")),  # expired
        get(signer.create_auth_token(now + 600, "GET", f"{url}{path}")),  # not yet valid
        get(signer.create_auth_token(now, "GET", f"{url}/api/v3/brokerage/accounts")),  # other uri
        get(good, "/api/v3/brokerage/accounts"),
    ]
    other = ccxt_async.coinbase(
        {
            "apiKey": account["api_key"],
            "secret": httpx.post(f"{url}/_simulator/accounts", json={"seed": 99, "trades": 0}).json()[
                "api_secret"
            ],
        }
    )
    refused.append(get(other.create_auth_token(now, "GET", f"{url}{path}")))  # wrong key's signature
    for response in refused:
        assert response.status_code == 401, response.text
        body = response.json()
        assert body["error"] == "UNAUTHORIZED" and "message" in body and "error_details" in body

    sim.wall_ms = lambda: wall_clock_ms() + 300_000  # the exchange's clock runs five minutes ahead
    try:
        assert get(signer.create_auth_token(int(time.time()), "GET", f"{url}{path}")).status_code == 401
    finally:
        sim.wall_ms = wall_clock_ms


def test_rate_limits_answer_429() -> None:
    sim = SimulatedCoinbase(seed=1, private_per_second=30, public_per_second=10)
    with serve_in_thread(create_coinbase_app(sim)) as url, httpx.Client() as http:
        public = [http.get(f"{url}/api/v3/brokerage/market/products").status_code for _ in range(15)]
        assert public[:10] == [200] * 10 and 429 in public  # a slow runner may see the window slide
        account = http.post(f"{url}/_simulator/accounts", json={"seed": 1, "trades": 5}).json()
        signer = ccxt_async.coinbase({"apiKey": account["api_key"], "secret": account["api_secret"]})
        path = "/api/v3/brokerage/accounts"
        token = signer.create_auth_token(int(time.time()), "GET", f"{url}{path}")
        private = [http.get(f"{url}{path}", headers={"Authorization": f"Bearer {token}"}) for _ in range(40)]
        codes = [r.status_code for r in private]
        assert codes[:30] == [200] * 30 and 429 in codes
        assert private[-1].json()["error"] == "RATE_LIMIT_EXCEEDED"


async def test_injected_faults_surface_as_ccxt_errors_and_stale_pages_follow_the_key(
    coinbase: tuple[SimulatedCoinbase, str], account: dict[str, Any]
) -> None:
    sim, _ = coinbase
    injector = FaultInjector(create_coinbase_app(sim), FaultPlan())
    with serve_in_thread(injector) as url:
        ex = ccxt_async.coinbase(
            {"apiKey": account["api_key"], "secret": account["api_secret"], "enableRateLimit": False}
        )
        override_ccxt_urls(ex, url)
        try:
            injector.plan = FaultPlan(server_error_rate=1.0)
            with pytest.raises(ccxt_errors.NetworkError):
                await ex.v3PrivateGetBrokerageKeyPermissions()
            injector.plan = FaultPlan(malformed_rate=1.0)
            assert not isinstance(await ex.v3PrivateGetBrokerageKeyPermissions(), dict)

            # Every request carries a fresh JWT: the stale answer is keyed on its key name (sub).
            injector.plan = FaultPlan()
            first = await ex.v3PrivateGetBrokerageOrdersHistoricalFills({"limit": 100})
            injector.plan = FaultPlan(stale_rate=1.0)
            again = await ex.v3PrivateGetBrokerageOrdersHistoricalFills({"limit": 100, "cursor": "100"})
            assert again == first and first["cursor"] == "100"
            other = httpx.post(f"{url}/_simulator/accounts", json={"seed": 98, "trades": 3}).json()
            theirs = ccxt_async.coinbase(
                {"apiKey": other["api_key"], "secret": other["api_secret"], "enableRateLimit": False}
            )
            override_ccxt_urls(theirs, url)
            try:
                page = await theirs.v3PrivateGetBrokerageOrdersHistoricalFills({"limit": 100})
                assert len(page["fills"]) == 3
            finally:
                await theirs.close()
        finally:
            await ex.close()
