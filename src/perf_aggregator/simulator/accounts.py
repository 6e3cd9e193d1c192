"""Simulated Binance accounts: API credentials, balances and deterministic trade histories."""

from __future__ import annotations

import math
import random
import secrets
import string
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from perf_aggregator.simulator.market import ASSETS, DAY_MS, MARKETS, MINUTE_MS, PriceModel, seeded_rng
from perf_aggregator.simulator.units import SCALE, div_round, fmt8

DEFAULT_SYMBOLS: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "ETHBTC")

_ALPHANUMERIC = string.ascii_letters + string.digits
# How often each market is picked relative to the others (default 1).
_POPULARITY = {"BTCUSDT": 4.0, "ETHUSDT": 3.0, "SOLUSDT": 2.0, "BNBUSDT": 1.5}
# Public trades per second on each market: the gap between two of the account's
# trade ids is about this rate times the time between them (other users' trades).
_MARKET_TRADES_PER_S = {"BTCUSDT": 5.0, "ETHUSDT": 3.0}
_FEE_RATE = (1, 1000)  # 0.1% of the received asset
_BNB_FEE_RATE = (75, 100_000)  # 0.075% of the trade's value, paid in BNB


def new_credential() -> str:
    """A random 64-character alphanumeric string, the shape of Binance API keys and secrets."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(64))


@dataclass(frozen=True, slots=True)
class RawTrade:
    """One fill of the account; amounts in units of 1e-8."""

    symbol: str
    id: int
    order_id: int
    price: int
    qty: int
    quote_qty: int
    commission: int
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool

    def to_wire(self) -> dict[str, Any]:
        """The ``/api/v3/myTrades`` element."""
        return {
            "symbol": self.symbol,
            "id": self.id,
            "orderId": self.order_id,
            "orderListId": -1,
            "price": fmt8(self.price),
            "qty": fmt8(self.qty),
            "quoteQty": fmt8(self.quote_qty),
            "commission": fmt8(self.commission),
            "commissionAsset": self.commission_asset,
            "time": self.time,
            "isBuyer": self.is_buyer,
            "isMaker": self.is_maker,
            "isBestMatch": True,
        }


class SymbolTrades:
    """One market's trades of an account, ascending by id (hence by time), with fast lookups."""

    def __init__(self, trades: Sequence[RawTrade]) -> None:
        self.trades = list(trades)
        self.ids = [t.id for t in self.trades]
        self.times = [t.time for t in self.trades]
        self.by_order: dict[int, list[int]] = {}
        for position, trade in enumerate(self.trades):
            self.by_order.setdefault(trade.order_id, []).append(position)

    def select(
        self,
        *,
        now_ms: int,
        limit: int,
        from_id: int | None = None,
        order_id: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[RawTrade]:
        """``myTrades`` semantics; the caller has validated the parameter combination.

        Only trades that happened by ``now_ms`` exist. With ``order_id``: that order's
        fills (from ``from_id``); with ``from_id``: ids >= it; with a time bound: the
        24-hour window it defines, earliest first; otherwise the latest ``limit``.
        """
        visible = bisect_right(self.times, now_ms)
        if order_id is not None:
            positions = [
                p
                for p in self.by_order.get(order_id, ())
                if p < visible and (from_id is None or self.ids[p] >= from_id)
            ]
            return [self.trades[p] for p in positions[:limit]]
        if from_id is not None:
            lo = bisect_left(self.ids, from_id)
            return self.trades[lo : min(visible, lo + limit)]
        if start_ms is not None or end_ms is not None:
            if start_ms is None:
                assert end_ms is not None
                start_ms = end_ms - DAY_MS + 1
            if end_ms is None:
                end_ms = start_ms + DAY_MS - 1
            lo = bisect_left(self.times, start_ms)
            hi = min(visible, bisect_right(self.times, end_ms))
            return self.trades[lo : max(lo, min(hi, lo + limit))]
        return self.trades[max(0, visible - limit) : visible]


@dataclass
class Account:
    """A simulated account with one API key."""

    api_key: str
    api_secret: str
    uid: int
    created_ms: int
    can_withdraw: bool
    can_trade: bool
    balances: dict[str, int]
    """Free balance (units) per asset; every listed asset appears, zero or not."""
    trades: list[RawTrade]
    """All fills, ascending by ``(time, symbol, id)``."""
    books: dict[str, SymbolTrades] = field(init=False)
    _times: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self._times = [t.time for t in self.trades]
        per_symbol: dict[str, list[RawTrade]] = {}
        for trade in self.trades:
            per_symbol.setdefault(trade.symbol, []).append(trade)
        self.books = {
            symbol: SymbolTrades(sorted(trades, key=lambda t: (t.id, not t.is_buyer)))
            for symbol, trades in per_symbol.items()
        }

    def update_time(self, now_ms: int) -> int:
        """When the balances last changed as seen at ``now_ms``: the last trade, or the key's creation."""
        seen = bisect_right(self._times, now_ms)
        return self._times[seen - 1] if seen else self.created_ms

    def book(self, symbol: str) -> SymbolTrades:
        """The account's trades on ``symbol`` (possibly none)."""
        return self.books.get(symbol) or SymbolTrades(())

    def raw_trades(self) -> list[dict[str, Any]]:
        """Every fill in ``myTrades`` shape."""
        return [t.to_wire() for t in self.trades]


@dataclass(slots=True)
class _Fill:
    """A fill before it gets its exchange trade id and order id."""

    symbol: str
    time: int
    seq: int
    order: int
    price: int
    qty: int
    is_buyer: bool
    is_maker: bool
    commission: int
    commission_asset: str
    pair: bool = False
    """Second record of a self-trade: it shares the previous fill's trade id."""


def _split(total_steps: int, parts: int, rng: random.Random) -> list[int]:
    cuts = sorted(rng.sample(range(1, total_steps), parts - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total_steps], strict=True)]


class _Generator:
    """Builds one account's history; all randomness comes from one seeded stream."""

    def __init__(
        self,
        prices: PriceModel,
        rng: random.Random,
        start_ms: int,
        end_ms: int,
        bnb_fee_share: float,
    ) -> None:
        self.prices = prices
        self.rng = rng
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.bnb_fee_share = bnb_fee_share
        self.fills: list[_Fill] = []
        self.inventory: dict[str, int] = {}
        self.orders = 0

    def _fee(
        self,
        symbol: str,
        minute: int,
        is_buyer: bool,
        qty: int,
        quote_qty: int,
        bnb: bool,
    ) -> tuple[int, str]:
        market = MARKETS[symbol]
        if bnb:
            # The fee's USD value, converted at the minute's BNBUSDT close.
            quote_usd = self.prices.usd_units(market.quote, minute)
            bnb_usd = self.prices.usd_units("BNB", minute)
            numerator, denominator = _BNB_FEE_RATE
            return max(1, div_round(quote_qty * quote_usd * numerator, denominator * bnb_usd)), "BNB"
        numerator, denominator = _FEE_RATE
        if is_buyer:
            return max(1, div_round(qty * numerator, denominator)), market.base
        return max(1, div_round(quote_qty * numerator, denominator)), market.quote

    def _price(self, symbol: str, minute: int) -> tuple[int, int, int]:
        """A fill price near the minute's close, and the candle body ``(low, high)`` it lies in."""
        tick = MARKETS[symbol].tick_units
        open_, close = self.prices.body_units(symbol, minute)
        # Inside the body, hence inside the candle: no fill outside the minute's range.
        price = close + round((open_ - close) // tick * self.rng.random() * 0.5) * tick
        return price, min(open_, close), max(open_, close)

    def _order_steps(self, symbol: str, minute: int, price: int, sell: bool) -> int:
        """Size of a new order in lot steps: a random USD notional, or part of the holdings when selling."""
        market = MARKETS[symbol]
        rng, step = self.rng, market.step_units
        held = self.inventory.get(market.base, 0)
        if sell and held > 0 and rng.random() < 0.85:
            steps = int(held * rng.uniform(0.25, 1.0)) // step
        else:
            usd = min(25_000.0, max(12.0, rng.lognormvariate(math.log(300.0), 0.9)))
            base_usd = price * self.prices.usd_units(market.quote, minute) / SCALE / SCALE
            steps = int(usd / base_usd * SCALE / step)
        min_steps = -(-market.min_notional_units * SCALE // (price * step))
        return max(steps, min_steps, 3)

    def order(self, symbol: str, at_ms: int, fills: int) -> None:
        """One order of ``fills`` fills placed at ``at_ms``."""
        rng, market = self.rng, MARKETS[symbol]
        minute = at_ms // MINUTE_MS
        held = self.inventory.get(market.base, 0)
        # Mostly long: sell about half the time while holding, rarely otherwise
        # (then from holdings acquired before the window).
        sell = rng.random() < (0.45 if held > 0 else 0.15)
        maker = rng.random() < 0.4
        bnb = rng.random() < self.bnb_fee_share
        price, low, high = self._price(symbol, minute)
        parts = _split(self._order_steps(symbol, minute, price, sell), fills, rng)
        self.orders += 1
        time, tick = at_ms, market.tick_units
        last_ms = min(self.end_ms, (minute + 1) * MINUTE_MS) - 1
        for part in parts:
            qty = part * market.step_units
            quote_qty = price * qty // SCALE
            fee, fee_asset = self._fee(symbol, minute, not sell, qty, quote_qty, bnb)
            self.fills.append(
                _Fill(
                    symbol,
                    time,
                    len(self.fills),
                    self.orders,
                    price,
                    qty,
                    not sell,
                    maker,
                    fee,
                    fee_asset,
                )
            )
            if maker:
                # A resting order fills as others trade against it (within the minute,
                # whose price range is known to contain the order's price).
                time = min(last_ms, time + rng.randrange(0, 20_000))
            elif rng.random() < 0.5:
                # A taker order sweeping the book fills at worse and worse prices.
                price = max(low, price - tick) if sell else min(high, price + tick)
        self.inventory[market.base] = held + (-1 if sell else 1) * sum(parts) * market.step_units

    def self_trade(self, symbol: str, at_ms: int) -> None:
        """The account's buy order matching its own sell order: one trade id, two records."""
        rng, market = self.rng, MARKETS[symbol]
        minute = at_ms // MINUTE_MS
        price = self._price(symbol, minute)[0]
        qty = self._order_steps(symbol, minute, price, sell=False) * market.step_units
        quote_qty = price * qty // SCALE
        buyer_is_maker = rng.random() < 0.5
        for is_buyer in (True, False):
            self.orders += 1
            bnb = rng.random() < self.bnb_fee_share
            fee, fee_asset = self._fee(symbol, minute, is_buyer, qty, quote_qty, bnb)
            self.fills.append(
                _Fill(
                    symbol,
                    at_ms,
                    len(self.fills),
                    self.orders,
                    price,
                    qty,
                    is_buyer,
                    buyer_is_maker == is_buyer,
                    fee,
                    fee_asset,
                    pair=not is_buyer,
                )
            )

    def trades(self) -> list[RawTrade]:
        """The fills with exchange ids: per market, increasing with time, with gaps for other users."""
        rng = self.rng
        out: list[RawTrade] = []
        for symbol in sorted({f.symbol for f in self.fills}):
            fills = sorted((f for f in self.fills if f.symbol == symbol), key=lambda f: (f.time, f.seq))
            rate = _MARKET_TRADES_PER_S.get(symbol, 1.0) / 1000
            trade_id = rng.randrange(10**8, 4 * 10**9)
            order_id = rng.randrange(10**9, 3 * 10**10)
            order_ids: dict[int, int] = {}
            last_time = self.start_ms
            for fill in fills:
                if not fill.pair:
                    trade_id += 1 + int((fill.time - last_time) * rate * rng.uniform(0.5, 1.5))
                if fill.order not in order_ids:
                    order_id += 1 + int((fill.time - last_time) * 2 * rate * rng.uniform(0.5, 1.5))
                    order_ids[fill.order] = order_id
                last_time = fill.time
                assert fill.price * fill.qty % SCALE == 0, f"{symbol}: price * qty needs more than 8 decimals"
                out.append(
                    RawTrade(
                        symbol,
                        trade_id,
                        order_ids[fill.order],
                        fill.price,
                        fill.qty,
                        fill.price * fill.qty // SCALE,
                        fill.commission,
                        fill.commission_asset,
                        fill.time,
                        fill.is_buyer,
                        fill.is_maker,
                    )
                )
        out.sort(key=lambda t: (t.time, t.symbol, t.id, not t.is_buyer))
        return out


def _balances(
    trades: Sequence[RawTrade],
    rng: random.Random,
    prices: PriceModel,
    end_ms: int,
) -> dict[str, int]:
    """Final balances: holdings from before the window cover every outflow, plus some spare."""
    level: dict[str, int] = {}
    lowest: dict[str, int] = {}
    for t in trades:
        market = MARKETS[t.symbol]
        sign = 1 if t.is_buyer else -1
        flows = (market.base, sign * t.qty), (market.quote, -sign * t.quote_qty)
        for asset, delta in (*flows, (t.commission_asset, -t.commission)):
            level[asset] = level.get(asset, 0) + delta
            lowest[asset] = min(lowest.get(asset, 0), level[asset])
    minute = (end_ms - 1) // MINUTE_MS
    balances = dict.fromkeys(ASSETS, 0)
    for asset in sorted(level):
        spare_usd = rng.uniform(20.0, 2_000.0)
        spare = int(spare_usd * SCALE / prices.usd_units(asset, minute) * SCALE)
        balances[asset] = level[asset] - lowest[asset] + spare
    return balances


def generate_account(
    seed: int,
    start_ms: int,
    end_ms: int,
    *,
    trades: int,
    prices: PriceModel,
    symbols: Sequence[str] | None = None,
    bnb_fee_share: float = 0.3,
    self_trades: int | None = None,
    can_withdraw: bool = False,
    can_trade: bool = False,
    created_ms: int | None = None,
) -> Account:
    """An account with exactly ``trades`` fills in ``[start_ms, end_ms)`` on ``symbols``.

    The fills depend only on the arguments and on ``prices`` (its seed): the same
    call gives the same trades. The credentials are random every time.
    Orders have 1-3 fills; ``self_trades`` (default: about one per 500 fills) are
    pairs of records sharing one trade id; a ``bnb_fee_share`` of orders pay their
    fee in BNB. ``created_ms`` (the key's creation time) defaults to ``end_ms``.
    """
    symbols = tuple(symbols) if symbols is not None else DEFAULT_SYMBOLS
    unknown = [s for s in symbols if s not in MARKETS]
    if unknown or not symbols:
        raise ValueError(f"unknown or no symbols: {unknown}")
    if end_ms - start_ms < MINUTE_MS or trades < 0:
        raise ValueError("need trades >= 0 and a window of at least one minute")
    if any(start_ms < MARKETS[s].listed_ms for s in symbols):
        raise ValueError("the window starts before some of the symbols were listed")
    if self_trades is None:
        self_trades = max(1, trades // 500) if trades >= 50 else 0
    self_trades = min(self_trades, trades // 2)
    rng = seeded_rng("account", seed, start_ms, end_ms, trades, symbols, bnb_fee_share, self_trades)

    sizes: list[int] = []
    remaining = trades - 2 * self_trades
    while remaining > 0:
        size = min(remaining, rng.choices((1, 2, 3), weights=(0.6, 0.3, 0.1))[0])
        sizes.append(size)
        remaining -= size
    # Self-trades take random slots among the orders; a 0 marks one.
    slots = sizes + [0] * self_trades
    rng.shuffle(slots)
    times = sorted(rng.randrange(start_ms, end_ms) for _ in slots)
    weights = [_POPULARITY.get(s, 1.0) for s in symbols]

    generator = _Generator(prices, rng, start_ms, end_ms, bnb_fee_share)
    for size, at_ms in zip(slots, times, strict=True):
        symbol = rng.choices(symbols, weights=weights)[0]
        if size:
            generator.order(symbol, at_ms, size)
        else:
            generator.self_trade(symbol, at_ms)
    fills = generator.trades()
    return Account(
        api_key=new_credential(),
        api_secret=new_credential(),
        uid=rng.randrange(10**8, 10**9),
        created_ms=end_ms if created_ms is None else created_ms,
        can_withdraw=can_withdraw,
        can_trade=can_trade,
        balances=_balances(fills, rng, prices, end_ms),
        trades=fills,
    )
