"""NDJSON and JSON array input.

NDJSON is split into lines block by block (vectorised), and the lines are handed on unparsed:
the validation that follows parses them once. Blank lines are not records and are not counted.
A JSON array is read whole (use NDJSON for large inputs).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import IO

import polars as pl

from recctl.errors import InputError
from recctl.formats.chunks import BOM, Nested, RawChunk, chunk_frame

BLOCK_BYTES = 16 << 20
"""NDJSON is read this many bytes at a time and split into lines (a longer line spans blocks)."""


def _parse_json_objects(raw: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Canonical JSON text of each raw JSON object, and an error reason where there is none."""
    parsed = raw.str.json_path_match("$")
    is_object = raw.str.strip_chars_start().str.starts_with("{") & parsed.str.starts_with("{")
    frame = pl.DataFrame({"parsed": parsed, "is_object": is_object})
    result = frame.select(
        pl.when(pl.col("is_object")).then(pl.col("parsed")).alias("json"),
        pl.when(pl.col("parsed").is_null())
        .then(pl.lit("invalid JSON"))
        .when(~pl.col("is_object"))
        .then(pl.lit("not a JSON object"))
        .alias("error"),
    )
    return result["json"], result["error"]


def _lines_of(block: bytes | memoryview) -> tuple[pl.Series, pl.Series | None]:
    """Split a block of whole lines into text lines (a line's final ``\\r`` dropped); per line an
    invalid-UTF-8 flag, or None when every line is valid (the usual case)."""
    try:
        text = str(block, "utf-8")
    except UnicodeDecodeError:
        # Rare path: find the bad lines one by one so the good ones still count.
        decoded, bad = [], []
        for line in bytes(block).split(b"\n"):
            try:
                decoded.append(line.decode("utf-8"))
                bad.append(False)
            except UnicodeDecodeError:
                decoded.append(line.decode("utf-8", errors="replace"))
                bad.append(True)
        lines = pl.Series(decoded, dtype=pl.String).str.strip_suffix("\r")
        return lines, pl.Series(bad, dtype=pl.Boolean)
    lines = pl.Series([text], dtype=pl.String).str.split("\n").explode()
    return (lines.str.strip_suffix("\r") if "\r" in text else lines), None


def _line_blocks(stream: IO[bytes]) -> Iterator[bytes | memoryview]:
    """Blocks of whole lines (without the final newline), a leading BOM removed; a block is
    copied only to join a line that spans two reads."""
    pending = b""
    first = True
    while data := stream.read(BLOCK_BYTES):
        if first:
            data, first = data.removeprefix(BOM), False
        cut = data.rfind(b"\n")
        if cut < 0:
            pending += data
            continue
        view = memoryview(data)
        yield b"".join((pending, view[:cut])) if pending else view[:cut]
        pending = data[cut + 1 :]
    if pending:
        yield pending


def read_ndjson(
    stream: IO[bytes], source: str, chunk_rows: int, progress: Callable[[], int], nested: Nested
) -> Iterator[RawChunk]:
    first_line = 1
    for block in _line_blocks(stream):
        lines, bad_utf8 = _lines_of(block)
        positions = pl.int_range(first_line, first_line + len(lines), eager=True, dtype=pl.Int64)
        first_line += len(lines)
        # Blank lines are no records. A line that starts with "{" is not blank; only the others
        # (usually none) are looked at closely.
        maybe_blank = ~lines.str.starts_with("{")
        if maybe_blank.any():
            blank = maybe_blank & (lines.str.strip_chars().str.len_bytes() == 0)
            if blank.any():
                keep = ~blank
                lines, positions = lines.filter(keep), positions.filter(keep)
                bad_utf8 = None if bad_utf8 is None else bad_utf8.filter(keep)
        # Lines go on unchecked: validation parses them anyway and names the ones that are not
        # JSON objects (see recctl.records.checked_objects).
        if bad_utf8 is None:
            json_text = lines
            error = pl.repeat(None, len(lines), dtype=pl.String, eager=True)
        else:
            frame = pl.DataFrame({"raw": lines, "bad": bad_utf8})
            json_text = frame.select(pl.when(~pl.col("bad")).then(pl.col("raw"))).to_series()
            error = frame.select(pl.when(pl.col("bad")).then(pl.lit("invalid UTF-8"))).to_series()
        for start in range(0, len(lines), chunk_rows):
            yield RawChunk(
                chunk_frame(
                    positions.slice(start, chunk_rows),
                    lines.slice(start, chunk_rows),
                    json_text.slice(start, chunk_rows),
                    error.slice(start, chunk_rows),
                ),
                "line",
                progress(),
            )


def read_json_array(
    stream: IO[bytes], source: str, chunk_rows: int, progress: Callable[[], int], nested: Nested
) -> Iterator[RawChunk]:
    data = stream.read().removeprefix(BOM)
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: not a valid JSON document: {exc}") from exc
    except RecursionError:
        raise InputError(f"{source}: not a JSON document recctl can read: nested too deeply") from None
    if not isinstance(document, list):
        document = [document]
    # A JSON array is already in memory; one json.dumps per element is the price of this format.
    try:
        raw = pl.Series([json.dumps(item, ensure_ascii=False) for item in document], dtype=pl.String)
    except RecursionError:
        raise InputError(f"{source}: not a JSON document recctl can read: nested too deeply") from None
    parsed, error = _parse_json_objects(raw)
    positions = pl.int_range(0, len(raw), eager=True, dtype=pl.Int64)
    for start in range(0, max(len(raw), 1), chunk_rows):
        if len(raw) == 0:
            return
        yield RawChunk(
            chunk_frame(
                positions.slice(start, chunk_rows),
                raw.slice(start, chunk_rows),
                parsed.slice(start, chunk_rows),
                error.slice(start, chunk_rows),
            ),
            "index",
            progress(),
        )
