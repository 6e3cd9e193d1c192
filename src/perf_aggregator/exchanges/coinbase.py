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
than ``since`` (by trade time) are left out. A page holding a fill sequenced
before the sweep's lower bound does not answer the request (a stale or cached
page): it is refused as a transient failure and asked again.

Rate limits (EXCHANGES.md): private endpoints about 30 requests per second per
key, public ones about 10 per second per IP. Private calls therefore spend from a
budget of their key (scoped by a digest of the key name, never the name itself),
public calls from the budget of the origin, shared by every session and by the
market-data connector (:mod:`perf_aggregator.exchanges.budget`, per-second
windows). A 429 pauses the budget that was told.

Clock. A JWT is refused when its ``nbf`` is ahead of Coinbase's clock, so tokens are
signed one second in the past, on Coinbase's time as last measured (against the time its
answer arrived, so that the measure is never ahead of Coinbase): a refused key
first re-reads ``/brokerage/time`` and, when the clocks disagree, tries again (at
most twice, a time read being as fallible as any; as the Binance connector re-syncs
on ``-1021``).

Candles count as fetched only over the span the answers evidence (first to last
candle received, windows joined without a gap), and only up to the last minute
closed by our clock less :data:`CLOSE_MARGIN_MS`, so that an exchange clock a
little behind ours cannot hand us a candle that is still open.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async
from ccxt.base import errors as ccxt_errors

from perf_aggregator.clock import Clock, now_ms
from perf_aggregator.exchanges.base import Candles, Market, TradePage
from perf_aggregator.exchanges.budget import RequestBudget, budget_for
from perf_aggregator.exchanges.endpoints import origin_of, override_ccxt_urls
from perf_aggregator.exchanges.errors import (
    MALFORMED,
    MALFORMED_KEY_MESSAGE,
    CredentialsRejected,
    ExchangeError,
    ExchangeRequestError,
    ExchangeUnavailable,
    KeyNotReadOnly,
    RateLimited,
    raised_while_signing,
)
from perf_aggregator.ledger.trades import CONTEXT, Trade, exchange_decimal
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
CLOSE_MARGIN_MS = 5_000
"""How long after a minute ends its candle is taken as closed (clock skew allowance)."""
SEQUENCE_SLACK_MS = 1
"""Tolerance when comparing sequence times at millisecond resolution."""
JWT_BACKDATE_MS = 1_000
"""How far in the past a JWT's ``nbf`` is put (clock jitter between us and Coinbase)."""
RESYNC_THRESHOLD_MS = 500
"""A change of the measured clock offset that makes a refused key worth another try."""
CLOCK_RESYNCS = 2
"""Clock measurements one refused call may take."""
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

    With ``size_in_quote`` the size is in quote units: amount = size / price, to the 60 digits of
    :data:`CONTEXT` whatever the caller's context (the default's 28 would do for METRICS.md; a
    context without rounding would never end). ``commission`` is in the quote currency. Decimal
    texts are read by :data:`~perf_aggregator.ledger.trades.exchange_decimal`.
    """
    price = exchange_decimal(str(raw["price"]))
    size = exchange_decimal(str(raw["size"]))
    if raw.get("size_in_quote") is True:
        amount = CONTEXT.divide(size, price)
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
        fee_cost=exchange_decimal(str(raw.get("commission") or "0")),
        fee_currency=market.quote,
        timestamp=parse_time_ms(str(raw["trade_time"])),
    )


def parse_candle(raw: dict[str, Any]) -> tuple[int, Decimal]:
    """A ``/market/products/{id}/candles`` element as ``(open_time_ms, close)``."""
    return int(raw["start"]) * 1000, exchange_decimal(str(raw["close"]))


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


class _StatusRecordingCoinbase(ccxt_async.coinbase):  # type: ignore[misc]
    """ccxt's class, remembering the HTTP status of the last answer (ccxt reports Coinbase's
    upper-case error codes as a generic ``ExchangeError``, so the status decides), and signing
    JWTs on Coinbase's clock (module docstring)."""

    last_http_status: int | None = None
    clock_offset_ms = 0
    """Coinbase's clock minus ours, as last measured."""

    def seconds(self) -> int:
        """The JWT ``nbf``/``iat``: Coinbase's time, a little in the past."""
        return int(self.milliseconds() + self.clock_offset_ms - JWT_BACKDATE_MS) // 1000

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
        self._public = budget_for(f"{self.data_source} public", PUBLIC_PER_SECOND, window_s=1)
        key_tag = hashlib.sha256(credentials.api_key.encode()).hexdigest()[:16] if credentials else "none"
        self._private = budget_for(f"{self.data_source} private {key_tag}", PRIVATE_PER_SECOND, window_s=1)
        self._clock_ms = clock_ms
        self._markets: dict[str, Market] | None = None
        self._by_id: dict[str, Market] = {}

    async def close(self) -> None:
        """Close ccxt's HTTP session."""
        await self._ccxt.close()

    async def _call(
        self, method: Callable[[dict[str, Any]], Awaitable[Any]], params: dict[str, Any], private: bool
    ) -> dict[str, Any]:
        """Run one ccxt raw-API call within its budget, translating errors; the answer must be an object.

        A private call refused as unauthorized is tried again if Coinbase's clock turns out to
        differ from the one the token was signed on.
        """
        budget: RequestBudget = self._private if private else self._public
        resyncs = CLOCK_RESYNCS
        while True:
            await budget.spend(1)
            self._ccxt.last_http_status = None
            try:
                answer = await method(params)
            except ccxt_errors.BaseError as exc:
                error = self._classify(exc)  # kept apart from ccxt's error, which quotes the request
            except (TypeError, ValueError) as exc:  # ccxt could not sign with the secret (no EC key)
                if raised_while_signing(exc):
                    raise CredentialsRejected(MALFORMED_KEY_MESSAGE) from None
                raise
            else:
                if not isinstance(answer, dict):
                    raise ExchangeUnavailable("Coinbase sent a malformed answer")
                return answer
            if isinstance(error, RateLimited):
                budget.penalize(error.retry_after_s)
            if isinstance(error, CredentialsRejected) and private and resyncs:
                resyncs -= 1
                if await self._resync_clock():
                    continue
            raise error

    async def _resync_clock(self) -> bool:
        """Measure Coinbase's clock offset; whether it moved enough to explain a refused token."""
        answer = await self._call(self._ccxt.v3PublicGetBrokerageTime, {}, private=False)
        after = now_ms()
        try:
            # Coinbase read its clock before we got the answer: against the answer's arrival, the
            # offset can only come out low, and a token signed on it is never ahead of Coinbase
            # (against the round trip's midpoint, a slow way in made it up to half the trip high).
            offset = int(answer["epochMillis"]) - after
        except MALFORMED:
            raise ExchangeUnavailable("Coinbase sent a malformed answer") from None
        moved = abs(offset - self._ccxt.clock_offset_ms) >= RESYNC_THRESHOLD_MS
        self._ccxt.clock_offset_ms = offset
        return moved

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
        start_ms = max(0, max(state.lower_ms, since_ms) - OVERLAP_MS)
        params: dict[str, Any] = {"limit": PAGE_LIMIT, "start_sequence_timestamp": format_time(start_ms)}
        if state.page:
            params["cursor"] = state.page
        answer = await self._call(self._ccxt.v3PrivateGetBrokerageOrdersHistoricalFills, params, private=True)
        raw_fills = answer.get("fills")
        if not isinstance(raw_fills, list):
            raise ExchangeUnavailable("Coinbase sent a malformed answer")
        try:
            parsed = [parse_fill(r, market_of_product(str(r["product_id"]), self._by_id)) for r in raw_fills]
            sequenced = [parse_time_ms(str(r["sequence_timestamp"])) for r in raw_fills]
        except MALFORMED:
            raise ExchangeUnavailable("Coinbase sent a malformed fill") from None
        if any(t < start_ms - SEQUENCE_SLACK_MS for t in sequenced):
            raise ExchangeUnavailable("Coinbase answered with a page that does not match the request")
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
        """Closed 1m candles with open time in ``[start_ms, end_ms]``, 350 a call; covered only
        as far as the answers evidence (module docstring)."""
        market = (await self.markets())[symbol]
        last_closed_open = ((self._clock_ms() - CLOSE_MARGIN_MS) // MINUTE_MS) * MINUTE_MS - MINUTE_MS
        end_ms = min(end_ms, last_closed_open)
        closes: list[tuple[int, Decimal]] = []
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
                page = sorted(parse_candle(raw) for raw in answer.get("candles") or [])
            except MALFORMED:
                raise ExchangeUnavailable("Coinbase sent a malformed candle") from None
            if any(not cursor <= open_ms <= window_end for open_ms, _ in page):
                raise ExchangeUnavailable("Coinbase answered with candles that do not match the request")
            if not page or (closes and page[0][0] != cursor):
                break  # nothing, or a gap, evidenced: ask again later rather than assume
            closes.extend(page)
            if page[-1][0] != window_end:
                break
            cursor = window_end + MINUTE_MS
        if not closes:
            return Candles([], start_ms, start_ms - 1)  # an empty span: nothing covered
        return Candles(closes, closes[0][0], closes[-1][0])
