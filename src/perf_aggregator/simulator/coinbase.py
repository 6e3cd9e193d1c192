"""A wire-faithful Coinbase Advanced Trade REST API on top of the simulated markets and accounts.

``create_coinbase_app(SimulatedCoinbase(...))`` serves Coinbase's real paths,
parameters, field names and string numbers, CDP JWT (ES256) authentication,
error bodies and rate limits, so that ccxt's own ``coinbase`` class works
against it once its URLs point here. Routes under ``/_simulator/`` are not
Coinbase's: they create accounts and reveal their generated fills.

Prices come from :class:`PriceModel` (``BTC-USD`` follows ``BTCUSDT``, USDT being
worth one USD there); fills come from :func:`generate_account` and are rendered
in Coinbase's shape: UUID ids, commission in the quote currency (0.4 % maker,
0.6 % taker), some taker buys sized in quote (``size_in_quote``).

Faults (errors, resets, timeouts, malformed bodies, stale or duplicated pages,
latency) come from wrapping the app in :class:`~perf_aggregator.simulator.faults.FaultInjector`;
clock skew from the simulator's clocks.

Known deviations: the JWT ``uri`` claim is accepted with the host as ccxt signs
it for a plain-HTTP base URL (``GET http://127.0.0.1:PORT/api/...``) as well as
``GET 127.0.0.1:PORT/api/...``; ``iss`` may be ``cdp`` or ``coinbase-cloud``
(ccxt's value); JWT ``nbf``/``exp`` are checked, without leeway, on ``wall_ms``
(the exchange's wall clock, which the time endpoints report: skew it to simulate
clock drift) and rate limits on the monotonic clock, in a sliding one-second
window: the injectable ``now_ms`` decides which fills and candles exist, so tests
can move it freely; the v2 endpoints are
served as far as ccxt's ``load_markets``/``fetch_balance`` need them; an account's
fills are deterministic in its seed but its key (name and EC P-256 PEM) is random,
so two accounts never share a key; the fills cursor is an offset into the
filtered list (new fills arriving between pages shift it: a page may repeat
fills, never skip one).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from perf_aggregator.simulator.accounts import RawTrade, generate_account
from perf_aggregator.simulator.admin import Created, install_account_admin
from perf_aggregator.simulator.market import DAY_MS, MARKETS, MINUTE_MS, PriceModel
from perf_aggregator.simulator.units import SCALE

DEFAULT_HISTORY_MS = 30 * DAY_MS
PRIVATE_PER_SECOND = 30
PUBLIC_PER_SECOND = 10
JWT_LIFETIME_S = 120
MAX_CANDLES = 350
FILLS_DEFAULT_LIMIT = 100
FILLS_MAX_LIMIT = 1000
MAKER_FEE = Decimal("0.004")
TAKER_FEE = Decimal("0.006")


@dataclass(frozen=True, slots=True)
class Product:
    """A Coinbase spot product priced by a :data:`MARKETS` entry."""

    product_id: str
    base: str
    quote: str
    model: str
    """The simulated market whose candles this product shows."""

    @property
    def base_increment(self) -> str:
        return _plain(Decimal(MARKETS[self.model].step_units) / SCALE)

    @property
    def quote_increment(self) -> str:
        return _plain(Decimal(MARKETS[self.model].tick_units) / SCALE)


PRODUCTS: dict[str, Product] = {
    p.product_id: p
    for p in (
        Product("BTC-USD", "BTC", "USD", "BTCUSDT"),
        Product("ETH-USD", "ETH", "USD", "ETHUSDT"),
        Product("SOL-USD", "SOL", "USD", "SOLUSDT"),
        Product("ETH-BTC", "ETH", "BTC", "ETHBTC"),
        Product("BTC-USDT", "BTC", "USDT", "BTCUSDT"),
        Product("ETH-USDT", "ETH", "USDT", "ETHUSDT"),
        Product("SOL-USDT", "SOL", "USDT", "SOLUSDT"),
        Product("BTC-USDC", "BTC", "USDC", "BTCUSDC"),
    )
}
ACCOUNT_PRODUCTS: dict[str, str] = {
    "BTCUSDT": "BTC-USD",
    "ETHUSDT": "ETH-USD",
    "SOLUSDT": "SOL-USD",
    "ETHBTC": "ETH-BTC",
    "BTCUSDC": "BTC-USDC",
}
"""Simulated market of a generated fill → the Coinbase product it is rendered on."""
DEFAULT_PRODUCTS: tuple[str, ...] = ("BTC-USD", "ETH-USD", "SOL-USD", "ETH-BTC")
CURRENCIES: tuple[str, ...] = ("BTC", "ETH", "SOL", "USD", "USDC", "USDT")


def wall_clock_ms() -> int:
    """Milliseconds since the epoch, the default clock."""
    return time.time_ns() // 1_000_000


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if text not in ("-0", "") else "0"


def _units(units: int) -> str:
    return _plain(Decimal(units) / SCALE)


def rfc3339_us(ms: int, extra_us: int = 0) -> str:
    """Coinbase's timestamps: RFC 3339 UTC with microseconds."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC).replace(microsecond=(ms % 1000) * 1000 + extra_us)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339_ms(text: str) -> int:
    """Epoch ms of an RFC 3339 timestamp (``Z`` or offset); raises ``ValueError``."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("timestamp without a time zone")
    return int(moment.timestamp() * 1000)


def _uuid(*parts: object) -> str:
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


class CoinbaseError(Exception):
    """An error answer: ``{"error", "error_details", "message"}`` with its HTTP status."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(f"{status} {error} {message}")
        self.status = status
        self.error = error
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_details": self.message, "message": self.message}


def unauthorized(detail: str = "Unauthorized") -> CoinbaseError:
    return CoinbaseError(401, "UNAUTHORIZED", detail)


def invalid_argument(detail: str) -> CoinbaseError:
    return CoinbaseError(400, "INVALID_ARGUMENT", detail)


@dataclass
class CoinbaseAccount:
    """A simulated Advanced Trade portfolio with one CDP API key."""

    key_name: str
    """``organizations/{org_id}/apiKeys/{key_id}``."""
    private_key_pem: str
    public_key: ec.EllipticCurvePublicKey
    can_view: bool
    can_trade: bool
    can_transfer: bool
    portfolio_uuid: str
    user_id: str
    created_ms: int
    balances: dict[str, Decimal]
    fills: list[dict[str, Any]]
    """Every fill in wire shape, ascending by ``(trade_time, trade_id)``."""
    trade_ms: list[int] = field(default_factory=list)
    sequence_ms: list[int] = field(default_factory=list)

    @property
    def key_id(self) -> str:
        return self.key_name.rsplit("/", 1)[-1]

    def visible(self, now_ms: int) -> list[int]:
        """Positions of the fills that happened by ``now_ms``."""
        return list(range(bisect_right(self.trade_ms, now_ms)))


def render_fill(raw: RawTrade, product: Product, seed: int, user_id: str, portfolio: str) -> dict[str, Any]:
    """A generated fill in ``/orders/historical/fills`` shape, with Coinbase's fee in quote."""
    quote_value = Decimal(raw.quote_qty) / SCALE
    commission = quote_value * (MAKER_FEE if raw.is_maker else TAKER_FEE)
    trade_id = _uuid(seed, "trade", raw.symbol, raw.id, raw.is_buyer)
    digest = hashlib.sha256(trade_id.encode()).digest()
    # Some taker buys are market orders sized in quote ("buy $100 of BTC").
    in_quote = raw.is_buyer and not raw.is_maker and digest[0] % 3 == 0
    sequence_us = digest[1] * 1000 + digest[2]  # the sequencer stamps shortly after the match
    return {
        "entry_id": hashlib.sha256(f"entry:{trade_id}".encode()).hexdigest(),
        "trade_id": trade_id,
        "order_id": _uuid(seed, "order", raw.symbol, raw.order_id),
        "trade_time": rfc3339_us(raw.time, digest[3] % 250),
        "trade_type": "FILL",
        "price": _units(raw.price),
        "size": _units(raw.quote_qty if in_quote else raw.qty),
        "commission": _plain(commission),
        "product_id": product.product_id,
        "sequence_timestamp": rfc3339_us(raw.time + sequence_us // 1000, sequence_us % 1000),
        "liquidity_indicator": "MAKER" if raw.is_maker else "TAKER",
        "size_in_quote": in_quote,
        "user_id": user_id,
        "side": "BUY" if raw.is_buyer else "SELL",
        "retail_portfolio_id": portfolio,
    }


class _SlidingWindow:
    """At most ``limit`` requests per client in any one-second window (wall clock)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: dict[str, deque[float]] = {}

    def allow(self, client: str) -> bool:
        now = time.monotonic()
        window = self._seen.setdefault(client, deque())
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= self.limit:
            return False
        window.append(now)
        return True


class SimulatedCoinbase:
    """The simulated exchange's state: prices, accounts by key name, limits and clocks.

    ``now_ms`` decides which fills and candles exist; ``wall_ms`` is the clock JWTs are
    checked on (ccxt signs on the wall clock).
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        private_per_second: int = PRIVATE_PER_SECOND,
        public_per_second: int = PUBLIC_PER_SECOND,
        now_ms: Callable[[], int] = wall_clock_ms,
        wall_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.seed = seed
        self.prices = PriceModel(seed)
        self.now_ms = now_ms
        self.wall_ms = wall_ms
        self.private_limiter = _SlidingWindow(private_per_second)
        self.public_limiter = _SlidingWindow(public_per_second)
        self.accounts: dict[str, CoinbaseAccount] = {}

    def add_account(self, account: CoinbaseAccount) -> CoinbaseAccount:
        """Register ``account`` under its key name (e.g. the same account on two simulators)."""
        self.accounts[account.key_name] = account
        return account

    def by_key_id(self, key_id: str) -> CoinbaseAccount | None:
        return next((a for a in self.accounts.values() if a.key_id == key_id), None)

    def create_account(
        self,
        seed: int,
        trades: int,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        products: Sequence[str] | None = None,
        can_transfer: bool = False,
        can_trade: bool = False,
    ) -> CoinbaseAccount:
        """Generate and register an account with exactly ``trades`` fills in ``[start, end)``.

        The fills depend only on the arguments and the simulator's seed; the key is random.
        """
        now = self.now_ms()
        end = now if end_ms is None else end_ms
        start = end - DEFAULT_HISTORY_MS if start_ms is None else start_ms
        if end > now:
            raise ValueError("the history cannot end in the future")
        wanted = tuple(products) if products is not None else DEFAULT_PRODUCTS
        by_product = {v: k for k, v in ACCOUNT_PRODUCTS.items()}
        unknown = [p for p in wanted if p not in by_product]
        if unknown or not wanted:
            raise ValueError(f"unknown or no products: {unknown}")
        generated = generate_account(
            seed,
            start,
            end,
            trades=trades,
            prices=self.prices,
            symbols=[by_product[p] for p in wanted],
            bnb_fee_share=0.0,
            self_trades=0,
            created_ms=now,
        )
        user_id = _uuid(self.seed, "user", seed)
        portfolio = _uuid(self.seed, "portfolio", seed)
        fills = [
            render_fill(t, PRODUCTS[ACCOUNT_PRODUCTS[t.symbol]], self.seed, user_id, portfolio)
            for t in generated.trades
        ]
        fills.sort(key=lambda f: (parse_rfc3339_ms(f["trade_time"]), f["trade_id"]))
        private = ec.generate_private_key(ec.SECP256R1())
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()
        balances = {
            c: Decimal(generated.balances.get("USDT" if c == "USD" else c, 0)) / SCALE for c in CURRENCIES
        }
        account = CoinbaseAccount(
            key_name=f"organizations/{uuid.uuid4()}/apiKeys/{uuid.uuid4()}",
            private_key_pem=pem,
            public_key=private.public_key(),
            can_view=True,
            can_trade=can_trade,
            can_transfer=can_transfer,
            portfolio_uuid=portfolio,
            user_id=user_id,
            created_ms=now,
            balances=balances,
            fills=fills,
            trade_ms=[parse_rfc3339_ms(f["trade_time"]) for f in fills],
            sequence_ms=[parse_rfc3339_ms(f["sequence_timestamp"]) for f in fills],
        )
        return self.add_account(account)


# -- JWT ----------------------------------------------------------------------


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_jwt(sim: SimulatedCoinbase, request: Request) -> CoinbaseAccount:
    """The account of the request's CDP JWT, after Coinbase's checks; raises 401 otherwise."""
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        raise unauthorized()
    token = header[len("Bearer ") :].strip()
    parts = token.split(".")
    if len(parts) != 3:
        raise unauthorized()
    try:
        jose = json.loads(_b64url(parts[0]))
        claims = json.loads(_b64url(parts[1]))
        signature = _b64url(parts[2])
    except (ValueError, UnicodeDecodeError):
        raise unauthorized() from None
    if not isinstance(jose, dict) or not isinstance(claims, dict):
        raise unauthorized()
    if jose.get("alg") != "ES256" or not jose.get("nonce"):
        raise unauthorized()
    account = sim.accounts.get(str(jose.get("kid")))
    if account is None or len(signature) != 64:
        raise unauthorized()
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        account.public_key.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise unauthorized() from None
    if claims.get("sub") != account.key_name or claims.get("iss") not in ("cdp", "coinbase-cloud"):
        raise unauthorized()
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if not isinstance(nbf, int) or not isinstance(exp, int) or not 0 < exp - nbf <= JWT_LIFETIME_S:
        raise unauthorized()
    now_s = sim.wall_ms() // 1000
    if now_s < nbf or now_s >= exp:
        raise unauthorized()
    host = request.headers.get("host", "")
    path = request.url.path
    accepted = {f"{request.method} {host}{path}", f"{request.method} http://{host}{path}"}
    uris = claims.get("uris")
    signed = [claims.get("uri")] + (list(uris) if isinstance(uris, list) else [])
    if not any(u in accepted for u in signed):
        raise unauthorized()
    return account


# -- handlers -------------------------------------------------------------------


def _product_document(sim: SimulatedCoinbase, product: Product) -> dict[str, Any]:
    now = sim.now_ms()
    close = sim.prices.close_units(product.model, now // MINUTE_MS - 1)
    return {
        "product_id": product.product_id,
        "price": _units(close),
        "price_percentage_change_24h": "0",
        "volume_24h": "0",
        "volume_percentage_change_24h": "0",
        "base_increment": product.base_increment,
        "quote_increment": product.quote_increment,
        "quote_min_size": "1",
        "quote_max_size": "150000000",
        "base_min_size": product.base_increment,
        "base_max_size": "3400",
        "base_name": product.base,
        "quote_name": product.quote,
        "watched": False,
        "is_disabled": False,
        "new": False,
        "status": "online",
        "cancel_only": False,
        "limit_only": False,
        "post_only": False,
        "trading_disabled": False,
        "auction_mode": False,
        "product_type": "SPOT",
        "quote_currency_id": product.quote,
        "base_currency_id": product.base,
        "fcm_trading_session_details": None,
        "mid_market_price": "",
        "alias": "",
        "alias_to": [],
        "base_display_symbol": product.base,
        "quote_display_symbol": product.quote,
        "view_only": False,
        "price_increment": product.quote_increment,
        "display_name": product.product_id,
        "product_venue": "CBE",
    }


def _products(sim: SimulatedCoinbase, request: Request) -> dict[str, Any]:
    kind = request.query_params.get("product_type", "SPOT")
    wanted = set(request.query_params.getlist("product_ids"))
    items = [
        _product_document(sim, p)
        for p in PRODUCTS.values()
        if kind == "SPOT" and (not wanted or p.product_id in wanted)
    ]
    return {"products": items, "num_products": len(items)}


def _product(sim: SimulatedCoinbase, product_id: str) -> dict[str, Any]:
    product = PRODUCTS.get(product_id)
    if product is None:
        raise CoinbaseError(404, "NOT_FOUND", "ProductID is invalid")
    return _product_document(sim, product)


def _candles(sim: SimulatedCoinbase, request: Request, product_id: str) -> dict[str, Any]:
    product = PRODUCTS.get(product_id)
    if product is None:
        raise CoinbaseError(404, "NOT_FOUND", "ProductID is invalid")
    q = request.query_params
    if q.get("granularity", "") != "ONE_MINUTE":
        raise invalid_argument("granularity must be ONE_MINUTE in this simulator")
    try:
        start, end = int(q.get("start", "")), int(q.get("end", ""))
    except ValueError:
        raise invalid_argument("start and end are required UNIX seconds") from None
    if end < start:
        raise invalid_argument("end must be after start")
    if (end - start) // 60 > MAX_CANDLES:
        raise invalid_argument(f"number of candles requested should be less than {MAX_CANDLES}")
    now = sim.now_ms()
    market = MARKETS[product.model]
    first = max(-(-start // 60), market.listed_minute)
    last = min(-(-end // 60) - 1, now // MINUTE_MS)  # open times in [start, end); the open minute too
    candles = []
    for minute in range(last, first - 1, -1):  # newest first
        candle = sim.prices.candle(product.model, minute, 1, now)
        if candle is None:
            continue
        candles.append(
            {
                "start": str(minute * 60),
                "low": _units(candle.low),
                "high": _units(candle.high),
                "open": _units(candle.open),
                "close": _units(candle.close),
                "volume": _units(candle.volume),
            }
        )
    return {"candles": candles}


def _time(sim: SimulatedCoinbase) -> dict[str, Any]:
    now = sim.wall_ms()  # the clock JWTs are checked on, which a client may sync to
    return {
        "iso": rfc3339_us(now)[:19] + "Z",
        "epochSeconds": str(now // 1000),
        "epochMillis": str(now),
    }


def _fills(sim: SimulatedCoinbase, request: Request, account: CoinbaseAccount) -> dict[str, Any]:
    q = request.query_params
    products = set(q.getlist("product_ids")) | set(q.getlist("product_id"))
    order_ids, trade_ids = set(q.getlist("order_ids")), set(q.getlist("trade_ids"))
    try:
        start = parse_rfc3339_ms(q["start_sequence_timestamp"]) if q.get("start_sequence_timestamp") else None
        end = parse_rfc3339_ms(q["end_sequence_timestamp"]) if q.get("end_sequence_timestamp") else None
    except ValueError:
        raise invalid_argument("invalid sequence timestamp") from None
    try:
        limit = int(q.get("limit") or FILLS_DEFAULT_LIMIT)
        offset = int(q.get("cursor") or 0)
    except ValueError:
        raise invalid_argument("invalid limit or cursor") from None
    if not 1 <= limit <= FILLS_MAX_LIMIT or offset < 0:
        raise invalid_argument("limit out of range")
    sort_by = q.get("sort_by") or "UNKNOWN_SORT_BY"
    if sort_by not in ("UNKNOWN_SORT_BY", "PRICE", "TRADE_TIME"):
        raise invalid_argument("invalid sort_by")
    positions = [
        p
        for p in account.visible(sim.now_ms())
        if (start is None or account.sequence_ms[p] >= start)
        and (end is None or account.sequence_ms[p] <= end)
        and (not products or account.fills[p]["product_id"] in products)
        and (not order_ids or account.fills[p]["order_id"] in order_ids)
        and (not trade_ids or account.fills[p]["trade_id"] in trade_ids)
    ]
    if sort_by == "PRICE":
        positions.sort(key=lambda p: (Decimal(account.fills[p]["price"]), p), reverse=True)
    elif sort_by == "TRADE_TIME":
        positions.sort(key=lambda p: (account.fills[p]["trade_time"], p), reverse=True)
    else:
        positions.sort(key=lambda p: (account.fills[p]["sequence_timestamp"], p), reverse=True)
    page = positions[offset : offset + limit]
    following = offset + len(page)
    cursor = str(following) if following < len(positions) else ""
    return {"fills": [account.fills[p] for p in page], "cursor": cursor}


def _key_permissions(account: CoinbaseAccount) -> dict[str, Any]:
    return {
        "can_view": account.can_view,
        "can_trade": account.can_trade,
        "can_transfer": account.can_transfer,
        "portfolio_uuid": account.portfolio_uuid,
        "portfolio_type": "DEFAULT",
    }


def _account_documents(account: CoinbaseAccount) -> list[dict[str, Any]]:
    created = rfc3339_us(account.created_ms)
    return [
        {
            "uuid": _uuid(account.key_name, "account", currency),
            "name": f"{currency} Wallet",
            "currency": currency,
            "available_balance": {"value": _plain(amount), "currency": currency},
            "default": True,
            "active": True,
            "created_at": created,
            "updated_at": created,
            "deleted_at": None,
            "type": "ACCOUNT_TYPE_FIAT" if currency == "USD" else "ACCOUNT_TYPE_CRYPTO",
            "ready": True,
            "hold": {"value": "0", "currency": currency},
            "retail_portfolio_id": account.portfolio_uuid,
            "platform": "ACCOUNT_PLATFORM_CONSUMER",
        }
        for currency, amount in sorted(account.balances.items())
    ]


def _accounts(request: Request, account: CoinbaseAccount) -> dict[str, Any]:
    q = request.query_params
    try:
        limit = min(250, max(1, int(q.get("limit") or 49)))
        offset = int(q.get("cursor") or 0)
    except ValueError:
        raise invalid_argument("invalid limit or cursor") from None
    items = _account_documents(account)
    page = items[offset : offset + limit]
    has_next = offset + limit < len(items)
    return {
        "accounts": page,
        "has_next": has_next,
        "cursor": str(offset + limit) if has_next else "",
        "size": len(page),
    }


def _v2_accounts(account: CoinbaseAccount) -> dict[str, Any]:
    data = [
        {
            "id": doc["uuid"],
            "name": doc["name"],
            "primary": True,
            "type": "fiat" if doc["currency"] == "USD" else "wallet",
            "currency": {"code": doc["currency"], "name": doc["currency"]},
            "balance": {"amount": doc["available_balance"]["value"], "currency": doc["currency"]},
            "created_at": doc["created_at"],
            "updated_at": doc["updated_at"],
            "resource": "account",
            "resource_path": f"/v2/accounts/{doc['uuid']}",
        }
        for doc in _account_documents(account)
    ]
    pagination = {"ending_before": None, "starting_after": None, "next_starting_after": None, "limit": 250}
    return {"pagination": {**pagination, "order": "desc", "next_uri": None}, "data": data}


def _transaction_summary() -> dict[str, Any]:
    return {
        "total_volume": 0,
        "total_fees": 0,
        "fee_tier": {
            "pricing_tier": "Advanced 1",
            "usd_from": "0",
            "usd_to": "1000",
            "taker_fee_rate": str(TAKER_FEE),
            "maker_fee_rate": str(MAKER_FEE),
        },
        "margin_rate": None,
        "goods_and_services_tax": None,
        "advanced_trade_only_volume": 0,
        "advanced_trade_only_fees": 0,
        "coinbase_pro_volume": 0,
        "coinbase_pro_fees": 0,
    }


def _v2_currencies() -> dict[str, Any]:
    fiat = [{"id": "USD", "name": "US Dollar", "min_size": "0.01"}]
    return {"data": fiat}


def _v2_crypto_currencies() -> dict[str, Any]:
    crypto = [c for c in CURRENCIES if c != "USD"]
    return {
        "data": [
            {
                "asset_id": _uuid("asset", c),
                "code": c,
                "name": c,
                "exponent": 8,
                "type": "crypto",
                "sort_index": i,
            }
            for i, c in enumerate(crypto)
        ]
    }


def _v2_exchange_rates(sim: SimulatedCoinbase) -> dict[str, Any]:
    minute = sim.now_ms() // MINUTE_MS - 1
    rates = {"USD": "1"}
    for currency in CURRENCIES:
        if currency not in rates:
            usd = sim.prices.usd_units(currency, minute)
            rates[currency] = _plain(Decimal(SCALE) / Decimal(usd))
    return {"data": {"currency": "USD", "rates": rates}}


# -- app --------------------------------------------------------------------------


class AccountRequest(BaseModel):
    """Body of ``POST /_simulator/accounts``; times in epoch milliseconds."""

    seed: int
    trades: int = Field(ge=0, le=500_000)
    start: int | None = None
    end: int | None = None
    products: list[str] | None = None
    can_transfer: bool = False
    can_trade: bool = False


Handler = Callable[[Request, CoinbaseAccount | None], Any]


def create_coinbase_app(sim: SimulatedCoinbase) -> FastAPI:
    """The ASGI app serving ``sim`` over Coinbase's REST paths, plus the ``/_simulator/`` admin routes."""
    app = FastAPI(title="Simulated Coinbase", docs_url=None, redoc_url=None, openapi_url=None)

    def route(path: str, handler: Handler, *, private: bool) -> None:
        async def handle(request: Request) -> Response:
            try:
                if private:
                    account = verify_jwt(sim, request)
                    if not sim.private_limiter.allow(account.key_name):
                        raise CoinbaseError(429, "RATE_LIMIT_EXCEEDED", "Too many requests")
                else:
                    account = None
                    ip = request.client.host if request.client else "unknown"
                    if not sim.public_limiter.allow(ip):
                        raise CoinbaseError(429, "RATE_LIMIT_EXCEEDED", "Too many requests")
                return JSONResponse(handler(request, account))
            except CoinbaseError as error:
                return JSONResponse(error.body(), status_code=error.status)

        app.add_api_route(path, handle, methods=["GET"])

    def need(account: CoinbaseAccount | None) -> CoinbaseAccount:
        assert account is not None
        return account

    v3 = "/api/v3/brokerage"
    route(f"{v3}/orders/historical/fills", lambda r, a: _fills(sim, r, need(a)), private=True)
    route(f"{v3}/key_permissions", lambda r, a: _key_permissions(need(a)), private=True)
    route(f"{v3}/accounts", lambda r, a: _accounts(r, need(a)), private=True)
    route(f"{v3}/transaction_summary", lambda r, a: _transaction_summary(), private=True)
    route(f"{v3}/products", lambda r, a: _products(sim, r), private=True)
    route(
        f"{v3}/products/{{product_id}}", lambda r, a: _product(sim, r.path_params["product_id"]), private=True
    )
    route(f"{v3}/market/products", lambda r, a: _products(sim, r), private=False)
    route(
        f"{v3}/market/products/{{product_id}}",
        lambda r, a: _product(sim, r.path_params["product_id"]),
        private=False,
    )
    route(
        f"{v3}/market/products/{{product_id}}/candles",
        lambda r, a: _candles(sim, r, r.path_params["product_id"]),
        private=False,
    )
    route(f"{v3}/time", lambda r, a: _time(sim), private=False)
    route("/v2/currencies", lambda r, a: _v2_currencies(), private=False)
    route("/v2/currencies/crypto", lambda r, a: _v2_crypto_currencies(), private=False)
    route("/v2/exchange-rates", lambda r, a: _v2_exchange_rates(sim), private=False)
    route(
        "/v2/time",
        lambda r, a: {"data": {"epoch": sim.wall_ms() // 1000, "iso": _time(sim)["iso"]}},
        private=False,
    )
    route("/v2/accounts", lambda r, a: _v2_accounts(need(a)), private=True)

    def create(body: AccountRequest) -> Created:
        account = sim.create_account(
            body.seed,
            body.trades,
            start_ms=body.start,
            end_ms=body.end,
            products=body.products,
            can_transfer=body.can_transfer,
            can_trade=body.can_trade,
        )
        return account.key_name, account.private_key_pem, len(account.fills)

    def fills_of(key_id: str) -> list[dict[str, Any]] | None:
        account = sim.by_key_id(key_id)
        return None if account is None else account.fills

    install_account_admin(app, "/_simulator/accounts", AccountRequest, create, fills_of, listing="fills")
    return app
