"""The acceptance criterion: ccxt's own binance class works against the simulator, only re-pointed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import ccxt.async_support as ccxt
import pytest

from perf_aggregator.exchanges.endpoints import override_ccxt_urls
from perf_aggregator.simulator.market import DAY_MS, MARKETS, MINUTE_MS
from perf_aggregator.simulator.units import fmt8

if TYPE_CHECKING:
    from .conftest import Binance


def exchange(origin: str, key: str, secret: str) -> ccxt.binance:
    ex = ccxt.binance({"apiKey": key, "secret": secret})
    override_ccxt_urls(ex, origin)
    return ex


@pytest.fixture
async def ex(binance: Binance, account: dict[str, Any]) -> AsyncIterator[ccxt.binance]:
    client = exchange(binance.origin, account["api_key"], account["api_secret"])
    try:
        yield client
    finally:
        await client.close()


async def test_load_markets_and_currencies(ex: ccxt.binance) -> None:
    markets = await ex.load_markets()

    assert {"BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "ETH/BTC", "BTC/USDC", "SOL/BNB"} <= set(markets)
    btc = markets["BTC/USDT"]
    assert (btc["id"], btc["base"], btc["quote"]) == ("BTCUSDT", "BTC", "USDT")
    assert btc["spot"] is True and btc["active"] is True
    assert (btc["precision"]["price"], btc["precision"]["amount"]) == (0.01, 0.00001)
    assert btc["limits"]["cost"]["min"] == 5
    assert {"BTC", "ETH", "USDT"} <= set(ex.currencies)


async def test_fetch_time_and_balance(ex: ccxt.binance, binance: Binance, account: dict[str, Any]) -> None:
    server_time = await ex.fetch_time()
    balance = await ex.fetch_balance()

    assert abs(server_time - binance.sim.now_ms()) < 5_000
    held = binance.sim.accounts[account["api_key"]].balances
    assert {code: Decimal(str(balance["total"][code])) for code in held} == {
        code: Decimal(fmt8(units)) for code, units in held.items()
    }
    assert balance["info"]["accountType"] == "SPOT"


async def test_fetch_my_trades_returns_the_generated_trades(
    ex: ccxt.binance,
    account: dict[str, Any],
) -> None:
    raw = sorted(
        (t for t in account["raw"] if t["symbol"] == "BTCUSDT"),
        key=lambda t: (t["id"], not t["isBuyer"]),
    )
    since = raw[len(raw) // 3]["time"]

    trades = await ex.fetch_my_trades("BTC/USDT", since=since)

    expected = [t for t in raw if since <= t["time"] < since + DAY_MS]
    assert expected
    assert [(t["id"], t["order"], t["timestamp"], t["side"]) for t in trades] == [
        (str(t["id"]), str(t["orderId"]), t["time"], "buy" if t["isBuyer"] else "sell") for t in expected
    ]
    for got, want in zip(trades, expected, strict=True):
        assert got["info"] == want
        assert Decimal(str(got["price"])) == Decimal(want["price"])
        assert Decimal(str(got["amount"])) == Decimal(want["qty"])
        assert got["fee"]["currency"] == want["commissionAsset"]
        assert got["takerOrMaker"] == ("maker" if want["isMaker"] else "taker")


async def test_fetch_ohlcv_returns_the_simulated_candles(ex: ccxt.binance, binance: Binance) -> None:
    since = binance.sim.now_ms() // MINUTE_MS * MINUTE_MS - 90 * MINUTE_MS

    candles = await ex.fetch_ohlcv("ETH/BTC", "1m", since=since, limit=60)

    assert [c[0] for c in candles] == [since + i * MINUTE_MS for i in range(60)]
    tick = MARKETS["ETHBTC"].tick_units
    for c in candles:
        model = binance.sim.prices.candle("ETHBTC", c[0] // MINUTE_MS, 1, binance.sim.now_ms())
        assert model is not None
        assert [Decimal(str(v)) for v in c[1:6]] == [
            Decimal(fmt8(v)) for v in (model.open, model.high, model.low, model.close, model.volume)
        ]
        assert model.close % tick == 0


async def test_a_wrong_secret_raises_authentication_error(binance: Binance, account: dict[str, Any]) -> None:
    # The simulator's URL is not binance.com, so ccxt uses its generic error table:
    # -1022 (bad signature) and -2015 (unknown key) both map to AuthenticationError.
    wrong_secret = exchange(binance.origin, account["api_key"], "s" * 64)
    unknown_key = exchange(binance.origin, "K" * 64, account["api_secret"])
    try:
        with pytest.raises(ccxt.AuthenticationError, match="-1022"):
            await wrong_secret.fetch_balance()
        with pytest.raises(ccxt.AuthenticationError, match="-2015"):
            await unknown_key.fetch_balance()
    finally:
        await wrong_secret.close()
        await unknown_key.close()


async def test_an_exhausted_budget_raises_ddos_protection(limited: Binance) -> None:
    public = ccxt.binance({"enableRateLimit": False})
    override_ccxt_urls(public, limited.origin)
    try:
        with pytest.raises(ccxt.DDoSProtection, match="-1003"):
            for _ in range(3):  # 20 weight each against a budget of 50
                await public.public_get_exchangeinfo()
    finally:
        await public.close()
