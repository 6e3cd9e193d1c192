"""Binance USD-M futures (``/fapi``) on the simulated Binance: perpetuals, accounts, fills, income.

The routes are served by the same app as the spot API (``create_binance_app``),
since one origin override sends every Binance host to the simulator. They reuse
the spot simulator's request handling: signatures, parameter checks, error
answers and the per-family weight limiter (``fapi``: 2400 per minute, headers
``X-MBX-USED-WEIGHT-1M``, 429 then 418).

Futures accounts are generated deterministically from a seed: one-way mode
(``positionSide`` ``BOTH``), long and short positions, flips, fees in USDT or
(``bnb_fee_share`` of the orders) in BNB, and Binance's own ``realizedPnl`` per
fill computed on the position's average entry price (commission excluded).
A futures account's API key also has a spot account (no trades), so that the
key's ``/sapi`` permissions and ``/api`` reads work as on Binance.

Deviations from Binance: prices follow the spot price model (mark = last =
spot close); no funding fees, liquidations or open orders; margin figures are
plain (cross margin, leverage 20, no maintenance tiers); the perpetuals are
listed in ``/fapi/v1/exchangeInfo`` once futures are enabled on the simulator
(creating a futures account enables them) so that a spot-only simulator keeps
serving an empty futures market list.
"""

from __future__ import annotations

import math
import random
import weakref
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from perf_aggregator.simulator import errors
from perf_aggregator.simulator.accounts import Account, RawTrade, SymbolTrades, new_credential
from perf_aggregator.simulator.admin import Created, install_account_admin
from perf_aggregator.simulator.binance import (
    DEFAULT_HISTORY_MS,
    Security,
    SimulatedBinance,
    _Endpoint,
    _endpoint,
    _klines,
    _Query,
)
from perf_aggregator.simulator.errors import BinanceError
from perf_aggregator.simulator.market import DAY_MS, MINUTE_MS, PriceModel, seeded_rng
from perf_aggregator.simulator.units import SCALE, div_round, fmt8

WEEK_MS = 7 * DAY_MS
FUTURES_WEIGHT_LIMIT = 2400
LEVERAGE = 20
WINDOW_TOO_LONG = (400, -1127, "More than 7 days between startTime and endTime.")
_TAKER_RATE = (5, 10_000)  # 0.05% of the notional
_MAKER_RATE = (2, 10_000)  # 0.02%
_BNB_DISCOUNT = (9, 10)  # paying in BNB takes 10% off
_INCOME_TYPES = frozenset({"COMMISSION", "REALIZED_PNL"})
_POPULARITY = {"BTCUSDT": 4.0, "ETHUSDT": 3.0, "SOLUSDT": 2.0}
_MARKET_TRADES_PER_S = {"BTCUSDT": 20.0, "ETHUSDT": 12.0, "SOLUSDT": 5.0}


@dataclass(frozen=True, slots=True)
class Perpetual:
    """A USD-M perpetual contract; amounts in units of 1e-8."""

    symbol: str
    base: str
    tick_units: int
    step_units: int
    min_notional_units: int
    onboard_ms: int
    price_precision: int
    quantity_precision: int

    quote = "USDT"  # every USD-M perpetual here is quoted and margined in USDT


PERPETUALS: dict[str, Perpetual] = {
    p.symbol: p
    for p in (
        Perpetual("BTCUSDT", "BTC", 10_000_000, 100_000, 100 * SCALE, 1569398400000, 2, 3),
        Perpetual("ETHUSDT", "ETH", 1_000_000, 100_000, 20 * SCALE, 1569398400000, 2, 3),
        Perpetual("SOLUSDT", "SOL", 1_000_000, SCALE, 5 * SCALE, 1600128000000, 4, 0),
    )
}
"""Binance's real tick and lot sizes (price * qty stays exact in 8 decimals)."""


def _fixed(units: int, decimals: int) -> str:
    """``units`` (1e-8) printed with ``decimals`` decimals (exact: the amounts are multiples)."""
    text = fmt8(units)
    return text[: len(text) - (8 - decimals)].rstrip(".")


def _trimmed(units: int) -> str:
    text = fmt8(units).rstrip("0")
    return text.rstrip(".")


@dataclass(frozen=True, slots=True)
class FuturesFill(RawTrade):
    """A ``/fapi/v1/userTrades`` element; ``realized_pnl`` in units, Binance's average-cost figure."""

    realized_pnl: int = 0

    def to_wire(self) -> dict[str, Any]:
        """The ``/fapi/v1/userTrades`` element, Binance's field names and string numbers."""
        perp = PERPETUALS[self.symbol]
        return {
            "buyer": self.is_buyer,
            "commission": fmt8(self.commission),
            "commissionAsset": self.commission_asset,
            "id": self.id,
            "maker": self.is_maker,
            "orderId": self.order_id,
            "price": _fixed(self.price, perp.price_precision),
            "qty": _fixed(self.qty, perp.quantity_precision),
            "quoteQty": _trimmed(self.quote_qty),
            "realizedPnl": fmt8(self.realized_pnl),
            "side": "BUY" if self.is_buyer else "SELL",
            "positionSide": "BOTH",
            "symbol": self.symbol,
            "time": self.time,
        }


@dataclass(frozen=True, slots=True)
class _Position:
    """A symbol's one-way position after a fill: signed quantity and its cost (units)."""

    time: int
    amount: int
    cost: Fraction
    """``|amount| * entry price`` (units of quote); the entry price is ``cost / |amount|``."""


class FuturesAccount:
    """One key's USD-M account: its fills (as an :class:`Account`), positions over time, wallet."""

    def __init__(
        self, ledger: Account, positions: dict[str, list[_Position]], deposit: int, deposit_bnb: int
    ) -> None:
        self.ledger = ledger
        self.positions = positions
        self.deposit = deposit
        self.deposit_bnb = deposit_bnb
        self._times = {s: [p.time for p in ps] for s, ps in positions.items()}

    def position(self, symbol: str, now_ms: int) -> _Position | None:
        """The position in ``symbol`` as of ``now_ms`` (``None`` before its first fill)."""
        seen = bisect_right(self._times.get(symbol, []), now_ms)
        return self.positions[symbol][seen - 1] if seen else None

    def wallet(self, now_ms: int) -> dict[str, int]:
        """Wallet balances (units) at ``now_ms``: deposit plus realized pnl minus commissions."""
        wallet = {"USDT": self.deposit, "BNB": self.deposit_bnb}
        for trade in self.ledger.trades:
            if trade.time > now_ms:
                break
            assert isinstance(trade, FuturesFill)
            wallet["USDT"] += trade.realized_pnl
            wallet[trade.commission_asset] -= trade.commission
        return wallet

    def income(self) -> list[dict[str, Any]]:
        """``/fapi/v1/income`` entries of every fill, ascending by time."""
        out: list[dict[str, Any]] = []
        for trade in self.ledger.trades:
            assert isinstance(trade, FuturesFill)
            base = {"symbol": trade.symbol, "info": "", "time": trade.time, "tradeId": str(trade.id)}
            if trade.realized_pnl:
                out.append(
                    {
                        **base,
                        "incomeType": "REALIZED_PNL",
                        "income": fmt8(trade.realized_pnl),
                        "asset": "USDT",
                        "tranId": trade.id * 10 + (0 if trade.is_buyer else 5),
                    }
                )
            out.append(
                {
                    **base,
                    "incomeType": "COMMISSION",
                    "income": fmt8(-trade.commission),
                    "asset": trade.commission_asset,
                    "tranId": trade.id * 10 + (1 if trade.is_buyer else 6),
                }
            )
        return out


_FUTURES: weakref.WeakKeyDictionary[SimulatedBinance, dict[str, FuturesAccount]] = weakref.WeakKeyDictionary()


def futures_accounts(sim: SimulatedBinance) -> dict[str, FuturesAccount]:
    """The futures accounts of ``sim`` by API key (created on first use)."""
    accounts = _FUTURES.get(sim)
    if accounts is None:
        accounts = _FUTURES[sim] = {}
    return accounts


def enable_futures(sim: SimulatedBinance) -> None:
    """List the perpetuals in ``/fapi/v1/exchangeInfo`` (done by creating a futures account)."""
    futures_accounts(sim)


# -- generation ---------------------------------------------------------------


def _round_units(value: Fraction) -> int:
    """Nearest integer, halves to even (Binance rounds its 8-decimal figures)."""
    return round(value)


class _FuturesGenerator:
    """Builds one futures history; all randomness from one seeded stream."""

    def __init__(self, prices: PriceModel, rng: random.Random, end_ms: int, bnb_fee_share: float) -> None:
        self.prices = prices
        self.rng = rng
        self.end_ms = end_ms
        self.bnb_fee_share = bnb_fee_share
        self.fills: list[tuple[str, int, int, int, int, bool, bool, int, str]] = []
        self.position: dict[str, int] = {}
        self.orders = 0

    def _price(self, perp: Perpetual, minute: int) -> int:
        open_, close = self.prices.body_units(perp.symbol, minute)
        low, high = min(open_, close), max(open_, close)
        price = low + int((high - low) * self.rng.random())
        return max(perp.tick_units, price // perp.tick_units * perp.tick_units)

    def _steps(self, perp: Perpetual, price: int) -> int:
        usd = min(50_000.0, max(20.0, self.rng.lognormvariate(math.log(800.0), 0.9)))
        steps = int(usd * SCALE * SCALE / (price * perp.step_units))
        min_steps = -(-perp.min_notional_units * SCALE // (price * perp.step_units))
        return max(steps, min_steps, 1)

    def order(self, symbol: str, at_ms: int, fills: int) -> None:
        rng, perp = self.rng, PERPETUALS[symbol]
        minute = at_ms // MINUTE_MS
        held = self.position.get(symbol, 0) // perp.step_units
        price = self._price(perp, minute)
        steps = self._steps(perp, price)
        if held == 0:
            buy = rng.random() < 0.55
        else:
            reduce = rng.random() < 0.55
            buy = (held < 0) == reduce
            if reduce:
                roll = rng.random()
                if roll < 0.6:
                    steps = max(1, int(abs(held) * rng.uniform(0.25, 1.0)))
                elif roll < 0.8:
                    steps = abs(held)  # close exactly
                else:
                    steps = abs(held) + steps  # flip
        steps = max(steps, fills)
        parts = [steps // fills + (1 if i < steps % fills else 0) for i in range(fills)]
        maker = rng.random() < 0.4
        bnb = rng.random() < self.bnb_fee_share
        self.orders += 1
        time = at_ms
        last_ms = min(self.end_ms, (minute + 1) * MINUTE_MS) - 1
        for part in parts:
            qty = part * perp.step_units
            notional = price * qty // SCALE
            fee, asset = self._fee(notional, maker, bnb, minute)
            self.fills.append((symbol, time, self.orders, price, qty, buy, maker, fee, asset))
            time = min(last_ms, time + rng.randrange(0, 5_000))
        self.position[symbol] = self.position.get(symbol, 0) + (1 if buy else -1) * steps * perp.step_units

    def _fee(self, notional: int, maker: bool, bnb: bool, minute: int) -> tuple[int, str]:
        numerator, denominator = _MAKER_RATE if maker else _TAKER_RATE
        if bnb:
            discount_n, discount_d = _BNB_DISCOUNT
            bnb_usd = self.prices.usd_units("BNB", minute)
            fee = div_round(notional * numerator * discount_n * SCALE, denominator * discount_d * bnb_usd)
            return max(1, fee), "BNB"
        return max(1, div_round(notional * numerator, denominator)), "USDT"

    def trades(self) -> tuple[list[FuturesFill], dict[str, list[_Position]]]:
        """The fills with ids and Binance's realized pnl, and each symbol's position after each fill."""
        rng = self.rng
        out: list[FuturesFill] = []
        positions: dict[str, list[_Position]] = {}
        for symbol in sorted({f[0] for f in self.fills}):
            fills = sorted((f for f in self.fills if f[0] == symbol), key=lambda f: f[1])
            rate = _MARKET_TRADES_PER_S.get(symbol, 1.0) / 1000
            trade_id = rng.randrange(10**8, 4 * 10**9)
            order_id = rng.randrange(10**9, 3 * 10**10)
            order_ids: dict[int, int] = {}
            last_time = fills[0][1]
            amount, cost = 0, Fraction(0)
            history = positions[symbol] = []
            for _, time, order, price, qty, buy, maker, fee, asset in fills:
                trade_id += 1 + int((time - last_time) * rate * rng.uniform(0.5, 1.5))
                if order not in order_ids:
                    order_id += 1 + int((time - last_time) * 2 * rate * rng.uniform(0.5, 1.5))
                    order_ids[order] = order_id
                last_time = time
                signed = qty if buy else -qty
                pnl = Fraction(0)
                if amount and (amount > 0) != buy:  # reduces (and maybe flips) the position
                    closed = min(qty, abs(amount))
                    entry_cost = cost * closed / abs(amount)
                    exit_value = Fraction(price * closed, SCALE)
                    pnl = exit_value - entry_cost if amount > 0 else entry_cost - exit_value
                    cost -= entry_cost
                    opened = qty - closed
                    amount += signed
                    if amount == 0:
                        cost = Fraction(0)
                    elif opened:
                        cost = Fraction(price * opened, SCALE)
                else:
                    amount += signed
                    cost += Fraction(price * qty, SCALE)
                history.append(_Position(time, amount, cost))
                out.append(
                    FuturesFill(
                        symbol,
                        trade_id,
                        order_ids[order],
                        price,
                        qty,
                        price * qty // SCALE,
                        fee,
                        asset,
                        time,
                        buy,
                        maker,
                        realized_pnl=_round_units(pnl),
                    )
                )
        out.sort(key=lambda t: (t.time, t.symbol, t.id))
        return out, positions


def generate_futures_account(
    seed: int,
    start_ms: int,
    end_ms: int,
    *,
    trades: int,
    prices: PriceModel,
    symbols: Sequence[str] | None = None,
    bnb_fee_share: float = 0.3,
    can_withdraw: bool = False,
    can_trade: bool = False,
    created_ms: int | None = None,
) -> tuple[Account, FuturesAccount]:
    """A key's spot account (no trades) and its futures account with ``trades`` fills in ``[start, end)``.

    The fills depend only on the arguments and on ``prices``; credentials are random.
    """
    symbols = tuple(symbols) if symbols is not None else tuple(PERPETUALS)
    unknown = [s for s in symbols if s not in PERPETUALS]
    if unknown or not symbols:
        raise ValueError(f"unknown or no perpetual symbols: {unknown}")
    if end_ms - start_ms < MINUTE_MS or trades < 0:
        raise ValueError("need trades >= 0 and a window of at least one minute")
    if any(start_ms < PERPETUALS[s].onboard_ms for s in symbols):
        raise ValueError("the window starts before some of the perpetuals were listed")
    rng = seeded_rng("futures-account", seed, start_ms, end_ms, trades, symbols, bnb_fee_share)
    sizes: list[int] = []
    remaining = trades
    while remaining > 0:
        size = min(remaining, rng.choices((1, 2, 3), weights=(0.6, 0.3, 0.1))[0])
        sizes.append(size)
        remaining -= size
    times = sorted(rng.randrange(start_ms, end_ms) for _ in sizes)
    weights = [_POPULARITY.get(s, 1.0) for s in symbols]
    generator = _FuturesGenerator(prices, rng, end_ms, bnb_fee_share)
    for size, at_ms in zip(sizes, times, strict=True):
        generator.order(rng.choices(symbols, weights=weights)[0], at_ms, size)
    fills, positions = generator.trades()
    assert len(fills) == trades
    key, secret = new_credential(), new_credential()
    created = end_ms if created_ms is None else created_ms
    uid = rng.randrange(10**8, 10**9)
    spot_balances = {"BNB": int(rng.uniform(0.5, 5.0) * SCALE), "USDT": int(rng.uniform(50, 500) * SCALE)}
    spot = Account(key, secret, uid, created, can_withdraw, can_trade, spot_balances, [])
    ledger = Account(key, secret, uid, created, can_withdraw, can_trade, {}, list(fills))
    deposit = int(rng.uniform(20_000, 200_000)) * SCALE
    bnb_fees = sum(f.commission for f in fills if f.commission_asset == "BNB")
    deposit_bnb = bnb_fees + int(rng.uniform(0.5, 3.0) * SCALE)
    return spot, FuturesAccount(ledger, positions, deposit, deposit_bnb)


# -- documents -----------------------------------------------------------------


def exchange_info(now_ms: int, listed: bool) -> dict[str, Any]:
    """``GET /fapi/v1/exchangeInfo``."""
    return {
        "timezone": "UTC",
        "serverTime": now_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": FUTURES_WEIGHT_LIMIT,
            },
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": [
            {"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"},
            {"asset": "BNB", "marginAvailable": True, "autoAssetExchange": "-0.00100000"},
        ]
        if listed
        else [],
        "symbols": [_symbol_info(p) for p in PERPETUALS.values()] if listed else [],
    }


def _symbol_info(perp: Perpetual) -> dict[str, Any]:
    tick = _trimmed(perp.tick_units)
    step = _trimmed(perp.step_units)
    return {
        "symbol": perp.symbol,
        "pair": perp.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": perp.onboard_ms,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": perp.base,
        "quoteAsset": "USDT",
        "marginAsset": "USDT",
        "pricePrecision": perp.price_precision,
        "quantityPrecision": perp.quantity_precision,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": ["Layer-1"],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "4529764", "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "1000", "stepSize": step},
            {"filterType": "MARKET_LOT_SIZE", "minQty": step, "maxQty": "120", "stepSize": step},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": _trimmed(perp.min_notional_units)},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        "permissionSets": ["GRID", "COPY"],
    }


def _mark(prices: PriceModel, symbol: str, now_ms: int) -> int:
    return prices.close_units(symbol, now_ms // MINUTE_MS - 1)


def account_document(sim: SimulatedBinance, futures: FuturesAccount, *, v3: bool) -> dict[str, Any]:
    """``GET /fapi/v2/account`` (every symbol's position) or ``/fapi/v3/account`` (open ones)."""
    now = sim.now_ms()
    update = futures.ledger.update_time(now)
    positions = []
    unrealized_total = 0
    margin_total = 0
    for perp in PERPETUALS.values():
        position = futures.position(perp.symbol, now)
        amount = position.amount if position else 0
        cost = position.cost if position else Fraction(0)
        mark = _mark(sim.prices, perp.symbol, now)
        notional = Fraction(amount * mark, SCALE)
        unrealized = _round_units(notional - cost if amount > 0 else notional + cost) if amount else 0
        margin = _round_units(abs(notional) / LEVERAGE)
        unrealized_total += unrealized
        margin_total += margin
        entry = _round_units(cost * SCALE / abs(amount)) if amount else 0
        if v3 and not amount:
            continue
        common = {
            "symbol": perp.symbol,
            "positionSide": "BOTH",
            "positionAmt": _fixed(amount, perp.quantity_precision),
            "unrealizedProfit": fmt8(unrealized),
            "initialMargin": fmt8(margin),
            "maintMargin": fmt8(margin // 5),
            "updateTime": position.time if position else 0,
        }
        if v3:
            positions.append(
                {
                    **common,
                    "isolatedMargin": "0",
                    "notional": fmt8(_round_units(notional)),
                    "isolatedWallet": "0",
                }
            )
        else:
            positions.append(
                {
                    **common,
                    "positionInitialMargin": fmt8(margin),
                    "openOrderInitialMargin": "0",
                    "leverage": str(LEVERAGE),
                    "isolated": False,
                    "entryPrice": fmt8(entry),
                    "breakEvenPrice": fmt8(entry),
                    "maxNotional": "10000000",
                    "bidNotional": "0",
                    "askNotional": "0",
                }
            )
    wallet = futures.wallet(now)
    bnb = wallet["BNB"]
    usdt = wallet["USDT"]
    bnb_usd = sim.prices.usd_units("BNB", now // MINUTE_MS - 1)
    available = usdt + unrealized_total - margin_total
    assets = []
    for asset, balance, unrealized, margin in (
        ("USDT", usdt, unrealized_total, margin_total),
        ("BNB", bnb, 0, 0),
    ):
        assets.append(
            {
                "asset": asset,
                "walletBalance": fmt8(balance),
                "unrealizedProfit": fmt8(unrealized),
                "marginBalance": fmt8(balance + unrealized),
                "maintMargin": fmt8(margin // 5),
                "initialMargin": fmt8(margin),
                "positionInitialMargin": fmt8(margin),
                "openOrderInitialMargin": "0.00000000",
                "crossWalletBalance": fmt8(balance),
                "crossUnPnl": fmt8(unrealized),
                "availableBalance": fmt8(balance + unrealized - margin),
                "maxWithdrawAmount": fmt8(max(0, balance + min(0, unrealized) - margin)),
                "updateTime": update,
                **({} if v3 else {"marginAvailable": True}),
            }
        )
    total_wallet = usdt + bnb * bnb_usd // SCALE
    return {
        **({} if v3 else {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True}),
        **({} if v3 else {"feeBurn": True, "tradeGroupId": -1, "updateTime": 0, "multiAssetsMargin": False}),
        "totalInitialMargin": fmt8(margin_total),
        "totalMaintMargin": fmt8(margin_total // 5),
        "totalWalletBalance": fmt8(total_wallet),
        "totalUnrealizedProfit": fmt8(unrealized_total),
        "totalMarginBalance": fmt8(total_wallet + unrealized_total),
        "totalPositionInitialMargin": fmt8(margin_total),
        "totalOpenOrderInitialMargin": "0.00000000",
        "totalCrossWalletBalance": fmt8(total_wallet),
        "totalCrossUnPnl": fmt8(unrealized_total),
        "availableBalance": fmt8(available),
        "maxWithdrawAmount": fmt8(max(0, available)),
        "assets": assets,
        "positions": positions,
    }


# -- handlers ----------------------------------------------------------------------


def _perpetual(symbol: str) -> Perpetual:
    perp = PERPETUALS.get(symbol)
    if perp is None:
        raise BinanceError(*errors.INVALID_SYMBOL)
    return perp


def _futures_of(sim: SimulatedBinance, account: Account | None) -> FuturesAccount:
    assert account is not None
    futures = futures_accounts(sim).get(account.api_key)
    if futures is None:
        # A key without futures permission: Binance refuses it like an unknown key.
        raise BinanceError(*errors.REJECTED_KEY)
    return futures


def _time(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    return {"serverTime": sim.now_ms()}


def _ping(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    return {}


def _info(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    return exchange_info(sim.now_ms(), listed=sim in _FUTURES)


def _futures_klines(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    _perpetual(q.required("symbol"))
    return _klines(sim, q, account)


def _klines_weight(params: Mapping[str, str]) -> int:
    limit = params.get("limit", "500")
    size = int(limit) if limit.isdigit() else 500
    return 1 if size < 100 else 2 if size < 500 else 5 if size <= 1000 else 10


def _account_v2(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    return account_document(sim, _futures_of(sim, account), v3=False)


def _account_v3(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    return account_document(sim, _futures_of(sim, account), v3=True)


def _time_window(q: _Query) -> tuple[int, int] | None:
    """``startTime``/``endTime`` completed to a window of at most 7 days (error beyond)."""
    start_ms, end_ms = q.integer("startTime"), q.integer("endTime")
    if start_ms is None and end_ms is None:
        return None
    if start_ms is not None and end_ms is not None:
        if end_ms - start_ms > WEEK_MS:
            raise BinanceError(*WINDOW_TOO_LONG)
        return start_ms, end_ms
    if start_ms is None:
        assert end_ms is not None
        return end_ms - WEEK_MS, end_ms
    return start_ms, start_ms + WEEK_MS


def _user_trades(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    futures = _futures_of(sim, account)
    perp = _perpetual(q.required("symbol"))
    order_id, from_id = q.integer("orderId"), q.integer("fromId")
    limit = q.limit(500, 1000)
    window = _time_window(q)
    if from_id is not None and window is not None:
        raise BinanceError(*errors.BAD_COMBINATION)
    book: SymbolTrades = futures.ledger.book(perp.symbol)
    now = sim.now_ms()
    if order_id is not None or from_id is not None:
        trades = book.select(now_ms=now, limit=limit, from_id=from_id, order_id=order_id)
    elif window is not None:
        start, end = window
        lo = bisect_left(book.times, start)
        hi = min(bisect_right(book.times, now), bisect_right(book.times, end))
        trades = book.trades[lo : max(lo, min(hi, lo + limit))]
    else:
        # Neither: the most recent trades of the last 7 days.
        lo = bisect_left(book.times, now - WEEK_MS)
        hi = bisect_right(book.times, now)
        trades = book.trades[max(lo, hi - limit) : hi]
    return [t.to_wire() for t in trades]


def _income(sim: SimulatedBinance, q: _Query, account: Account | None) -> Any:
    futures = _futures_of(sim, account)
    symbol, income_type = q.text("symbol"), q.text("incomeType")
    if symbol is not None:
        _perpetual(symbol)
    if income_type is not None and income_type not in _INCOME_TYPES | {"FUNDING_FEE", "TRANSFER"}:
        raise errors.illegal("incomeType", "a Binance income type")
    limit = q.limit(100, 1000)
    page = q.integer("page") or 1
    now = sim.now_ms()
    start_ms, end_ms = q.integer("startTime"), q.integer("endTime")
    # Neither: the last 7 days; endTime only: the 7 days before it; startTime only: up to now.
    end = now if end_ms is None else min(end_ms, now)
    start = end - WEEK_MS if start_ms is None else start_ms
    selected = [
        entry
        for entry in futures.income()
        if start <= entry["time"] <= end
        and (symbol is None or entry["symbol"] == symbol)
        and (income_type is None or entry["incomeType"] == income_type)
    ]
    return selected[(page - 1) * limit : page * limit]


def futures_endpoints() -> dict[str, _Endpoint]:
    """The ``/fapi`` routes with their weights (Binance's published values)."""
    signed = Security.USER_DATA
    return {
        "/fapi/v1/ping": _endpoint("fapi", 1, Security.NONE, "", _ping),
        "/fapi/v1/time": _endpoint("fapi", 1, Security.NONE, "", _time),
        "/fapi/v1/exchangeInfo": _endpoint("fapi", 1, Security.NONE, "", _info),
        "/fapi/v1/klines": _endpoint(
            "fapi", _klines_weight, Security.NONE, "symbol interval startTime endTime limit", _futures_klines
        ),
        "/fapi/v2/account": _endpoint("fapi", 5, signed, "", _account_v2),
        "/fapi/v3/account": _endpoint("fapi", 5, signed, "", _account_v3),
        "/fapi/v1/userTrades": _endpoint(
            "fapi", 5, signed, "symbol orderId startTime endTime fromId limit", _user_trades
        ),
        "/fapi/v1/income": _endpoint(
            "fapi", 30, signed, "symbol incomeType startTime endTime page limit", _income
        ),
    }


class FuturesAccountRequest(BaseModel):
    """Body of ``POST /_simulator/futures/accounts``; times in epoch milliseconds."""

    seed: int
    trades: int = Field(ge=0, le=500_000)
    start: int | None = None
    end: int | None = None
    symbols: list[str] | None = None
    can_withdraw: bool = False
    can_trade: bool = False
    bnb_fee_share: float = Field(default=0.3, ge=0.0, le=1.0)


def create_futures_account(
    sim: SimulatedBinance,
    seed: int,
    trades: int,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    symbols: Sequence[str] | None = None,
    can_withdraw: bool = False,
    can_trade: bool = False,
    bnb_fee_share: float = 0.3,
) -> FuturesAccount:
    """Generate and register a futures account (and its key's empty spot account) on ``sim``."""
    now = sim.now_ms()
    end = now if end_ms is None else end_ms
    start = end - DEFAULT_HISTORY_MS if start_ms is None else start_ms
    if end > now:
        raise ValueError("the history cannot end in the future")
    spot, futures = generate_futures_account(
        seed,
        start,
        end,
        trades=trades,
        prices=sim.prices,
        symbols=symbols,
        bnb_fee_share=bnb_fee_share,
        can_withdraw=can_withdraw,
        can_trade=can_trade,
        created_ms=now,
    )
    sim.add_account(spot)
    futures_accounts(sim)[spot.api_key] = futures
    return futures


def install_futures_admin(app: FastAPI, sim: SimulatedBinance) -> None:
    """``POST /_simulator/futures/accounts`` and ``GET /_simulator/futures/accounts/{key}/trades``."""

    def create(body: FuturesAccountRequest) -> Created:
        ledger = create_futures_account(
            sim,
            body.seed,
            body.trades,
            start_ms=body.start,
            end_ms=body.end,
            symbols=body.symbols,
            can_withdraw=body.can_withdraw,
            can_trade=body.can_trade,
            bnb_fee_share=body.bnb_fee_share,
        ).ledger
        return ledger.api_key, ledger.api_secret, len(ledger.trades)

    def trades_of(api_key: str) -> list[dict[str, Any]] | None:
        account = futures_accounts(sim).get(api_key)
        return None if account is None else account.ledger.raw_trades()

    install_account_admin(app, "/_simulator/futures/accounts", FuturesAccountRequest, create, trades_of)


__all__ = [
    "PERPETUALS",
    "FuturesAccount",
    "FuturesFill",
    "Perpetual",
    "create_futures_account",
    "enable_futures",
    "futures_accounts",
    "futures_endpoints",
    "generate_futures_account",
    "install_futures_admin",
]
