"""An append-only sequence that costs the garbage collector a few visits per thousands of items.

A list is a container the collector tracks: each full collection visits every item of every
list, and full collections come at a pace set by allocations, so a session's million-item
columns (records, rates) would make the collector's total work grow with the square of the
trades ingested. :class:`Chunks` keeps its items in tuples of :data:`CHUNK` items instead; a
tuple of atomic items (strings, decimals, ``None``) is untracked by the first collection that
sees it, and from then on only the list of chunks and the one being filled are visited.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from itertools import accumulate, chain
from typing import Any, Generic, TypeVar

T = TypeVar("T")

CHUNK = 4096
"""Items per sealed chunk."""
UNSIGNED = "L" if array("L").itemsize == 8 else "Q"
"""Typecode of the 64-bit unsigned integer columns (``L`` on 64-bit Linux). Not ``q``: its items
are stored through argument parsing, several hundred instructions each."""


class Chunks(Generic[T]):
    """Items appended in order, read by position (non-negative) or in order."""

    __slots__ = ("_sealed", "_tail")

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._sealed: list[Any] = []  # tuples of CHUNK items (a subclass may seal them otherwise)
        self._tail: list[T] = []
        self.extend(items)

    def __len__(self) -> int:
        return len(self._sealed) * CHUNK + len(self._tail)

    def __getitem__(self, i: int) -> T:
        if i < 0:
            raise IndexError("Chunks are read by non-negative positions")
        sealed = self._sealed
        chunk = i // CHUNK
        return (
            sealed[chunk][i - chunk * CHUNK] if chunk < len(sealed) else self._tail[i - len(sealed) * CHUNK]
        )

    def __iter__(self) -> Iterator[T]:
        return chain(chain.from_iterable(self._sealed), self._tail)

    def append(self, item: T) -> None:
        """Add ``item`` at the end."""
        tail = self._tail
        tail.append(item)
        if len(tail) == CHUNK:
            self._seal()

    def extend(self, items: Iterable[T]) -> None:
        """Add ``items`` at the end, in order."""
        tail = self._tail
        tail.extend(items)
        while len(tail) >= CHUNK:
            self._seal()

    def _seal(self) -> None:
        tail = self._tail
        self._sealed.append(tuple(tail[:CHUNK]))
        del tail[:CHUNK]


class TextChunks(Chunks[str]):
    """:class:`Chunks` of strings, each sealed chunk kept as one string and where each item ends
    in it: a stored string costs its characters and 8 bytes, instead of an object of its own
    (about 50 bytes more) and a pointer, and a million of them as many fewer pages of memory."""

    __slots__ = ()

    def __getitem__(self, i: int) -> str:
        if i < 0:
            raise IndexError("Chunks are read by non-negative positions")
        sealed = self._sealed
        chunk, j = divmod(i, CHUNK)
        if chunk < len(sealed):
            packed: tuple[str, array[int]] = sealed[chunk]
            text, ends = packed
            return text[ends[j - 1] if j else 0 : ends[j]]
        return self._tail[i - len(sealed) * CHUNK]

    def __iter__(self) -> Iterator[str]:
        for text, ends in self._sealed:
            start = 0
            for end in ends:
                yield text[start:end]
                start = end
        yield from self._tail

    def _seal(self) -> None:
        tail = self._tail
        items = tail[:CHUNK]
        self._sealed.append(("".join(items), array(UNSIGNED, accumulate(map(len, items)))))
        del tail[:CHUNK]
