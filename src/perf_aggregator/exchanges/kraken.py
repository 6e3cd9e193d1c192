"""Kraken spot: exact parsing of raw payloads, and the connector (transport and signing by ccxt).

**One pseudo-symbol.** ``TradesHistory`` lists the trades of every pair at once,
so :meth:`KrakenSpot.discover_symbols` returns the single pseudo-symbol
:data:`ALL_PAIRS` (``"*"``); :meth:`KrakenSpot.fetch_trades` reads it and each trade
carries its own unified symbol (``BTC/USD``).

**Paging.** Kraken answers 50 trades per call, newest first, with the ``count`` of
all trades matching ``start`` (exclusive) and ``end`` (inclusive). ``ofs`` pages
shift whenever a new trade arrives, so they are not used. A *walk* reads one range
downwards: its lower bound ``start`` stays fixed (``since`` minus one second at
first, later the txid of the newest trade already read), its upper bound ``end``
moves to the txid of the oldest trade of each page (that trade comes back once and
is dropped) until a page holds the whole remaining ``count``. The next walk starts
above the newest trade of the finished one. New trades land above the walk's
bounds and never disturb it; the ledger's dedup absorbs any repeat, so the
history is complete and nothing is doubled. A page must answer its request:
every trade no newer than the ``end`` trade, which is itself present (the proof
that the page continues the previous one), and not the ``start`` trade (for a
time ``start``, no older trade). A page that does not (a stale or cached answer,
which would end the walk early and lose the trades below it) is refused as a
transient failure and asked again.

**Rate limits.** Kraken's call counter is per API key: at most 15 (Starter, the
most restrictive tier, assumed unless told), decaying by 0.33 per second;
``TradesHistory`` costs 2, other calls 1. That leaky bucket is a GCRA budget of the
key (:mod:`perf_aggregator.exchanges.budget`, scoped by a digest of the key, never
the key itself): a burst of the counter's maximum less a margin, refilled at the
decay rate less the budget's headroom. Public calls share one budget per origin
(the IP's), about one call per second. ``EAPI:Rate limit exceeded`` becomes
:class:`RateLimited` and pauses the budget that was told.

**Candles.** ``OHLC`` returns only the 720 most recent 1-minute candles: a trade
older than 12 hours whose quote (or fee) currency is not USD cannot be priced and
stays *unpriced*, as METRICS.md prescribes. Only candles the answer's ``last``
marks as committed are used, and the span counted as fetched is what the answer
evidences: up to ``last``, and from the start asked for only when the rows reach
back to it or to Kraken's retention horizon (a stale answer starting later leaves
the minutes before its first row to be asked again).

**Key permissions.** Kraken has no endpoint listing a key's permissions:
:meth:`KrakenSpot.validate` cannot tell whether the key may withdraw funds; the
connector's :attr:`KrakenSpot.warnings` says so to the user rather than refuse the key.

**Nonces** are microseconds, strictly increasing across every connector of the
process (one key may back several sessions).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
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
    ExchangeRequestError,
    ExchangeUnavailable,
    RateLimited,
    raised_while_signing,
)
from perf_aggregator.ledger.trades import Trade, exchange_decimal
from perf_aggregator.tee.credentials import ExchangeCredentials

PUBLIC_ORIGIN = "https://api.kraken.com"
ALL_PAIRS = "*"
"""The pseudo-symbol under which every pair's trades are read."""
PAGE_SIZE = 50
MINUTE_MS = 60_000
OHLC_KEPT = 720
"""How many of the most recent 1m candles ``OHLC`` serves."""
COUNTER_MAX = 15.0
COUNTER_DECAY_PER_S = 0.33
COUNTER_MARGIN = 1.0
PUBLIC_PER_SECOND = 1.0
CALL_COSTS = {"TradesHistory": 2.0, "Ledgers": 2.0}
KEY_PERMISSIONS_WARNING = "Kraken does not report key permissions: make sure this key cannot withdraw."

ASSET_CODES: Mapping[str, str] = {
    # Kraken's X/Z-prefixed legacy asset codes and renamed altnames, as ccxt unifies them.
    "XXBT": "BTC",
    "XBT": "BTC",
    "XXDG": "DOGE",
    "XDG": "DOGE",
    "XETH": "ETH",
    "XETC": "ETC",
    "XLTC": "LTC",
    "XMLN": "MLN",
    "XREP": "REP",
    "XXLM": "XLM",
    "XXMR": "XMR",
    "XXRP": "XRP",
    "XZEC": "ZEC",
    "ZAUD": "AUD",
    "ZCAD": "CAD",
    "ZEUR": "EUR",
    "ZGBP": "GBP",
    "ZJPY": "JPY",
    "ZUSD": "USD",
    "ZCHF": "CHF",
    "LUNA": "LUNC",
    "LUNA2": "LUNA",
    "REPV2": "REP",
    "REP": "REPV1",
    "UST": "USTC",
    "FEE": "KFEE",
}
"""Kraken asset code or altname → ccxt's unified currency code (others are unchanged)."""

REJECTED_KEY_ERRORS = frozenset(
    {"EAPI:Invalid key", "EAPI:Invalid signature", "EGeneral:Permission denied", "EAPI:Bad request"}
)
RATE_LIMIT_ERRORS = frozenset(
    {"EAPI:Rate limit exceeded", "EGeneral:Temporary lockout", "EGeneral:Too many requests"}
)
TRANSIENT_ERRORS = frozenset(
    {
        "EAPI:Invalid nonce",
        "EService:Unavailable",
        "EService:Busy",
        "EGeneral:Internal error",
        "EDatabase:Internal error",
    }
)
_KRAKEN_ERROR = re.compile(r'"([EW][A-Za-z]{2,12}:[^"\\]{1,80})"')


def asset_code(kraken_code: str) -> str:
    """ccxt's unified code of a Kraken asset code or altname: ``XXBT`` → ``BTC``, ``SOL`` → ``SOL``."""
    return ASSET_CODES.get(kraken_code, kraken_code)


def parse_market(pair_id: str, raw: Mapping[str, Any]) -> Market:
    """An ``AssetPairs`` entry as a market named like ccxt (``XXBTZUSD`` → ``BTC/USD``).

    ``base`` and ``quote`` are Kraken asset codes (``XXBT``); where one is not a
    known code, the ``wsname`` (``XBT/USD``, altnames) names it.
    """
    base_id, quote_id = str(raw["base"]), str(raw["quote"])
    ws_parts = str(raw.get("wsname") or "").split("/")
    base = asset_code(base_id)
    quote = asset_code(quote_id)
    if len(ws_parts) == 2:
        if base == base_id and base_id not in ws_parts[0]:
            base = asset_code(ws_parts[0])
        if quote == quote_id and quote_id not in ws_parts[1]:
            quote = asset_code(ws_parts[1])
    return Market(f"{base}/{quote}", pair_id, base, quote, "spot")


def time_ms(value: float | str | Decimal) -> int:
    """Kraken's float seconds (``1688667796.8802``) as epoch milliseconds, exactly (floored).

    A float is read through its shortest repr, which is the text Kraken sent.
    """
    seconds = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return int((seconds * 1000).to_integral_value(rounding=ROUND_FLOOR))


def parse_trade(txid: str, raw: Mapping[str, Any], market: Market) -> Trade:
    """A ``TradesHistory`` element (keyed by ``txid``) as a normalized trade (exact decimals, read
    by :data:`~perf_aggregator.ledger.trades.exchange_decimal`)."""
    amount = exchange_decimal(raw["vol"])
    price = exchange_decimal(raw["price"])
    side = raw["type"]
    if side not in ("buy", "sell"):
        raise ExchangeRequestError("Kraken reported a trade with an unknown side")
    return Trade(
        id=txid,
        order_id=str(raw["ordertxid"]),
        symbol=market.symbol,
        base=market.base,
        quote=market.quote,
        market_type="spot",
        side=side,
        amount=amount,
        price=price,
        fee_cost=exchange_decimal(raw["fee"]),
        fee_currency=market.quote,
        timestamp=time_ms(raw["time"]),
    )


def parse_ohlc(raw: Sequence[Any]) -> tuple[int, Decimal]:
    """An ``OHLC`` element ``[time, open, high, low, close, vwap, volume, count]`` as ``(open_ms, close)``."""
    return int(raw[0]) * 1000, exchange_decimal(raw[4])


def kraken_errors(text: str) -> list[str]:
    """Kraken error strings (``EAPI:Invalid key``) quoted in ``text`` (ccxt quotes the body)."""
    return _KRAKEN_ERROR.findall(text)


@dataclass(frozen=True, slots=True)
class KrakenCursor:
    """Where the history continues (see the module docstring).

    ``start``: lower bound of the walk (exclusive), a txid; ``None`` reads from
    ``since``. ``end``: the walk's current upper bound (inclusive), the txid of
    the oldest trade read so far; ``None`` starts a walk at the newest trade.
    ``top``: the newest trade of the current walk, the next walk's ``start``.
    """

    start: str | None = None
    end: str | None = None
    top: str | None = None


class _Nonces:
    """Strictly increasing microsecond nonces shared by every connector of the process."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1000)
            return self._last


NONCES = _Nonces()


@dataclass(frozen=True, slots=True)
class PairList:
    """One ``AssetPairs`` read: markets by unified symbol, and by pair id or altname."""

    markets: dict[str, Market]
    by_name: dict[str, Market]


PAIR_LISTS: dict[str, PairList] = {}
"""The last ``AssetPairs`` read of each origin, shared by every connector of the process:
public calls are paced per IP, so sessions must not each wait for a read of their own. A
trade in a pair missing from it reads the list again."""


class _Kraken(ccxt_async.kraken):  # type: ignore[misc]
    """ccxt's Kraken with the process-wide nonce."""

    def incrementing_nonce(self) -> int:
        return NONCES.next()


class KrakenSpot:
    """Kraken spot connector; without credentials it serves public market data only."""

    exchange_id = "kraken"

    def __init__(
        self,
        credentials: ExchangeCredentials | None,
        origin_override: str | None = None,
        clock_ms: Clock = now_ms,
        counter_max: float = COUNTER_MAX,
        counter_decay_per_s: float = COUNTER_DECAY_PER_S,
    ) -> None:
        """``counter_max`` and ``counter_decay_per_s``: the key's tier (Starter unless told);
        the first connector of a key sets its budget."""
        config: dict[str, Any] = {"enableRateLimit": False}  # paced by the budgets
        if credentials is not None:
            config["apiKey"] = credentials.api_key
            config["secret"] = credentials.api_secret
        self._ccxt = _Kraken(config)
        if origin_override:
            override_ccxt_urls(self._ccxt, origin_override)
        self.data_source = origin_of(self._ccxt.urls["api"]["public"])
        self._clock_ms = clock_ms
        self.warnings: tuple[str, ...] = (KEY_PERMISSIONS_WARNING,) if credentials is not None else ()
        """What the user should know about this key that the exchange cannot check."""
        self._public = budget_for(f"{self.data_source} public", PUBLIC_PER_SECOND, window_s=1)
        key_tag = hashlib.sha256(credentials.api_key.encode()).hexdigest()[:16] if credentials else "none"
        self._private = budget_for(
            f"{self.data_source} private {key_tag}",
            counter_decay_per_s,
            window_s=1,
            burst=counter_max - COUNTER_MARGIN,
            spread_s=0.0,  # a decaying counter: bunched arrivals raise its peak by a fraction of a
            # call (decay * ARRIVAL_SPREAD_S), which COUNTER_MARGIN covers
        )

    async def close(self) -> None:
        """Close ccxt's HTTP session."""
        await self._ccxt.close()

    async def _private_call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        cost = CALL_COSTS.get(method, 1.0)
        return await self._call(getattr(self._ccxt, f"privatePost{method}"), params, self._private, cost)

    async def _public_call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return await self._call(getattr(self._ccxt, f"publicGet{method}"), params, self._public, 1.0)

    async def _call(
        self,
        method: Callable[[dict[str, Any]], Awaitable[Any]],
        params: dict[str, Any],
        budget: RequestBudget,
        cost: float,
    ) -> dict[str, Any]:
        """Run one ccxt raw-API call within ``budget``; return its ``result``, translating failures."""
        await budget.spend(cost)
        try:
            answer = await method(params)
        except ccxt_errors.BaseError as exc:
            error = self._classify(exc)
            if isinstance(error, RateLimited):
                budget.penalize(error.retry_after_s)
            raise error from None
        except (TypeError, ValueError) as exc:  # ccxt could not sign with the secret (not base64)
            if raised_while_signing(exc):
                raise CredentialsRejected(MALFORMED_KEY_MESSAGE) from None
            raise
        result = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(result, dict):
            raise ExchangeUnavailable("Kraken sent a malformed answer")
        return result

    def _classify(self, exc: ccxt_errors.BaseError) -> Exception:
        errors = set(kraken_errors(str(exc)))
        if errors & REJECTED_KEY_ERRORS or isinstance(
            exc, ccxt_errors.AuthenticationError | ccxt_errors.PermissionDenied
        ):
            return CredentialsRejected("Kraken refused the API key")
        if errors & RATE_LIMIT_ERRORS or isinstance(
            exc, ccxt_errors.DDoSProtection | ccxt_errors.RateLimitExceeded
        ):
            lockout = "EGeneral:Temporary lockout" in errors
            return RateLimited("Kraken asked to slow down", 900.0 if lockout else self._refill_s)
        # Kraken's own answers always name an error; a failure naming none is the transport's
        # (a dropped connection, a cut body): ccxt reports those as a bare ExchangeError.
        if (
            not errors
            or errors & TRANSIENT_ERRORS
            or isinstance(exc, ccxt_errors.NetworkError | ccxt_errors.InvalidNonce)
        ):
            return ExchangeUnavailable("Kraken could not be reached or failed transiently")
        return ExchangeRequestError(f"Kraken rejected a request ({sorted(errors)[0]})")

    @property
    def _refill_s(self) -> float:
        """Seconds for the key's counter to make room for the costliest call."""
        return max(CALL_COSTS.values()) * self._private.window_s / self._private.limit

    async def validate(self) -> None:
        """One authenticated read (``Balance``). Withdrawal permission cannot be checked on Kraken
        (see :attr:`warnings`)."""
        await self._private_call("Balance", {})

    async def markets(self) -> dict[str, Market]:
        """Spot pairs from ``AssetPairs`` by unified symbol (the origin's last read: :data:`PAIR_LISTS`)."""
        pairs = PAIR_LISTS.get(self.data_source) or await self._read_pairs()
        return pairs.markets

    async def _read_pairs(self) -> PairList:
        raw = await self._public_call("AssetPairs", {})
        markets: dict[str, Market] = {}
        by_name: dict[str, Market] = {}
        for pair_id, entry in raw.items():
            if not isinstance(entry, dict) or ".d" in pair_id:
                continue  # ".d" pairs are Kraken's dark pools, with their own history
            market = parse_market(pair_id, entry)
            markets.setdefault(market.symbol, market)
            by_name[pair_id] = market
            if entry.get("altname"):
                by_name[str(entry["altname"])] = market
        pairs = PAIR_LISTS[self.data_source] = PairList(markets, by_name)
        return pairs

    async def discover_symbols(self, hints: Sequence[str]) -> list[str]:
        """The pseudo-symbol :data:`ALL_PAIRS`: one ``TradesHistory`` walk covers every pair."""
        return [ALL_PAIRS]

    async def _market_of(self, pair: str) -> Market:
        pairs = PAIR_LISTS.get(self.data_source) or await self._read_pairs()
        market = pairs.by_name.get(pair)
        if market is None:  # a pair listed since the last read
            market = (await self._read_pairs()).by_name.get(pair)
        if market is None:
            raise ExchangeRequestError("Kraken reported a trade in a pair it does not list")
        return market

    async def fetch_trades(self, symbol: str, cursor: object | None, since_ms: int) -> TradePage:
        """One ``TradesHistory`` call of the walk described in the module docstring."""
        if symbol != ALL_PAIRS:
            raise ExchangeRequestError("Kraken's trades are read for all pairs at once")
        state = cursor if isinstance(cursor, KrakenCursor) else KrakenCursor()
        params: dict[str, Any] = {"type": "all"}
        start_s = since_ms // 1000 - 1
        params["start"] = state.start if state.start is not None else str(start_s)
        if state.end is not None:
            params["end"] = state.end
        result = await self._private_call("TradesHistory", params)
        entries = result.get("trades") or {}
        try:
            if not isinstance(entries, dict):
                raise TypeError("trades is not an object")
            count = int(result.get("count", 0))
            ordered = sorted(entries.items(), key=lambda item: time_ms(item[1]["time"]), reverse=True)
            times = [time_ms(raw["time"]) for _, raw in ordered]
            answers = _answers_walk(state, start_s * 1000, entries, times)
        except MALFORMED:
            raise ExchangeUnavailable("Kraken sent a malformed answer") from None
        if not answers:
            raise ExchangeUnavailable("Kraken answered with a page that does not match the request")
        trades = []
        for txid, raw in ordered:
            if txid == state.end:
                continue
            try:
                trade = parse_trade(txid, raw, await self._market_of(str(raw["pair"])))
            except MALFORMED:
                raise ExchangeUnavailable("Kraken sent a malformed trade") from None
            if trade.timestamp >= since_ms:
                trades.append(trade)
        top = state.top or (ordered[0][0] if ordered else None)
        oldest = ordered[-1][0] if ordered else None
        if count <= len(entries) or oldest is None or oldest == state.end:
            # The walk is complete: the next one reads above its newest trade.
            return TradePage(trades, KrakenCursor(start=top or state.start), True)
        return TradePage(trades, KrakenCursor(start=state.start, end=oldest, top=top), False)

    async def fetch_candles(self, symbol: str, start_ms: int, end_ms: int) -> Candles:
        """Committed 1m candles from ``start_ms`` on, and as far as the answer vouches for (module
        docstring): Kraken keeps only the last 720, so the span may reach past ``end_ms``."""
        market = (await self.markets())[symbol]
        last_closed_open = (self._clock_ms() // MINUTE_MS) * MINUTE_MS - MINUTE_MS
        if start_ms > min(end_ms, last_closed_open):
            return Candles([], start_ms, start_ms - 1)
        since_s = start_ms // 1000 - 60  # ``since`` is exclusive
        result = await self._public_call("OHLC", {"pair": market.id, "interval": 1, "since": since_s})
        rows = result.get(market.id) or next(
            (v for k, v in result.items() if k != "last" and isinstance(v, list)), []
        )
        try:
            closes = sorted(parse_ohlc(row) for row in rows)
            last_ms = int(result["last"]) * 1000
        except MALFORMED:
            raise ExchangeUnavailable("Kraken sent a malformed candle") from None
        if any(open_ms <= since_s * 1000 for open_ms, _ in closes):
            raise ExchangeUnavailable("Kraken answered with candles that do not match the request")
        if not closes:
            return Candles([], start_ms, start_ms - 1)  # nothing evidenced: nothing covered
        # The oldest row Kraken still serves opens 718 minutes before ``last`` (720 rows, the
        # newest still open); a minute of slack. Minutes before it are gone for good.
        horizon_ms = last_ms - (OHLC_KEPT - 3) * MINUTE_MS
        first = closes[0][0]
        covered_from = start_ms if first <= max(start_ms, horizon_ms) else first
        return Candles([c for c in closes if c[0] <= last_ms], covered_from, last_ms)


def _answers_walk(state: KrakenCursor, start_ms: int, entries: dict[str, Any], times: list[int]) -> bool:
    """Whether a ``TradesHistory`` page can answer the walk's request: the ``end`` trade is there
    and nothing is newer, the ``start`` trade is not, and nothing is older than a time ``start``."""
    if state.end is not None:
        if state.end not in entries or max(times) > time_ms(entries[state.end]["time"]):
            return False
    if state.start is not None:
        return state.start not in entries
    return all(t >= start_ms for t in times)
