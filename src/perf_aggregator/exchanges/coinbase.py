"""Coinbase Advanced Trade: exact parsing of raw payloads, and the connector (transport by ccxt).

ccxt's ``coinbase`` class carries the requests and signs them (CDP JWT, ES256,
apiKey = key name ``organizations/{org}/apiKeys/{id}``, secret = EC PEM); we call
its raw endpoints and parse the answers ourselves into exact decimals.

Symbols. ``/orders/historical/fills`` needs no product: one call pages through
every fill of the portfolio. :meth:`CoinbaseAdvanced.discover_symbols` therefore
returns the single pseudo-symbol ``"*"`` (:data:`ALL_FILLS`) and
``fetch_trades("*", ...)`` reads all fills, each trade carrying its real unified
symbol (``BTC/USD``). Hints are not needed: every product is covered.

History. Fills come newest first, in pages joined by Coinbase's opaque cursor.
A *sweep* reads every fill whose ``sequence_timestamp`` is at or after
``lower - OVERLAP_MS`` down to the end (empty cursor); the first sweep's lower
bound is ``since``. The newest trade time seen in a sweep becomes the next
sweep's lower bound, so polling re-reads a short overlap (fills sequenced
shortly before or after their trade time, pages that shifted while new fills
arrived) and never skips one; the ledger drops the repeats by id. Fills older
than ``since`` (by trade time) are left out.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async
from ccxt.base import errors as ccxt_errors

from perf_aggregator.clock import Clock, now_ms
from perf_aggregator.exchanges.base import Candles, Market, TradePage
from perf_aggregator.exchanges.endpoints import origin_of, override_ccxt_urls
from perf_aggregator.exchanges.errors import (
    CredentialsRejected,
    ExchangeError,
    ExchangeRequestError,
    ExchangeUnavailable,
    KeyNotReadOnly,
    RateLimited,
)
from perf_aggregator.ledger.trades import Trade
from perf_aggregator.tee.credentials import ExchangeCredentials

PUBLIC_ORIGIN = "https://api.coinbase.com"
ALL_FILLS = "*"
"""The pseudo-symbol whose trade history is every fill of the account."""
PAGE_LIMIT = 250
MAX_CANDLES = 350
MINUTE_MS = 60_000
OVERLAP_MS = 15 * MINUTE_MS
"""How far before the last sweep's newest fill the next sweep starts."""
PRIVATE_PER_SECOND = 30
PUBLIC_PER_SECOND = 10
HEADROOM = 0.7
"""Fraction of the documented per-second limits we allow ourselves."""
_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)")
_ERROR_CODE = re.compile(r'"error"\s*:\s*"([A-Za-z_]+)"')
_RATE_CODES = frozenset(
    {"RATE_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTED", "rate_limit_exceeded", "resource_exhausted"}
)
_AUTH_CODES = frozenset(
    {"UNAUTHORIZED", "PERMISSION_DENIED", "unauthorized", "authentication_error", "invalid_token"}
)


# -- pure parsers -------------------------------------------------------------------


def parse_time_ms(text: str) -> int:
    """Epoch ms of Coinbase's RFC 3339 time (any number of fractional digits, truncated)."""
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7) or "", match.group(8)
    seconds = int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp())
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds * 1000 + int((fraction + "000")[:3])


def format_time(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, as Coinbase's ``*_sequence_timestamp`` parameters take it."""
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def market_of_product(product_id: str, markets_by_id: dict[str, Market]) -> Market:
    """The market of ``product_id``; a product missing from the list (delisted) is split on ``-``."""
    market = markets_by_id.get(product_id)
    if market is not None:
        return market
    base, _, quote = product_id.partition("-")
    if not base or not quote:
        raise ValueError(f"unexpected product id {product_id!r}")
    return Market(f"{base}/{quote}", product_id, base, quote, "spot")


def parse_fill(raw: dict[str, Any], market: Market) -> Trade:
    """A ``/orders/historical/fills`` element as a normalized trade (exact decimals).

    With ``size_in_quote`` the size is in quote units: amount = size / price.
    ``commission`` is in the quote currency.
    """
    price = Decimal(str(raw["price"]))
    size = Decimal(str(raw["size"]))
    if raw.get("size_in_quote") is True:
        amount = size / price
    else:
        amount = size
    side = str(raw["side"]).lower()
    if side not in ("buy", "sell"):
        raise ValueError(f"unexpected side {raw['side']!r}")
    return Trade(
        id=str(raw["trade_id"]),
        order_id=str(raw["order_id"]),
        symbol=market.symbol,
        base=market.base,
        quote=market.quote,
        market_type="spot",
        side="buy" if side == "buy" else "sell",
        amount=amount,
        price=price,
        cost=amount * price,
        fee_cost=Decimal(str(raw.get("commission") or "0")),
        fee_currency=market.quote,
        timestamp=parse_time_ms(str(raw["trade_time"])),
    )


def parse_candle(raw: dict[str, Any]) -> tuple[int, Decimal]:
    """A ``/market/products/{id}/candles`` element as ``(open_time_ms, close)``."""
    return int(raw["start"]) * 1000, Decimal(str(raw["close"]))


def parse_product(raw: dict[str, Any]) -> Market | None:
    """A spot product of ``/products`` as a market (``None`` for other product types)."""
    if str(raw.get("product_type", "SPOT")).upper() != "SPOT":
        return None
    base, quote = raw.get("base_currency_id"), raw.get("quote_currency_id")
    if not base or not quote:
        return None
    return Market(f"{base}/{quote}", str(raw["product_id"]), str(base), str(quote), "spot")


def coinbase_error_code(text: str) -> str | None:
    """The ``error`` of a Coinbase error body quoted in ``text`` (ccxt quotes the body), if any."""
    match = _ERROR_CODE.search(text)
    return match.group(1) if match else None


# -- cursor and pacing ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CoinbaseCursor:
    """Where the fills history continues.

    ``lower_ms``: the current sweep reads fills sequenced at or after ``lower_ms - OVERLAP_MS``.
    ``page``: Coinbase's cursor inside the sweep (``None`` at its start).
    ``newest_ms``: newest trade time seen so far in the sweep.
    """

    lower_ms: int
    page: str | None = None
    newest_ms: int | None = None


class _Pacer:
    """Requests per second for one host and limit, with a small burst and a shared penalty pause."""

    def __init__(self, per_second: float, burst: int = 1) -> None:
        self._interval = 1.0 / (per_second * HEADROOM)
        self._tolerance = burst * self._interval
        self._tat = time.monotonic()
        self._paused_until = 0.0

    async def spend(self) -> None:
        now = time.monotonic()
        self._tat = max(self._tat, now) + self._interval
        allowed = max(now, self._tat - self._tolerance, self._paused_until)
        while (delay := max(allowed, self._paused_until) - time.monotonic()) > 0:
            await asyncio.sleep(delay)

    def penalize(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)


_PACERS: dict[str, _Pacer] = {}


def _pacer(key: str, per_second: float) -> _Pacer:
    pacer = _PACERS.get(key)
    if pacer is None:
        pacer = _PACERS[key] = _Pacer(per_second)
    return pacer


class _StatusRecordingCoinbase(ccxt_async.coinbase):  # type: ignore[misc]
    """ccxt's class, remembering the HTTP status of the last answer (ccxt reports Coinbase's
    upper-case error codes as a generic ``ExchangeError``, so the status decides)."""

    last_http_status: int | None = None

    def on_rest_response(self, code: Any, reason: Any, url: Any, method: Any, *args: Any) -> Any:
        self.last_http_status = int(code) if code is not None else None
        return super().on_rest_response(code, reason, url, method, *args)


# -- connector ----------------------------------------------------------------------------


class CoinbaseAdvanced:
    """Coinbase Advanced Trade spot connector; without credentials it serves public market data only."""

    exchange_id = "coinbase"

    def __init__(
        self,
        credentials: ExchangeCredentials | None,
        origin_override: str | None = None,
        clock_ms: Clock = now_ms,
    ) -> None:
        config: dict[str, Any] = {"enableRateLimit": False, "timeout": 30_000}
        if credentials is not None:
            config["apiKey"] = credentials.api_key
            config["secret"] = credentials.api_secret
        self._ccxt = _StatusRecordingCoinbase(config)
        if origin_override:
            override_ccxt_urls(self._ccxt, origin_override)
        self.data_source = origin_of(self._ccxt.urls["api"]["rest"])
        self._public = _pacer(f"{self.data_source} public", PUBLIC_PER_SECOND)
        key_tag = hashlib.sha256(credentials.api_key.encode()).hexdigest()[:16] if credentials else "none"
        self._private = _pacer(f"{self.data_source} private {key_tag}", PRIVATE_PER_SECOND)
        self._clock_ms = clock_ms
        self._markets: dict[str, Market] | None = None
        self._by_id: dict[str, Market] = {}

    async def close(self) -> None:
        """Close ccxt's HTTP session."""
        await self._ccxt.close()

    async def _call(
        self, method: Callable[[dict[str, Any]], Awaitable[Any]], params: dict[str, Any], private: bool
    ) -> dict[str, Any]:
        """Run one ccxt raw-API call within its pacing, translating errors; the answer must be an object."""
        pacer = self._private if private else self._public
        await pacer.spend()
        self._ccxt.last_http_status = None
        try:
            answer = await method(params)
        except ccxt_errors.BaseError as exc:
            error = self._classify(exc)
            if isinstance(error, RateLimited):
                pacer.penalize(error.retry_after_s)
            raise error from None
        if not isinstance(answer, dict):
            raise ExchangeUnavailable("Coinbase sent a malformed answer")
        return answer

    def _classify(self, exc: ccxt_errors.BaseError) -> ExchangeError:
        status = self._ccxt.last_http_status
        code = coinbase_error_code(str(exc))
        if status == 429 or code in _RATE_CODES or isinstance(exc, ccxt_errors.RateLimitExceeded):
            return RateLimited("Coinbase asked to slow down", self._retry_after())
        if status in (401, 403) or code in _AUTH_CODES:
            return CredentialsRejected("Coinbase refused the API key")
        if isinstance(exc, ccxt_errors.AuthenticationError | ccxt_errors.PermissionDenied):
            return CredentialsRejected("Coinbase refused the API key")
        if (status is not None and status >= 500) or isinstance(exc, ccxt_errors.NetworkError):
            return ExchangeUnavailable("Coinbase could not be reached or failed transiently")
        if exc.__cause__ is not None and not isinstance(exc.__cause__, ccxt_errors.BaseError):
            return ExchangeUnavailable("the connection to Coinbase failed")  # reset mid-answer
        return ExchangeRequestError(f"Coinbase rejected a request (status {status}, error {code})")

    def _retry_after(self) -> float:
        headers = self._ccxt.last_response_headers or {}
        for name, value in headers.items():
            if name.lower() == "retry-after":
                try:
                    return max(1.0, float(value))
                except ValueError:
                    break
        return 1.0  # Coinbase's limits are per second

    async def validate(self) -> None:
        """Read the accounts once, then refuse keys that can transfer funds out."""
        await self._call(self._ccxt.v3PrivateGetBrokerageAccounts, {"limit": 1}, private=True)
        permissions = await self._call(self._ccxt.v3PrivateGetBrokerageKeyPermissions, {}, private=True)
        if permissions.get("can_transfer") is not False:
            raise KeyNotReadOnly("the key is allowed to transfer funds")

    async def markets(self) -> dict[str, Market]:
        """Spot products from the public product list."""
        if self._markets is None:
            answer = await self._call(self._ccxt.v3PublicGetBrokerageMarketProducts, {}, private=False)
            markets: dict[str, Market] = {}
            for raw in answer.get("products") or []:
                market = parse_product(raw)
                if market is not None:
                    markets[market.symbol] = market
            self._markets = markets
            self._by_id = {m.id: m for m in markets.values()}
        return self._markets

    async def discover_symbols(self, hints: Sequence[str]) -> list[str]:
        """Always ``["*"]``: one fills listing covers every product (module docstring)."""
        return [ALL_FILLS]

    async def fetch_trades(self, symbol: str, cursor: object | None, since_ms: int) -> TradePage:
        """One page of the current sweep over all fills (module docstring)."""
        if symbol != ALL_FILLS:
            raise ExchangeRequestError("Coinbase fills are read for all products at once")
        await self.markets()
        state = cursor if isinstance(cursor, CoinbaseCursor) else CoinbaseCursor(lower_ms=since_ms)
        params: dict[str, Any] = {
            "limit": PAGE_LIMIT,
            "start_sequence_timestamp": format_time(max(0, max(state.lower_ms, since_ms) - OVERLAP_MS)),
        }
        if state.page:
            params["cursor"] = state.page
        answer = await self._call(self._ccxt.v3PrivateGetBrokerageOrdersHistoricalFills, params, private=True)
        raw_fills = answer.get("fills")
        if not isinstance(raw_fills, list):
            raise ExchangeUnavailable("Coinbase sent a malformed answer")
        try:
            parsed = [parse_fill(r, market_of_product(str(r["product_id"]), self._by_id)) for r in raw_fills]
        except (KeyError, TypeError, ValueError, ArithmeticError):
            raise ExchangeUnavailable("Coinbase sent a malformed fill") from None
        newest = max(
            [t.timestamp for t in parsed] + ([state.newest_ms] if state.newest_ms is not None else []),
            default=None,
        )
        trades = [t for t in parsed if t.timestamp >= since_ms]
        next_page = answer.get("cursor") or None
        if next_page and raw_fills:
            return TradePage(trades, CoinbaseCursor(state.lower_ms, str(next_page), newest), False)
        lower = state.lower_ms if newest is None else max(state.lower_ms, newest)
        return TradePage(trades, CoinbaseCursor(lower), True)

    async def fetch_candles(self, symbol: str, start_ms: int, end_ms: int) -> Candles:
        """Closed 1m candles with open time in ``[start_ms, end_ms]``, 350 a call."""
        market = (await self.markets())[symbol]
        last_closed_open = (self._clock_ms() // MINUTE_MS) * MINUTE_MS - MINUTE_MS
        end_ms = min(end_ms, last_closed_open)
        closes: dict[int, Decimal] = {}
        cursor = -(-start_ms // MINUTE_MS) * MINUTE_MS
        while cursor <= end_ms:
            window_end = min(end_ms, cursor + (MAX_CANDLES - 1) * MINUTE_MS)
            params = {
                "product_id": market.id,
                "granularity": "ONE_MINUTE",
                "start": str(cursor // 1000),
                "end": str(window_end // 1000 + 59),  # open times in [start, end], end exclusive or not
            }
            answer = await self._call(
                self._ccxt.v3PublicGetBrokerageMarketProductsProductIdCandles, params, private=False
            )
            try:
                for raw in answer.get("candles") or []:
                    open_ms, close = parse_candle(raw)
                    if start_ms <= open_ms <= end_ms:
                        closes[open_ms] = close
            except (KeyError, TypeError, ValueError, ArithmeticError):
                raise ExchangeUnavailable("Coinbase sent a malformed candle") from None
            cursor = window_end + MINUTE_MS
        return Candles(sorted(closes.items()), start_ms, end_ms)
