from decimal import Decimal

import pytest

from perf_aggregator.formats import parse_rfc3339
from perf_aggregator.metrics.documents import summary_figures, symbol_documents, totals_document
from perf_aggregator.metrics.figures import SymbolFigures

JAN5 = parse_rfc3339("2026-01-05T00:00:00Z")
DAY = 86_400_000


def btc() -> SymbolFigures:
    return SymbolFigures(
        "BTC/USDT",
        "BTC",
        "USDT",
        "spot",
        trades=3,
        volume_usd=Decimal("0.000000015"),
        fees_usd=Decimal("0.000000025"),
        realized_pnl_usd=Decimal("0.000000035"),
        cost_basis_usd=Decimal("0.00000007"),
        closed_quantity=Decimal("0.123456789012345"),
        open_quantity=Decimal("1E+3"),
        unmatched_quantity=Decimal("0E-8"),
        closed_trades=1,
        winning_trades=1,
        winning_pnl_usd=Decimal("0.000000035"),
        largest_win_usd=Decimal("0.000000035"),
        holding_ms_quantity=Decimal("123456.789012345"),
        daily_pnl_usd={20_458: Decimal("0.000000035")},
        period_start_ms=JAN5 + 1,
        period_end_ms=JAN5 + 2 * DAY + 999,
    )


def eth_swap() -> SymbolFigures:
    return SymbolFigures(
        "ETH/USDT:USDT",
        "ETH",
        "USDT",
        "swap",
        trades=2,
        unpriced_trades=1,
        volume_usd=Decimal("1E-8"),
        fees_usd=Decimal(0),
        realized_pnl_usd=Decimal("-0.000000001"),
        cost_basis_usd=Decimal(1),
        closed_quantity=Decimal(1),
        open_quantity=Decimal("-0.5"),
        closed_trades=1,
        losing_trades=1,
        losing_pnl_usd=Decimal("-0.000000001"),
        largest_loss_usd=Decimal("-0.000000001"),
        daily_pnl_usd={20_459: Decimal("-0.000000001")},
        period_start_ms=JAN5 + DAY,
        period_end_ms=JAN5 + DAY,
    )


def test_symbol_documents_render_decimal_strings_rounded_half_even() -> None:
    eth, btc_doc = symbol_documents([eth_swap(), btc()])[::-1]
    assert btc_doc == {
        "symbol": "BTC/USDT",
        "base": "BTC",
        "quote": "USDT",
        "market_type": "spot",
        "trades": 3,
        "volume_usd": "0.00000002",  # 1.5e-8: half-even up to 2e-8
        "fees_usd": "0.00000002",  # 2.5e-8: half-even down to 2e-8
        "realized_pnl_usd": "0.00000004",  # 3.5e-8: half-even up to 4e-8
        "return_pct": 50.0,  # 100 * 3.5e-8 / 7e-8, from the unrounded sums
        "closed_quantity": "0.123456789012345",  # quantities are exact
        "open_quantity": "1000",  # no exponent notation
        "unmatched_quantity": "0",
        "closed_trades": 1,
        "winning_trades": 1,
        "win_rate": 1.0,
        "unpriced_trades": 0,
        "period_start": "2026-01-05T00:00:00.001Z",
        "period_end": "2026-01-07T00:00:00.999Z",
    }
    assert (eth["symbol"], eth["volume_usd"], eth["realized_pnl_usd"]) == ("ETH/USDT:USDT", "0.00000001", "0")
    assert (eth["open_quantity"], eth["unpriced_trades"], eth["return_pct"]) == ("-0.5", 1, -0.0000001)
    assert (eth["closed_trades"], eth["winning_trades"], eth["win_rate"]) == (1, 0, 0.0)


def test_symbol_win_rate_is_null_without_closed_trades() -> None:
    opened = SymbolFigures("SOL/USDT", "SOL", "USDT", "spot", trades=1, open_quantity=Decimal(2))
    (doc,) = symbol_documents([opened])
    assert (doc["closed_trades"], doc["winning_trades"], doc["win_rate"]) == (0, 0, None)


def test_totals_document_sums_before_rounding() -> None:
    assert totals_document([btc(), eth_swap()]) == {
        "trades": 5,
        "volume_usd": "0.00000002",  # 1.5e-8 + 1e-8 = 2.5e-8 -> 2e-8
        "fees_usd": "0.00000002",
        "realized_pnl_usd": "0.00000003",  # 3.5e-8 - 0.1e-8 = 3.4e-8 -> 3e-8
        "return_pct": pytest.approx(100 * 3.4e-8 / 1.00000007),
        "closed_trades": 2,
        "winning_trades": 1,
        "win_rate": 0.5,
        "unpriced_trades": 1,
        "period_start": "2026-01-05T00:00:00.001Z",
        "period_end": "2026-01-07T00:00:00.999Z",
    }


def test_empty_documents_use_zero_and_null() -> None:
    assert symbol_documents([]) == []
    assert totals_document([]) == {
        "trades": 0,
        "volume_usd": "0",
        "fees_usd": "0",
        "realized_pnl_usd": "0",
        "return_pct": None,
        "closed_trades": 0,
        "winning_trades": 0,
        "win_rate": None,
        "unpriced_trades": 0,
        "period_start": None,
        "period_end": None,
    }
    assert summary_figures([], JAN5) == {
        "trades": 0,
        "symbols_traded": 0,
        "volume_usd": "0",
        "fees_usd": "0",
        "realized_pnl_usd": "0",
        "return_pct": None,
        "closed_trades": 0,
        "win_rate": None,
        "profit_factor": None,
        "avg_win_usd": None,
        "avg_loss_usd": None,
        "largest_win_usd": None,
        "largest_loss_usd": None,
        "avg_holding_seconds": None,
        "max_drawdown_usd": "0",
        "sharpe_ratio": None,
        "sortino_ratio": None,
        "daily_pnl_volatility_usd": None,
        "trading_days": 0,
        "period_start": None,
        "period_end": None,
    }


def test_summary_figures() -> None:
    summary = summary_figures([btc(), eth_swap()], JAN5 + 2 * DAY + 5)
    assert summary["trades"] == 5
    assert summary["symbols_traded"] == 2
    assert summary["profit_factor"] == pytest.approx(35.0)  # 3.5e-8 / 1e-9
    assert (summary["avg_win_usd"], summary["avg_loss_usd"]) == ("0.00000004", "0")
    assert (summary["largest_win_usd"], summary["largest_loss_usd"]) == ("0.00000004", "0")
    # (123456.789012345 + 0) ms / 1.123456789012345 BTC+ETH / 1000
    assert summary["avg_holding_seconds"] == pytest.approx(123.456789012345 / 1.123456789012345)
    # series [3.5e-8, -1e-9, 0]: cumulative 3.5e-8, 3.4e-8, 3.4e-8 -> drawdown 1e-9, rounds to 0
    assert summary["max_drawdown_usd"] == "0"
    assert summary["trading_days"] == 3
    assert summary["sortino_ratio"] is not None
    assert summary["win_rate"] == 0.5
    assert summary["period_end"] == "2026-01-07T00:00:00.999Z"


def test_as_of_before_the_first_trade_day_gives_no_days() -> None:
    summary = summary_figures([btc()], JAN5 - 1)
    assert (summary["trading_days"], summary["sharpe_ratio"], summary["max_drawdown_usd"]) == (0, None, "0")
