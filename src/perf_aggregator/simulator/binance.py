"""A wire-faithful Binance spot REST API on top of the simulated markets and accounts.

``create_binance_app(SimulatedBinance(...))`` serves Binance's real paths,
parameters, field names and types, signature checks, error answers and rate
limits, so that ccxt's own ``binance`` class works against it once its URLs
point here. Routes under ``/_simulator/`` are not Binance's: they create
accounts and reveal their generated trades, for the demo and the tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from perf_aggregator.simulator import documents, errors
from perf_aggregator.simulator.accounts import Account, generate_account
from perf_aggregator.simulator.admin import Created, install_account_admin
from perf_aggregator.simulator.errors import BinanceError
from perf_aggregator.simulator.market import DAY_MINUTES, DAY_MS, MARKETS, MINUTE_MS, Market, PriceModel
from perf_aggregator.simulator.ratelimit import WeightLimiter

DEFAULT_WEIGHT_LIMIT = 6000
DEFAULT_HISTORY_MS = 30 * DAY_MS
# Per-minute IP weight budgets of the other API families (Binance's published values).
_FAMILY_LIMITS = {"sapi": 12_000, "fapi": 2400, "dapi": 2400}
_WEIGHT_HEADERS = {
    "api": ("X-MBX-USED-WEIGHT", "X-MBX-USED-WEIGHT-1M"),
    "sapi": ("X-SAPI-USED-IP-WEIGHT-1M",),
    "fapi": ("X-MBX-USED-WEIGHT", "X-MBX-USED-WEIGHT-1M"),
    "dapi": ("X-MBX-USED-WEIGHT", "X-MBX-USED-WEIGHT-1M"),
}
_KEY_FORMAT = re.compile(r"[A-Za-z0-9]{64}")
_NUMBER = re.compile(r"[0-9]{1,20}")
_SYMBOL = re.compile(r"[A-Z0-9_\-.]{1,50}")
_SYMBOLS = re.compile(r'\[("[A-Z0-9_.\-]{1,20}"(,"[A-Z0-9_.\-]{1,20}")*)?\]')
_SIGNING_PARAMS = frozenset({"timestamp", "recvWindow", "signature"})
_MAX_RECV_WINDOW = 60_000
# Kline intervals of fixed length, in minutes; "1s" and "1M" are not simulated.
_INTERVALS = {
    "1m": 1,
    "3m": 3,
    "5m": 5,
    "15m": 15,
    "30m": 30,
    "1h": 60,
    "2h": 120,
    "4h": 240,
    "6h": 360,
    "8h": 480,
    "12h": 720,
    "1d": DAY_MINUTES,
    "3d": 3 * DAY_MINUTES,
    "1w": 7 * DAY_MINUTES,
}
_WEEK_OFFSET = 4 * DAY_MINUTES  # epoch minute 0 is a Thursday; Binance's weeks start on Monday


def wall_clock_ms() -> int:
    """Milliseconds since the epoch, the default clock."""
    return time.time_ns() // 1_000_000


class SimulatedBinance:
    """The simulated exchange's state: prices, accounts by API key, rate limits and clock.

    ``now_ms`` is the exchange's clock (inject a fake one in tests). An IP that
    exceeds ``weight_limit`` per minute gets 429s; after ``tolerated_429s`` of them
    in one minute its next over-limit request bans it for ``ban_seconds`` (418s).
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        weight_limit: int = DEFAULT_WEIGHT_LIMIT,
        ban_seconds: int = 120,
        tolerated_429s: int = 2,
        now_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.seed = seed
        self.prices = PriceModel(seed)
        self.now_ms = now_ms
        self.weight_limit = weight_limit
        self.limiter = WeightLimiter(
            {"api": weight_limit, **_FAMILY_LIMITS},
            ban_ms=ban_seconds * 1000,
            tolerated_429s=tolerated_429s,
        )
        self.accounts: dict[str, Account] = {}

    def add_account(self, account: Account) -> Account:
        """Register ``account`` under its API key."""
        self.accounts[account.api_key] = account
        return account

    def create_account(
        self,
        seed: int,
        trades: int,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        symbols: Sequence[str] | None = None,
        can_withdraw: bool = False,
        can_trade: bool = False,
        bnb_fee_share: float = 0.3,
    ) -> Account:
        """Generate and register an account (see ``generate_account``).

        ``end_ms`` defaults to now and may not be later; ``start_ms`` to 30 days before it.
        """
        now = self.now_ms()
        end = now if end_ms is None else end_ms
        start = end - DEFAULT_HISTORY_MS if start_ms is None else start_ms
        if end > now:
            raise ValueError("the history cannot end in the future")
        account = generate_account(
            seed,
            start,
            end,
            trades=trades,
            prices=self.prices,
            symbols=symbols,
            bnb_fee_share=bnb_fee_share,
            can_withdraw=can_withdraw,
            can_trade=can_trade,
            created_ms=now,
        )
        return self.add_account(account)


class _Query:
    """A request's parameters with Binance's validation rules."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.params = params

    def text(self, name: str) -> str | None:
        return self.params.get(name) or None

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise errors.mandatory(name)
        return value

    def integer(self, name: str) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        if not _NUMBER.fullmatch(value):
            raise errors.illegal(name, errors.NUMBER_RANGE)
        return int(value)

    def flag(self, name: str) -> bool:
        value = (self.text(name) or "false").lower()
        if value not in ("true", "false"):
            raise errors.illegal(name, "true, false")
        return value == "true"

    def limit(self, default: int, maximum: int) -> int:
        value = self.integer("limit")
        if value is None:
            return default
        if not 1 <= value <= maximum:
            raise errors.not_valid("limit")
        return value

    def symbol(self) -> Market:
        return _market(self.required("symbol"))


def _market(symbol: str) -> Market:
    if not _SYMBOL.fullmatch(symbol):
        raise errors.illegal("symbol", errors.SYMBOL_RANGE)
    market = MARKETS.get(symbol)
    if market is None:
        raise BinanceError(*errors.INVALID_SYMBOL)
    return market


# -- handlers: (sim, query, account) -> JSON document ------------------------


def _ping(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    return {}


def _time(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    return {"serverTime": sim.now_ms()}


def _exchange_info(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    symbol, symbols = q.text("symbol"), q.text("symbols")
    if symbol is not None and symbols is not None:
        raise BinanceError(*errors.BAD_COMBINATION)
    markets: list[Market] = list(MARKETS.values())
    if symbol is not None:
        markets = [_market(symbol)]
    elif symbols is not None:
        if not _SYMBOLS.fullmatch(symbols):
            raise errors.illegal("symbols", errors.SYMBOLS_RANGE)
        markets = [_market(s) for s in json.loads(symbols)]
    return documents.exchange_info(markets, sim.weight_limit, sim.now_ms())


def _klines(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    market = q.symbol()
    span = _INTERVALS.get(q.required("interval"))
    if span is None:
        raise BinanceError(*errors.INVALID_INTERVAL)
    start_ms, end_ms = q.integer("startTime"), q.integer("endTime")
    limit = q.limit(500, 1000)
    offset = _WEEK_OFFSET if span == 7 * DAY_MINUTES else 0

    def bucket(minute: int) -> int:
        """Open minute of the candle containing ``minute``."""
        return minute - (minute - offset) % span

    now = sim.now_ms()
    last = bucket(now // MINUTE_MS)  # the current, still open, candle is served too
    if end_ms is not None:
        last = min(last, bucket(end_ms // MINUTE_MS))
    listed = bucket(market.listed_minute)
    if start_ms is not None:
        # The first candle opening at or after startTime.
        first = bucket(-(-start_ms // MINUTE_MS))
        if first * MINUTE_MS < start_ms:
            first += span
        first = max(first, listed)
        last = min(last, first + (limit - 1) * span)
    else:
        first = max(listed, last - (limit - 1) * span)
    candles = (sim.prices.candle(market.symbol, b, span, now) for b in range(first, last + 1, span))
    return [c.to_wire() for c in candles if c is not None]


def _account(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    assert account is not None
    return documents.account_info(account, sim.now_ms(), omit_zero=q.flag("omitZeroBalances"))


def _my_trades(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    assert account is not None
    market = q.symbol()
    order_id, from_id = q.integer("orderId"), q.integer("fromId")
    start_ms, end_ms = q.integer("startTime"), q.integer("endTime")
    limit = q.limit(500, 1000)
    # Binance's allowed combinations: symbol with nothing, orderId (+ fromId),
    # fromId, startTime and/or endTime.
    if (order_id is not None or from_id is not None) and (start_ms is not None or end_ms is not None):
        raise BinanceError(*errors.BAD_COMBINATION)
    if start_ms is not None and end_ms is not None and end_ms - start_ms > DAY_MS:
        raise BinanceError(*errors.WINDOW_TOO_LONG)
    trades = account.book(market.symbol).select(
        now_ms=sim.now_ms(),
        limit=limit,
        from_id=from_id,
        order_id=order_id,
        start_ms=start_ms,
        end_ms=end_ms,
    )
    return [t.to_wire() for t in trades]


def _api_restrictions(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    assert account is not None
    return documents.api_restrictions(account)


def _coin_configs(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    assert account is not None
    return documents.coin_configs(account)


def _margin_pairs(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    symbol = q.text("symbol")
    markets = [_market(symbol)] if symbol is not None else MARKETS.values()
    return documents.margin_pairs(markets, isolated=False)


def _isolated_pairs(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    return documents.margin_pairs(MARKETS.values(), isolated=True)


def _usd_futures_info(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    return documents.futures_exchange_info(sim.now_ms(), usd_margined=True)


def _coin_futures_info(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    return documents.futures_exchange_info(sim.now_ms(), usd_margined=False)


class Security(Enum):
    """Binance's endpoint security types."""

    NONE = "NONE"
    MARKET_DATA = "MARKET_DATA"
    """Needs a valid ``X-MBX-APIKEY``; a signature is tolerated (ccxt sends one) but not checked."""
    USER_DATA = "USER_DATA"
    """Needs a valid key and a valid signature."""


@dataclass(frozen=True, slots=True)
class _Endpoint:
    family: str
    weight: Callable[[Mapping[str, str]], int]
    security: Security
    params: frozenset[str]
    handler: Callable[[SimulatedBinance, _Query, Account | None], Any]


def _endpoint(
    family: str,
    weight: int | Callable[[Mapping[str, str]], int],
    security: Security,
    params: str,
    handler: Callable[[SimulatedBinance, _Query, Account | None], Any],
) -> _Endpoint:
    allowed = frozenset(params.split())
    if security is not Security.NONE:
        allowed |= _SIGNING_PARAMS
    if callable(weight):
        return _Endpoint(family, weight, security, allowed, handler)
    return _Endpoint(family, lambda _params: weight, security, allowed, handler)


_ENDPOINTS: dict[str, _Endpoint] = {
    "/api/v3/ping": _endpoint("api", 1, Security.NONE, "", _ping),
    "/api/v3/time": _endpoint("api", 1, Security.NONE, "", _time),
    "/api/v3/exchangeInfo": _endpoint("api", 20, Security.NONE, "symbol symbols", _exchange_info),
    "/api/v3/klines": _endpoint("api", 2, Security.NONE, "symbol interval startTime endTime limit", _klines),
    "/api/v3/account": _endpoint("api", 20, Security.USER_DATA, "omitZeroBalances", _account),
    "/api/v3/myTrades": _endpoint(
        "api",
        lambda params: 5 if params.get("orderId") else 20,  # by order: a cheaper lookup
        Security.USER_DATA,
        "symbol orderId startTime endTime fromId limit",
        _my_trades,
    ),
    "/sapi/v1/account/apiRestrictions": _endpoint("sapi", 1, Security.USER_DATA, "", _api_restrictions),
    "/sapi/v1/capital/config/getall": _endpoint("sapi", 10, Security.USER_DATA, "", _coin_configs),
    "/sapi/v1/margin/allPairs": _endpoint("sapi", 1, Security.MARKET_DATA, "symbol", _margin_pairs),
    "/sapi/v1/margin/isolated/allPairs": _endpoint("sapi", 10, Security.USER_DATA, "", _isolated_pairs),
    "/fapi/v1/exchangeInfo": _endpoint("fapi", 1, Security.NONE, "", _usd_futures_info),
    "/dapi/v1/exchangeInfo": _endpoint("dapi", 1, Security.NONE, "", _coin_futures_info),
}


def _authenticate(sim: SimulatedBinance, request: Request, q: _Query, security: Security) -> Account:
    """The account of the request's API key, after Binance's key, timestamp and signature checks."""
    key = request.headers.get("X-MBX-APIKEY", "")
    if not _KEY_FORMAT.fullmatch(key):
        raise BinanceError(*errors.BAD_KEY_FORMAT)
    account = sim.accounts.get(key)
    if account is None:
        raise BinanceError(*errors.REJECTED_KEY)
    if security is Security.MARKET_DATA:
        return account
    timestamp = q.integer("timestamp")
    if timestamp is None:
        raise errors.mandatory("timestamp")
    signature = q.required("signature")
    recv_window = q.integer("recvWindow")
    recv_window = 5000 if recv_window is None else recv_window
    if recv_window > _MAX_RECV_WINDOW:
        raise BinanceError(*errors.RECV_WINDOW_TOO_LONG)
    now = sim.now_ms()
    if timestamp >= now + 1000:
        raise BinanceError(*errors.TIMESTAMP_AHEAD)
    if now - timestamp > recv_window:
        raise BinanceError(*errors.TIMESTAMP_OUTSIDE)
    # The signed payload is the query string exactly as sent, without the signature itself.
    raw = request.scope["query_string"].decode("latin-1")
    payload = "&".join(part for part in raw.split("&") if not part.startswith("signature="))
    expected = hmac.new(account.api_secret.encode(), payload.encode("latin-1"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise BinanceError(*errors.BAD_SIGNATURE)
    return account


def _parse_query(raw: str) -> tuple[dict[str, str], bool]:
    """Parameters of a query string, and whether a name was repeated."""
    pairs = parse_qsl(raw, keep_blank_values=True)
    params = dict(pairs)
    return params, len(params) != len(pairs)


def _route(sim: SimulatedBinance, endpoint: _Endpoint) -> Callable[[Request], Any]:
    async def handle(request: Request) -> Response:
        params, repeated = _parse_query(request.scope["query_string"].decode("latin-1"))
        ip = request.client.host if request.client else "unknown"
        # Binance charges the weight first: refused and invalid requests count too.
        verdict = sim.limiter.charge(ip, endpoint.family, endpoint.weight(params), sim.now_ms())
        headers = dict.fromkeys(_WEIGHT_HEADERS[endpoint.family], str(verdict.used))
        try:
            if verdict.status == 418:
                raise errors.banned(verdict.banned_until_ms)
            if verdict.status == 429:
                raise errors.too_much_weight(sim.limiter.limits[endpoint.family])
            if repeated:
                raise BinanceError(*errors.DUPLICATE_PARAMETER)
            q = _Query(params)
            account = None
            if endpoint.security is not Security.NONE:
                account = _authenticate(sim, request, q, endpoint.security)
            read = sum(1 for name in params if name in endpoint.params)
            if read != len(params):
                raise errors.unread_parameters(read, len(params))
            return JSONResponse(endpoint.handler(sim, q, account), headers=headers)
        except BinanceError as error:
            if verdict.retry_after_s:
                headers["Retry-After"] = str(verdict.retry_after_s)
            return JSONResponse(error.body(), status_code=error.status, headers=headers)

    return handle


class AccountRequest(BaseModel):
    """Body of ``POST /_simulator/accounts``; times in epoch milliseconds."""

    seed: int
    trades: int = Field(ge=0, le=2_000_000)
    start: int | None = None
    end: int | None = None
    symbols: list[str] | None = None
    can_withdraw: bool = False
    can_trade: bool = False
    bnb_fee_share: float = Field(default=0.3, ge=0.0, le=1.0)


def create_binance_app(sim: SimulatedBinance) -> FastAPI:
    """The ASGI app serving ``sim`` over Binance's REST paths, plus the ``/_simulator/`` admin routes."""
    # USD-M futures live in their own module, which builds on this one (hence the late import).
    from perf_aggregator.simulator import binance_usdm

    app = FastAPI(title="Simulated Binance", docs_url=None, redoc_url=None, openapi_url=None)
    for path, endpoint in {**_ENDPOINTS, **binance_usdm.futures_endpoints()}.items():
        app.add_api_route(path, _route(sim, endpoint), methods=["GET"])
    binance_usdm.install_futures_admin(app, sim)

    install_account_admin(app, "/_simulator/accounts", AccountRequest, partial(_create, sim), _trades_of(sim))
    return app


def _create(sim: SimulatedBinance, body: AccountRequest) -> Created:
    account = sim.create_account(
        body.seed,
        body.trades,
        start_ms=body.start,
        end_ms=body.end,
        symbols=body.symbols,
        can_withdraw=body.can_withdraw,
        can_trade=body.can_trade,
        bnb_fee_share=body.bnb_fee_share,
    )
    return account.api_key, account.api_secret, len(account.trades)


def _trades_of(sim: SimulatedBinance) -> Callable[[str], list[dict[str, Any]] | None]:
    def trades_of(api_key: str) -> list[dict[str, Any]] | None:
        account = sim.accounts.get(api_key)
        return None if account is None else account.raw_trades()

    return trades_of
