"""Pages handled a run at a time (``Ledger.add``): the same figures and counts as one trade at a time,
whatever the page order, overlap or mix of symbols."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from perf_aggregator.ledger.book import Ledger
from perf_aggregator.ledger.fifo import FifoBook
from perf_aggregator.ledger.prices import PriceBook
from perf_aggregator.ledger.trades import Trade, TradeColumns
from perf_aggregator.metrics.figures import Figures

from .factory import HOUR, MINUTE, add_flat_candles, at, make_trade

T10 = at("2026-01-05T10:00:00")
MARKETS = {"BTC/USDT", "ETH/USDT", "BNB/USDT"}


def history(symbol: str, count: int, *, offset: int = 0) -> list[Trade]:
    """Alternating buys and sells of ``symbol``, ids ascending with time, fees in the quote or BNB."""
    return [
        make_trade(
            str(1000 + k),
            "buy" if k % 3 else "sell",
            f"0.{k % 7 + 1}",
            str(100 + (k * 37 + offset) % 23),
            T10 + k * MINUTE,
            symbol=symbol,
            fee="0.001" if k % 2 else "0.05",
            fee_currency="BNB" if k % 2 else "USDT",
        )
        for k in range(count)
    ]


def ledger() -> Ledger:
    prices = PriceBook(MARKETS)
    add_flat_candles(prices, "BNB/USDT", T10 - HOUR, T10 + 40 * HOUR, "300")
    return Ledger(prices)


def one_at_a_time(trades: list[Trade]) -> Ledger:
    reference = ledger()
    for trade in sorted(trades, key=lambda t: (t.symbol, t.order)):
        assert reference.add([trade]) == 1
    return reference


def pages(trades: list[Trade], size: int, overlap: int) -> list[list[Trade]]:
    """Pages of ``size`` that each repeat the previous page's last ``overlap`` trades."""
    step = size - overlap
    return [trades[start : start + size] for start in range(0, len(trades) - overlap, step)]


def documents(led: Ledger) -> tuple[object, ...]:
    return (
        len(led),
        led.symbol_documents(),
        led.totals_document(),
        led.summary_figures(T10 + 48 * HOUR),
        led.trades(None, None, 1000),
    )


def test_pages_read_forward_with_overlaps_equal_one_trade_at_a_time() -> None:
    btc, eth = history("BTC/USDT", 120), history("ETH/USDT", 90, offset=5)
    expected = documents(one_at_a_time(btc + eth))
    led = ledger()
    added = sum(led.add(page) for page in pages(btc, 25, 1) + pages(eth, 30, 2))
    assert added == len(btc) + len(eth)
    assert documents(led) == expected


def test_newest_page_first_then_the_history_equals_one_trade_at_a_time() -> None:
    btc, eth = history("BTC/USDT", 120), history("ETH/USDT", 90, offset=5)
    expected = documents(one_at_a_time(btc + eth))
    for overlap in (0, 1):
        led = ledger()
        added = 0
        for trades in (btc, eth):
            book = pages(trades, 20, overlap)
            # The newest page, then the history from the start (its last page overlaps the newest).
            for page in (book[-1], *book[:-1], book[-1][:3]):
                added += led.add(page)
        assert added == len(btc) + len(eth), overlap
        assert documents(led) == expected, overlap


def test_late_pages_that_repeat_processed_trades_count_them_once() -> None:
    btc = history("BTC/USDT", 60)
    expected = documents(one_at_a_time(btc))
    led = ledger()
    assert led.add(btc[40:]) == 20
    assert led.add(btc[:10]) == 10  # late: the symbol is stale from here on
    assert led.add(btc[10:45]) == 30  # late, and ending on processed trades
    assert led.add(btc[35:60]) == 0
    assert documents(led) == expected


def test_a_batch_mixing_symbols_with_a_stale_one_equals_one_trade_at_a_time() -> None:
    btc, eth, bnb = history("BTC/USDT", 50), history("ETH/USDT", 50, offset=3), history("BNB/USDT", 30)
    expected = documents(one_at_a_time(btc + eth + bnb))
    led = ledger()
    assert led.add(btc[30:] + eth[:20]) == 40
    assert led.add(btc[:30] + eth[20:] + bnb[10:] + bnb[:10]) == 90
    assert documents(led) == expected


def record_half_then_fail(
    book: FifoBook, run: TradeColumns, quote_rates: Any, fee_rates: Any, figures: Figures
) -> dict[int, Decimal]:
    """``FifoBook.record`` that records the first half of the run, then raises."""
    half = len(run.id) // 2
    first = TradeColumns._make(column[:half] for column in run)
    ORIGINAL_RECORD(book, first, quote_rates[:half], fee_rates[:half], figures)
    raise RuntimeError("planted")


ORIGINAL_RECORD = FifoBook.record


def test_a_run_that_raises_midway_is_rebuilt_from_the_stored_trades_before_the_next_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    btc = history("BTC/USDT", 40)
    expected = documents(one_at_a_time(btc))
    led = ledger()
    assert led.add(btc[:10]) == 10
    monkeypatch.setattr(FifoBook, "record", record_half_then_fail)
    with pytest.raises(RuntimeError, match="planted"):
        led.add(btc[10:])
    monkeypatch.undo()
    # The whole run was stored; its half-recorded figures and days are not what a read sees.
    assert documents(led) == expected


def test_a_replay_that_raises_leaves_the_symbol_to_be_replayed_by_the_next_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    btc, eth = history("BTC/USDT", 40), history("ETH/USDT", 20, offset=5)
    expected = documents(one_at_a_time(btc + eth))
    led = ledger()
    assert led.add(btc[20:] + eth) == 40
    assert led.add(btc[:20]) == 20  # late: replayed before the next read
    monkeypatch.setattr(FifoBook, "record", record_half_then_fail)
    with pytest.raises(RuntimeError, match="planted"):
        led.symbol_documents()
    monkeypatch.undo()
    assert documents(led) == expected
