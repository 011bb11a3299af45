"""JSON text at ``recctl rank`` speed: orjson where it gives exactly what the ``json`` module gives.

Parsing and writing JSON is most of the work of ranking a stream of batches, and orjson does both
several times faster than the standard library (a 15 KB batch: 28 µs against 69 µs to parse,
8 µs against 95 µs to write). It differs from the ``json`` module in a few corners; each of them
goes to the ``json`` module instead, so the values are always the standard library's:

- integers beyond 64 bits: orjson reads them as floats (the value would change) and cannot write
  them. Text with a run of 19 or more digits is parsed by ``json``;
- text orjson refuses (NaN/Infinity, numbers that overflow a float, invalid UTF-8, lone surrogate
  escapes, very deep nesting): :func:`try_loads` says so and the caller asks ``json``, which either
  accepts the text or says why not;
- values orjson cannot write (big integers, lone surrogates, deep nesting, float subclasses) are
  written by ``json``.

:func:`parse_json` reads a ``recctl rank`` batch on top of that: it refuses NaN, Infinity,
numbers too large for a float, half a surrogate pair and nesting past :data:`MAX_NESTING`, with a
:class:`BatchError` that names the JSON path of the problem.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, Final

import orjson

UNSURE: Final = object()
"""Returned by :func:`try_loads` when only the ``json`` module can give the exact value (or the error)."""

_DIGITS_AS_ZERO = bytes(ord("0") if ord("0") <= byte <= ord("9") else ord(" ") for byte in range(256))
_LONG_DIGIT_RUN = b"0" * 19  # the shortest integer orjson may turn into a float: -9223372036854775809


def try_loads(raw: bytes) -> Any:
    """The value of the JSON text ``raw`` as ``json.loads`` would give it, or :data:`UNSURE`.

    :data:`UNSURE` means orjson refused the text or might have changed a long integer; the caller
    then parses with ``json`` (slower, exact, and with its error messages).
    """
    if _LONG_DIGIT_RUN in raw.translate(_DIGITS_AS_ZERO):
        return UNSURE
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return UNSURE


def dumps(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes; values orjson cannot write go through ``json`` (ASCII-escaped,
    so a lone surrogate comes back as the same escape). The value must hold finite floats only:
    orjson writes NaN as null."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("ascii")


def dumps_text(value: Any) -> str:
    """Compact JSON as a str (non-ASCII kept as is), for handing parsed values to polars."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"))  # ASCII: a lone surrogate stays an escape


def orjson_writes(value: Any) -> bool:
    """Whether orjson can write ``value``: it refuses nesting past 254 levels, integers beyond 64
    bits and lone surrogates (which :func:`dumps` then hands to ``json``)."""
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False
    return True


class BatchError(ValueError):
    """A batch that cannot be ranked; the message starts with the JSON path of the problem."""


class _NonFinite:
    """Stands for a NaN/Infinity token (or an overflowing number) until its path is known."""

    def __init__(self, text: str) -> None:
        self.text = text


MAX_NESTING = 500
"""JSON nested deeper is refused: writing it back recurses once per level."""


def parse_json(text: str | bytes) -> Any:
    """``json.loads`` that refuses NaN, Infinity, numbers too large for a float (naming their path)
    and nesting deeper than :data:`MAX_NESTING`.

    orjson parses where it gives the same value (:func:`try_loads`); anything it refuses or
    might change is parsed by the ``json`` module, which also words the error.
    """
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    document = try_loads(raw)
    if document is UNSURE:
        document = _parse_exactly(raw)
    if _may_nest_deeper(raw, document) and _nesting(document) > MAX_NESTING:
        raise BatchError(f"$: invalid JSON: nested deeper than {MAX_NESTING} levels")
    return document


def _may_nest_deeper(raw: bytes, document: Any) -> bool:
    """False when ``document`` surely nests at most MAX_NESTING levels, without walking it.

    Each level opens a bracket, so a text with few brackets is shallow; and orjson writes at most
    254 levels, so a document it can write is shallow too (C speed, for large batches).
    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_NESTING:
        return False
    return not orjson_writes(document)


def _parse_exactly(raw: bytes) -> Any:
    found: list[_NonFinite] = []

    def constant(name: str) -> _NonFinite:
        found.append(_NonFinite(name))
        return found[-1]

    def number(text: str) -> float | _NonFinite:
        value = float(text)
        return value if math.isfinite(value) else constant(text)

    try:
        document = json.loads(raw, parse_constant=constant, parse_float=number)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BatchError(f"$: invalid JSON: {exc}") from None
    except RecursionError:
        raise BatchError(f"$: invalid JSON: nested deeper than {MAX_NESTING} levels") from None
    except ValueError as exc:  # an integer over Python's digit limit
        raise BatchError(f"$: invalid JSON: {exc}") from None
    if found:
        path = _path_of(document, lambda value: isinstance(value, _NonFinite))
        raise BatchError(f"{path}: must be a finite number, got {found[0].text}")
    # Half a surrogate pair cannot be written as UTF-8 (orjson refuses such text, so only this path
    # sees it): refused here, with its path, rather than failing later.
    if b"\\u" in raw and _SURROGATE_ESCAPE.search(raw):
        path = _path_of(document, _holds_lone_surrogate)
        if path is not None:
            raise BatchError(f"{path}: not valid Unicode (half of a surrogate pair)")
    return document


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def _holds_lone_surrogate(value: Any) -> bool:
    """A string, or an object with a key, that cannot be written as UTF-8."""
    texts = value if isinstance(value, dict) else [value] if isinstance(value, str) else []
    return any(_SURROGATES.search(text) for text in texts)


_SURROGATES = re.compile("[\ud800-\udfff]")


def _nesting(value: Any) -> int:
    """How deep the containers of a parsed JSON value go (stops counting past MAX_NESTING)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        children = current.values() if isinstance(current, dict) else current
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            break
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest if isinstance(value, dict | list) else 0


def _path_of(value: Any, wanted: Callable[[Any], bool]) -> str | None:
    """The JSON path (``a.b[2]``; ``$`` for the whole value) of the first value that is ``wanted``."""
    stack = [(value, "$")]
    while stack:
        current, where = stack.pop()
        if wanted(current):
            return where.removeprefix("$.") if where.startswith("$.") else where
        if isinstance(current, dict):
            stack.extend((item, f"{where}.{key}") for key, item in reversed(list(current.items())))
        elif isinstance(current, list):
            stack.extend((item, f"{where}[{i}]") for i, item in reversed(list(enumerate(current))))
    return None
