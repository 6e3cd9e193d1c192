from dataclasses import replace
from decimal import Decimal

from perf_aggregator.formats import parse_rfc3339
from perf_aggregator.metrics.figures import SymbolFigures, Totals, utc_day

JAN5 = parse_rfc3339("2026-01-05T00:00:00Z")
DAY = 86_400_000


def test_utc_day_is_the_calendar_day_of_a_timestamp() -> None:
    assert utc_day(JAN5) == 20_458  # 1767571200000 / 86400000
    assert utc_day(JAN5 + DAY - 1) == 20_458
    assert utc_day(JAN5 + DAY) == 20_459


def test_totals_sum_the_symbols() -> None:
    a = SymbolFigures(
        "BTC/USDT",
        "BTC",
        "USDT",
        "spot",
        trades=3,
        volume_usd=Decimal("1.5"),
        largest_win_usd=Decimal(4),
        largest_loss_usd=Decimal(-1),
        daily_pnl_usd={1: Decimal(2)},
        period_start_ms=10,
        period_end_ms=20,
    )
    b = SymbolFigures(
        "ETH/USDT",
        "ETH",
        "USDT",
        "spot",
        trades=1,
        unpriced_trades=1,
        largest_win_usd=Decimal(6),
        largest_loss_usd=Decimal("-0.5"),
        daily_pnl_usd={1: Decimal(1), 3: Decimal(-1)},
        period_start_ms=5,
        period_end_ms=15,
    )
    idle = SymbolFigures("SOL/USDT", "SOL", "USDT", "spot")
    t = Totals.of([a, b, idle])
    assert (t.symbols_traded, t.trades, t.unpriced_trades, t.volume_usd) == (2, 4, 1, Decimal("1.5"))
    assert (t.largest_win_usd, t.largest_loss_usd) == (Decimal(6), Decimal(-1))
    assert t.daily_pnl_usd == {1: Decimal(3), 3: Decimal(-1)}
    assert (t.period_start_ms, t.period_end_ms) == (5, 20)
    assert Totals.of([]) == Totals()


def test_daily_pnl_is_summed_exactly_whatever_the_order() -> None:
    tiny, huge = Decimal("1E-40"), Decimal("1E+30")
    a = SymbolFigures("BTC/USDT", "BTC", "USDT", "spot", daily_pnl_usd={1: huge, 2: Decimal(1)})
    b = SymbolFigures("ETH/USDT", "ETH", "USDT", "spot", daily_pnl_usd={1: tiny})
    c = SymbolFigures("SOL/USDT", "SOL", "USDT", "spot", daily_pnl_usd={1: -huge})
    assert (
        Totals.of([a, b, c]).daily_pnl_usd == Totals.of([c, b, a]).daily_pnl_usd == {1: tiny, 2: Decimal(1)}
    )
    assert Totals.of([a, b, c], daily=False) == replace(Totals.of([a, b, c]), daily_pnl_usd={})
