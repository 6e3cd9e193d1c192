"""Connector cursors survive JSON (the sealed store's form) exactly, and nothing else is accepted."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from perf_aggregator.exchanges.binance import BinanceCursor
from perf_aggregator.exchanges.coinbase import CoinbaseCursor
from perf_aggregator.exchanges.cursors import CursorFormatError, cursor_from_json, cursor_to_json
from perf_aggregator.exchanges.kraken import KrakenCursor
from perf_aggregator.ledger.book import PricedTrade


@pytest.mark.parametrize(
    "cursor",
    [
        None,
        BinanceCursor(),
        BinanceCursor(from_id=123_456_789_012),  # spot, and USD-M futures (same class)
        BinanceCursor(scan_from_ms=1_760_000_000_000, stop_id=42),
        CoinbaseCursor(lower_ms=1_760_000_000_000),
        CoinbaseCursor(lower_ms=1_760_000_000_000, page="eyJvZmZzZXQiOjEwMH0=", newest_ms=1_760_000_123_456),
        KrakenCursor(start="TXID1-ABCDE-FGHIJ", end="TXID9-ABCDE-FGHIJ", top="TXIDZ-ABCDE-FGHIJ"),
    ],
)
def test_cursors_round_trip_through_json(cursor: object) -> None:
    text = json.dumps(cursor_to_json(cursor))
    back = cursor_from_json(json.loads(text))
    assert back == cursor and type(back) is type(cursor)


def test_the_stored_form_names_the_class_and_its_fields() -> None:
    assert cursor_to_json(KrakenCursor(start="A")) == {
        "type": "perf_aggregator.exchanges.kraken:KrakenCursor",
        "fields": {"start": "A", "end": None, "top": None},
    }


@pytest.mark.parametrize("cursor", [{"page": 2}, "opaque", 17, Decimal(1), PricedTrade.__new__(PricedTrade)])
def test_anything_but_a_connector_cursor_is_refused_when_written(cursor: object) -> None:
    with pytest.raises(CursorFormatError):
        cursor_to_json(cursor)


@pytest.mark.parametrize(
    "data",
    [
        {"type": "os:system", "fields": {}},
        {"type": "perf_aggregator.exchanges.binance:NoSuchCursor", "fields": {}},
        {"type": "perf_aggregator.exchanges.nosuchmodule:BinanceCursor", "fields": {}},
        {"type": "perf_aggregator.exchanges.binance:BinanceSpot", "fields": {}},
        {"type": "perf_aggregator.exchanges.binance:BinanceCursor", "fields": {"from_id": 1}},
        {
            "type": "perf_aggregator.exchanges.binance:BinanceCursor",
            "fields": {"from_id": [1], "scan_from_ms": None, "stop_id": None},
        },
        {"type": "perf_aggregator.exchanges.binance:BinanceCursor"},
        ["perf_aggregator.exchanges.binance:BinanceCursor", {}],
    ],
)
def test_unknown_or_malformed_stored_cursors_are_refused(data: object) -> None:
    with pytest.raises(CursorFormatError):
        cursor_from_json(data)
