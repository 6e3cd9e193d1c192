"""``Chunks`` reads as the list it replaces, and the garbage collector's work on a ledger stops
growing with its trades."""

from __future__ import annotations

import gc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perf_aggregator.ledger.book import Ledger
from perf_aggregator.ledger.chunks import CHUNK, Chunks, TextChunks
from perf_aggregator.ledger.prices import PriceBook

from .factory import at, make_trade

T0 = at("2026-01-05T00:00:00")


TEXTS = st.text(alphabet=st.sampled_from(["a", " ", "7", "é", "\n", "€", "𝄞"]), max_size=5)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 2 * CHUNK + 3)), max_size=6),
    st.booleans(),
    st.lists(TEXTS, min_size=1, max_size=20),
)
def test_chunks_read_as_a_list_across_chunk_ends(
    steps: list[tuple[bool, int]], text: bool, texts: list[str]
) -> None:
    """Items ``0, 1, 2...``, or for :class:`TextChunks` strings of any length and characters
    (the empty one too) made from them."""
    chunks: Chunks[int] | TextChunks = TextChunks() if text else Chunks()
    expected: list[int | str] = []

    def item(k: int) -> int | str:
        return f"{texts[k % len(texts)]}{k}"[: k % 9] if text else k

    for one_at_a_time, count in steps:
        items = [item(k) for k in range(len(expected), len(expected) + count)]
        if one_at_a_time:
            for one in items:
                chunks.append(one)  # type: ignore[arg-type]
        else:
            chunks.extend(items)  # type: ignore[arg-type]
        expected.extend(items)
    assert len(chunks) == len(expected)
    assert list(chunks) == expected
    assert [chunks[i] for i in range(len(expected))] == expected
    beyond_tail = (len(expected) // CHUNK + 1) * CHUNK  # a chunk after the one being filled
    for past in (len(expected), len(expected) + 1, beyond_tail, beyond_tail + 1, len(expected) + CHUNK):
        with pytest.raises(IndexError):
            chunks[past]
    with pytest.raises(IndexError):
        chunks[-1]


def collector_visits(root: object, before: list[object]) -> int:
    """How many references the garbage collector follows from the tracked objects reachable from
    ``root`` that are not among ``before`` (``gc.get_objects()`` taken earlier: modules, classes and
    functions): what one full collection spends on them."""
    seen = {id(obj) for obj in before}  # ``before`` keeps them alive: no id is reused
    stack, visits = [root], 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or not gc.is_tracked(obj):
            continue
        seen.add(id(obj))
        referents = gc.get_referents(obj)
        visits += len(referents)
        stack.extend(referents)
    return visits


def ledger_of(count: int, text_ids: bool) -> Ledger:
    """A ledger of ``count`` trades of one symbol, round trips of two fills (few open lots), with
    numeric ids or with text ids (Kraken's shape)."""
    ledger = Ledger(PriceBook({"BTC/USDT"}))
    trades = [
        make_trade(
            f"T{k:06d}-QX{k % 10}" if text_ids else str(k + 1),
            "buy" if k % 2 == 0 else "sell",
            "0.5",
            str(100 + k % 7),
            T0 + k,
            fee="0.01",
        )
        for k in range(count)
    ]
    for start in range(0, count, 1000):
        ledger.add(trades[start : start + 1000])
    del trades
    gc.collect()  # untracks the sealed chunks, as the first collection after sealing them does
    return ledger


@pytest.mark.parametrize("text_ids", [False, True])
def test_a_full_collection_follows_a_bounded_number_of_references_however_many_trades(text_ids: bool) -> None:
    before = gc.get_objects()
    small = collector_visits(ledger_of(4 * CHUNK, text_ids), before)
    large = collector_visits(ledger_of(16 * CHUNK, text_ids), before)
    # Each 4096 trades add one sealed chunk to each column (records, two rates, text ids): a few
    # visits, not one per trade and column (36,864 more for three columns).
    assert large - small < 100
    assert large < 2 * CHUNK
