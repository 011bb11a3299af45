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


def _lines_of(block: bytes) -> tuple[pl.Series, pl.Series]:
    """Split a block of whole lines into text lines and an invalid-UTF-8 flag per line."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        # Rare path: find the bad lines one by one so the good ones still count.
        decoded, bad = [], []
        for line in block.split(b"\n"):
            try:
                decoded.append(line.decode("utf-8"))
                bad.append(False)
            except UnicodeDecodeError:
                decoded.append(line.decode("utf-8", errors="replace"))
                bad.append(True)
        return pl.Series(decoded, dtype=pl.String), pl.Series(bad, dtype=pl.Boolean)
    lines = pl.Series([text], dtype=pl.String).str.split("\n").explode()
    return lines, pl.Series([False], dtype=pl.Boolean).extend_constant(False, len(lines) - 1)


def _line_blocks(stream: IO[bytes]) -> Iterator[bytes]:
    """Blocks of whole lines (without the final newline), a leading BOM removed."""
    pending = b""
    first = True
    while data := stream.read(BLOCK_BYTES):
        if first:
            data, first = data.removeprefix(BOM), False
        data = pending + data
        cut = data.rfind(b"\n")
        if cut < 0:
            pending = data
            continue
        yield data[:cut]
        pending = data[cut + 1 :]
    if pending:
        yield pending


def read_ndjson(
    stream: IO[bytes], source: str, chunk_rows: int, progress: Callable[[], int], nested: Nested
) -> Iterator[RawChunk]:
    first_line = 1
    for block in _line_blocks(stream):
        lines, bad_utf8 = _lines_of(block)
        frame = pl.DataFrame({"raw": lines, "bad_utf8": bad_utf8}).with_columns(
            pl.col("raw").str.strip_suffix("\r"),
            input_position=pl.int_range(first_line, first_line + len(lines), dtype=pl.Int64),
        )
        first_line += len(lines)
        frame = frame.filter(pl.col("raw").str.strip_chars().str.len_bytes() > 0)
        # Lines go on unchecked: validation parses them anyway and names the ones that are not
        # JSON objects (see recctl.records.checked_objects).
        frame = frame.with_columns(
            pl.when(pl.col("bad_utf8")).then(None).otherwise(pl.col("raw")).alias("json"),
            pl.when(pl.col("bad_utf8")).then(pl.lit("invalid UTF-8")).alias("error"),
        )
        for start in range(0, frame.height, chunk_rows):
            piece = frame.slice(start, chunk_rows)
            yield RawChunk(
                chunk_frame(piece["input_position"], piece["raw"], piece["json"], piece["error"]),
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
