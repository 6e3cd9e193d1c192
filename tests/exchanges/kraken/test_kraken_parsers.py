"""Our exact Kraken parsers against ccxt's own parsing of the same raw payloads (ccxt is the oracle)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async
import httpx
import pytest

from perf_aggregator.exchanges.endpoints import override_ccxt_urls
from perf_aggregator.exchanges.kraken import (
    asset_code,
    kraken_errors,
    parse_market,
    parse_ohlc,
    parse_trade,
    time_ms,
)
from perf_aggregator.simulator.kraken import PAIRS, SimulatedKraken, wall_clock_ms

HOUR_MS = 3_600_000


@pytest.fixture
async def oracle(kraken_sim: tuple[SimulatedKraken, str]) -> AsyncIterator[Any]:
    _, url = kraken_sim
    exchange = ccxt_async.kraken({"enableRateLimit": False})
    override_ccxt_urls(exchange, url)
    await exchange.load_markets()
    yield exchange
    await exchange.close()


@pytest.fixture(scope="module")
def raw_trades(kraken_sim: tuple[SimulatedKraken, str]) -> list[dict[str, Any]]:
    sim, _ = kraken_sim
    now = wall_clock_ms()
    pairs = list(PAIRS)
    account = sim.create_account(21, 400, start_ms=now - 5 * HOUR_MS, end_ms=now - 60_000, pairs=pairs)
    return account.raw_trades()


async def test_markets_are_named_like_ccxt(oracle: Any, kraken_sim: tuple[SimulatedKraken, str]) -> None:
    _, url = kraken_sim
    pairs = httpx.get(f"{url}/0/public/AssetPairs").json()["result"]
    for pair_id, raw in pairs.items():
        ours = parse_market(pair_id, raw)
        theirs = oracle.markets_by_id[pair_id][0]
        assert (ours.symbol, ours.base, ours.quote, ours.id) == (
            theirs["symbol"],
            theirs["base"],
            theirs["quote"],
            theirs["id"],
        )


async def test_trades_field_by_field_against_ccxt(oracle: Any, raw_trades: list[dict[str, Any]]) -> None:
    assert {t["pair"] for t in raw_trades} == set(PAIRS)
    for element in raw_trades:
        txid = element.pop("txid")
        pair = element["pair"]
        market = parse_market(pair, _pair_entry(pair))
        ours = parse_trade(txid, element, market)
        theirs = oracle.parse_trade({**element, "id": txid})
        assert ours.id == theirs["id"] == txid
        assert ours.order_id == theirs["order"] == element["ordertxid"]
        assert ours.symbol == theirs["symbol"]
        assert ours.side == theirs["side"]
        assert float(ours.amount) == pytest.approx(theirs["amount"], rel=1e-12)
        assert float(ours.price) == pytest.approx(theirs["price"], rel=1e-12)
        assert float(ours.cost) == pytest.approx(theirs["cost"], rel=1e-12)
        assert ours.cost == Decimal(element["cost"])  # Kraken's cost is vol * price, exactly
        assert float(ours.fee_cost) == pytest.approx(theirs["fee"]["cost"], rel=1e-12)
        assert ours.fee_currency == theirs["fee"]["currency"] == ours.quote
        assert ours.timestamp == theirs["timestamp"] == int(Decimal(repr(element["time"])) * 1000)


def _pair_entry(pair: str) -> dict[str, Any]:
    p = PAIRS[pair]
    return {"base": p.base, "quote": p.quote, "wsname": p.wsname, "altname": p.altname}


ELEMENT = {"ordertxid": "O1", "pair": "XXBTZUSD", "time": 1767225600.0, "type": "buy"}


@pytest.mark.parametrize("field", ["vol", "price", "fee"])
@pytest.mark.parametrize("text", [" 12.5", "12.5 ", "1_000", "twelve", ""])
def test_a_decimal_text_that_is_not_strictly_a_number_is_refused(field: str, text: str) -> None:
    # Decimal() itself would strip the spaces and read the underscores; the connector turns the
    # ArithmeticError into a refused page (read again later), never a trade
    raw = ELEMENT | {"vol": "0.5", "price": "30000.1", "fee": "0.1"}
    market = parse_market("XXBTZUSD", _pair_entry("XXBTZUSD"))
    assert parse_trade("T1", raw, market).amount == Decimal("0.5")
    with pytest.raises(ArithmeticError):
        parse_trade("T1", raw | {field: text}, market)


def test_time_is_exact_milliseconds() -> None:
    assert time_ms(1688667796.8802) == 1688667796880
    assert time_ms(1710429248.3052235) == 1710429248305
    assert time_ms("1688667796.001") == 1688667796001
    assert time_ms(1688667796.001) == 1688667796001
    assert time_ms(1688667796) == 1688667796000


def test_asset_codes_and_real_kraken_pairs() -> None:
    assert [asset_code(a) for a in ("XXBT", "XETH", "ZUSD", "ZEUR", "SOL", "XBT", "XXDG")] == [
        "BTC",
        "ETH",
        "USD",
        "EUR",
        "SOL",
        "BTC",
        "DOGE",
    ]
    real = {
        "XXBTZUSD": {"altname": "XBTUSD", "wsname": "XBT/USD", "base": "XXBT", "quote": "ZUSD"},
        "XETHXXBT": {"altname": "ETHXBT", "wsname": "ETH/XBT", "base": "XETH", "quote": "XXBT"},
        "SOLUSD": {"altname": "SOLUSD", "wsname": "SOL/USD", "base": "SOL", "quote": "ZUSD"},
        "XDGUSD": {"altname": "XDGUSD", "wsname": "XDG/USD", "base": "XXDG", "quote": "ZUSD"},
        "USDTZUSD": {"altname": "USDTUSD", "wsname": "USDT/USD", "base": "USDT", "quote": "ZUSD"},
    }
    symbols = {pid: parse_market(pid, raw).symbol for pid, raw in real.items()}
    assert symbols == {
        "XXBTZUSD": "BTC/USD",
        "XETHXXBT": "ETH/BTC",
        "SOLUSD": "SOL/USD",
        "XDGUSD": "DOGE/USD",
        "USDTZUSD": "USDT/USD",
    }


def test_ohlc_rows_and_error_strings() -> None:
    row = [1591475640, "0.02500", "0.02500", "0.02500", "0.02501", "0.02500", "9.12201000", 5]
    assert parse_ohlc(row) == (1591475640000, Decimal("0.02501"))
    for close in (" 0.02501", "0_02501", "cheap"):  # Decimal() would read the first two
        with pytest.raises(ArithmeticError):
            parse_ohlc([*row[:4], close, *row[5:]])
    text = 'kraken {"error":["EAPI:Invalid key"],"result":{}}'
    assert kraken_errors(text) == ["EAPI:Invalid key"]
    assert kraken_errors('kraken {"error":["EGeneral:Invalid arguments:ofs"]}') == [
        "EGeneral:Invalid arguments:ofs"
    ]
