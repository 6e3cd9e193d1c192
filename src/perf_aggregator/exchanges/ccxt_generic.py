"""Fallback connector: any ccxt exchange with ``fetchMyTrades``, read through ccxt's own parsing.

**Exact numbers.** The ccxt instance runs in string number mode (``number = str``): ccxt's
parsers keep the exchange's decimal text (or the shortest repr of a JSON number, which is
the text sent) and this module turns it into :class:`~decimal.Decimal`, never through a float.

**Paging.** Exchanges differ in which end of a range they return when it holds more than a
page (Binance the oldest trades, Kraken the newest), and in how they round ``since`` and
``until``, so the walk trusts an answer only as far as it proves. Each call asks one
*window* ``[start, end]``: ``until`` = ``end`` (inclusive, as ccxt's unified API defines
it); ``since`` = ``start`` minus :data:`SINCE_SLACK_MS` for a window of a second or more,
for exchanges whose ``since`` is whole seconds and exclusive (a narrower window is asked
from ``start``, or one millisecond before when ``start`` is a whole second: ccxt rounds
down); ``limit`` = the page size ccxt declares, or :data:`FALLBACK_PAGE` when it declares
none; more is never asked for. An answer is *full* when it holds that many trades or more,
counting those outside the window. A window is *complete* when its answer is not full, or is
full but holds trades both before ``start`` and after ``end`` (whichever end the exchange
cut, the window lies inside what it sent). The trades of a complete window are returned and
the next window starts at ``end + 1``, twice as wide (up to the exchange's declared range
limit, ``untilDays``, or :data:`MAX_WINDOW_MS`). Any other full answer is dropped and the
same start is asked again with half the window. A one-millisecond window that is still not
complete is *crowded*: its millisecond (with the one before when it starts a second, or,
where the exchange rounds to seconds, its whole second) holds a page of trades or more. Its
trades that came are kept, a warning is logged, and the walk moves on to a one-millisecond
window at the next millisecond; the rest cannot be asked for through ccxt's unified API (on
an exchange that rounds to seconds, the rest of a crowded second is walked one millisecond
per call). So the walk always moves forward. Once a window reaches the present, the walk is
done; the next one resumes :data:`SETTLE_MS` before the present, so trades published late by
up to that much are still read (the re-read trades are dropped by the ledger's dedup on
``(symbol, id, side)``).

**Fees.** ccxt gives ``fees``, one entry per currency, and ``fee`` only when there is one
currency. Fees in one currency are that fee (none at all: zero in the quote currency); with
several currencies, those of zero cost are ignored. Fees in both the market's base and quote
currency become one fee in the quote currency, the base part valued exactly at the fill's
price (what the base fee withheld was worth in that fill). Fees in any other mix of
currencies cannot be stated as one fee without a price the trade does not carry: such a
trade is refused as malformed (the walk stops there and retries) rather than recorded with a
wrong fee.

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
from dataclasses import dataclass, replace
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
    MALFORMED,
    MALFORMED_KEY_MESSAGE,
    CredentialsRejected,
    ExchangeRequestError,
    ExchangeUnavailable,
    RateLimited,
    raised_while_signing,
)
from perf_aggregator.ledger.prices import STABLECOINS
from perf_aggregator.ledger.trades import EXACT, Side, Trade
from perf_aggregator.tee.credentials import ExchangeCredentials

log = logging.getLogger(__name__)
_ZERO = Decimal(0)

ALL_PAIRS = "*"
"""The pseudo-symbol under which every market's trades are read, where the exchange allows it."""
FALLBACK_PAGE = 50
MAX_PAGE = 1000
MINUTE_MS = 60_000
DAY_MS = 86_400_000
MAX_WINDOW_MS = 30 * DAY_MS
SETTLE_MS = MINUTE_MS
SECOND_MS = 1000
SINCE_SLACK_MS = SECOND_MS
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
    (inclusive), is ``window_ms`` wide and asks for ``limit`` trades (the page size; a stored
    cursor asking more than the exchange declares is asked with the declared page)."""

    since_ms: int
    window_ms: int
    limit: int


@dataclass(frozen=True, slots=True)
class WindowStep:
    """What one answered window means for the walk (:func:`next_window`)."""

    keep: bool
    """Whether the window's trades are returned (``False``: the answer was dropped)."""
    cursor: CcxtCursor
    done: bool
    crowded: bool
    """A millisecond held a page of trades or more: only those that came are kept."""


def window_query(cursor: CcxtCursor, since_ms: int, now_ms: int) -> tuple[int, int, int]:
    """``(since, start, end)`` of the window ``cursor`` names (module docstring): ``since``
    is what is asked, at or before ``start``; ``end`` is at most the present."""
    start = max(cursor.since_ms, since_ms)
    end = min(start + cursor.window_ms - 1, now_ms)
    if cursor.window_ms >= SINCE_SLACK_MS:
        return start - SINCE_SLACK_MS, start, end
    return start - (1 if start % SECOND_MS == 0 else 0), start, end


def next_window(
    cursor: CcxtCursor,
    start: int,
    end: int,
    now_ms: int,
    timestamps: Sequence[int],
    max_window_ms: int,
) -> WindowStep:
    """The walk's decision (module docstring) after window ``[start, end]`` of ``cursor`` was
    answered with trades at ``timestamps`` (all of the answer, inside the window or not).
    The cursor handed back always differs from ``cursor`` unless the walk is done."""
    full = len(timestamps) >= cursor.limit
    complete = not full or (min(timestamps) < start and max(timestamps) > end)
    if not complete and end > start:
        return WindowStep(
            False, replace(cursor, since_ms=start, window_ms=(end - start + 1) // 2), False, False
        )
    if end >= now_ms:
        return WindowStep(
            True, replace(cursor, since_ms=end - SETTLE_MS, window_ms=max_window_ms), True, not complete
        )
    window = min(max_window_ms, cursor.window_ms * 2) if complete else 1
    return WindowStep(True, replace(cursor, since_ms=end + 1, window_ms=window), False, not complete)


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
        except (TypeError, ValueError) as exc:  # ccxt could not sign with the secret
            if raised_while_signing(exc):
                raise CredentialsRejected(MALFORMED_KEY_MESSAGE) from None
            raise

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
            replace(cursor, limit=min(cursor.limit, self._page))
            if isinstance(cursor, CcxtCursor)
            else CcxtCursor(since_ms, self._max_window_ms, self._page)
        )
        now = self._clock_ms()
        since, start, end = window_query(state, since_ms, now)
        if start > now:
            return TradePage([], state, True)
        raw = await self._call(
            self._ccxt.fetch_my_trades,
            None if symbol == ALL_PAIRS else symbol,
            since,
            state.limit,
            {"until": end},
        )
        try:
            answered = [(int(entry["timestamp"]), _trade(entry, markets)) for entry in raw]
        except MALFORMED:
            raise ExchangeUnavailable(f"{self.exchange_id} sent a malformed trade") from None
        step = next_window(state, start, end, now, [at for at, _ in answered], self._max_window_ms)
        if step.crowded:
            log.warning("%s: more trades at one millisecond than a page holds", self.exchange_id)
        trades = [t for at, t in answered if t is not None and start <= at <= end] if step.keep else []
        return TradePage(trades, step.cursor, step.done)

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
        except MALFORMED:
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
    fee_cost, fee_currency = trade_fee(entry, market, price)
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
        fee_cost=fee_cost,
        fee_currency=fee_currency,
        timestamp=int(entry["timestamp"]),
    )


def trade_fee(entry: Mapping[str, Any], market: Market, price: Decimal) -> tuple[Decimal, str]:
    """A trade's fee as one ``(cost, currency)`` (module docstring); ``ValueError`` if it cannot be.
    Sums and products are exact (:data:`EXACT`), as METRICS.md asks."""
    listed = entry.get("fees") or [entry.get("fee") or {}]
    by_currency: dict[str, Decimal] = {}
    for fee in listed:
        if fee.get("cost") is not None:
            currency = str(fee.get("currency") or market.quote)
            by_currency[currency] = EXACT.add(by_currency.get(currency, _ZERO), decimal(fee["cost"]))
    if len(by_currency) > 1:
        by_currency = {currency: cost for currency, cost in by_currency.items() if cost != 0}
    if not by_currency:
        return _ZERO, market.quote
    if len(by_currency) == 1:
        ((currency, cost),) = by_currency.items()
        return cost, currency
    if set(by_currency) == {market.base, market.quote}:
        return EXACT.fma(by_currency[market.base], price, by_currency[market.quote]), market.quote
    raise ValueError("fees in several currencies")
