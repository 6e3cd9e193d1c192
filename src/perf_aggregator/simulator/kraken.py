"""A wire-faithful Kraken spot REST API on top of the simulated price model.

``create_kraken_app(SimulatedKraken(...))`` serves Kraken's real paths
(``/0/public/Time``, ``AssetPairs``, ``Assets``, ``OHLC``, ``/0/private/Balance``,
``BalanceEx``, ``TradesHistory``), its answer envelope ``{"error": [...],
"result": {...}}`` with HTTP 200 for API errors, its ``API-Key``/``API-Sign``
authentication (HMAC-SHA512 over ``uri_path + SHA256(nonce + postdata)``, nonces
increasing per key) and its per-key call counter with decay, so that ccxt's own
``kraken`` class works against it once its URLs point here. Routes under
``/_simulator/`` are not Kraken's: they create accounts and reveal their trades.

Prices come from :class:`PriceModel` (``XBT/USD`` is the ``BTCUSDT`` path, ``XBT/EUR``
that path at a fixed 0.92 EUR per USD), rounded to each pair's ``pair_decimals``.
Faults (errors, resets, timeouts, malformed bodies, stale or overlapping pages,
latency) come from wrapping the app in :class:`~perf_aggregator.simulator.faults.FaultInjector`;
clock skew from the injectable ``now_ms`` (the exchange's clock).

Known deviations from the real Kraken: API keys are 56 alphanumeric characters
(Kraken's contain ``+`` and ``/``; these would not fit the admin route's path);
``start``/``end`` given as a trade id bound by the trade's position in the
account's history; ``OHLC`` ``since`` is exclusive; refused calls do not add to
the call counter; there is no temporary lockout; ``trades``/``consolidate_taker``
are accepted and ignored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import secrets
import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from perf_aggregator.simulator.admin import Created, install_account_admin
from perf_aggregator.simulator.market import DAY_MS, MINUTE_MS, PriceModel, seeded_rng

SCALE = Decimal(10**8)
PAGE_SIZE = 50
OHLC_KEEP = 720
DEFAULT_HISTORY_MS = 2 * DAY_MS
TIERS: dict[str, tuple[float, float]] = {
    "starter": (15.0, 0.33),
    "intermediate": (20.0, 0.5),
    "pro": (20.0, 1.0),
}
"""Verification tier → (maximum call counter, decay per second)."""
_COSTS = {"TradesHistory": 2.0, "Ledgers": 2.0}
_ALPHANUMERIC = string.ascii_letters + string.digits
_TXID_ALPHABET = string.ascii_uppercase + string.digits
_TRADE_TYPES = frozenset({"all", "any position", "closed position", "closing position", "no position"})


@dataclass(frozen=True, slots=True)
class Asset:
    """One Kraken asset (``GET /0/public/Assets``)."""

    id: str
    altname: str
    decimals: int
    display_decimals: int


@dataclass(frozen=True, slots=True)
class Pair:
    """One Kraken asset pair and where its prices come from.

    Prices are the ``source`` market's (a :data:`simulator.market.MARKETS` symbol)
    times ``factor``, rounded to ``pair_decimals``.
    """

    id: str
    altname: str
    wsname: str
    base: str
    quote: str
    pair_decimals: int
    lot_decimals: int
    cost_decimals: int
    ordermin: str
    costmin: str
    source: str
    factor: Decimal = Decimal(1)
    min_size: Decimal = Decimal("0.0001")
    """Smallest order size the generator uses (a multiple of 10**-lot step it draws)."""

    def price(self, units: int) -> Decimal:
        """A :class:`PriceModel` price in units of 1e-8 as this pair's price."""
        return (Decimal(units) / SCALE * self.factor).quantize(
            Decimal(1).scaleb(-self.pair_decimals), rounding=ROUND_HALF_UP
        )


ASSETS: dict[str, Asset] = {
    a.id: a
    for a in (
        Asset("XXBT", "XBT", 10, 5),
        Asset("XETH", "ETH", 10, 5),
        Asset("SOL", "SOL", 10, 5),
        Asset("ZUSD", "USD", 4, 2),
        Asset("ZEUR", "EUR", 4, 2),
    )
}

PAIRS: dict[str, Pair] = {
    p.id: p
    for p in (
        Pair("XXBTZUSD", "XBTUSD", "XBT/USD", "XXBT", "ZUSD", 1, 8, 5, "0.00005", "0.5", "BTCUSDT"),
        Pair(
            "XXBTZEUR",
            "XBTEUR",
            "XBT/EUR",
            "XXBT",
            "ZEUR",
            1,
            8,
            5,
            "0.00005",
            "0.5",
            "BTCUSDT",
            Decimal("0.92"),
        ),
        Pair(
            "XETHZUSD",
            "ETHUSD",
            "ETH/USD",
            "XETH",
            "ZUSD",
            2,
            8,
            5,
            "0.002",
            "0.5",
            "ETHUSDT",
            min_size=Decimal("0.001"),
        ),
        Pair(
            "XETHXXBT",
            "ETHXBT",
            "ETH/XBT",
            "XETH",
            "XXBT",
            5,
            8,
            8,
            "0.002",
            "0.00002",
            "ETHBTC",
            min_size=Decimal("0.001"),
        ),
        Pair(
            "SOLUSD",
            "SOLUSD",
            "SOL/USD",
            "SOL",
            "ZUSD",
            2,
            8,
            5,
            "0.02",
            "0.5",
            "SOLUSDT",
            min_size=Decimal("0.01"),
        ),
    )
}
_BY_NAME = {**{p.altname: p for p in PAIRS.values()}, **PAIRS}

DEFAULT_PAIRS: tuple[str, ...] = ("XXBTZUSD", "XETHZUSD", "SOLUSD", "XETHXXBT")
_POPULARITY = {"XXBTZUSD": 4.0, "XETHZUSD": 3.0, "SOLUSD": 2.0}
_TAKER_FEE = Decimal("0.0040")
_MAKER_FEE = Decimal("0.0025")


def wall_clock_ms() -> int:
    """Milliseconds since the epoch, the default clock."""
    return time.time_ns() // 1_000_000


def _fmt(value: Decimal, decimals: int) -> str:
    return f"{value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP):f}"


def _txid(rng: random.Random, first: str) -> str:
    chars = [rng.choice(_TXID_ALPHABET) for _ in range(16)]
    return first + "".join(chars[:5]) + "-" + "".join(chars[5:10]) + "-" + "".join(chars[10:])


@dataclass(frozen=True, slots=True)
class KrakenTrade:
    """One fill of a simulated account, as ``TradesHistory`` reports it."""

    txid: str
    ordertxid: str
    postxid: str
    pair: str
    time_us: int
    """Fill time in units of 100 microseconds' multiples: microseconds since the epoch."""
    type: str
    ordertype: str
    price: Decimal
    vol: Decimal
    cost: Decimal
    fee: Decimal
    trade_id: int
    maker: bool

    @property
    def time_ms(self) -> int:
        return self.time_us // 1000

    def to_wire(self) -> dict[str, Any]:
        """The ``TradesHistory`` element (without its txid key)."""
        pair = PAIRS[self.pair]
        return {
            "ordertxid": self.ordertxid,
            "postxid": self.postxid,
            "pair": self.pair,
            "aclass": "forex",
            "time": float(Decimal(self.time_us).scaleb(-6)),
            "type": self.type,
            "ordertype": self.ordertype,
            "price": _fmt(self.price, pair.cost_decimals),
            "cost": _fmt(self.cost, pair.cost_decimals),
            "fee": _fmt(self.fee, pair.cost_decimals),
            "vol": _fmt(self.vol, 8),
            "margin": _fmt(Decimal(0), pair.cost_decimals),
            "leverage": "0",
            "misc": "",
            "trade_id": self.trade_id,
            "maker": self.maker,
        }


@dataclass
class KrakenAccount:
    """A simulated Kraken account: one API key, balances, and fills ascending by time."""

    api_key: str
    api_secret: str
    balances: dict[str, Decimal]
    trades: list[KrakenTrade]
    last_nonce: int = 0
    counter: float = 0.0
    counter_at_ms: int = 0
    _position: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.trades.sort(key=lambda t: (t.time_us, t.txid))
        self._position = {t.txid: i for i, t in enumerate(self.trades)}

    def position(self, txid: str) -> int | None:
        """Index of trade ``txid`` in the ascending history."""
        return self._position.get(txid)

    def raw_trades(self) -> list[dict[str, Any]]:
        """Every fill, oldest first, as ``{"txid": ..., **element}``."""
        return [{"txid": t.txid, **t.to_wire()} for t in self.trades]


def generate_kraken_account(
    seed: int,
    start_ms: int,
    end_ms: int,
    *,
    trades: int,
    prices: PriceModel,
    pairs: Sequence[str] | None = None,
) -> KrakenAccount:
    """An account with exactly ``trades`` fills in ``[start_ms, end_ms)``; deterministic in its arguments.

    Orders have 1-3 fills at the minute's prices (inside the candle's body), fees
    0.25% (maker) or 0.40% (taker) of the cost in the quote currency. The
    credentials are random every time.
    """
    chosen = tuple(pairs) if pairs is not None else DEFAULT_PAIRS
    unknown = [p for p in chosen if p not in PAIRS]
    if unknown or not chosen:
        raise ValueError(f"unknown or no pairs: {unknown}")
    if end_ms - start_ms < MINUTE_MS or trades < 0:
        raise ValueError("need trades >= 0 and a window of at least one minute")
    rng = seeded_rng("kraken-account", seed, start_ms, end_ms, trades, chosen)
    weights = [_POPULARITY.get(p, 1.0) for p in chosen]
    fills: list[KrakenTrade] = []
    trade_ids = {p: rng.randrange(10**7, 10**8) for p in chosen}
    while len(fills) < trades:
        pair = PAIRS[rng.choices(chosen, weights=weights)[0]]
        size = min(trades - len(fills), rng.choices((1, 2, 3), weights=(0.6, 0.3, 0.1))[0])
        at_us = rng.randrange(start_ms * 1000, end_ms * 1000 - size * 100_000, 100)
        minute = at_us // 1000 // MINUTE_MS
        open_units, close_units = prices.body_units(pair.source, minute)
        low, high = sorted((pair.price(open_units), pair.price(close_units)))
        maker = rng.random() < 0.4
        side = "sell" if rng.random() < 0.45 else "buy"
        order = _txid(rng, "O")
        for _ in range(size):
            price = low + (high - low) * Decimal(rng.randrange(0, 101)) / 100
            price = price.quantize(Decimal(1).scaleb(-pair.pair_decimals), rounding=ROUND_HALF_UP)
            notional = Decimal(str(round(min(5000.0, max(15.0, rng.lognormvariate(5.5, 0.8))), 2)))
            usd_per_base = Decimal(prices.usd_units(_usd_asset(pair), minute)) / SCALE
            vol = (notional / usd_per_base / pair.min_size).to_integral_value() * pair.min_size
            vol = max(vol, pair.min_size)
            cost = price * vol
            fee = (cost * (_MAKER_FEE if maker else _TAKER_FEE)).quantize(
                Decimal(1).scaleb(-pair.cost_decimals), rounding=ROUND_HALF_UP
            )
            trade_ids[pair.id] += rng.randrange(1, 400)
            fills.append(
                KrakenTrade(
                    txid=_txid(rng, "T"),
                    ordertxid=order,
                    postxid=_txid(rng, "T"),
                    pair=pair.id,
                    time_us=at_us,
                    type=side,
                    ordertype="limit" if maker else "market",
                    price=price,
                    vol=vol,
                    cost=cost,
                    fee=fee,
                    trade_id=trade_ids[pair.id],
                    maker=maker,
                )
            )
            at_us += rng.randrange(100, 100_000, 100) if maker else 100
    return KrakenAccount(
        api_key="".join(secrets.choice(_ALPHANUMERIC) for _ in range(56)),
        api_secret=base64.b64encode(secrets.token_bytes(64)).decode(),
        balances=_balances(fills, rng),
        trades=fills,
    )


def _usd_asset(pair: Pair) -> str:
    """The price-model asset whose USD price values one base unit of ``pair``."""
    return {"XXBT": "BTC", "XETH": "ETH", "SOL": "SOL"}[pair.base]


def _balances(fills: Sequence[KrakenTrade], rng: random.Random) -> dict[str, Decimal]:
    """Final balances: holdings from before the window cover every outflow, plus some spare."""
    level: dict[str, Decimal] = {}
    lowest: dict[str, Decimal] = {}
    for t in fills:
        pair = PAIRS[t.pair]
        sign = 1 if t.type == "buy" else -1
        for asset, delta in ((pair.base, sign * t.vol), (pair.quote, -sign * t.cost - t.fee)):
            level[asset] = level.get(asset, Decimal(0)) + delta
            lowest[asset] = min(lowest.get(asset, Decimal(0)), level[asset])
    balances = {}
    for asset in sorted(ASSETS):
        spare = Decimal(rng.randrange(0, 10**6)).scaleb(-4 if asset.startswith("Z") else -6)
        balances[asset] = level.get(asset, Decimal(0)) - lowest.get(asset, Decimal(0)) + spare
    return balances


class SimulatedKraken:
    """The simulated exchange's state: prices, accounts by API key, call counters and clock."""

    def __init__(
        self,
        seed: int = 0,
        *,
        tier: str = "starter",
        now_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.seed = seed
        self.prices = PriceModel(seed)
        self.now_ms = now_ms
        self.max_counter, self.decay_per_s = TIERS[tier]
        self.accounts: dict[str, KrakenAccount] = {}

    def add_account(self, account: KrakenAccount) -> KrakenAccount:
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
        pairs: Sequence[str] | None = None,
    ) -> KrakenAccount:
        """Generate and register an account; ``end_ms`` defaults to now, ``start_ms`` to two days before."""
        end = self.now_ms() if end_ms is None else end_ms
        start = end - DEFAULT_HISTORY_MS if start_ms is None else start_ms
        return self.add_account(
            generate_kraken_account(seed, start, end, trades=trades, prices=self.prices, pairs=pairs)
        )

    def charge(self, account: KrakenAccount, cost: float) -> bool:
        """Add ``cost`` to the key's call counter after its decay; ``False`` (nothing added) when over."""
        now = self.now_ms()
        elapsed_s = max(0, now - account.counter_at_ms) / 1000
        account.counter = max(0.0, account.counter - elapsed_s * self.decay_per_s)
        account.counter_at_ms = now
        if account.counter + cost > self.max_counter:
            return False
        account.counter += cost
        return True


class KrakenError(Exception):
    """An API error: served as HTTP 200 ``{"error": [message], "result": {}}`` like Kraken."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _answer(result: Any) -> dict[str, Any]:
    return {"error": [], "result": result}


def _pair(name: str | None) -> Pair:
    pair = _BY_NAME.get(name or "")
    if pair is None:
        raise KrakenError("EQuery:Unknown asset pair")
    return pair


def _integer(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise KrakenError(f"EGeneral:Invalid arguments:{name}") from None


# -- public ----------------------------------------------------------------


def _time(sim: SimulatedKraken, params: dict[str, str]) -> Any:
    seconds = sim.now_ms() // 1000
    stamp = time.strftime("%a, %d %b %y %H:%M:%S +0000", time.gmtime(seconds))
    return {"unixtime": seconds, "rfc1123": stamp}


def _asset_pairs(sim: SimulatedKraken, params: dict[str, str]) -> Any:
    names = params.get("pair")
    pairs = [_pair(n) for n in names.split(",")] if names else list(PAIRS.values())
    return {
        p.id: {
            "altname": p.altname,
            "wsname": p.wsname,
            "aclass_base": "currency",
            "base": p.base,
            "aclass_quote": "currency",
            "quote": p.quote,
            "lot": "unit",
            "cost_decimals": p.cost_decimals,
            "pair_decimals": p.pair_decimals,
            "lot_decimals": p.lot_decimals,
            "lot_multiplier": 1,
            "leverage_buy": [],
            "leverage_sell": [],
            "fees": [[0, 0.4], [10000, 0.35], [50000, 0.24]],
            "fees_maker": [[0, 0.25], [10000, 0.2], [50000, 0.14]],
            "fee_volume_currency": "ZUSD",
            "margin_call": 80,
            "margin_stop": 40,
            "ordermin": p.ordermin,
            "costmin": p.costmin,
            "tick_size": _fmt(Decimal(1).scaleb(-p.pair_decimals), p.pair_decimals),
            "status": "online",
        }
        for p in pairs
    }


def _assets(sim: SimulatedKraken, params: dict[str, str]) -> Any:
    return {
        a.id: {
            "aclass": "currency",
            "altname": a.altname,
            "decimals": a.decimals,
            "display_decimals": a.display_decimals,
            "status": "enabled",
        }
        for a in ASSETS.values()
    }


def _ohlc(sim: SimulatedKraken, params: dict[str, str]) -> Any:
    pair = _pair(params.get("pair"))
    interval = _integer(params.get("interval"), "interval") or 1
    if interval != 1:
        raise KrakenError("EGeneral:Invalid arguments")  # only 1-minute candles are simulated
    since_s = _integer(params.get("since"), "since")
    now = sim.now_ms()
    current = now // MINUTE_MS
    rows: list[list[Any]] = []
    for minute in range(current - OHLC_KEEP + 1, current + 1):
        if since_s is not None and minute * 60 <= since_s:
            continue
        candle = sim.prices.candle(pair.source, minute, 1, now)
        if candle is None:
            continue
        volume = Decimal(candle.volume) / SCALE
        vwap = Decimal(candle.quote_volume) / Decimal(candle.volume) if candle.volume else Decimal(0)
        rows.append(
            [
                minute * 60,
                _fmt(pair.price(candle.open), pair.pair_decimals),
                _fmt(pair.price(candle.high), pair.pair_decimals),
                _fmt(pair.price(candle.low), pair.pair_decimals),
                _fmt(pair.price(candle.close), pair.pair_decimals),
                _fmt(pair.price(int(vwap * SCALE)), pair.pair_decimals),
                _fmt(volume, 8),
                candle.trades,
            ]
        )
    return {pair.id: rows, "last": (current - 1) * 60}


# -- private ---------------------------------------------------------------


def _balance(sim: SimulatedKraken, account: KrakenAccount, params: dict[str, str]) -> Any:
    return {a: _fmt(v, ASSETS[a].decimals) for a, v in account.balances.items()}


def _balance_ex(sim: SimulatedKraken, account: KrakenAccount, params: dict[str, str]) -> Any:
    return {
        a: {"balance": _fmt(v, ASSETS[a].decimals), "hold_trade": _fmt(Decimal(0), ASSETS[a].decimals)}
        for a, v in account.balances.items()
    }


def _bound(account: KrakenAccount, value: str | None) -> tuple[int, float] | None:
    """A ``start``/``end`` bound as ``(position, seconds)``: a trade id's position, or a time."""
    if value is None or value == "":
        return None
    position = account.position(value)
    if position is not None:
        return position, 0.0
    try:
        return -1, float(value)
    except ValueError:
        raise KrakenError("EGeneral:Invalid arguments") from None


def _trades_history(sim: SimulatedKraken, account: KrakenAccount, params: dict[str, str]) -> Any:
    kind = params.get("type") or "all"
    if kind not in _TRADE_TYPES:
        raise KrakenError("EGeneral:Invalid arguments")
    ofs = _integer(params.get("ofs"), "ofs") or 0
    if ofs < 0:
        raise KrakenError("EGeneral:Invalid arguments")
    now_us = sim.now_ms() * 1000
    start = _bound(account, params.get("start"))  # exclusive
    end = _bound(account, params.get("end"))  # inclusive
    selected: list[KrakenTrade] = []
    for index, trade in enumerate(account.trades):
        if trade.time_us > now_us:
            break
        seconds = trade.time_us / 1_000_000
        if start is not None and not (index > start[0] if start[0] >= 0 else seconds > start[1]):
            continue
        if end is not None and not (index <= end[0] if end[0] >= 0 else seconds <= end[1]):
            continue
        selected.append(trade)
    selected.reverse()  # newest first
    page = selected[ofs : ofs + PAGE_SIZE]
    return {"trades": {t.txid: t.to_wire() for t in page}, "count": len(selected)}


_PUBLIC: dict[str, Callable[[SimulatedKraken, dict[str, str]], Any]] = {
    "Time": _time,
    "AssetPairs": _asset_pairs,
    "Assets": _assets,
    "OHLC": _ohlc,
}
_PRIVATE: dict[str, Callable[[SimulatedKraken, KrakenAccount, dict[str, str]], Any]] = {
    "Balance": _balance,
    "BalanceEx": _balance_ex,
    "TradesHistory": _trades_history,
}


def signature(secret: str, uri_path: str, nonce: str, body: bytes) -> str:
    """Kraken's ``API-Sign``: base64 HMAC-SHA512 (key: the decoded secret) of path + SHA256(nonce + body)."""
    digest = hashlib.sha256(nonce.encode() + body).digest()
    mac = hmac.new(base64.b64decode(secret), uri_path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


def _authenticate(
    sim: SimulatedKraken, request: Request, body: bytes, params: dict[str, str]
) -> KrakenAccount:
    account = sim.accounts.get(request.headers.get("API-Key", ""))
    if account is None:
        raise KrakenError("EAPI:Invalid key")
    nonce = params.get("nonce", "")
    given = request.headers.get("API-Sign", "")
    try:
        expected = signature(account.api_secret, request.url.path, nonce, body)
    except ValueError:
        raise KrakenError("EAPI:Invalid signature") from None
    if not hmac.compare_digest(expected, given):
        raise KrakenError("EAPI:Invalid signature")
    if not nonce.isdigit() or int(nonce) <= account.last_nonce:
        raise KrakenError("EAPI:Invalid nonce")
    account.last_nonce = int(nonce)
    return account


class AccountRequest(BaseModel):
    """Body of ``POST /_simulator/accounts``; times in epoch milliseconds."""

    seed: int
    trades: int = Field(ge=0, le=200_000)
    start: int | None = None
    end: int | None = None
    pairs: list[str] | None = None


def create_kraken_app(sim: SimulatedKraken) -> FastAPI:
    """The ASGI app serving ``sim`` over Kraken's REST paths, plus the ``/_simulator/`` admin routes."""
    app = FastAPI(title="Simulated Kraken", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/0/public/{method}")
    async def public(method: str, request: Request) -> Response:
        handler = _PUBLIC.get(method)
        if handler is None:
            return JSONResponse({"error": ["EGeneral:Unknown method"], "result": {}})
        params = dict(request.query_params)
        try:
            return JSONResponse(_answer(handler(sim, params)))
        except KrakenError as error:
            return JSONResponse({"error": [error.message], "result": {}})

    @app.post("/0/private/{method}")
    async def private(method: str, request: Request) -> Response:
        body = await request.body()
        params = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
        try:
            handler = _PRIVATE.get(method)
            if handler is None:
                raise KrakenError("EGeneral:Unknown method")
            account = _authenticate(sim, request, body, params)
            if not sim.charge(account, _COSTS.get(method, 1.0)):
                raise KrakenError("EAPI:Rate limit exceeded")
            return JSONResponse(_answer(handler(sim, account, params)))
        except KrakenError as error:
            return JSONResponse({"error": [error.message], "result": {}})

    def create(body: AccountRequest) -> Created:
        account = sim.create_account(
            body.seed, body.trades, start_ms=body.start, end_ms=body.end, pairs=body.pairs
        )
        return account.api_key, account.api_secret, len(account.trades)

    def trades_of(api_key: str) -> list[dict[str, Any]] | None:
        account = sim.accounts.get(api_key)
        return None if account is None else account.raw_trades()

    install_account_admin(app, "/_simulator/accounts", AccountRequest, create, trades_of)
    return app
