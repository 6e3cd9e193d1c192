"""The simulated USD-M futures API: ccxt's own ``binanceusdm`` class against it, wire rules, weights."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import ccxt.async_support as ccxt
import httpx
import pytest

from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.exchanges.endpoints import override_ccxt_urls
from perf_aggregator.simulator import SimulatedBinance, create_binance_app
from perf_aggregator.simulator.binance_usdm import PERPETUALS, futures_accounts, generate_futures_account
from perf_aggregator.simulator.market import DAY_MS, PriceModel

from .conftest import WINDOW_END_MS, WINDOW_START_MS, Binance, FakeClock

WEEK_MS = 7 * DAY_MS


def error(response: httpx.Response) -> tuple[int, int, str]:
    body = response.json()
    return response.status_code, body["code"], body["msg"]


@pytest.fixture(scope="module")
def futures() -> Iterator[Binance]:
    sim = SimulatedBinance(seed=42)
    with serve_in_thread(create_binance_app(sim)) as origin, httpx.Client(timeout=30) as http:
        yield Binance(sim, origin, http)


@pytest.fixture(scope="module")
def account(futures: Binance) -> dict[str, Any]:
    """A futures account with 900 fills in January 2025, and its raw fills."""
    response = futures.http.post(
        f"{futures.origin}/_simulator/futures/accounts",
        json={"seed": 3, "trades": 900, "start": WINDOW_START_MS, "end": WINDOW_END_MS},
    )
    assert response.status_code == 200, response.text
    created = response.json()
    raw = futures.http.get(f"{futures.origin}/_simulator/futures/accounts/{created['api_key']}/trades").json()
    return {**created, "raw": raw}


def usdm_exchange(origin: str, key: str, secret: str) -> ccxt.binanceusdm:
    ex = ccxt.binanceusdm({"apiKey": key, "secret": secret})
    override_ccxt_urls(ex, origin)
    return ex


@pytest.fixture
async def ex(futures: Binance, account: dict[str, Any]) -> AsyncIterator[ccxt.binanceusdm]:
    client = usdm_exchange(futures.origin, account["api_key"], account["api_secret"])
    try:
        yield client
    finally:
        await client.close()


def test_generation_is_deterministic_with_longs_shorts_flips_and_bnb_fees() -> None:
    prices = PriceModel(1)
    _, one = generate_futures_account(5, WINDOW_START_MS, WINDOW_END_MS, trades=400, prices=prices)
    _, two = generate_futures_account(5, WINDOW_START_MS, WINDOW_END_MS, trades=400, prices=prices)
    assert one.ledger.raw_trades() == two.ledger.raw_trades()
    assert len(one.ledger.trades) == 400
    signs: dict[str, set[int]] = defaultdict(set)
    flips = 0
    for symbol, history in one.positions.items():
        previous = 0
        for position in history:
            signs[symbol].add((position.amount > 0) - (position.amount < 0))
            flips += previous * position.amount < 0
            previous = position.amount
    assert all({-1, 1} <= s for s in signs.values())  # long and short positions in every symbol
    assert flips > 0
    assets = {t.commission_asset for t in one.ledger.trades}
    assert assets == {"USDT", "BNB"}


def test_realized_pnl_is_binance_average_cost_figure(account: dict[str, Any]) -> None:
    """An independent average-cost computation gives every fill's ``realizedPnl``."""
    state: dict[str, tuple[Fraction, Fraction]] = defaultdict(lambda: (Fraction(0), Fraction(0)))
    closing = 0
    for t in sorted(account["raw"], key=lambda t: (t["time"], t["id"])):
        amount, cost = state[t["symbol"]]
        qty, price = Fraction(Decimal(t["qty"])), Fraction(Decimal(t["price"]))
        signed = qty if t["side"] == "BUY" else -qty
        pnl = Fraction(0)
        if amount and (amount > 0) != (signed > 0):
            closed = min(qty, abs(amount))
            entry = cost / abs(amount)
            pnl = closed * (price - entry) * (1 if amount > 0 else -1)
            closing += 1
            remaining = abs(amount) - closed
            new_amount = amount + signed
            cost = entry * remaining if remaining else abs(new_amount) * price
        else:
            new_amount = amount + signed
            cost += qty * price
        state[t["symbol"]] = (new_amount, cost if new_amount else Fraction(0))
        assert abs(Fraction(Decimal(t["realizedPnl"])) - pnl) <= Fraction(1, 2 * 10**8), t
        assert t["buyer"] == (t["side"] == "BUY") and t["positionSide"] == "BOTH"
    assert closing > 100


async def test_load_markets_lists_the_perpetuals(ex: ccxt.binanceusdm) -> None:
    markets = await ex.load_markets()

    assert set(markets) == {"BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"}
    btc = markets["BTC/USDT:USDT"]
    assert (btc["id"], btc["base"], btc["quote"], btc["settle"]) == ("BTCUSDT", "BTC", "USDT", "USDT")
    assert btc["swap"] and btc["linear"] and btc["contract"] and btc["active"]
    assert (btc["precision"]["price"], btc["precision"]["amount"]) == (0.1, 0.001)
    assert btc["limits"]["cost"]["min"] == 100


async def test_fetch_balance_and_positions(
    ex: ccxt.binanceusdm, futures: Binance, account: dict[str, Any]
) -> None:
    balance = await ex.fetch_balance()
    assert set(balance["total"]) == {"USDT", "BNB"}
    wallet = futures_accounts(futures.sim)[account["api_key"]].wallet(futures.sim.now_ms())
    assert Decimal(balance["info"]["assets"][1]["walletBalance"]) == Decimal(wallet["BNB"]) / 10**8

    v2 = await ex.fapiPrivateV2GetAccount()
    final: dict[str, Decimal] = defaultdict(Decimal)
    for t in account["raw"]:
        final[t["symbol"]] += Decimal(t["qty"]) * (1 if t["buyer"] else -1)
    assert {p["symbol"]: Decimal(p["positionAmt"]) for p in v2["positions"]} == {
        s: final.get(s, Decimal(0)) for s in PERPETUALS
    }
    v3 = await ex.fapiPrivateV3GetAccount()
    assert {p["symbol"] for p in v3["positions"]} == {s for s, q in final.items() if q}


async def test_fetch_my_trades_returns_the_generated_fills(
    ex: ccxt.binanceusdm, account: dict[str, Any]
) -> None:
    raw = sorted((t for t in account["raw"] if t["symbol"] == "ETHUSDT"), key=lambda t: t["id"])
    since = raw[len(raw) // 3]["time"]

    trades = await ex.fetch_my_trades("ETH/USDT:USDT", since=since)

    # ccxt bounds an old ``since`` to the 7 days after it.
    expected = [t for t in raw if since <= t["time"] <= since + WEEK_MS]
    assert expected
    assert [t["info"] for t in trades] == expected
    for got, want in zip(trades, expected, strict=True):
        assert got["symbol"] == "ETH/USDT:USDT"
        assert got["side"] == want["side"].lower()
        assert Decimal(str(got["amount"])) == Decimal(want["qty"])
        assert got["fee"]["currency"] == want["commissionAsset"]


async def test_from_id_pages_cover_the_whole_history(ex: ccxt.binanceusdm, account: dict[str, Any]) -> None:
    raw = sorted((t for t in account["raw"] if t["symbol"] == "BTCUSDT"), key=lambda t: t["id"])
    seen: list[dict[str, Any]] = []
    from_id = raw[0]["id"]
    while True:
        page = await ex.fapiPrivateGetUserTrades({"symbol": "BTCUSDT", "fromId": from_id, "limit": 100})
        seen.extend(page)
        if len(page) < 100:
            break
        from_id = page[-1]["id"] + 1
    assert seen == raw


def test_user_trades_rules(futures: Binance, account: dict[str, Any]) -> None:
    key, secret = account["api_key"], account["api_secret"]

    def signed(params: dict[str, Any], **kw: Any) -> httpx.Response:
        return futures.signed("/fapi/v1/userTrades", params, key=key, secret=secret, **kw)

    start = WINDOW_START_MS
    assert error(signed({"symbol": "BTCUSDT", "startTime": start, "endTime": start + WEEK_MS + 1})) == (
        400,
        -1127,
        "More than 7 days between startTime and endTime.",
    )
    week = signed({"symbol": "BTCUSDT", "startTime": start, "endTime": start + WEEK_MS, "limit": 1000}).json()
    assert week == [
        t
        for t in sorted(account["raw"], key=lambda t: t["id"])
        if t["symbol"] == "BTCUSDT" and t["time"] <= start + WEEK_MS
    ]
    assert error(signed({"startTime": start})) == (
        400,
        -1102,
        "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
    )
    assert error(signed({"symbol": "BTCUSDT", "fromId": 1, "startTime": start}))[1] == -1128
    assert error(signed({"symbol": "BNBUSDT"}))[1] == -1121  # a spot market, not a perpetual here
    assert error(signed({"symbol": "BTCUSDT", "limit": 1001}))[1] == -1130
    # Neither times nor fromId: the last 7 days only (the January history is older).
    assert signed({"symbol": "BTCUSDT"}).json() == []
    assert error(signed({"symbol": "BTCUSDT"}, tamper=lambda s: s[::-1])) == (
        400,
        -1022,
        "Signature for this request is not valid.",
    )
    stale = signed({"symbol": "BTCUSDT"}, timestamp=futures.sim.now_ms() - 60_000)
    assert error(stale)[:2] == (400, -1021)
    unsigned = futures.get("/fapi/v1/userTrades", {"symbol": "BTCUSDT"}, key=key)
    assert error(unsigned)[1] == -1102
    assert error(futures.get("/fapi/v1/userTrades", {"symbol": "BTCUSDT"}))[:2] == (401, -2014)
    # A key without futures is refused.
    spot = futures.create_account(seed=1, trades=5)
    refused = futures.signed("/fapi/v2/account", key=spot["api_key"], secret=spot["api_secret"])
    assert error(refused)[:2] == (401, -2015)


def test_income_lists_commissions_and_realized_pnl(futures: Binance, account: dict[str, Any]) -> None:
    key, secret = account["api_key"], account["api_secret"]
    params = {
        "incomeType": "COMMISSION",
        "startTime": WINDOW_START_MS,
        "endTime": WINDOW_END_MS,
        "limit": 1000,
    }
    entries = futures.signed("/fapi/v1/income", params, key=key, secret=secret).json()
    assert len(entries) == 900
    assert {e["symbol"] for e in entries} == {t["symbol"] for t in account["raw"]}
    realized = futures.signed(
        "/fapi/v1/income", {**params, "incomeType": "REALIZED_PNL"}, key=key, secret=secret
    ).json()
    assert sum(Decimal(e["income"]) for e in realized) == sum(
        Decimal(t["realizedPnl"]) for t in account["raw"]
    )


def test_exchange_info_klines_and_weight_headers(futures: Binance, account: dict[str, Any]) -> None:
    info = futures.get("/fapi/v1/exchangeInfo").json()
    assert info["rateLimits"][0] == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 2400,
    }
    assert [(s["symbol"], s["contractType"], s["marginAsset"]) for s in info["symbols"]] == [
        ("BTCUSDT", "PERPETUAL", "USDT"),
        ("ETHUSDT", "PERPETUAL", "USDT"),
        ("SOLUSDT", "PERPETUAL", "USDT"),
    ]
    assert futures.get("/fapi/v1/time").json()["serverTime"] > WINDOW_END_MS
    klines = futures.get(
        "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "startTime": WINDOW_START_MS, "limit": 3}
    ).json()
    spot = futures.get(
        "/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m", "startTime": WINDOW_START_MS, "limit": 3}
    ).json()
    assert klines == spot and len(klines) == 3

    first = futures.signed(
        "/fapi/v1/userTrades", {"symbol": "ETHUSDT"}, key=account["api_key"], secret=account["api_secret"]
    )
    second = futures.signed(
        "/fapi/v1/userTrades", {"symbol": "ETHUSDT"}, key=account["api_key"], secret=account["api_secret"]
    )
    used = int(second.headers["X-MBX-USED-WEIGHT-1M"]) - int(first.headers["X-MBX-USED-WEIGHT-1M"])
    # userTrades weighs 5 (unless a new minute began between the two calls).
    assert used == 5 or second.headers["X-MBX-USED-WEIGHT-1M"] == "5"
    assert "X-SAPI-USED-IP-WEIGHT-1M" not in second.headers


def test_futures_weight_budget_gives_429_then_418(clock: FakeClock) -> None:
    sim = SimulatedBinance(seed=1, now_ms=clock)
    sim.limiter.limits["fapi"] = 12  # a small budget instead of 2400
    with serve_in_thread(create_binance_app(sim)) as origin, httpx.Client(timeout=30) as http:
        client = Binance(sim, origin, http)
        clock.now = (clock.now // 60_000) * 60_000 + 1_000
        answers = [client.get("/fapi/v1/time") for _ in range(12)]
        assert all(a.status_code == 200 for a in answers)
        assert answers[-1].headers["X-MBX-USED-WEIGHT-1M"] == "12"
        limited = client.get("/fapi/v1/time")
        assert error(limited)[:2] == (429, -1003)
        assert "2400" not in limited.json()["msg"] and "12 request weight" in limited.json()["msg"]
        assert int(limited.headers["Retry-After"]) == 59
        # The spot family has its own budget.
        assert client.get("/api/v3/time").status_code == 200
        assert client.get("/fapi/v1/time").status_code == 429
        banned = client.get("/fapi/v1/time")
        assert error(banned)[:2] == (418, -1003)
        assert client.get("/api/v3/time").status_code == 418  # a ban is per IP
