"""The simulated price paths: deterministic, plausible, continuous and consistent across pairs."""

from __future__ import annotations

from itertools import pairwise

from perf_aggregator.simulator.market import DAY_MINUTES, MARKETS, MINUTE_MS, PriceModel

MINUTE = 1_735_689_600_000 // MINUTE_MS  # 2025-01-01T00:00Z
LATER_MS = (MINUTE + 10 * DAY_MINUTES) * MINUTE_MS


def test_candles_are_deterministic_and_lazy_in_any_order() -> None:
    a, b = PriceModel(3), PriceModel(3)
    later = b.candle("SOLUSDT", MINUTE + 5000, 1, LATER_MS)  # b computes a later day first

    assert [a.candle("SOLUSDT", MINUTE + i, 1, LATER_MS) for i in (0, 5000)] == [
        b.candle("SOLUSDT", MINUTE, 1, LATER_MS),
        later,
    ]
    assert PriceModel(4).candle("SOLUSDT", MINUTE, 1, LATER_MS) != later


def test_prices_are_plausible_and_continuous() -> None:
    prices = PriceModel(0)
    levels = {"BTCUSDT": 60_000, "ETHUSDT": 3_000, "BNBUSDT": 600, "SOLUSDT": 150}
    for symbol, level in levels.items():
        candles = [prices.candle(symbol, MINUTE + i, 1, LATER_MS) for i in range(3 * DAY_MINUTES)]
        assert all(c is not None for c in candles)
        closes = [c.close / 10**8 for c in candles if c]
        assert 0.5 * level < min(closes) <= max(closes) < 2 * level
        for a, b in pairwise(candles):
            assert a is not None and b is not None
            assert b.open == a.close  # a minute opens where the previous one closed
            assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
            assert abs(b.close / a.close - 1) < 0.01


def test_cross_pairs_agree_with_the_usdt_pairs() -> None:
    prices = PriceModel(9)
    for minute in range(MINUTE, MINUTE + 10 * DAY_MINUTES, 997):

        def close(symbol: str, at: int = minute) -> float:
            return float(prices.close_units(symbol, at)) / 10**8

        assert abs(close("ETHBTC") / (close("ETHUSDT") / close("BTCUSDT")) - 1) < 0.001
        assert abs(close("SOLBNB") / (close("SOLUSDT") / close("BNBUSDT")) - 1) < 0.001
        assert abs(close("BTCUSDC") / close("BTCUSDT") - 1) < 0.005


def test_an_aggregated_candle_combines_its_minutes() -> None:
    prices = PriceModel(1)
    minutes = [prices.candle("BTCUSDT", MINUTE + i, 1, LATER_MS) for i in range(60)]
    hour = prices.candle("BTCUSDT", MINUTE, 60, LATER_MS)

    present = [m for m in minutes if m is not None]
    assert hour is not None and len(present) == 60
    assert (hour.open, hour.close) == (present[0].open, present[-1].close)
    assert hour.high == max(m.high for m in present)
    assert hour.low == min(m.low for m in present)
    assert hour.volume == sum(m.volume for m in present)
    assert (hour.open_ms, hour.close_ms) == (MINUTE * MINUTE_MS, (MINUTE + 60) * MINUTE_MS - 1)


def test_no_candle_before_listing_or_after_now_and_the_open_minute_is_partial() -> None:
    prices = PriceModel(1)
    sol = MARKETS["SOLUSDT"]
    now_ms = (MINUTE + 10) * MINUTE_MS + 15_000

    assert prices.candle("SOLUSDT", sol.listed_minute - 1, 1, now_ms) is None
    assert prices.candle("SOLUSDT", sol.listed_minute, 1, now_ms) is not None
    assert prices.candle("SOLUSDT", MINUTE + 11, 1, now_ms) is None
    so_far = prices.candle("SOLUSDT", MINUTE + 10, 1, now_ms)
    final = prices.candle("SOLUSDT", MINUTE + 10, 1, now_ms + MINUTE_MS)
    assert so_far is not None and final is not None
    assert so_far.open == final.open
    assert so_far.volume < final.volume
    assert so_far.low <= min(so_far.open, so_far.close) <= max(so_far.open, so_far.close) <= so_far.high


def test_every_market_can_price_quantity_times_price_exactly() -> None:
    # quoteQty = price * qty must fit Binance's 8 decimals.
    for market in MARKETS.values():
        assert market.tick_units * market.step_units % 10**8 == 0, market.symbol
