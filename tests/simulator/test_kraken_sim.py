"""The Kraken simulator on the wire: ccxt's own ``kraken`` class, raw signed calls, errors, limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import ccxt.async_support as ccxt_async
import httpx
import pytest
from ccxt.base import errors as ccxt_errors

from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.exchanges.endpoints import override_ccxt_urls
from perf_aggregator.simulator.faults import FaultInjector, FaultPlan
from perf_aggregator.simulator.kraken import (
    OHLC_KEEP,
    KrakenAccount,
    SimulatedKraken,
    create_kraken_app,
    wall_clock_ms,
)

HOUR_MS = 3_600_000


class FakeClock:
    def __init__(self) -> None:
        self.now = wall_clock_ms()

    def __call__(self) -> int:
        return self.now


@dataclass
class Kraken:
    """A raw client of one simulated Kraken: plain HTTP, own signing."""

    sim: SimulatedKraken
    origin: str
    http: httpx.Client
    nonce: int = 0

    def private(
        self,
        method: str,
        params: dict[str, Any],
        account: KrakenAccount,
        *,
        secret: str | None = None,
        nonce: int | None = None,
    ) -> httpx.Response:
        self.nonce = max(self.nonce + 1, wall_clock_ms() * 1000) if nonce is None else nonce
        body = urlencode({"nonce": self.nonce, **params})
        path = f"/0/private/{method}"
        digest = hashlib.sha256((str(self.nonce) + body).encode()).digest()
        key = base64.b64decode(secret or account.api_secret)
        sign = base64.b64encode(hmac.new(key, path.encode() + digest, hashlib.sha512).digest()).decode()
        headers = {
            "API-Key": account.api_key,
            "API-Sign": sign,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return self.http.post(f"{self.origin}{path}", content=body, headers=headers)

    def result(self, method: str, params: dict[str, Any], account: KrakenAccount) -> Any:
        response = self.private(method, params, account)
        assert response.status_code == 200
        document = response.json()
        assert document["error"] == [], document
        return document["result"]


def _serve(sim: SimulatedKraken) -> Iterator[Kraken]:
    with serve_in_thread(create_kraken_app(sim)) as origin, httpx.Client(timeout=30) as http:
        yield Kraken(sim, origin, http)


@pytest.fixture(scope="module")
def kraken() -> Iterator[Kraken]:
    yield from _serve(SimulatedKraken(seed=3, tier="pro"))


@pytest.fixture(scope="module")
def account(kraken: Kraken) -> KrakenAccount:
    now = wall_clock_ms()
    return kraken.sim.create_account(1, 180, start_ms=now - 6 * HOUR_MS, end_ms=now - 60_000)


def client(origin: str, account: KrakenAccount, **overrides: str) -> Any:
    exchange = ccxt_async.kraken(
        {"apiKey": account.api_key, "secret": account.api_secret, "enableRateLimit": False, **overrides}
    )
    override_ccxt_urls(exchange, origin)
    return exchange


async def test_ccxt_loads_markets_balance_and_trades(kraken: Kraken, account: KrakenAccount) -> None:
    exchange = client(kraken.origin, account)
    try:
        markets = await exchange.load_markets()
        assert {"BTC/USD", "ETH/USD", "ETH/BTC", "SOL/USD", "BTC/EUR"} <= set(markets)
        btc = markets["BTC/USD"]
        assert (btc["id"], btc["altname"], btc["base"], btc["quote"]) == ("XXBTZUSD", "XBTUSD", "BTC", "USD")
        assert btc["baseId"] == "BTC" and exchange.currencies["BTC"]["id"] == "XXBT"

        balance = await exchange.fetch_balance()
        codes = {"XXBT": "BTC", "XETH": "ETH", "SOL": "SOL", "ZUSD": "USD", "ZEUR": "EUR"}
        for asset, amount in account.balances.items():
            assert balance["total"][codes[asset]] == pytest.approx(float(amount))

        trades = await exchange.fetch_my_trades()
        newest = account.trades[::-1][:50]
        assert {t["id"] for t in trades} == {t.txid for t in newest}  # ccxt re-sorts them by time
        by_id = {t.txid: t for t in account.trades}
        for trade in trades:
            raw = by_id[trade["id"]]
            assert trade["order"] == raw.ordertxid
            assert trade["side"] == raw.type
            assert trade["amount"] == pytest.approx(float(raw.vol))
            assert trade["fee"]["currency"] == trade["symbol"].split("/")[1]

        since = account.trades[-30].time_ms
        recent = await exchange.fetch_my_trades(since=since)
        assert {t["id"] for t in recent} >= {t.txid for t in account.trades[-29:]}

        candles = await exchange.fetch_ohlcv("BTC/USD", "1m")
        assert len(candles) == OHLC_KEEP
        assert candles[-1][0] // 60_000 == wall_clock_ms() // 60_000
    finally:
        await exchange.close()


def test_trades_history_pages_newest_first_with_count_ofs_start_end(
    kraken: Kraken, account: KrakenAccount
) -> None:
    trades = account.trades
    first = kraken.result("TradesHistory", {"type": "all"}, account)
    assert first["count"] == len(trades)
    assert list(first["trades"]) == [t.txid for t in trades[::-1][:50]]
    element = first["trades"][trades[-1].txid]
    assert set(element) >= {"ordertxid", "postxid", "pair", "time", "type", "ordertype", "price", "cost"}
    assert set(element) >= {"fee", "vol", "margin", "leverage", "misc", "trade_id", "maker"}
    assert isinstance(element["time"], float) and isinstance(element["trade_id"], int)

    second = kraken.result("TradesHistory", {"ofs": 50}, account)
    assert list(second["trades"]) == [t.txid for t in trades[::-1][50:100]]

    # A trade id as end is inclusive, as start exclusive.
    window = kraken.result("TradesHistory", {"start": trades[9].txid, "end": trades[20].txid}, account)
    assert window["count"] == 11
    assert list(window["trades"]) == [t.txid for t in trades[10:21]][::-1]

    # Times in seconds: start exclusive, end inclusive.
    t0 = trades[40].time_us / 1e6
    timed = kraken.result("TradesHistory", {"start": str(t0), "end": str(trades[60].time_us / 1e6)}, account)
    assert all(t0 < v["time"] <= trades[60].time_us / 1e6 for v in timed["trades"].values())

    bad = kraken.private("TradesHistory", {"type": "nonsense"}, account)
    assert bad.status_code == 200 and bad.json()["error"] == ["EGeneral:Invalid arguments"]


def test_authentication_errors_are_http_200_kraken_errors(kraken: Kraken, account: KrakenAccount) -> None:
    wrong_secret = base64.b64encode(b"x" * 64).decode()
    bad_sign = kraken.private("Balance", {}, account, secret=wrong_secret)
    assert bad_sign.status_code == 200
    assert bad_sign.json() == {"error": ["EAPI:Invalid signature"], "result": {}}

    stranger = KrakenAccount("nobody" * 8, account.api_secret, {}, [])
    assert kraken.private("Balance", {}, stranger).json()["error"] == ["EAPI:Invalid key"]

    kraken.result("Balance", {}, account)
    for stale in (kraken.nonce, kraken.nonce - 10):  # not above the last accepted one
        refused = kraken.private("Balance", {}, account, nonce=stale)
        assert refused.json()["error"] == ["EAPI:Invalid nonce"]


async def test_ccxt_sees_kraken_errors(kraken: Kraken, account: KrakenAccount) -> None:
    bad = client(kraken.origin, account, secret=base64.b64encode(b"y" * 64).decode())
    unknown = client(kraken.origin, KrakenAccount("Q" * 56, account.api_secret, {}, []))
    try:
        with pytest.raises(ccxt_errors.ExchangeError, match="EAPI:Invalid signature"):
            await bad.privatePostBalance()
        with pytest.raises(ccxt_errors.AuthenticationError, match="EAPI:Invalid key"):
            await unknown.privatePostBalance()
    finally:
        await bad.close()
        await unknown.close()


def test_call_counter_limits_and_decays() -> None:
    clock = FakeClock()
    for kraken in _serve(SimulatedKraken(seed=1, tier="starter", now_ms=clock)):
        now = clock.now
        account = kraken.sim.create_account(2, 20, start_ms=now - HOUR_MS, end_ms=now - 60_000)
        for _ in range(7):  # 7 x 2 = 14 <= 15
            kraken.result("TradesHistory", {}, account)
        kraken.result("Balance", {}, account)  # 15
        refused = kraken.private("TradesHistory", {}, account)
        assert refused.status_code == 200
        assert refused.json() == {"error": ["EAPI:Rate limit exceeded"], "result": {}}
        clock.now += 3_000  # decays by 0.99: still full for a cost of 2
        assert kraken.private("TradesHistory", {}, account).json()["error"] == ["EAPI:Rate limit exceeded"]
        clock.now += 4_000  # 7 s in all: 2.31 decayed
        kraken.result("TradesHistory", {}, account)


def test_ohlc_keeps_the_720_most_recent_candles(kraken: Kraken) -> None:
    everything = kraken.http.get(f"{kraken.origin}/0/public/OHLC", params={"pair": "XBTUSD", "interval": 1})
    result = everything.json()["result"]
    rows = result["XXBTZUSD"]
    assert len(rows) == OHLC_KEEP
    times = [r[0] for r in rows]
    assert times == list(range(times[0], times[0] + 60 * OHLC_KEEP, 60))
    assert result["last"] == times[-2]  # the last row is the still open candle
    assert all(len(r) == 8 and isinstance(r[4], str) and isinstance(r[7], int) for r in rows)
    since = times[-10]
    later = kraken.http.get(
        f"{kraken.origin}/0/public/OHLC", params={"pair": "XXBTZUSD", "interval": 1, "since": since}
    ).json()["result"]["XXBTZUSD"]
    assert [r[0] for r in later] == times[-9:]
    unknown = kraken.http.get(f"{kraken.origin}/0/public/OHLC", params={"pair": "NOPE"}).json()
    assert unknown["error"] == ["EQuery:Unknown asset pair"]


def test_admin_routes_create_accounts_and_reveal_trades(kraken: Kraken) -> None:
    now = wall_clock_ms()
    body = {"seed": 9, "trades": 30, "start": now - HOUR_MS, "end": now - 60_000}
    created = kraken.http.post(f"{kraken.origin}/_simulator/accounts", json=body).json()
    assert created["trades"] == 30 and len(created["api_key"]) == 56
    raw = kraken.http.get(f"{kraken.origin}/_simulator/accounts/{created['api_key']}/trades").json()
    assert len(raw) == 30 and len({t["txid"] for t in raw}) == 30
    assert [t["time"] for t in raw] == sorted(t["time"] for t in raw)
    again = kraken.sim.create_account(9, 30, start_ms=body["start"], end_ms=body["end"])
    assert [t["txid"] for t in again.raw_trades()] == [t["txid"] for t in raw]  # deterministic


async def test_faults_come_from_the_injector_and_skew_from_the_exchange_clock() -> None:
    clock = FakeClock()
    sim = SimulatedKraken(seed=4, tier="pro", now_ms=clock)
    injector = FaultInjector(create_kraken_app(sim), FaultPlan())
    with serve_in_thread(injector) as origin, httpx.Client(timeout=30) as http:
        kraken = Kraken(sim, origin, http)
        now = clock.now
        account = sim.create_account(5, 120, start_ms=now - HOUR_MS, end_ms=now - 60_000)
        other = sim.create_account(6, 10, start_ms=now - HOUR_MS, end_ms=now - 60_000)
        url = f"{origin}/0/public/Time"
        injector.plan = FaultPlan(server_error_rate=1.0)
        assert http.get(url).status_code == 503
        injector.plan = FaultPlan(malformed_rate=1.0)
        with pytest.raises(json.JSONDecodeError):
            json.loads(http.get(url).text)
        for plan in (FaultPlan(reset_rate=1.0), FaultPlan(timeout_rate=1.0, timeout_hold_s=0.05)):
            injector.plan = plan
            with pytest.raises(httpx.HTTPError):
                http.get(url)
        injector.plan = FaultPlan()
        clock.now += 120_000  # the exchange's clock runs two minutes ahead of ours
        assert http.get(url).json()["result"]["unixtime"] == clock.now // 1000

        # A stale answer replays the key's previous TradesHistory page, never another key's.
        first = kraken.result("TradesHistory", {}, account)
        injector.plan = FaultPlan(stale_rate=1.0)
        assert kraken.result("TradesHistory", {"ofs": 50}, account) == first
        theirs = kraken.result("TradesHistory", {}, other)
        assert set(theirs["trades"]) == {t.txid for t in other.trades}
        injector.plan = FaultPlan()
        second = kraken.result("TradesHistory", {"ofs": 50}, account)
        assert list(second["trades"]) == [t.txid for t in account.trades[::-1][50:100]]

        exchange = client(origin, account)
        injector.plan = FaultPlan(server_error_rate=1.0)
        try:
            with pytest.raises(ccxt_errors.NetworkError):
                await exchange.publicGetTime()
        finally:
            injector.plan = FaultPlan()
            await exchange.close()
