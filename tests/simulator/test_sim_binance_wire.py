"""The simulated Binance over real HTTP: signing, parameter rules, errors, klines, weights and bans."""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING, Any

from perf_aggregator.simulator.market import DAY_MS, MINUTE_MS

from .conftest import WINDOW_END_MS, WINDOW_START_MS

if TYPE_CHECKING:
    from .conftest import Binance, FakeClock


def error(response: Any) -> tuple[int, int, str]:
    body = response.json()
    return response.status_code, body["code"], body["msg"]


def trades_of(account: dict[str, Any], symbol: str) -> list[dict[str, Any]]:
    """The raw trades of one symbol in ``myTrades`` order (id, then buyer first)."""
    mine = [t for t in account["raw"] if t["symbol"] == symbol]
    return sorted(mine, key=lambda t: (t["id"], not t["isBuyer"]))


# -- signing and keys ---------------------------------------------------------


def test_a_signed_request_with_the_right_secret_is_served(binance: Binance, account: dict[str, Any]) -> None:
    response = binance.signed("/api/v3/account", key=account["api_key"], secret=account["api_secret"])

    assert response.status_code == 200
    body = response.json()
    assert body["accountType"] == "SPOT"
    assert all(isinstance(b["free"], str) and len(b["free"].split(".")[1]) == 8 for b in body["balances"])


def test_a_bad_signature_is_refused_with_1022(binance: Binance, account: dict[str, Any]) -> None:
    response = binance.signed(
        "/api/v3/account",
        key=account["api_key"],
        secret=account["api_secret"],
        tamper=lambda s: ("0" if s[0] != "0" else "1") + s[1:],
    )

    assert error(response) == (400, -1022, "Signature for this request is not valid.")


def test_a_wrong_secret_is_refused_with_1022(binance: Binance, account: dict[str, Any]) -> None:
    response = binance.signed("/api/v3/account", key=account["api_key"], secret="x" * 64)

    assert error(response)[:2] == (400, -1022)


def test_an_unknown_key_is_refused_with_2015(binance: Binance) -> None:
    response = binance.signed("/api/v3/account", key="A" * 64, secret="B" * 64)

    assert error(response) == (401, -2015, "Invalid API-key, IP, or permissions for action.")


def test_a_missing_or_malformed_key_is_refused_with_2014(binance: Binance, account: dict[str, Any]) -> None:
    malformed = binance.signed("/api/v3/account", key="short", secret=account["api_secret"])
    missing = binance.get("/api/v3/account", {"timestamp": binance.sim.now_ms(), "signature": "00"})

    assert error(malformed) == (401, -2014, "API-key format invalid.")
    assert error(missing) == (401, -2014, "API-key format invalid.")


def test_timestamps_outside_the_recv_window_are_refused_with_1021(
    binance: Binance,
    account: dict[str, Any],
) -> None:
    keys = {"key": account["api_key"], "secret": account["api_secret"]}
    now = binance.sim.now_ms()

    stale = binance.signed("/api/v3/account", timestamp=now - 6000, **keys)
    widened = binance.signed("/api/v3/account", {"recvWindow": 60000}, timestamp=now - 6000, **keys)
    ahead = binance.signed("/api/v3/account", timestamp=now + 5000, **keys)
    too_wide = binance.signed("/api/v3/account", {"recvWindow": 60001}, **keys)

    assert error(stale) == (400, -1021, "Timestamp for this request is outside of the recvWindow.")
    assert widened.status_code == 200
    assert error(ahead)[:2] == (400, -1021)
    assert error(too_wide) == (400, -1131, "recvWindow must be less than 60000")


def test_a_missing_or_malformed_timestamp_is_refused(binance: Binance, account: dict[str, Any]) -> None:
    key = account["api_key"]
    missing = binance.get("/api/v3/account", {"signature": "00"}, key=key)
    malformed = binance.get("/api/v3/account", {"timestamp": "12a", "signature": "00"}, key=key)

    assert error(missing) == (
        400,
        -1102,
        "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
    )
    assert error(malformed) == (
        400,
        -1100,
        "Illegal characters found in parameter 'timestamp'; legal range is '^[0-9]{1,20}$'.",
    )


def test_unknown_and_repeated_parameters_are_refused(binance: Binance) -> None:
    unknown = binance.get("/api/v3/time", {"foo": "1"})
    repeated = binance.http.get(f"{binance.origin}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1&limit=2")

    assert error(unknown) == (
        400,
        -1104,
        "Not all sent parameters were read; read '0' parameter(s) but was sent '1'.",
    )
    assert error(repeated) == (400, -1101, "Duplicate values for a parameter detected.")


# -- myTrades -------------------------------------------------------------------


def test_my_trades_rejects_bad_parameters(binance: Binance, account: dict[str, Any]) -> None:
    keys = {"key": account["api_key"], "secret": account["api_secret"]}

    def call(**params: Any) -> tuple[int, int, str]:
        return error(binance.signed("/api/v3/myTrades", params, **keys))

    assert call() == (400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
    assert call(symbol="NOPEUSDT") == (400, -1121, "Invalid symbol.")
    assert call(symbol="btcusdt")[:2] == (400, -1100)
    assert call(symbol="BTCUSDT", startTime=WINDOW_START_MS, endTime=WINDOW_START_MS + DAY_MS + 1) == (
        400,
        -1127,
        "More than 24 hours between startTime and endTime.",
    )
    assert call(symbol="BTCUSDT", fromId=1, startTime=WINDOW_START_MS) == (
        400,
        -1128,
        "Combination of optional parameters invalid.",
    )
    assert call(symbol="BTCUSDT", limit=1001) == (400, -1130, "Data sent for parameter 'limit' is not valid.")
    assert call(symbol="BTCUSDT", fromId="-1")[:2] == (400, -1100)


def test_from_id_pagination_returns_every_trade_once(binance: Binance, account: dict[str, Any]) -> None:
    expected = trades_of(account, "BTCUSDT")
    keys = {"key": account["api_key"], "secret": account["api_secret"]}
    seen: list[dict[str, Any]] = []
    from_id = 0
    while True:
        params = {"symbol": "BTCUSDT", "fromId": from_id, "limit": 17}
        page = binance.signed("/api/v3/myTrades", params, **keys)
        assert page.status_code == 200
        rows = page.json()
        assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
        # Resume at the last id, not after it: a self-trade is two records with one id
        # and a page may end between them; drop what the previous page already had.
        new = [r for r in rows if (r["id"], r["isBuyer"]) not in {(s["id"], s["isBuyer"]) for s in seen}]
        if not new:
            break
        seen.extend(new)
        from_id = rows[-1]["id"]

    assert seen == expected
    assert len(expected) > 17 * 3


def test_a_self_trade_is_two_records_with_one_id(binance: Binance, account: dict[str, Any]) -> None:
    pairs = [
        (a, b)
        for symbol in sorted({t["symbol"] for t in account["raw"]})
        for a, b in pairwise(trades_of(account, symbol))
        if a["id"] == b["id"]
    ]
    assert pairs
    buyer, seller = pairs[0]
    keys = {"key": account["api_key"], "secret": account["api_secret"]}

    params = {"symbol": buyer["symbol"], "fromId": buyer["id"], "limit": 1}
    one = binance.signed("/api/v3/myTrades", params, **keys)

    assert (buyer["isBuyer"], seller["isBuyer"]) == (True, False)
    assert (buyer["price"], buyer["qty"], buyer["time"]) == (seller["price"], seller["qty"], seller["time"])
    assert buyer["orderId"] != seller["orderId"]
    assert one.json() == [buyer]


def test_my_trades_time_windows(binance: Binance, account: dict[str, Any]) -> None:
    trades = trades_of(account, "BTCUSDT")
    keys = {"key": account["api_key"], "secret": account["api_secret"]}
    start = trades[len(trades) // 2]["time"]

    def ids(**params: Any) -> list[int]:
        response = binance.signed("/api/v3/myTrades", {"symbol": "BTCUSDT", **params}, **keys)
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()]

    assert ids(startTime=start) == [t["id"] for t in trades if start <= t["time"] < start + DAY_MS]
    assert ids(endTime=start) == [t["id"] for t in trades if start - DAY_MS < t["time"] <= start]
    assert ids(startTime=start, endTime=start + 3_600_000) == [
        t["id"] for t in trades if start <= t["time"] <= start + 3_600_000
    ]
    assert ids(limit=5) == [t["id"] for t in trades[-5:]]
    assert ids(startTime=start, limit=2) == [t["id"] for t in trades if t["time"] >= start][:2]


def test_my_trades_by_order(binance: Binance, account: dict[str, Any]) -> None:
    trades = trades_of(account, "ETHUSDT")
    order_id = max(trades, key=lambda t: sum(u["orderId"] == t["orderId"] for u in trades))["orderId"]
    keys = {"key": account["api_key"], "secret": account["api_secret"]}

    response = binance.signed("/api/v3/myTrades", {"symbol": "ETHUSDT", "orderId": order_id}, **keys)

    assert response.json() == [t for t in trades if t["orderId"] == order_id]
    assert 1 < len(response.json()) <= 3


# -- public endpoints ---------------------------------------------------------------


def test_klines_follow_binance_paging_rules(binance: Binance) -> None:
    start = WINDOW_START_MS + 30_000  # mid-minute: the first candle opens at the next minute

    def opens(**params: Any) -> list[int]:
        response = binance.get("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m", **params})
        assert response.status_code == 200, response.text
        return [k[0] for k in response.json()]

    assert opens(startTime=start, limit=3) == [WINDOW_START_MS + i * MINUTE_MS for i in (1, 2, 3)]
    assert opens(endTime=WINDOW_END_MS, limit=2) == [WINDOW_END_MS - MINUTE_MS, WINDOW_END_MS]
    assert opens(startTime=WINDOW_START_MS, endTime=WINDOW_START_MS + 2 * MINUTE_MS) == [
        WINDOW_START_MS,
        WINDOW_START_MS + MINUTE_MS,
        WINDOW_START_MS + 2 * MINUTE_MS,
    ]
    latest = opens(limit=4)
    now_minute = binance.sim.now_ms() // MINUTE_MS * MINUTE_MS
    assert latest[-1] in (now_minute, now_minute + MINUTE_MS)  # the current, still open, candle
    assert len(opens()) == 500
    assert len(opens(startTime=start, limit=1000)) == 1000
    hours = binance.get(
        "/api/v3/klines",
        {"symbol": "ETHUSDT", "interval": "1h", "startTime": start, "limit": 2},
    )
    assert [k[0] for k in hours.json()] == [WINDOW_START_MS + 3_600_000, WINDOW_START_MS + 7_200_000]


def test_a_kline_has_binance_types(binance: Binance) -> None:
    kline = binance.get(
        "/api/v3/klines",
        {"symbol": "ETHBTC", "interval": "1m", "startTime": WINDOW_START_MS, "limit": 1},
    ).json()[0]

    assert [type(v) for v in kline] == [int, str, str, str, str, str, int, str, int, str, str, str]
    assert kline[6] == kline[0] + MINUTE_MS - 1
    assert float(kline[3]) <= min(float(kline[1]), float(kline[4])) <= max(float(kline[1]), float(kline[4]))
    assert float(kline[2]) >= max(float(kline[1]), float(kline[4]))


def test_klines_reject_bad_parameters(binance: Binance) -> None:
    def call(**params: Any) -> tuple[int, int, str]:
        return error(binance.get("/api/v3/klines", {"symbol": "BTCUSDT", **params}))

    assert call(interval="7m") == (400, -1120, "Invalid interval.")
    assert call()[:2] == (400, -1102)
    assert call(interval="1m", limit=1001) == (400, -1130, "Data sent for parameter 'limit' is not valid.")
    assert call(interval="1m", startTime="yesterday")[:2] == (400, -1100)


def test_exchange_info_describes_the_markets_and_the_weight_limit(binance: Binance) -> None:
    info = binance.get("/api/v3/exchangeInfo").json()
    one = binance.get("/api/v3/exchangeInfo", {"symbol": "SOLBNB"}).json()
    some = binance.get("/api/v3/exchangeInfo", {"symbols": '["BTCUSDT","ETHBTC"]'}).json()

    assert {"BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "ETHBTC", "BTCUSDC", "SOLBNB"} <= {
        s["symbol"] for s in info["symbols"]
    }
    assert info["rateLimits"][0] == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 6000,
    }
    assert [s["symbol"] for s in one["symbols"]] == ["SOLBNB"]
    assert [s["symbol"] for s in some["symbols"]] == ["BTCUSDT", "ETHBTC"]
    filters = {f["filterType"]: f for f in one["symbols"][0]["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.00010000"
    assert error(binance.get("/api/v3/exchangeInfo", {"symbol": "XYZ"})) == (400, -1121, "Invalid symbol.")
    assert binance.get("/fapi/v1/exchangeInfo").json()["symbols"] == []
    assert binance.get("/dapi/v1/exchangeInfo").json()["symbols"] == []


def test_an_unknown_route_is_a_json_404(binance: Binance) -> None:
    response = binance.get("/api/v3/nothing")

    assert response.status_code == 404
    assert response.json()


def test_api_restrictions_report_the_key_permissions(binance: Binance) -> None:
    reader = binance.create_account(seed=1, trades=10)
    withdrawer = binance.create_account(seed=1, trades=10, can_withdraw=True)

    def restrictions(created: dict[str, Any]) -> dict[str, Any]:
        response = binance.signed(
            "/sapi/v1/account/apiRestrictions",
            key=created["api_key"],
            secret=created["api_secret"],
        )
        body: dict[str, Any] = response.json()
        return body

    assert restrictions(reader)["enableReading"] is True
    assert restrictions(reader)["enableWithdrawals"] is False
    assert restrictions(reader)["enableSpotAndMarginTrading"] is False
    assert restrictions(withdrawer)["enableWithdrawals"] is True


def test_admin_routes_refuse_bad_requests(binance: Binance) -> None:
    tomorrow = binance.sim.now_ms() + DAY_MS
    future = binance.http.post(
        f"{binance.origin}/_simulator/accounts",
        json={"seed": 1, "trades": 5, "end": tomorrow},
    )
    unknown_symbol = binance.http.post(
        f"{binance.origin}/_simulator/accounts",
        json={"seed": 1, "trades": 5, "symbols": ["DOGEUSDT"]},
    )
    unknown_key = binance.http.get(f"{binance.origin}/_simulator/accounts/{'A' * 64}/trades")

    assert future.status_code == 400
    assert unknown_symbol.status_code == 400
    assert unknown_key.status_code == 404


# -- weights and bans (fake clock, 50-weight budget) --------------------------------------------------------


def test_used_weight_grows_by_each_endpoint_weight(limited: Binance, clock: FakeClock) -> None:
    clock.now = clock.now // MINUTE_MS * MINUTE_MS + 1000
    created = limited.create_account(seed=3, trades=20)
    keys = {"key": created["api_key"], "secret": created["api_secret"]}

    def used(response: Any, header: str = "X-MBX-USED-WEIGHT-1M") -> int:
        assert response.status_code == 200, response.text
        return int(response.headers[header])

    assert used(limited.get("/api/v3/time")) == 1
    assert used(limited.get("/api/v3/ping")) == 2
    assert used(limited.get("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 1})) == 4
    assert used(limited.signed("/api/v3/account", **keys)) == 24
    assert used(limited.signed("/api/v3/myTrades", {"symbol": "BTCUSDT", "orderId": 1}, **keys)) == 29
    assert used(limited.signed("/api/v3/myTrades", {"symbol": "BTCUSDT"}, **keys)) == 49
    # /sapi has its own budget and header, as on Binance.
    restrictions = limited.signed("/sapi/v1/account/apiRestrictions", **keys)
    assert used(restrictions, "X-SAPI-USED-IP-WEIGHT-1M") == 1
    assert used(limited.signed("/sapi/v1/capital/config/getall", **keys), "X-SAPI-USED-IP-WEIGHT-1M") == 11
    # The budget is per clock minute.
    clock.now += MINUTE_MS
    assert used(limited.get("/api/v3/exchangeInfo")) == 20


def test_spending_the_budget_gives_429_then_a_418_ban(limited: Binance, clock: FakeClock) -> None:
    clock.now = clock.now // MINUTE_MS * MINUTE_MS + 15_000
    for _ in range(2):
        assert limited.get("/api/v3/exchangeInfo").status_code == 200

    limited_answers = [limited.get("/api/v3/exchangeInfo") for _ in range(2)]
    ban = limited.get("/api/v3/time")
    clock.now += 100_000
    still_banned = limited.get("/api/v3/time")
    clock.now += 21_000
    after = limited.get("/api/v3/time")

    for response in limited_answers:
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "45"
        assert response.json() == {
            "code": -1003,
            "msg": "Too much request weight used; current limit is 50 request weight per 1 MINUTE. "
            "Please use WebSocket Streams for live updates to avoid polling the API.",
        }
    assert ban.status_code == 418
    assert ban.headers["Retry-After"] == "120"
    assert ban.json()["code"] == -1003
    assert ban.json()["msg"].startswith("Way too much request weight used; IP banned until ")
    assert still_banned.status_code == 418
    assert still_banned.headers["Retry-After"] == "20"
    assert after.status_code == 200
