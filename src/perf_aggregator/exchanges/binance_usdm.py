"""Binance USD-M futures: exact parsing of ``/fapi/v1/userTrades``, and the connector (ccxt ``binanceusdm``).

The connector is the spot connector (:class:`~perf_aggregator.exchanges.binance.BinanceSpot`)
pointed at the ``/fapi`` API by :data:`USDM_API`: it shares its request handling, error
classification by Binance codes, trade cursor, validation and candles, with 7-day windows
instead of 24-hour ones. Weight budget: 2400 per minute per IP (``fapi``), shared by every
session of the process through ``budget_for(<origin> fapi)``.

History strategy (``userTrades`` needs a symbol, 5 weight a call, ``startTime``..
``endTime`` at most 7 days): scan 7-day windows forward from ``since`` until the
first trade (two calls per empty week, six for the week of the symbol's first commission
since ``since``, so that stale answers cannot hide it), then walk forward by ``fromId``
(1000 trades a call). Polling continues with ``fromId`` = the last trade id seen (the
ledger drops the repeated record). Binance's "no parameters" answer only covers
the last 7 days, so unlike spot the history never starts from the most recent
page; that page is only read after a scan found nothing up to now (the next
poll then sees any new trade, as long as polls are less than 7 days apart).

Symbol discovery (at most every ``DISCOVERY_REFRESH_MS``, like spot): the first time,
open positions from ``/fapi/v2/account`` (the answer ``validate`` read); every time, each
symbol with a ``COMMISSION`` entry in ``/fapi/v1/income`` (30 weight per 1000 fills, read
incrementally: from where the previous read ended, so usually one call), plus the
credentials' hints. Every fill pays a commission, so a symbol traded since ``since`` is
found even when its position is closed; Binance keeps income for about 3 months, and
positions opened before that still show in the account. A symbol once found stays polled.

Fees: ``commission`` is kept with its sign. Binance reports a positive
commission for a fee paid; a negative one is a maker rebate (received), which
then lowers ``fees_usd``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from perf_aggregator.clock import Clock, now_ms
from perf_aggregator.exchanges.base import Market
from perf_aggregator.exchanges.binance import BinanceApi, BinanceCursor, BinanceSpot
from perf_aggregator.ledger.trades import Trade, exchange_decimal
from perf_aggregator.tee.credentials import ExchangeCredentials

PUBLIC_ORIGIN = "https://fapi.binance.com"
WEIGHT_LIMIT_PER_MINUTE = 2400
WEIGHTS = {
    "account": 5,
    "apiRestrictions": 1,
    "exchangeInfo": 1,
    "trades": 5,
    "income": 30,
    "klines": 5,
    "time": 1,
}
"""Request weight of each endpoint (``trades`` is ``userTrades``, klines at limit 1000).
apiRestrictions is a ``/sapi`` call with its own budget at Binance, charged here too to
stay on the safe side."""
WEEK_MS = 7 * 24 * 3600 * 1000
INCOME_LIMIT = 1000


def parse_usdm_trade(raw: dict[str, Any], market: Market) -> Trade:
    """A ``GET /fapi/v1/userTrades`` element as a normalized trade (exact decimals).

    ``side`` comes from ``side`` (``BUY``/``SELL``), else from ``buyer``; the fee is
    ``commission`` in ``commissionAsset`` with its sign (negative: a rebate);
    ``exchange_realized_pnl`` is Binance's ``realizedPnl``. Decimal texts are read by
    :data:`~perf_aggregator.ledger.trades.exchange_decimal`.
    """
    amount = exchange_decimal(raw["qty"])
    price = exchange_decimal(raw["price"])
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
        fee_cost=exchange_decimal(raw["commission"]),
        fee_currency=raw["commissionAsset"],
        timestamp=int(raw["time"]),
        exchange_realized_pnl=None if realized is None else exchange_decimal(realized),
    )


def parse_usdm_trades(raw: Sequence[dict[str, Any]], market: Market) -> list[Trade]:
    """``GET /fapi/v1/userTrades`` elements as normalized trades, in order."""
    return [parse_usdm_trade(r, market) for r in raw]


USDM_API = BinanceApi(
    ccxt_class="binanceusdm",
    url_key="fapiPublic",
    family="fapi",
    weight_limit=WEIGHT_LIMIT_PER_MINUTE,
    weights=WEIGHTS,
    account="fapiPrivateV2GetAccount",
    account_params={},
    exchange_info="fapiPublicGetExchangeInfo",
    trades="fapiPrivateGetUserTrades",
    klines="fapiPublicGetKlines",
    window_ms=WEEK_MS,
    parse_trades=parse_usdm_trades,
)


class BinanceUsdm(BinanceSpot):
    """Binance USD-M futures connector; without credentials it serves public futures data only."""

    api = USDM_API

    def __init__(
        self,
        credentials: ExchangeCredentials | None,
        origin_override: str | None = None,
        clock_ms: Clock = now_ms,
    ) -> None:
        super().__init__(credentials, origin_override, clock_ms)
        self._since_ms = credentials.since_ms if credentials is not None else 0
        self._income_from: int | None = None
        self._first_fill_ms: dict[str, int] = {}
        """Exchange symbol id -> time of its first ``COMMISSION`` income since ``since``."""

    def _market(self, raw: dict[str, Any]) -> Market | None:
        """USD-margined perpetuals (``BTC/USDT:USDT``); delivery contracts and non-linear
        margining are not read."""
        if raw.get("contractType") != "PERPETUAL" or raw.get("marginAsset") != raw["quoteAsset"]:
            return None
        base = self._ccxt.safe_currency_code(raw["baseAsset"])
        quote = self._ccxt.safe_currency_code(raw["quoteAsset"])
        return Market(f"{base}/{quote}:{quote}", raw["symbol"], base, quote, "swap")

    def _first_cursor(self, market: Market, since_ms: int) -> BinanceCursor:
        """Where a symbol's history starts: the week window at ``since``, knowing of its first
        fill if income showed one (see the module docstring)."""
        return BinanceCursor(scan_from_ms=since_ms, known_ms=self._first_fill_ms.get(market.id))

    async def _discover(self, markets: dict[str, Market]) -> set[str]:
        """Open positions (first time only) and symbols with commission income since the last read."""
        found: set[str] = set()
        if self._income_from is None:
            # Once: positions opened before the income history Binance keeps still show here.
            account = await self._take_account()
            found.update(
                self._by_id[p["symbol"]].symbol
                for p in account.get("positions", [])
                if p["symbol"] in self._by_id and Decimal(p["positionAmt"]) != 0
            )
        return found | await self._read_income()

    async def _read_income(self) -> set[str]:
        """Symbols of ``COMMISSION`` income entries from where the last read ended up to now."""
        start = self._since_ms if self._income_from is None else self._income_from
        end = self._clock_ms()
        if end < start:
            return set()
        found: set[str] = set()
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
            for entry in entries:
                market = self._by_id.get(entry.get("symbol", ""))
                if market is None:
                    continue
                found.add(market.symbol)
                time_ms = entry.get("time")
                if isinstance(time_ms, int) and time_ms >= start:
                    self._first_fill_ms[market.id] = min(time_ms, self._first_fill_ms.get(market.id, time_ms))
            if len(entries) < INCOME_LIMIT:
                break
            page += 1
        self._income_from = end + 1
        return found
