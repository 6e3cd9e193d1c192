"""Binance spot: exact parsing of raw payloads, and the connector (transport by ccxt).

The connector's request handling, error classification by Binance codes, trade cursor,
markets, validation and candles serve every Binance REST API; what differs between
them (ccxt class and methods, weights, window length, parser) is a :class:`BinanceApi`
table. ``binance_usdm`` adds only what is futures-specific.

History strategy (``myTrades`` needs a symbol and costs 20 weight a call):
first the most recent page of each symbol (1 call); when it does not reach back
to ``since``, its trades are set aside (the walk re-reads them in order), and 24-hour
windows are scanned forward from ``since`` until the first trade (an empty window is read
twice before it is skipped, six times the one holding that page's oldest trade), then the
walk goes forward by ``fromId`` (1000 trades a call). Polling continues with ``fromId`` =
the last trade id seen, not the next one: a self-trade is two records with one id, and a
page may end between them (the ledger drops the repeat).

Symbol discovery reads the account (20 weight) at most every ``DISCOVERY_REFRESH_MS``
(10 minutes), the first time from the answer ``validate`` just read; in between, polls
reuse what was found. Discovery decides which markets are read, never from when (a
market found later is read from ``since``), so the delay costs no trade.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from operator import itemgetter
from typing import Any

import ccxt.async_support as ccxt_async
from ccxt.base import errors as ccxt_errors

from perf_aggregator.clock import Clock, now_ms
from perf_aggregator.exchanges.base import Candles, Market, TradePage
from perf_aggregator.exchanges.budget import budget_for
from perf_aggregator.exchanges.endpoints import origin_of, override_ccxt_urls
from perf_aggregator.exchanges.errors import (
    MALFORMED,
    MALFORMED_KEY_MESSAGE,
    CredentialsRejected,
    ExchangeRequestError,
    ExchangeUnavailable,
    KeyNotReadOnly,
    RateLimited,
    raised_while_signing,
)
from perf_aggregator.ledger.prices import STABLECOINS
from perf_aggregator.ledger.trades import Trade, exchange_decimal
from perf_aggregator.tee.credentials import ExchangeCredentials

PUBLIC_ORIGIN = "https://api.binance.com"
WEIGHT_LIMIT_PER_MINUTE = 6000
WEIGHTS = {"account": 20, "apiRestrictions": 1, "exchangeInfo": 20, "trades": 20, "klines": 2, "time": 1}
"""Request weight of each endpoint (EXCHANGES.md; ``trades`` is ``myTrades``); apiRestrictions
counts on /sapi's own, larger budget at Binance but is charged here too, to stay on the safe side."""
REJECTED_KEY_CODES = frozenset({-2014, -2015, -1022})
TOO_MANY_REQUESTS = -1003
SERVER_SIDE_CODES = frozenset({-1000, -1001, -1006, -1007, -1008})
"""Unknown error, internal error/disconnected, unexpected response, timeout, server busy."""
PAGE_LIMIT = 1000
WINDOW_MS = 24 * 3600 * 1000
MINUTE_MS = 60_000
DISCOVERY_REFRESH_MS = 10 * MINUTE_MS
"""How long symbols found from the account stay current before it is read again."""
EMPTY_READS = 2
"""How many empty answers skip a trades window (one could be a stale replay)."""
EMPTY_READS_KNOWN = 6
"""The same for the window holding a trade known to exist."""
_ERROR_CODE = re.compile(r'"code"\s*:\s*(-?\d+)')


_TRADE_FIELDS = itemgetter(
    "id", "orderId", "qty", "price", "commission", "commissionAsset", "time", "isBuyer"
)


def parse_trades(raw: Sequence[dict[str, Any]], market: Market) -> list[Trade]:
    """``GET /api/v3/myTrades`` elements as normalized trades (exact decimals), in page order.

    This runs for every fill fetched: the fields are taken in one call per element, and each
    trade is made as the tuple it is (``tuple.__new__``), without the Python-level ``__new__``
    that calling ``Trade`` runs. Decimal texts are read by :data:`exchange_decimal`.
    """
    symbol, base, quote = market.symbol, market.base, market.quote
    decimal = exchange_decimal
    return [
        tuple.__new__(
            Trade,
            (
                str(trade_id),
                str(order_id),
                symbol,
                base,
                quote,
                "spot",  # market_type
                "buy" if is_buyer else "sell",
                decimal(qty),  # amount
                decimal(price_text),  # price
                decimal(commission),  # fee_cost
                commission_asset,  # fee_currency
                int(time),  # timestamp
                None,  # exchange_realized_pnl
            ),
        )
        for trade_id, order_id, qty, price_text, commission, commission_asset, time, is_buyer in map(
            _TRADE_FIELDS, raw
        )
    ]


def parse_trade(raw: dict[str, Any], market: Market) -> Trade:
    """One ``GET /api/v3/myTrades`` element as a normalized trade (exact decimals)."""
    (trade,) = parse_trades([raw], market)
    return trade


def binance_error_code(text: str) -> int | None:
    """The ``code`` of a Binance error body quoted in ``text`` (ccxt quotes the body), if any."""
    match = _ERROR_CODE.search(text)
    return int(match.group(1)) if match else None


def declared_weight_limit(exchange_info: dict[str, Any]) -> int | None:
    """The ``REQUEST_WEIGHT`` per minute that ``exchangeInfo.rateLimits`` declares, if any."""
    for limit in exchange_info.get("rateLimits", []):
        if (
            limit.get("rateLimitType") == "REQUEST_WEIGHT"
            and limit.get("interval") == "MINUTE"
            and limit.get("intervalNum") == 1
        ):
            return int(limit["limit"])
    return None


def answers_trades_request(params: dict[str, Any], raw: list[dict[str, Any]]) -> bool:
    """Whether ``raw`` can be the ``myTrades`` answer to ``params``: the market asked for, ids
    ascending from ``fromId``, times inside the window asked for."""
    ids = [int(r["id"]) for r in raw]
    if any(r["symbol"] != params["symbol"] for r in raw) or ids != sorted(ids):
        return False
    if "fromId" in params and ids and ids[0] < params["fromId"]:
        return False
    if "startTime" in params:
        return all(params["startTime"] <= int(r["time"]) <= params["endTime"] for r in raw)
    return True


def parse_kline(raw: Sequence[Any]) -> tuple[int, Decimal]:
    """A ``GET /api/v3/klines`` element as ``(open_time_ms, close)``."""
    return int(raw[0]), exchange_decimal(raw[4])


@dataclass(frozen=True, slots=True)
class BinanceCursor:
    """Where a symbol's history continues.

    ``from_id`` set: walk forward from that trade id. ``scan_from_ms`` set: scan windows
    of ``BinanceApi.window_ms`` from there (until ``stop_id``, the oldest trade of the
    most recent page). Neither: read the most recent page. ``empty_reads``: how many times
    the window at ``scan_from_ms`` answered empty. ``known_ms``: the time of a trade known to
    exist (the oldest of the most recent page, or a futures symbol's first commission).
    """

    from_id: int | None = None
    scan_from_ms: int | None = None
    stop_id: int | None = None
    empty_reads: int = 0
    known_ms: int | None = None


@dataclass(frozen=True, slots=True)
class BinanceApi:
    """What differs between the Binance REST APIs one connector class reads."""

    ccxt_class: str
    """ccxt exchange class: ``binance``, ``binanceusdm``."""
    url_key: str
    """Key of ccxt's ``urls['api']`` whose origin is the data source."""
    family: str
    """Name of the API family in the budget key: Binance counts each family's weight apart."""
    weight_limit: int
    """Weight per minute until ``exchangeInfo`` declares the limit."""
    weights: Mapping[str, int]
    """Weight of each request: account, apiRestrictions, exchangeInfo, trades, klines, time."""
    # The ccxt raw-API method of each request, and the account request's parameters.
    account: str
    account_params: Mapping[str, str]
    exchange_info: str
    trades: str
    klines: str
    window_ms: int
    """Longest ``startTime``..``endTime`` span of a trades request."""
    parse_trades: Callable[[Sequence[dict[str, Any]], Market], list[Trade]]
    """Raw trades elements as normalized trades, in order."""


SPOT_API = BinanceApi(
    ccxt_class="binance",
    url_key="public",
    family="spot",
    weight_limit=WEIGHT_LIMIT_PER_MINUTE,
    weights=WEIGHTS,
    account="privateGetAccount",
    account_params={"omitZeroBalances": "true"},
    exchange_info="publicGetExchangeInfo",
    trades="privateGetMyTrades",
    klines="publicGetKlines",
    window_ms=WINDOW_MS,
    parse_trades=parse_trades,
)


class BinanceSpot:
    """Binance spot connector; without credentials it serves public market data only."""

    exchange_id = "binance"
    api = SPOT_API

    def __init__(
        self,
        credentials: ExchangeCredentials | None,
        origin_override: str | None = None,
        clock_ms: Clock = now_ms,
    ) -> None:
        # Pacing is the shared per-host budget's job, not ccxt's per-instance throttle.
        config: dict[str, Any] = {"enableRateLimit": False}
        if credentials is not None:
            config["apiKey"] = credentials.api_key
            config["secret"] = credentials.api_secret
        self._ccxt = getattr(ccxt_async, self.api.ccxt_class)(config)
        if origin_override:
            override_ccxt_urls(self._ccxt, origin_override)
        self.data_source = origin_of(self._ccxt.urls["api"][self.api.url_key])
        self._budget = budget_for(f"{self.data_source} {self.api.family}", self.api.weight_limit)
        self._clock_ms = clock_ms
        self._markets: dict[str, Market] | None = None
        self._by_id: dict[str, Market] = {}
        self._account: dict[str, Any] | None = None
        """The account ``validate`` read, until the first discovery uses it."""
        self._found: set[str] = set()
        self._found_at_ms: int | None = None

    async def close(self) -> None:
        """Close ccxt's HTTP session."""
        await self._ccxt.close()

    async def _call(
        self,
        method: Callable[[dict[str, Any]], Awaitable[Any]],
        params: dict[str, Any],
        weight: int,
        expect: type = dict,
    ) -> Any:
        """Run one ccxt raw-API call within the host's shared weight budget, translating errors.

        An answer that is not the JSON ``expect``-ed (a truncated or garbled body) is a
        transient failure, like a 5xx. A timestamp refused as outside the window (-1021: our
        clock and Binance's disagree) re-syncs ccxt's clock offset and is retried once.
        """
        resynced = False
        while True:
            await self._budget.spend(weight)
            try:
                answer = await method(params)
            except ccxt_errors.InvalidNonce:
                if resynced:
                    raise ExchangeUnavailable(
                        "Binance refuses our timestamps even after a clock re-sync"
                    ) from None
                await self._budget.spend(self.api.weights["time"])
                await self._translated(self._ccxt.load_time_difference())  # the offset ccxt's nonce uses
                resynced = True
                continue
            except ccxt_errors.BaseError as exc:
                raise self._failure(exc) from None
            except (TypeError, ValueError) as exc:  # ccxt could not sign with the secret (bad PEM)
                if raised_while_signing(exc):
                    raise CredentialsRejected(MALFORMED_KEY_MESSAGE) from None
                raise
            if not isinstance(answer, expect):
                raise ExchangeUnavailable("Binance answered with a malformed body")
            return answer

    async def _translated(self, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except ccxt_errors.BaseError as exc:
            raise self._failure(exc) from None

    def _failure(self, exc: ccxt_errors.BaseError) -> Exception:
        error = self._classify(exc)
        if isinstance(error, RateLimited):
            self._budget.penalize(error.retry_after_s)  # every session of this host pauses
        return error

    def _classify(self, exc: ccxt_errors.BaseError) -> Exception:
        # Binance's own error code decides first: ccxt reports -2015 as DDoSProtection once a
        # key has worked, which would make a key revoked mid-session look merely rate limited.
        code = binance_error_code(str(exc))
        if code in REJECTED_KEY_CODES:
            return CredentialsRejected("Binance refused the API key")
        if code == TOO_MANY_REQUESTS or isinstance(
            exc, ccxt_errors.DDoSProtection | ccxt_errors.RateLimitExceeded
        ):
            return RateLimited("Binance asked to slow down", self._retry_after())
        if isinstance(exc, ccxt_errors.AuthenticationError | ccxt_errors.PermissionDenied):
            return CredentialsRejected("Binance refused the API key")
        transport = isinstance(
            exc, ccxt_errors.NetworkError | ccxt_errors.InvalidNonce | ccxt_errors.BadResponse
        )
        # No Binance code at all: the transfer failed (cut-off body, reset), not our request.
        if transport or code is None or code in SERVER_SIDE_CODES:
            return ExchangeUnavailable("Binance could not be reached or failed transiently")
        return ExchangeRequestError(f"Binance rejected a request ({type(exc).__name__}, code {code})")

    def _retry_after(self) -> float:
        headers = self._ccxt.last_response_headers or {}
        for name, value in headers.items():
            if name.lower() == "retry-after":
                try:
                    return max(1.0, float(value))
                except ValueError:
                    break
        return 60.0

    async def validate(self) -> None:
        """Read the account once (kept for the first discovery), then refuse keys that can withdraw."""
        self._account = await self._read_account()
        restrictions = await self._call(
            self._ccxt.sapiGetAccountApiRestrictions, {}, self.api.weights["apiRestrictions"]
        )
        if restrictions.get("enableWithdrawals"):
            raise KeyNotReadOnly("the key is allowed to withdraw funds")

    async def _read_account(self) -> dict[str, Any]:
        account: dict[str, Any] = await self._call(
            getattr(self._ccxt, self.api.account), dict(self.api.account_params), self.api.weights["account"]
        )
        return account

    async def _take_account(self) -> dict[str, Any]:
        """The account ``validate`` read, the first time after it; a fresh read otherwise."""
        account, self._account = self._account, None
        return account if account is not None else await self._read_account()

    async def markets(self) -> dict[str, Market]:
        """Markets from ``exchangeInfo`` (all statuses: delisted markets keep history)."""
        if self._markets is None:
            info = await self._call(
                getattr(self._ccxt, self.api.exchange_info), {}, self.api.weights["exchangeInfo"]
            )
            declared = declared_weight_limit(info)
            if declared is not None:
                self._budget.set_limit(declared)
            markets: dict[str, Market] = {}
            for raw in info["symbols"]:
                market = self._market(raw)
                if market is not None:
                    markets[market.symbol] = market
            self._markets = markets
            self._by_id = {m.id: m for m in markets.values()}
        return self._markets

    def _market(self, raw: dict[str, Any]) -> Market | None:
        """The market an ``exchangeInfo`` symbol describes (``BTC/USDT``); None if it is not read."""
        base = self._ccxt.safe_currency_code(raw["baseAsset"])
        quote = self._ccxt.safe_currency_code(raw["quoteAsset"])
        return Market(f"{base}/{quote}", raw["symbol"], base, quote, "spot")

    async def discover_symbols(self, hints: Sequence[str]) -> list[str]:
        """The symbols the account shows (looked up again at most every ``DISCOVERY_REFRESH_MS``;
        once found, a symbol stays listed), plus the hints that name a market."""
        markets = await self.markets()
        now = self._clock_ms()
        if self._found_at_ms is None or now - self._found_at_ms >= DISCOVERY_REFRESH_MS:
            self._found |= await self._discover(markets)
            self._found_at_ms = now
        return sorted(self._found.union(h for h in hints if h in markets))

    async def _discover(self, markets: dict[str, Market]) -> set[str]:
        """Markets whose base asset is held and whose quote is held or a USD stablecoin."""
        account = await self._take_account()
        held = {
            self._ccxt.safe_currency_code(b["asset"])
            for b in account.get("balances", [])
            if Decimal(b["free"]) + Decimal(b["locked"]) > 0
        }
        return {
            m.symbol
            for m in markets.values()
            if m.base in held and (m.quote in held or m.quote in STABLECOINS)
        }

    def _first_cursor(self, market: Market, since_ms: int) -> BinanceCursor:
        """Where a symbol's history starts: the most recent page."""
        return BinanceCursor()

    async def fetch_trades(self, symbol: str, cursor: object | None, since_ms: int) -> TradePage:
        """One trades call following the strategy in the module docstring."""
        api = self.api
        market = (await self.markets())[symbol]
        state = cursor if isinstance(cursor, BinanceCursor) else self._first_cursor(market, since_ms)
        params: dict[str, Any] = {"symbol": market.id, "limit": PAGE_LIMIT}
        if state.from_id is not None:
            params["fromId"] = state.from_id
        elif state.scan_from_ms is not None:
            params["startTime"] = state.scan_from_ms
            params["endTime"] = state.scan_from_ms + api.window_ms - 1
        raw: list[dict[str, Any]] = await self._call(
            getattr(self._ccxt, api.trades), params, api.weights["trades"], list
        )
        try:
            if not answers_trades_request(params, raw):
                raise ValueError("page does not answer the request")
            trades = [t for t in api.parse_trades(raw, market) if t.timestamp >= since_ms]
        except MALFORMED:
            # A stale, overlapping or garbled page: retry later rather than move the cursor.
            raise ExchangeUnavailable(
                "Binance answered with a page that does not match the request"
            ) from None
        following, done = self._next(state, raw, since_ms)
        if following.scan_from_ms is not None and state.scan_from_ms is None:
            # The latest page does not reach back to ``since``: the forward walk will read its
            # trades again, in order, after the older history (handing them over now would make
            # every older trade arrive late and the ledger replay the whole symbol).
            trades = []
        return TradePage(trades, following, done)

    def _next(
        self, state: BinanceCursor, raw: list[dict[str, Any]], since_ms: int
    ) -> tuple[BinanceCursor, bool]:
        if state.from_id is not None:
            if not raw:
                return state, True
            return BinanceCursor(from_id=int(raw[-1]["id"])), len(raw) < PAGE_LIMIT
        if state.scan_from_ms is not None:
            if raw:
                return BinanceCursor(from_id=int(raw[0]["id"])), False
            next_from = state.scan_from_ms + self.api.window_ms
            # An empty window is read again before it is skipped: a stale answer replaying an
            # earlier empty window cannot be told from a truly empty one, and skipping a window
            # that holds trades would lose them for good. The window holding a known trade is
            # read more times (bounded: an exchange whose records disagree must not stall).
            holds_known = state.known_ms is not None and state.scan_from_ms <= state.known_ms < next_from
            if state.empty_reads + 1 < (EMPTY_READS_KNOWN if holds_known else EMPTY_READS):
                return replace(state, empty_reads=state.empty_reads + 1), False
            if next_from > self._clock_ms():
                # Trades seen in the latest page vanished from every window: resume at it.
                return BinanceCursor(from_id=state.stop_id), state.stop_id is None
            return replace(state, scan_from_ms=next_from, empty_reads=0), False
        if not raw:
            return state, True
        oldest = raw[0]
        if len(raw) < PAGE_LIMIT or int(oldest["time"]) < since_ms:
            return BinanceCursor(from_id=int(raw[-1]["id"])), True
        stop_id, known_ms = int(oldest["id"]), int(oldest["time"])
        return BinanceCursor(scan_from_ms=since_ms, stop_id=stop_id, known_ms=known_ms), False

    async def fetch_candles(self, symbol: str, start_ms: int, end_ms: int) -> Candles:
        """Closed 1m klines with open time in ``[start_ms, end_ms]``, 1000 a call.

        Only the span the answers evidence counts as covered (first to last candle received;
        nothing for an empty answer): a stale, partial or empty page must never mark minutes
        as "no candle there" when they were simply not in it. A range that truly has no
        candle is then asked again on later polls (a klines call each), and its trades stay unpriced.
        """
        market = (await self.markets())[symbol]
        last_closed_open = (self._clock_ms() // MINUTE_MS) * MINUTE_MS - MINUTE_MS
        end_ms = min(end_ms, last_closed_open)
        closes: list[tuple[int, Decimal]] = []
        cursor = start_ms
        while cursor <= end_ms:
            params = {
                "symbol": market.id,
                "interval": "1m",
                "startTime": cursor,
                "endTime": end_ms,
                "limit": PAGE_LIMIT,
            }
            raw = await self._call(
                getattr(self._ccxt, self.api.klines), params, self.api.weights["klines"], list
            )
            try:
                page = [parse_kline(k) for k in raw]
            except MALFORMED:
                raise ExchangeUnavailable("Binance answered with candles it could not have sent") from None
            opens = [open_ms for open_ms, _ in page]
            contiguous = not closes or not opens or opens[0] == cursor
            if (
                opens != sorted(opens)
                or not contiguous
                or (opens and not cursor <= opens[0] <= opens[-1] <= end_ms)
            ):
                raise ExchangeUnavailable("Binance answered with candles that do not match the request")
            closes.extend(page)
            if len(raw) < PAGE_LIMIT:
                break
            cursor = opens[-1] + MINUTE_MS
        if not closes:
            return Candles([], start_ms, start_ms - 1)  # an empty span: nothing covered
        return Candles(closes, closes[0][0], closes[-1][0])
