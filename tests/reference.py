"""An independent, deliberately plain implementation of METRICS.md for spot accounts.

It works from raw Binance payloads (myTrades elements and klines) and shares no
code with the project's ledger, so end-to-end tests can compare the service's
figures against it. Realized pnl (fee shares included) is summed in exact fractions and
rounded once, half-even, at the edge: the exact figure, whatever the digits of a division
(stricter than METRICS.md, whose 28-digit divisions may round a half-way tie made of fees
charged only in part either way: not met in the simulators' accounts, see docs/metrics-notes.md).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from typing import Any

STABLE = {"USD", "USDT", "USDC", "FDUSD", "BUSD", "DAI", "TUSD", "USDP", "PYUSD", "USDS"}
HOUR_MS = 3_600_000


def usd8(x: Decimal | Fraction) -> str:
    if isinstance(x, Fraction):
        q = Decimal(round(x * 100_000_000)).scaleb(-8)  # round(): half-even, exact
    else:
        q = x.quantize(Decimal("1E-8"), rounding=ROUND_HALF_EVEN)
    return "0" if q == 0 else format(q.normalize(), "f")


def decimal(x: Fraction) -> Decimal:
    """``x`` to the current context's precision (for square roots and ratios)."""
    return Decimal(x.numerator) / Decimal(x.denominator)


def qty(x: Decimal) -> str:
    return "0" if x == 0 else format(x.normalize(), "f")


@dataclass
class Prices:
    """Candle closes by market and open minute; ``pricing`` maps currency to its market."""

    closes: dict[str, dict[int, Decimal]]
    pricing: dict[str, str]

    def usd(self, amount: Decimal, currency: str, t: int) -> Decimal | None:
        if amount == 0:
            return Decimal(0)
        if currency in STABLE:
            return amount
        market = self.pricing.get(currency)
        if market is None:
            return None
        candles = self.closes.get(market, {})
        best = None
        for open_ms in range(t - t % 60_000, t - HOUR_MS, -60_000):
            if open_ms in candles:
                best = candles[open_ms]
                break
        return None if best is None else amount * best


@dataclass
class Sym:
    trades: int = 0
    unpriced: int = 0
    volume: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    pnl: Fraction = Fraction(0)
    basis: Decimal = Decimal(0)
    closed_qty: Decimal = Decimal(0)
    unmatched: Decimal = Decimal(0)
    closed_pnls: list[Fraction] = field(default_factory=list)
    lots: list[list[Any]] = field(default_factory=list)
    first: int | None = None
    last: int | None = None


def compute(
    raw_trades: list[dict[str, Any]],
    markets: dict[str, tuple[str, str]],
    prices: Prices,
    since_ms: int,
    as_of_ms: int,
) -> dict[str, Any]:
    """Figures for raw myTrades elements (``symbol`` is the Binance id; ``markets`` maps it to base/quote)."""
    with localcontext() as ctx:
        ctx.prec = 80
        seen = set()
        trades = []
        for r in raw_trades:
            key = (r["symbol"], r["id"], r["isBuyer"])
            if r["time"] < since_ms or key in seen:
                continue
            seen.add(key)
            trades.append(r)
        trades.sort(key=lambda r: (r["time"], int(r["id"]), 0 if r["isBuyer"] else 1))
        syms: dict[str, Sym] = defaultdict(Sym)
        daily: dict[int, Fraction] = defaultdict(Fraction)
        hold_weighted = Decimal(0)
        hold_qty = Decimal(0)
        for r in trades:
            base, quote = markets[r["symbol"]]
            s = syms[f"{base}/{quote}"]
            t = r["time"]
            s.trades += 1
            s.first = t if s.first is None else s.first
            s.last = t
            amount, price = Decimal(r["qty"]), Decimal(r["price"])
            value = prices.usd(amount * price, quote, t)
            fee = prices.usd(Decimal(r["commission"]), r["commissionAsset"], t)
            if value is None or fee is None:
                s.unpriced += 1
                continue
            s.volume += value
            s.fees += fee
            if r["isBuyer"]:
                s.lots.append([amount, price, t, fee, amount, prices.usd(Decimal(1), quote, t)])
                continue
            remaining = amount
            closed_pnl = Fraction(0)
            matched = False
            while remaining > 0 and s.lots:
                lot = s.lots[0]
                q = min(remaining, lot[0])
                quote_rate_now = prices.usd(Decimal(1), quote, t)
                piece = (
                    Fraction(q * (price - lot[1]) * quote_rate_now)
                    - Fraction(lot[3]) * Fraction(q) / Fraction(lot[4])
                    - Fraction(fee) * Fraction(q) / Fraction(amount)
                )
                s.pnl += piece
                s.basis += q * lot[1] * lot[5]
                s.closed_qty += q
                closed_pnl += piece
                matched = True
                daily[t // 86_400_000] += piece
                hold_weighted += q * (t - lot[2])
                hold_qty += q
                lot[0] -= q
                remaining -= q
                if lot[0] == 0:
                    s.lots.pop(0)
            s.unmatched += remaining
            if matched:
                s.closed_pnls.append(closed_pnl)
        symbols = {}
        for name, s in sorted(syms.items()):
            wins = [p for p in s.closed_pnls if p > 0]
            symbols[name] = {
                "trades": s.trades,
                "unpriced_trades": s.unpriced,
                "volume_usd": usd8(s.volume),
                "fees_usd": usd8(s.fees),
                "realized_pnl_usd": usd8(s.pnl),
                "return_pct": None if s.basis == 0 else float(100 * s.pnl / Fraction(s.basis)),
                "closed_quantity": qty(s.closed_qty),
                "open_quantity": qty(sum((lot[0] for lot in s.lots), Decimal(0))),
                "unmatched_quantity": qty(s.unmatched),
                "closed_trades": len(s.closed_pnls),
                "winning_trades": len(wins),
                "win_rate": len(wins) / len(s.closed_pnls) if s.closed_pnls else None,
            }
        all_closed = [p for s in syms.values() for p in s.closed_pnls]
        wins = [p for p in all_closed if p > 0]
        losses = [p for p in all_closed if p < 0]
        pnl = sum((s.pnl for s in syms.values()), Fraction(0))
        basis = sum((s.basis for s in syms.values()), Decimal(0))
        first = min((s.first for s in syms.values() if s.first is not None), default=None)
        days = [] if first is None else list(range(first // 86_400_000, as_of_ms // 86_400_000 + 1))
        series = [daily.get(d, Fraction(0)) for d in days]
        peak = cum = dd = Fraction(0)
        for x in series:
            cum += x
            peak = max(peak, cum)
            dd = max(dd, peak - cum)
        n = len(series)
        mean = sum(series, Fraction(0)) / n if n else Fraction(0)
        std = (
            decimal(sum(((x - mean) ** 2 for x in series), Fraction(0)) / (n - 1)).sqrt() if n >= 2 else None
        )
        downside = [min(x, Fraction(0)) ** 2 for x in series]
        summary = {
            "trades": sum(s.trades for s in syms.values()),
            "symbols_traded": len(syms),
            "volume_usd": usd8(sum((s.volume for s in syms.values()), Decimal(0))),
            "fees_usd": usd8(sum((s.fees for s in syms.values()), Decimal(0))),
            "realized_pnl_usd": usd8(pnl),
            "return_pct": None if basis == 0 else float(100 * pnl / Fraction(basis)),
            "closed_trades": len(all_closed),
            "win_rate": None if not all_closed else len(wins) / len(all_closed),
            "profit_factor": None
            if not losses
            else float(sum(wins, Fraction(0)) / abs(sum(losses, Fraction(0)))),
            "avg_win_usd": usd8(sum(wins, Fraction(0)) / len(wins)) if wins else None,
            "avg_loss_usd": usd8(sum(losses, Fraction(0)) / len(losses)) if losses else None,
            "largest_win_usd": usd8(max(wins)) if wins else None,
            "largest_loss_usd": usd8(min(losses)) if losses else None,
            "avg_holding_seconds": None if hold_qty == 0 else float(hold_weighted / hold_qty / 1000),
            "max_drawdown_usd": usd8(dd),
            "sharpe_ratio": None if std is None or std == 0 else float(decimal(mean) / std) * math.sqrt(365),
            "sortino_ratio": None
            if not any(x < 0 for x in series)
            else float(decimal(mean) / decimal(sum(downside, Fraction(0)) / n).sqrt()) * math.sqrt(365),
            "daily_pnl_volatility_usd": None if std is None else usd8(std),
            "trading_days": len(days),
            "unpriced_trades": sum(s.unpriced for s in syms.values()),
            "period_start": first,
            "period_end": max((s.last for s in syms.values() if s.last is not None), default=None),
        }
        return {"symbols": symbols, "summary": summary}
