"""Binance spot: exact parsing of raw payloads, and the connector (transport by ccxt).

History strategy (``myTrades`` needs a symbol and costs 20 weight a call):
first the most recent page of each symbol (1 call); when it does not reach back
to ``since``, scan 24-hour windows forward from ``since`` until the first trade,
then walk forward by ``fromId`` (1000 trades a call). Polling continues with
``fromId`` = the last trade id seen, not the next one: a self-trade is two records
with one id, and a page may end between them (the ledger drops the repeat).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async
from ccxt.base import errors as ccxt_errors

from perf_aggregator.clock import Clock, now_ms
from perf_aggregator.exchanges.base import Candles, Market, TradePage
from perf_aggregator.exchanges.budget import budget_for
from perf_aggregator.exchanges.endpoints import origin_of, override_ccxt_urls
from perf_aggregator.exchanges.errors import (
    CredentialsRejected,
    ExchangeRequestError,
    ExchangeUnavailable,
    KeyNotReadOnly,
    RateLimited,
)
from perf_aggregator.ledger.prices import STABLECOINS
from perf_aggregator.ledger.trades import Trade
from perf_aggregator.tee.credentials import ExchangeCredentials

PUBLIC_ORIGIN = "https://api.binance.com"
WEIGHT_LIMIT_PER_MINUTE = 6000
WEIGHTS = {"account": 20, "apiRestrictions": 1, "exchangeInfo": 20, "myTrades": 20, "klines": 2, "time": 1}
"""Request weight of each endpoint (EXCHANGES.md); apiRestrictions counts on /sapi's own,
larger budget at Binance but is charged here too, to stay on the safe side."""
REJECTED_KEY_CODES = frozenset({-2014, -2015, -1022})
TOO_MANY_REQUESTS = -1003
SERVER_SIDE_CODES = frozenset({-1000, -1001, -1006, -1007, -1008})
"""Unknown error, internal error/disconnected, unexpected response, timeout, server busy."""
PAGE_LIMIT = 1000
WINDOW_MS = 24 * 3600 * 1000
MINUTE_MS = 60_000
_ERROR_CODE = re.compile(r'"code"\s*:\s*(-?\d+)')


def parse_trade(raw: dict[str, Any], market: Market) -> Trade:
    """A ``GET /api/v3/myTrades`` element as a normalized trade (exact decimals)."""
    amount = Decimal(raw["qty"])
    price = Decimal(raw["price"])
    return Trade(
        id=str(raw["id"]),
        order_id=str(raw["orderId"]),
        symbol=market.symbol,
        base=market.base,
        quote=market.quote,
        market_type="spot",
        side="buy" if raw["isBuyer"] else "sell",
        amount=amount,
        price=price,
        cost=amount * price,
        fee_cost=Decimal(raw["commission"]),
        fee_currency=raw["commissionAsset"],
        timestamp=int(raw["time"]),
    )


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
    return int(raw[0]), Decimal(raw[4])


@dataclass(frozen=True, slots=True)
class BinanceCursor:
    """Where a symbol's history continues.

    ``from_id`` set: walk forward from that trade id. ``scan_from_ms`` set: scan
    24-hour windows from there (until ``stop_id``, the oldest trade of the most
    recent page). Neither: read the most recent page.
    """

    from_id: int | None = None
    scan_from_ms: int | None = None
    stop_id: int | None = None


class BinanceSpot:
    """Binance spot connector; without credentials it serves public market data only."""

    exchange_id = "binance"
    window_ms = WINDOW_MS
    """Longest ``startTime``..``endTime`` span of a trades request (24 hours on spot)."""

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
        self._ccxt = ccxt_async.binance(config)
        if origin_override:
            override_ccxt_urls(self._ccxt, origin_override)
        self.data_source = origin_of(self._ccxt.urls["api"]["public"])
        self._budget = budget_for(f"{self.data_source} spot", WEIGHT_LIMIT_PER_MINUTE)
        self._clock_ms = clock_ms
        self._markets: dict[str, Market] | None = None
        self._by_id: dict[str, Market] = {}

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
                await self._budget.spend(WEIGHTS["time"])
                await self._translated(self._ccxt.load_time_difference())  # the offset ccxt's nonce uses
                resynced = True
                continue
            except ccxt_errors.BaseError as exc:
                raise self._failure(exc) from None
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
        """Read the account once, then refuse keys that can withdraw."""
        await self._call(self._ccxt.privateGetAccount, {}, WEIGHTS["account"])
        restrictions = await self._call(
            self._ccxt.sapiGetAccountApiRestrictions, {}, WEIGHTS["apiRestrictions"]
        )
        if restrictions.get("enableWithdrawals"):
            raise KeyNotReadOnly("the key is allowed to withdraw funds")

    async def markets(self) -> dict[str, Market]:
        """Spot markets from ``exchangeInfo`` (all statuses: delisted markets keep history)."""
        if self._markets is None:
            info = await self._call(self._ccxt.publicGetExchangeInfo, {}, WEIGHTS["exchangeInfo"])
            declared = declared_weight_limit(info)
            if declared is not None:
                self._budget.set_limit(declared)
            markets: dict[str, Market] = {}
            for raw in info["symbols"]:
                base = self._ccxt.safe_currency_code(raw["baseAsset"])
                quote = self._ccxt.safe_currency_code(raw["quoteAsset"])
                market = Market(f"{base}/{quote}", raw["symbol"], base, quote, "spot")
                markets[market.symbol] = market
            self._markets = markets
            self._by_id = {m.id: m for m in markets.values()}
        return self._markets

    async def discover_symbols(self, hints: Sequence[str]) -> list[str]:
        """Markets whose base asset is held and whose quote is held or a USD stablecoin, plus hints."""
        markets = await self.markets()
        account = await self._call(
            self._ccxt.privateGetAccount, {"omitZeroBalances": "true"}, WEIGHTS["account"]
        )
        held = {
            self._ccxt.safe_currency_code(b["asset"])
            for b in account.get("balances", [])
            if Decimal(b["free"]) + Decimal(b["locked"]) > 0
        }
        found = {
            m.symbol
            for m in markets.values()
            if m.base in held and (m.quote in held or m.quote in STABLECOINS)
        }
        found.update(h for h in hints if h in markets)
        return sorted(found)

    async def fetch_trades(self, symbol: str, cursor: object | None, since_ms: int) -> TradePage:
        """One ``myTrades`` call following the strategy in the module docstring."""
        market = (await self.markets())[symbol]
        state = cursor if isinstance(cursor, BinanceCursor) else BinanceCursor()
        params: dict[str, Any] = {"symbol": market.id, "limit": PAGE_LIMIT}
        if state.from_id is not None:
            params["fromId"] = state.from_id
        elif state.scan_from_ms is not None:
            params["startTime"] = state.scan_from_ms
            params["endTime"] = state.scan_from_ms + WINDOW_MS - 1
        raw: list[dict[str, Any]] = await self._call(
            self._ccxt.privateGetMyTrades, params, WEIGHTS["myTrades"], list
        )
        try:
            if not answers_trades_request(params, raw):
                raise ValueError("page does not answer the request")
            trades = [parse_trade(r, market) for r in raw if int(r["time"]) >= since_ms]
        except (KeyError, TypeError, ValueError, ArithmeticError):
            # A stale, overlapping or garbled page: retry later rather than move the cursor.
            raise ExchangeUnavailable(
                "Binance answered with a page that does not match the request"
            ) from None
        return TradePage(trades, *self._next(state, raw, since_ms))

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
            next_from = state.scan_from_ms + self.window_ms
            if next_from > self._clock_ms():
                # Trades seen in the latest page vanished from every window: resume at it.
                return BinanceCursor(from_id=state.stop_id), state.stop_id is None
            return BinanceCursor(scan_from_ms=next_from, stop_id=state.stop_id), False
        if not raw:
            return state, True
        oldest = raw[0]
        if len(raw) < PAGE_LIMIT or int(oldest["time"]) < since_ms:
            return BinanceCursor(from_id=int(raw[-1]["id"])), True
        return BinanceCursor(scan_from_ms=since_ms, stop_id=int(oldest["id"])), False

    async def fetch_candles(self, symbol: str, start_ms: int, end_ms: int) -> Candles:
        """Closed 1m klines with open time in ``[start_ms, end_ms]``, 1000 a call.

        Only the span the answers evidence counts as covered (first to last candle received;
        nothing for an empty answer): a stale, partial or empty page must never mark minutes
        as "no candle there" when they were simply not in it. A range that truly has no
        candle is then asked again on later polls (2 weight each), and its trades stay unpriced.
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
            raw = await self._call(self._ccxt.publicGetKlines, params, WEIGHTS["klines"], list)
            page = [parse_kline(k) for k in raw]
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
