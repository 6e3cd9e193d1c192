"""Fallback connector: any ccxt exchange with ``fetchMyTrades``, read through ccxt's own parsing.

**Exact numbers.** The ccxt instance runs in string number mode (``number = str``): ccxt's
parsers keep the exchange's decimal text (or the shortest repr of a JSON number, which is
the text sent) and this module turns it into :class:`~decimal.Decimal`, never through a float.

**Paging.** Exchanges differ in which end of a range they return when it holds more than a
page (Binance the oldest trades, Kraken the newest), so a page is trusted only when it is
not full. Each call asks one *window* ``[start, end]`` (``until`` = ``end``, ``limit`` = the
page size ccxt declares, or :data:`FALLBACK_PAGE` when it declares none). A window answered
with fewer trades than the page is complete: its trades are returned and the next window
starts at ``end`` (that millisecond is read again; the ledger dedups by ``(symbol, id,
side)``). A full page is dropped and the same start is asked again with half the window.
A full page in a one-millisecond window is a millisecond holding a page of trades or more:
the page size is doubled up to :data:`MAX_PAGE`; if it is still full there, its trades are
kept and the walk moves on one millisecond (the rest of that millisecond cannot be asked
for; this is logged). Windows double again after each complete one, up to the exchange's
declared range limit (``untilDays``) or :data:`MAX_WINDOW_MS`. Once a window reaches the
present, the walk is done; the next one resumes at the last trade's timestamp, or
:data:`SETTLE_MS` before the present if that is later (trades published late by up to
that much are still read). The query itself starts one second early and the answer is
filtered to the window, for exchanges whose ``since`` is whole seconds and exclusive.

**Symbols.** Where ccxt says ``fetchMyTrades`` needs no symbol, one walk over the
pseudo-symbol :data:`ALL_PAIRS` reads every market. Otherwise: markets whose base currency
has a balance and whose quote is held or a USD stablecoin, plus the hints that name a market
(balances are read again at most every :data:`DISCOVERY_REFRESH_MS`; a found market stays).

**Candles** come from ``fetchOHLCV``; only closed candles count, and only the span the
answer evidences (first to last candle received) is covered. Without ``fetchOHLCV`` nothing
is ever covered: trades whose quote or fee currency is not USD stay unpriced.

**Limits.** One budget per origin, from ccxt's ``rateLimit`` (milliseconds between requests);
a unified call counts as one request. **Key permissions** cannot be checked generically:
:attr:`CcxtGeneric.warnings` says so.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
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
    RateLimited,
)
from perf_aggregator.ledger.prices import STABLECOINS
from perf_aggregator.ledger.trades import Side, Trade
from perf_aggregator.tee.credentials import ExchangeCredentials

log = logging.getLogger(__name__)

ALL_PAIRS = "*"
"""The pseudo-symbol under which every market's trades are read, where the exchange allows it."""
FALLBACK_PAGE = 50
MAX_PAGE = 1000
MINUTE_MS = 60_000
DAY_MS = 86_400_000
MAX_WINDOW_MS = 30 * DAY_MS
SETTLE_MS = MINUTE_MS
SINCE_SLACK_MS = 1000
DISCOVERY_REFRESH_MS = 10 * MINUTE_MS
RATE_LIMIT_PAUSE_S = 30.0
KEY_PERMISSIONS_WARNING = (
    "This exchange is read through a generic connector that cannot check whether this key can "
    "withdraw: make sure it cannot."
)


def has_my_trades(exchange_id: str) -> bool:
    """Whether ``exchange_id`` is a ccxt exchange with spot markets and ``fetchMyTrades``."""
    return exchange_id in ccxt_async.exchanges and _has_my_trades(exchange_id)


@cache
def _has_my_trades(exchange_id: str) -> bool:
    """Read from the class's description (cached: only ccxt's own ids reach here)."""
    has = getattr(ccxt_async, exchange_id)({}).has
    return bool(has.get("fetchMyTrades")) and has.get("spot") is not False


def decimal(value: object) -> Decimal:
    """An exact decimal from ccxt's string number mode (a float is refused, never rounded)."""
    if isinstance(value, float | bool) or value is None:
        raise TypeError("not an exact decimal")
    return Decimal(str(value))


@dataclass(frozen=True, slots=True)
class CcxtCursor:
    """Where the walk continues (module docstring): the next window starts at ``since_ms``
    (inclusive), is ``window_ms`` wide and asks for ``limit`` trades."""

    since_ms: int
    window_ms: int
    limit: int


class CcxtGeneric:
    """Spot account (or, without credentials, public market data) of any ccxt exchange."""

    def __init__(
        self,
        exchange_id: str,
        credentials: ExchangeCredentials | None,
        origin_override: str | None = None,
        clock_ms: Clock = now_ms,
        requests_per_s: float | None = None,
    ) -> None:
        """``requests_per_s``: the origin's limit, from ccxt's ``rateLimit`` unless told; the
        first connector of an origin sets its budget."""
        self.exchange_id = exchange_id
        config: dict[str, Any] = {"enableRateLimit": False, "options": {"defaultType": "spot"}}
        if credentials is not None:
            config["apiKey"] = credentials.api_key
            config["secret"] = credentials.api_secret
            if credentials.passphrase is not None:
                config["password"] = credentials.passphrase
        self._ccxt = getattr(ccxt_async, exchange_id)(config)
        self._ccxt.number = str
        if origin_override:
            override_ccxt_urls(self._ccxt, origin_override)
        self.data_source = origin_of(self._ccxt.implode_hostname(_first_url(self._ccxt.urls["api"])))
        self._clock_ms = clock_ms
        self.warnings: tuple[str, ...] = (KEY_PERMISSIONS_WARNING,) if credentials is not None else ()
        """What the user should know about this key that the exchange cannot check."""
        per_second = requests_per_s or 1000.0 / max(float(self._ccxt.rateLimit or 1000), 1.0)
        self._budget = budget_for(f"{self.data_source} ccxt {exchange_id}", per_second, window_s=1)
        features = ((self._ccxt.features or {}).get("spot") or {}).get("fetchMyTrades") or {}
        self._page = min(int(features.get("limit") or FALLBACK_PAGE), MAX_PAGE)
        until_days = features.get("untilDays")
        # The query starts SINCE_SLACK_MS early: that much less fits in a declared range limit.
        self._max_window_ms = (
            min(MAX_WINDOW_MS, int(until_days * DAY_MS) - SINCE_SLACK_MS) if until_days else MAX_WINDOW_MS
        )
        self._all_at_once = features.get("symbolRequired") is False
        self._markets: dict[str, Market] | None = None
        self._balance: dict[str, Any] | None = None
        self._found: set[str] = set()
        self._found_at_ms: int | None = None

    async def close(self) -> None:
        """Close ccxt's HTTP session."""
        await self._ccxt.close()

    async def _call(self, method: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """One unified ccxt call within the budget, its failures classified."""
        await self._budget.spend(1.0)
        try:
            return await method(*args)
        except ccxt_errors.BaseError as exc:
            error = self._classify(exc)
            if isinstance(error, RateLimited):
                self._budget.penalize(error.retry_after_s)
            raise error from None

    def _classify(self, exc: ccxt_errors.BaseError) -> Exception:
        name = self.exchange_id
        if isinstance(exc, ccxt_errors.AuthenticationError | ccxt_errors.PermissionDenied):
            return CredentialsRejected(f"{name} refused the API key")
        if isinstance(exc, ccxt_errors.RateLimitExceeded | ccxt_errors.DDoSProtection):
            return RateLimited(f"{name} asked to slow down", RATE_LIMIT_PAUSE_S)
        if isinstance(exc, ccxt_errors.BadRequest | ccxt_errors.NotSupported | ccxt_errors.ArgumentsRequired):
            return ExchangeRequestError(f"{name} rejected a request ({type(exc).__name__})")
        # Network failures, and errors ccxt could not classify (its exchange class has no entry
        # for them, e.g. Kraken's "EAPI:Invalid signature"): treated as transient.
        return ExchangeUnavailable(f"{name} could not be reached or failed transiently")

    async def validate(self) -> None:
        """One authenticated read (``fetchBalance``), kept for the first discovery. Withdrawal
        permission cannot be checked (see :attr:`warnings`)."""
        self._balance = await self._call(self._ccxt.fetch_balance)

    async def markets(self) -> dict[str, Market]:
        """Spot markets from ``loadMarkets`` by unified symbol (cached after the first call)."""
        if self._markets is None:
            raw = await self._call(self._ccxt.load_markets)
            self._markets = {
                symbol: Market(symbol, str(m["id"]), str(m["base"]), str(m["quote"]), "spot")
                for symbol, m in raw.items()
                if m.get("spot")
            }
        return self._markets

    async def discover_symbols(self, hints: Sequence[str]) -> list[str]:
        """:data:`ALL_PAIRS` where one walk reads every market; otherwise held markets plus hints."""
        if self._all_at_once:
            return [ALL_PAIRS]
        markets = await self.markets()
        now = self._clock_ms()
        if self._found_at_ms is None or now - self._found_at_ms >= DISCOVERY_REFRESH_MS:
            balance, self._balance = self._balance, None
            if balance is None:
                balance = await self._call(self._ccxt.fetch_balance)
            held = _held(balance.get("total") or {})
            self._found |= {
                m.symbol
                for m in markets.values()
                if m.base in held and (m.quote in held or m.quote in STABLECOINS)
            }
            self._found_at_ms = now
        return sorted(self._found.union(h for h in hints if h in markets))

    async def fetch_trades(self, symbol: str, cursor: object | None, since_ms: int) -> TradePage:
        """One ``fetchMyTrades`` window of the walk described in the module docstring."""
        if symbol == ALL_PAIRS and not self._all_at_once:
            raise ExchangeRequestError(f"{self.exchange_id} needs a symbol to read trades")
        markets = await self.markets()
        if symbol != ALL_PAIRS and symbol not in markets:
            raise ExchangeRequestError(f"{self.exchange_id} lists no spot market {symbol}")
        state = (
            cursor
            if isinstance(cursor, CcxtCursor)
            else CcxtCursor(since_ms, self._max_window_ms, self._page)
        )
        start = max(state.since_ms, since_ms)
        now = self._clock_ms()
        end = min(start + state.window_ms - 1, now)
        raw = await self._call(
            self._ccxt.fetch_my_trades,
            None if symbol == ALL_PAIRS else symbol,
            start - SINCE_SLACK_MS,
            state.limit,
            {"until": end},
        )
        try:
            trades = [
                t
                for t in (_trade(entry, markets) for entry in raw)
                if t is not None and start <= t.timestamp <= end
            ]
        except (KeyError, TypeError, ValueError, InvalidOperation):
            raise ExchangeUnavailable(f"{self.exchange_id} sent a malformed trade") from None
        if len(raw) >= state.limit:
            if state.window_ms > 1:
                return TradePage([], CcxtCursor(start, max(1, state.window_ms // 2), state.limit), False)
            if state.limit < MAX_PAGE:
                return TradePage([], CcxtCursor(start, 1, min(MAX_PAGE, state.limit * 2)), False)
            log.warning("%s: more trades at one millisecond than a page holds", self.exchange_id)
            return TradePage(trades, CcxtCursor(start + 1, 1, self._page), start + 1 > now)
        if end < now:
            window = min(self._max_window_ms, state.window_ms * 2)
            return TradePage(trades, CcxtCursor(end, window, self._page), False)
        last_seen = max((t.timestamp for t in trades), default=start)
        resume = max(last_seen, end - SETTLE_MS, start)
        return TradePage(trades, CcxtCursor(resume, self._max_window_ms, self._page), True)

    async def fetch_candles(self, symbol: str, start_ms: int, end_ms: int) -> Candles:
        """Closed 1m candles with open time in ``[start_ms, end_ms]`` (one ``fetchOHLCV`` call);
        covered is the span from the first to the last candle received."""
        nothing = Candles([], start_ms, start_ms - 1)
        if not self._ccxt.has.get("fetchOHLCV"):
            return nothing
        await self.markets()
        last_closed_open = (self._clock_ms() // MINUTE_MS) * MINUTE_MS - MINUTE_MS
        end_ms = min(end_ms, last_closed_open)
        if start_ms > end_ms:
            return nothing
        limit = min(MAX_PAGE, (end_ms - start_ms) // MINUTE_MS + 1)
        rows = await self._call(self._ccxt.fetch_ohlcv, symbol, "1m", start_ms, limit)
        try:
            closes = sorted((int(row[0]), decimal(row[4])) for row in rows)
        except (IndexError, TypeError, ValueError, InvalidOperation):
            raise ExchangeUnavailable(f"{self.exchange_id} sent a malformed candle") from None
        closes = [c for c in closes if start_ms <= c[0] <= end_ms]
        if not closes:
            return nothing
        return Candles(closes, closes[0][0], closes[-1][0])


def _first_url(node: object) -> str:
    """The first absolute URL in ccxt's ``urls['api']`` (a string or nested dicts)."""
    if isinstance(node, str) and node.startswith(("http://", "https://")):
        return node
    if isinstance(node, Mapping):
        for value in node.values():
            url = _first_url(value)
            if url:
                return url
    return ""


def _held(totals: Mapping[str, Any]) -> set[str]:
    """Currencies with a positive total balance."""
    held = set()
    for currency, amount in totals.items():
        try:
            if amount is not None and decimal(amount) > 0:
                held.add(str(currency))
        except (TypeError, InvalidOperation):
            continue
    return held


def _trade(entry: Mapping[str, Any], markets: Mapping[str, Market]) -> Trade | None:
    """A unified ccxt trade (string number mode) as a normalized trade; ``None`` outside spot."""
    market = markets.get(str(entry.get("symbol")))
    if market is None:
        return None
    side: Side
    if entry["side"] == "buy":
        side = "buy"
    elif entry["side"] == "sell":
        side = "sell"
    else:
        raise ValueError("unknown side")
    amount = decimal(entry["amount"])
    price = decimal(entry["price"])
    fee = entry.get("fee") or {}
    fee_cost = decimal(fee["cost"]) if fee.get("cost") is not None else Decimal(0)
    return Trade(
        id=str(entry["id"]),
        order_id=str(entry.get("order") or ""),
        symbol=market.symbol,
        base=market.base,
        quote=market.quote,
        market_type="spot",
        side=side,
        amount=amount,
        price=price,
        cost=amount * price,
        fee_cost=fee_cost,
        fee_currency=str(fee.get("currency") or market.quote),
        timestamp=int(entry["timestamp"]),
    )
