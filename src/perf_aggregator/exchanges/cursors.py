"""Connector cursors to and from JSON, for the sealed session store.

A cursor (``TradePage.cursor``) is opaque to the poller, but every connector's cursor is a
dataclass of primitives defined in this package's ``exchanges`` modules (``BinanceCursor``,
``CoinbaseCursor``, ``KrakenCursor``). It is written as its class's import path plus its
fields, and read back only if that path names such a dataclass with exactly those fields.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

_PACKAGE = "perf_aggregator.exchanges."
_PRIMITIVES = (str, int, float, bool, type(None))


class CursorFormatError(ValueError):
    """A cursor that is not a connector cursor, or JSON that does not describe one."""


def cursor_to_json(cursor: object) -> dict[str, Any] | None:
    """``{"type": "module:Class", "fields": {...}}`` for a connector cursor; ``None`` for ``None``."""
    if cursor is None:
        return None
    cls = type(cursor)
    if not cls.__module__.startswith(_PACKAGE) or not dataclasses.is_dataclass(cursor):
        raise CursorFormatError(f"{cls.__module__}.{cls.__qualname__} is not a connector cursor")
    fields = {f.name: getattr(cursor, f.name) for f in dataclasses.fields(cursor)}
    if not all(isinstance(value, _PRIMITIVES) for value in fields.values()):
        raise CursorFormatError(f"{cls.__qualname__} has a field that is not a JSON primitive")
    return {"type": f"{cls.__module__}:{cls.__qualname__}", "fields": fields}


def cursor_from_json(data: object) -> object:
    """The cursor :func:`cursor_to_json` described; ``CursorFormatError`` for anything else."""
    if data is None:
        return None
    if not isinstance(data, dict) or set(data) != {"type", "fields"}:
        raise CursorFormatError("a stored cursor must be an object with 'type' and 'fields'")
    path, fields = data["type"], data["fields"]
    cls = _cursor_class(path)
    names = {f.name for f in dataclasses.fields(cls)}
    if not isinstance(fields, dict) or set(fields) != names:
        raise CursorFormatError(f"the stored fields do not match those of {path}")
    if not all(isinstance(value, _PRIMITIVES) for value in fields.values()):
        raise CursorFormatError(f"a stored field of {path} is not a JSON primitive")
    return cls(**fields)


def _cursor_class(path: object) -> type:
    module_name, _, name = path.partition(":") if isinstance(path, str) else ("", "", "")
    if not module_name.startswith(_PACKAGE) or not name.isidentifier():
        raise CursorFormatError(f"unknown cursor type {path!r}")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        raise CursorFormatError(f"unknown cursor type {path!r}") from None
    if not isinstance(cls, type) or not dataclasses.is_dataclass(cls):
        raise CursorFormatError(f"{path!r} is not a connector cursor")
    return cls
