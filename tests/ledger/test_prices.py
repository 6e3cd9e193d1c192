from decimal import Decimal

import pytest

from perf_aggregator.ledger.prices import STABLECOINS, PriceBook

from .factory import HOUR, MINUTE, add_flat_candles, at

T10 = at("2026-01-05T10:00:00")


def test_stablecoins_are_worth_one_without_candles() -> None:
    book = PriceBook(set())
    assert {"USD", "USDT", "USDC", "FDUSD", "BUSD", "DAI", "TUSD", "USDP", "PYUSD", "USDS"} == STABLECOINS
    assert book.rate("FDUSD", T10) == 1
    assert book.usd(Decimal("12.5"), "USDC", T10) == Decimal("12.5")
    assert book.pricing_market("USDT") is None
    assert book.missing("USDT", T10) is None


def test_pricing_market_is_the_first_existing_of_usdt_usdc_usd() -> None:
    book = PriceBook({"BNB/USDC", "BNB/USD", "SOL/USD", "XRP/USDT", "XRP/USDC", "ETH/BTC"})
    assert book.pricing_market("BNB") == "BNB/USDC"
    assert book.pricing_market("SOL") == "SOL/USD"
    assert book.pricing_market("XRP") == "XRP/USDT"
    assert book.pricing_market("ETH") is None  # ETH/BTC does not price in USD
    assert book.rate("ETH", T10) is None
    assert book.missing("ETH", T10) is None


def test_only_the_first_market_is_used() -> None:
    book = PriceBook({"XRP/USDT", "XRP/USDC"})
    add_flat_candles(book, "XRP/USDC", T10 - HOUR, T10, "0.5")
    assert book.rate("XRP", T10) is None
    # open times in (t - 1h, t] are the minute starts from 09:01 to 10:00
    assert book.missing("XRP", T10) == ("XRP/USDT", T10 - HOUR + MINUTE, T10)


def test_rate_is_the_latest_candle_opened_less_than_an_hour_before() -> None:
    book = PriceBook({"BTC/USDT"})
    book.add_candles(
        "BTC/USDT", T10 - HOUR, T10 + MINUTE, [(T10, Decimal(100)), (T10 + MINUTE, Decimal(101))]
    )
    assert book.rate("BTC", T10 + 30_000) == 100  # the candle containing t
    assert book.rate("BTC", T10 + MINUTE) == 101  # open time at t counts
    assert book.rate("BTC", T10 + 2 * MINUTE - 1) == 101  # no minute start after 10:01 yet
    assert book.rate("BTC", T10 - 1) is None  # fetched: there is no candle in that hour
    # at 10:02 a 10:02 candle may exist: not known until fetched ...
    assert book.rate("BTC", T10 + 2 * MINUTE) is None
    book.add_candles("BTC/USDT", T10 + 2 * MINUTE, T10 + 2 * HOUR, [])
    # ... then the 10:01 candle, opened 59:59.999 before, is used; at 11:01:00 it is exactly 1 h old.
    assert book.rate("BTC", T10 + HOUR + MINUTE - 1) == 101
    assert book.rate("BTC", T10 + HOUR + MINUTE) is None
    # 2 BTC at 101 = 202
    assert book.usd(Decimal(2), "BTC", T10 + MINUTE) == Decimal(202)


@pytest.mark.parametrize("close", ["NaN", "-Infinity", "0", "0E-999999999", "-1", "1E-31", "1E+30"])
def test_a_close_no_market_can_have_is_no_candle(close: str) -> None:
    book = PriceBook({"BTC/USDT"})
    book.add_candles("BTC/USDT", T10, T10 + MINUTE, [(T10, Decimal(100)), (T10 + MINUTE, Decimal(close))])
    assert book.rate("BTC", T10 + MINUTE) == 100  # valued as if the 10:01 candle did not exist
    assert book.usd(Decimal(2), "BTC", T10 + MINUTE) == 200


def test_a_rate_is_given_only_once_no_later_candle_can_appear() -> None:
    book = PriceBook({"BTC/USDT"})
    book.add_candles("BTC/USDT", T10, T10, [(T10, Decimal(100))])
    t = T10 + 5 * MINUTE
    assert book.rate("BTC", t) is None
    # minute starts of (t - 1h, t] are 09:06 .. 10:05; only 10:00 was fetched
    assert book.missing("BTC", t) == ("BTC/USDT", T10 - 54 * MINUTE, t)
    book.add_candles("BTC/USDT", T10 + 1, t, [(T10 + 3 * MINUTE, Decimal(103))])
    assert book.rate("BTC", t) == 103
    assert book.missing("BTC", t) is None  # known, though 09:06-09:59 was never fetched


def test_zero_amount_is_worth_zero_whatever_the_price() -> None:
    book = PriceBook({"BNB/USDT"})
    assert book.usd(Decimal(0), "BNB", T10) == 0
    assert book.usd(Decimal("0.1"), "BNB", T10) is None


def test_candles_arrive_in_any_order_and_refetches_replace() -> None:
    book = PriceBook({"BTC/USDT"})
    book.add_candles("BTC/USDT", T10 + 2 * MINUTE, T10 + 3 * MINUTE, [(T10 + 2 * MINUTE, Decimal(102))])
    book.add_candles("BTC/USDT", T10, T10 + MINUTE, [(T10 + MINUTE, Decimal(101)), (T10, Decimal(100))])
    book.add_candles("BTC/USDT", T10 + MINUTE, T10 + MINUTE, [(T10 + MINUTE, Decimal("101.5"))])
    assert book.rate("BTC", T10 + 59_999) == 100
    assert book.rate("BTC", T10 + MINUTE) == Decimal("101.5")
    assert book.rate("BTC", T10 + 3 * MINUTE) == 102  # no 10:03 candle, and none can appear


def test_coverage_intervals_merge() -> None:
    book = PriceBook({"BTC/USDT"})
    t = T10 + HOUR
    book.add_candles("BTC/USDT", T10 + 1, T10 + 10 * MINUTE, [])
    book.add_candles("BTC/USDT", T10 + 20 * MINUTE, t, [])
    # 10:01-10:10 and 10:20-11:00 fetched: 10:11-10:19 missing
    assert book.missing("BTC", t) == ("BTC/USDT", T10 + 11 * MINUTE, T10 + 19 * MINUTE)
    book.add_candles("BTC/USDT", T10 + 10 * MINUTE + 1, T10 + 20 * MINUTE - 1, [])
    assert book.missing("BTC", t) is None  # covered, and no candle there: cannot be priced
    assert book.rate("BTC", t) is None


def test_missing_ranges_merge_close_needs_and_split_long_spans() -> None:
    book = PriceBook({"BTC/USDT", "BNB/USDT"})
    five_hours_apart = [("BTC", T10), ("BTC", T10 + 5 * HOUR)]
    # one range from the first window's first minute (09:01) to the last need: 360 minutes
    assert book.missing_ranges(five_hours_apart) == [("BTC/USDT", T10 - HOUR + MINUTE, T10 + 5 * HOUR)]
    twenty_hours_apart = [("BNB", T10), ("BNB", T10 + 20 * HOUR), ("USDT", T10), ("DOGE", T10)]
    # 09:01 to 06:00 next day is 1260 minutes > 1000: one range per window
    assert book.missing_ranges(twenty_hours_apart) == [
        ("BNB/USDT", T10 - HOUR + MINUTE, T10),
        ("BNB/USDT", T10 + 19 * HOUR + MINUTE, T10 + 20 * HOUR),
    ]
    every_ten_minutes = [("BTC", T10 + i * 10 * MINUTE) for i in range(241)]  # 40 h of trading
    ranges = book.missing_ranges(every_ten_minutes)
    first = T10 - 59 * MINUTE
    # 59 + 2400 + 1 = 2460 minutes: 1000 + 1000 + 460, back to back
    assert ranges == [
        ("BTC/USDT", first, first + 999 * MINUTE),
        ("BTC/USDT", first + 1000 * MINUTE, first + 1999 * MINUTE),
        ("BTC/USDT", first + 2000 * MINUTE, T10 + 40 * HOUR),
    ]
    for market, start, end in ranges:
        book.add_candles(market, start, end, [])
    assert book.missing_ranges(every_ten_minutes) == []


def test_missing_ranges_respect_a_smaller_fetch_limit() -> None:
    book = PriceBook({"BTC/USD"})
    ranges = book.missing_ranges([("BTC", T10 + 30_000)], max_candles=25)
    # the 60 minute starts 09:01 .. 10:00 in fetches of 25: 25 + 25 + 10
    assert ranges == [
        ("BTC/USD", T10 - 59 * MINUTE, T10 - 35 * MINUTE),
        ("BTC/USD", T10 - 34 * MINUTE, T10 - 10 * MINUTE),
        ("BTC/USD", T10 - 9 * MINUTE, T10),
    ]
    with pytest.raises(ValueError, match="max_candles"):
        book.missing_ranges([("BTC", T10)], max_candles=0)


def test_a_candle_opening_off_the_minute_is_still_the_latest_one() -> None:
    # Exchanges open 1m candles on whole minutes; should one not, the latest open time still wins.
    book = PriceBook({"BTC/USDT"})
    book.add_candles("BTC/USDT", T10 - HOUR, T10 + MINUTE, [(T10, Decimal(100))])
    assert book.rate("BTC", T10 + 45_000) == 100
    book.add_candles("BTC/USDT", T10, T10 + MINUTE, [(T10 + 30_000, Decimal(105))])
    assert book.rate("BTC", T10 + 45_000) == 105
    assert book.rate("BTC", T10 + 29_999) == 100
    assert book.rate("BTC", T10 + MINUTE) == 105
