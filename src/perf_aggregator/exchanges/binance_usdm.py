"""Binance USD-M futures: exact parsing of ``/fapi/v1/userTrades``, and the connector (ccxt ``binanceusdm``).

The connector is the spot connector (:class:`~perf_aggregator.exchanges.binance.BinanceSpot`)
pointed at the ``/fapi`` API: it shares its request handling, error
classification by Binance codes and trade cursor, with 7-day windows instead of
24-hour ones. Weight budget: 2400 per minute per IP (``fapi``), shared by every
session of the process through ``budget_for(<origin> fapi)``.

History strategy (``userTrades`` needs a symbol, 5 weight a call, ``startTime``..
``endTime`` at most 7 days): scan 7-day windows forward from ``since`` until the
first trade (one call per empty week), then walk forward by ``fromId`` (1000
trades a call). Polling continues with ``fromId`` = the last trade id seen (the
ledger drops the repeated record). Binance's "no parameters" answer only covers
the last 7 days, so unlike spot the history never starts from the most recent
page; that page is only read after a scan found nothing up to now (the next
poll then sees any new trade, as long as polls are less than 7 days apart).

Symbol discovery: on the first call, open positions from ``/fapi/v2/account``
(5 weight); on every call, each symbol with a ``COMMISSION`` entry in
``/fapi/v1/income`` (30 weight per 1000 fills, read incrementally: a poll only
asks for the time since the previous one, so usually one call), plus the
credentials' hints. Every fill pays a commission, so a symbol traded since
``since`` is found even when its position is closed; Binance keeps income for
about 3 months, and positions opened before that still show in the account.
A symbol once found stays polled.

Fees: ``commission`` is kept with its sign. Binance reports a positive
commission for a fee paid; a negative one is a maker rebate (received), which
then lowers ``fees_usd``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async

from perf_aggregator.clock import Clock, now_ms
from perf_aggregator.exchanges.base import Candles, Market, TradePage
from perf_aggregator.exchanges.binance import (
    PAGE_LIMIT,
    BinanceCursor,
    BinanceSpot,
    answers_trades_request,
    declared_weight_limit,
    parse_kline,
)
from perf_aggregator.exchanges.budget import budget_for
from perf_aggregator.exchanges.endpoints import origin_of, override_ccxt_urls
from perf_aggregator.exchanges.errors import ExchangeUnavailable, KeyNotReadOnly
from perf_aggregator.ledger.trades import Trade
from perf_aggregator.tee.credentials import ExchangeCredentials

PUBLIC_ORIGIN = "https://fapi.binance.com"
WEIGHT_LIMIT_PER_MINUTE = 2400
WEIGHTS = {"account": 5, "apiRestrictions": 1, "exchangeInfo": 1, "userTrades": 5, "income": 30, "klines": 5}
"""Request weight of each endpoint (klines at limit 1000). apiRestrictions is a ``/sapi``
call with its own budget at Binance, charged here too to stay on the safe side."""
WEEK_MS = 7 * 24 * 3600 * 1000
INCOME_LIMIT = 1000
MINUTE_MS = 60_000


def parse_usdm_trade(raw: dict[str, Any], market: Market) -> Trade:
    """A ``GET /fapi/v1/userTrades`` element as a normalized trade (exact decimals).

    ``side`` comes from ``side`` (``BUY``/``SELL``), else from ``buyer``; the fee is
    ``commission`` in ``commissionAsset`` with its sign (negative: a rebate);
    ``exchange_realized_pnl`` is Binance's ``realizedPnl``.
    """
    amount = Decimal(raw["qty"])
    price = Decimal(raw["price"])
    side_text = raw.get("side")
    buy = side_text == "BUY" if side_text in ("BUY", "SELL") else bool(raw["buyer"])
    realized = raw.get("realizedPnl")
    return Trade(
        id=str(raw["id"]),
        order_id=str(raw["orderId"]),
        symbol=market.symbol,
        base=market.base,
        quote=market.quote,
        market_type="swap",
        side="buy" if buy else "sell",
        amount=amount,
        price=price,
        cost=amount * price,
        fee_cost=Decimal(raw["commission"]),
        fee_currency=raw["commissionAsset"],
        timestamp=int(raw["time"]),
        exchange_realized_pnl=None if realized is None else Decimal(realized),
    )


class BinanceUsdm(BinanceSpot):
    """Binance USD-M futures connector; without credentials it serves public futures data only."""

    exchange_id = "binance"
    window_ms = WEEK_MS

    def __init__(
        self,
        credentials: ExchangeCredentials | None,
        origin_override: str | None = None,
        clock_ms: Clock = now_ms,
    ) -> None:
        super().__init__(credentials, origin_override, clock_ms)
        config: dict[str, Any] = {"enableRateLimit": self._ccxt.enableRateLimit}
        if credentials is not None:
            config["apiKey"] = credentials.api_key
            config["secret"] = credentials.api_secret
        self._ccxt = ccxt_async.binanceusdm(config)  # the spot instance never opened a session
        if origin_override:
            override_ccxt_urls(self._ccxt, origin_override)
        self.data_source = origin_of(self._ccxt.urls["api"]["fapiPublic"])
        self._budget = budget_for(f"{self.data_source} fapi", WEIGHT_LIMIT_PER_MINUTE)
        self._since_ms = credentials.since_ms if credentials is not None else 0
        self._income_from: int | None = None
        self._traded: set[str] = set()

    async def validate(self) -> None:
        """Read the futures account once, then refuse keys that can withdraw."""
        await self._call(self._ccxt.fapiPrivateV2GetAccount, {}, WEIGHTS["account"])
        restrictions = await self._call(
            self._ccxt.sapiGetAccountApiRestrictions, {}, WEIGHTS["apiRestrictions"]
        )
        if restrictions.get("enableWithdrawals"):
            raise KeyNotReadOnly("the key is allowed to withdraw funds")

    async def markets(self) -> dict[str, Market]:
        """USD-margined perpetuals from ``/fapi/v1/exchangeInfo`` (``BTC/USDT:USDT``), all statuses."""
        if self._markets is None:
            info = await self._call(self._ccxt.fapiPublicGetExchangeInfo, {}, WEIGHTS["exchangeInfo"])
            declared = declared_weight_limit(info)
            if declared is not None:
                self._budget.set_limit(declared)
            markets: dict[str, Market] = {}
            for raw in info["symbols"]:
                if raw.get("contractType") != "PERPETUAL" or raw.get("marginAsset") != raw["quoteAsset"]:
                    continue  # delivery contracts and non-linear margining are not read
                base = self._ccxt.safe_currency_code(raw["baseAsset"])
                quote = self._ccxt.safe_currency_code(raw["quoteAsset"])
                market = Market(f"{base}/{quote}:{quote}", raw["symbol"], base, quote, "swap")
                markets[market.symbol] = market
            self._markets = markets
            self._by_id = {m.id: m for m in markets.values()}
        return self._markets

    async def discover_symbols(self, hints: Sequence[str]) -> list[str]:
        """Open positions, symbols with commission income since the last call, and hints."""
        markets = await self.markets()
        if self._income_from is None:
            # Once: positions opened before the income history Binance keeps still show here.
            account = await self._call(self._ccxt.fapiPrivateV2GetAccount, {}, WEIGHTS["account"])
            self._traded.update(
                self._by_id[p["symbol"]].symbol
                for p in account.get("positions", [])
                if p["symbol"] in self._by_id and Decimal(p["positionAmt"]) != 0
            )
        await self._read_income()
        found = set(self._traded)
        found.update(h for h in hints if h in markets)
        return sorted(found)

    async def _read_income(self) -> None:
        """Add the symbols of ``COMMISSION`` income entries from where the last read ended up to now."""
        start = self._since_ms if self._income_from is None else self._income_from
        end = self._clock_ms()
        if end < start:
            return
        page = 1
        while True:
            params = {
                "incomeType": "COMMISSION",
                "startTime": start,
                "endTime": end,
                "page": page,
                "limit": INCOME_LIMIT,
            }
            entries: list[dict[str, Any]] = await self._call(
                self._ccxt.fapiPrivateGetIncome, params, WEIGHTS["income"], list
            )
            self._traded.update(
                self._by_id[e["symbol"]].symbol for e in entries if e.get("symbol") in self._by_id
            )
            if len(entries) < INCOME_LIMIT:
                break
            page += 1
        self._income_from = end + 1

    async def fetch_trades(self, symbol: str, cursor: object | None, since_ms: int) -> TradePage:
        """One ``userTrades`` call following the strategy in the module docstring."""
        market = (await self.markets())[symbol]
        state = cursor if isinstance(cursor, BinanceCursor) else BinanceCursor(scan_from_ms=since_ms)
        params: dict[str, Any] = {"symbol": market.id, "limit": PAGE_LIMIT}
        if state.from_id is not None:
            params["fromId"] = state.from_id
        elif state.scan_from_ms is not None:
            params["startTime"] = state.scan_from_ms
            params["endTime"] = state.scan_from_ms + self.window_ms - 1
        raw: list[dict[str, Any]] = await self._call(
            self._ccxt.fapiPrivateGetUserTrades, params, WEIGHTS["userTrades"], list
        )
        try:
            if not answers_trades_request(params, raw):
                raise ValueError("page does not answer the request")
            trades = [parse_usdm_trade(r, market) for r in raw if int(r["time"]) >= since_ms]
        except (KeyError, TypeError, ValueError, ArithmeticError):
            # A stale, overlapping or garbled page: retry later rather than move the cursor.
            raise ExchangeUnavailable(
                "Binance answered with a page that does not match the request"
            ) from None
        return TradePage(trades, *self._next(state, raw, since_ms))

    async def fetch_candles(self, symbol: str, start_ms: int, end_ms: int) -> Candles:
        """Closed 1m futures klines with open time in ``[start_ms, end_ms]``, 1000 a call."""
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
            raw = await self._call(self._ccxt.fapiPublicGetKlines, params, WEIGHTS["klines"], list)
            if raw and not cursor <= int(raw[0][0]) <= int(raw[-1][0]):
                raise ExchangeUnavailable("Binance answered with candles that do not match the request")
            closes.extend(parse_kline(k) for k in raw if int(k[0]) <= end_ms)
            if len(raw) < PAGE_LIMIT:
                break
            cursor = int(raw[-1][0]) + MINUTE_MS
        return Candles(closes, start_ms, end_ms)
