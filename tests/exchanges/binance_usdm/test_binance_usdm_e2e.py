"""A futures account over HTTP: client → enclave → simulated Binance USD-M, figures checked
against an independent FIFO-with-shorts computation (METRICS.md "Swap") of the raw fills."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from conftest import enclave_settings
from e2e.test_binance_flow import simulator_prices, wait_backfill
from perf_aggregator.api.app import create_app
from perf_aggregator.client import Credentials, EnclaveClient, VerificationPolicy, verify_summary
from perf_aggregator.devserver import serve_in_thread
from perf_aggregator.formats import parse_rfc3339
from reference import Prices, qty, usd8

from .conftest import DAY_MS, FuturesSim

JANUARY_13_2025_MS = 1_736_726_400_000
PERPETUALS = {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT"), "SOLUSDT": ("SOL", "USDT")}


@dataclass
class Book:
    trades: int = 0
    unpriced: int = 0
    volume: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    pnl: Fraction = Fraction(0)
    basis: Decimal = Decimal(0)
    closed_qty: Decimal = Decimal(0)
    short_closed: Decimal = Decimal(0)
    closed_pnls: list[Fraction] = field(default_factory=list)
    lots: list[list[Any]] = field(default_factory=list)
    """[remaining, price, time, trade fee usd, trade amount, quote usd rate, +1 long / -1 short]"""


def swap_reference(
    raw: list[dict[str, Any]], prices: Prices, since_ms: int
) -> tuple[dict[str, dict[str, Any]], Decimal]:
    """Per-symbol figures of raw ``userTrades`` fills: FIFO lots, sells open shorts, buys close them."""
    with localcontext() as ctx:
        ctx.prec = 80
        fills = {(r["symbol"], r["id"], r["side"]): r for r in raw if r["time"] >= since_ms}
        ordered = sorted(
            fills.values(), key=lambda r: (r["time"], int(r["id"]), 0 if r["side"] == "BUY" else 1)
        )
        books: dict[str, Book] = defaultdict(Book)
        for r in ordered:
            base, quote = PERPETUALS[r["symbol"]]
            book = books[f"{base}/{quote}:{quote}"]
            t, amount, price = r["time"], Decimal(r["qty"]), Decimal(r["price"])
            book.trades += 1
            value = prices.usd(amount * price, quote, t)
            fee = prices.usd(Decimal(r["commission"]), r["commissionAsset"], t)
            if value is None or fee is None:
                book.unpriced += 1
                continue
            book.volume += value
            book.fees += fee
            direction = 1 if r["side"] == "BUY" else -1
            rate = prices.usd(Decimal(1), quote, t)
            remaining = amount
            closed_pnl = Fraction(0)
            matched = False
            while remaining > 0 and book.lots and book.lots[0][6] != direction:
                lot = book.lots[0]
                q = min(remaining, lot[0])
                move = (price - lot[1]) if lot[6] == 1 else (lot[1] - price)
                piece = (  # exact: rounded once, at the edge, as the service's figure is
                    Fraction(q * move * rate)
                    - Fraction(lot[3]) * Fraction(q) / Fraction(lot[4])
                    - Fraction(fee) * Fraction(q) / Fraction(amount)
                )
                book.pnl += piece
                book.basis += q * lot[1] * lot[5]
                book.closed_qty += q
                book.short_closed += q if lot[6] == -1 else 0
                closed_pnl += piece
                matched = True
                lot[0] -= q
                remaining -= q
                if lot[0] == 0:
                    book.lots.pop(0)
            if remaining > 0:
                book.lots.append([remaining, price, t, fee, amount, rate, direction])
            if matched:
                book.closed_pnls.append(closed_pnl)
        figures = {
            name: {
                "trades": b.trades,
                "unpriced_trades": b.unpriced,
                "volume_usd": usd8(b.volume),
                "fees_usd": usd8(b.fees),
                "realized_pnl_usd": usd8(b.pnl),
                "return_pct": None if b.basis == 0 else float(100 * b.pnl / Fraction(b.basis)),
                "closed_quantity": qty(b.closed_qty),
                "open_quantity": qty(sum((lot[0] * lot[6] for lot in b.lots), Decimal(0))),
                "unmatched_quantity": "0",
                "closed_trades": len(b.closed_pnls),
                "winning_trades": sum(1 for p in b.closed_pnls if p > 0),
                "win_rate": (
                    sum(1 for p in b.closed_pnls if p > 0) / len(b.closed_pnls) if b.closed_pnls else None
                ),
            }
            for name, b in sorted(books.items())
        }
        figures["totals"] = {"realized_pnl_usd": usd8(sum((b.pnl for b in books.values()), Fraction(0)))}
        return figures, sum((b.short_closed for b in books.values()), Decimal(0))


async def test_futures_session_matches_an_independent_fifo_with_shorts(
    futures_sim: FuturesSim, enclave_data_dir: Path
) -> None:
    # A fixed past window: the same fills on every run.
    account = futures_sim.account(trades=1200, seed=42, days=12, end=JANUARY_13_2025_MS)
    since = account["start"] + 3 * DAY_MS  # earlier fills exist and must be left out
    credentials = Credentials(
        exchange="binance",
        api_key=account["api_key"],
        api_secret=account["api_secret"],
        account_type="futures",
        since=datetime.fromtimestamp(since / 1000, tz=UTC),
    )
    policy = VerificationPolicy(allow_simulated=True, allowed_data_sources=frozenset({futures_sim.origin}))
    settings = enclave_settings(enclave_data_dir, futures_sim.origin)
    with serve_in_thread(create_app(settings)) as enclave:
        async with EnclaveClient(enclave) as client:
            registration = await client.register(credentials, label="usdm", ttl=3600, policy=policy)
            metrics = await wait_backfill(client, registration.session_id, registration.token)
            signed = await client.summary(registration.session_id, registration.token)
            listed: list[dict[str, Any]] = []
            cursor = None
            while True:
                page = await client.trades(
                    registration.session_id, registration.token, limit=500, cursor=cursor
                )
                listed.extend(page["trades"])
                cursor = page["next_cursor"]
                if cursor is None:
                    break

    raw = account["raw"]
    prices, _ = simulator_prices(futures_sim.origin, {"BNB"}, since, account["end"])
    expected, short_closed = swap_reference(raw, prices, since)
    totals = expected.pop("totals")
    assert short_closed > 0  # sells opened short lots that buys closed
    opens = {s: Decimal(w["open_quantity"]) for s, w in expected.items()}
    assert opens["BTC/USDT:USDT"] < 0 < opens["ETH/USDT:USDT"]  # net short and net long (this seed)
    summary = verify_summary(signed, policy)
    assert summary["exchange"] == "binance" and summary["account_type"] == "futures"
    assert summary["data_source"] == futures_sim.origin
    assert summary["backfill_complete"] is True

    # Every fill since `since` exactly once, listed with its fields.
    in_period = [r for r in raw if r["time"] >= since]
    assert metrics["sync"]["trades_fetched"] == len(in_period) == len(listed)
    got_fills = {(t["symbol"], t["id"], t["side"]): t for t in listed}
    assert len(got_fills) == len(listed)
    for r in in_period:
        base, quote = PERPETUALS[r["symbol"]]
        t = got_fills[(f"{base}/{quote}:{quote}", str(r["id"]), r["side"].lower())]
        assert t["market_type"] == "swap"
        assert (Decimal(t["amount"]), Decimal(t["price"])) == (Decimal(r["qty"]), Decimal(r["price"]))
        assert (Decimal(t["fee_cost"]), t["fee_currency"]) == (Decimal(r["commission"]), r["commissionAsset"])
        assert parse_rfc3339(t["timestamp"]) == r["time"]
        assert t["order_id"] == str(r["orderId"])
        # Binance's own figure, shown beside ours (issue 4), exactly as the exchange sent it.
        assert Decimal(t["exchange_realized_pnl"]) == Decimal(r["realizedPnl"])
    assert any(r["commissionAsset"] == "BNB" for r in in_period)
    assert any(Decimal(r["realizedPnl"]) != 0 for r in in_period)

    got = {s["symbol"]: s for s in metrics["symbols"]}
    assert set(got) == set(expected) == {"BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"}
    for symbol, want in expected.items():
        for name, value in want.items():
            if isinstance(value, float):
                assert got[symbol][name] == pytest.approx(value, rel=1e-12), (symbol, name)
            else:
                assert got[symbol][name] == value, (symbol, name)
    assert metrics["totals"]["unpriced_trades"] == 0
    assert metrics["totals"]["realized_pnl_usd"] == totals["realized_pnl_usd"]
    # Sells opened shorts that later buys closed: more closed trades than sells alone could make.
    assert _went_short(raw, since)


def _went_short(raw: list[dict[str, Any]], since: int) -> bool:
    position: dict[str, Decimal] = defaultdict(Decimal)
    for r in sorted((r for r in raw if r["time"] >= since), key=lambda r: (r["time"], r["id"])):
        position[r["symbol"]] += Decimal(r["qty"]) * (1 if r["side"] == "BUY" else -1)
        if position[r["symbol"]] < 0:
            return True
    return False
