"""Parquet input, read by Arrow in batches of rows."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import IO, Any, cast

import polars as pl

from recctl.errors import InputError, first_line
from recctl.formats.chunks import Nested, RawChunk, chunk_frame, rows_as_json, with_flattened_folded


def read_parquet(
    stream: IO[bytes], source: str, chunk_rows: int, progress: Callable[[], int], nested: Nested
) -> Iterator[RawChunk]:
    """Parquet rows as records (positions are 0-based row indexes).

    A file is read by Arrow itself, so Arrow's reader threads never wait for Python; stdin and
    compressed input are read whole (Parquet needs random access). Column types JSON lacks are
    made text: binary columns are decoded as UTF-8 (a row with bytes that are not is a record
    whose ``error`` is ``invalid UTF-8``), and a float column holding NaN or Infinity becomes text
    (``NaN``, ``inf``), which validation judges like the same text in a CSV cell.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if source != "-" and _starts_with(source, b"PAR1"):
        native = pa.OSFile(source)
    else:
        native = pa.BufferReader(stream.read())
    try:
        try:
            parquet = pq.ParquetFile(native)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{source}: not a Parquet file: {first_line(exc)}") from None
        index = 0
        try:
            for batch in parquet.iter_batches(batch_size=chunk_rows):
                try:
                    frame = cast(pl.DataFrame, pl.from_arrow(batch))
                except pl.exceptions.PolarsError as exc:
                    raise InputError(
                        f"{source}: Parquet columns recctl cannot read: {first_line(exc)}"
                    ) from None
                frame, error = _json_ready(frame)
                as_json = rows_as_json(frame, source)
                records, error = with_flattened_folded(frame, as_json, error, nested, source)
                positions = pl.int_range(index, index + frame.height, eager=True, dtype=pl.Int64)
                index += frame.height
                yield RawChunk(chunk_frame(positions, as_json, records, error), "index", progress())
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{source}: a damaged Parquet file: {first_line(exc)}") from None
    finally:
        native.close()


def _starts_with(path: str, magic: bytes) -> bool:
    try:
        with open(path, "rb") as head:
            return head.read(len(magic)) == magic
    except OSError:
        return False


def _json_ready(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """``frame`` with the columns JSON cannot hold made text, and an ``invalid UTF-8`` error per row."""
    invalid = pl.Series([False] * frame.height, dtype=pl.Boolean)
    replaced: list[pl.Series] = []
    for column in frame.get_columns():
        dtype = column.dtype
        if dtype == pl.Binary:
            text, bad = _decoded(column)
            replaced.append(text)
            invalid = invalid | bad
        elif "Binary" in str(dtype):  # bytes inside lists or structs: rare enough for Python
            pairs = [_decoded_value(value) for value in column.to_list()]
            values = [value for value, _ in pairs]
            try:
                replaced.append(pl.Series(column.name, values, strict=False))
            except (pl.exceptions.PolarsError, TypeError, ValueError):
                replaced.append(pl.Series(column.name, [json.dumps(v) for v in values], dtype=pl.String))
            invalid = invalid | pl.Series([bad for _, bad in pairs], dtype=pl.Boolean)
        elif dtype.is_float() and (column.is_nan() | column.is_infinite()).any():
            replaced.append(column.cast(pl.String))
    if replaced:
        frame = frame.with_columns(replaced)
    error = pl.Series([None] * frame.height, dtype=pl.String)
    if invalid.any():
        error = invalid.replace_strict({True: "invalid UTF-8", False: None}, return_dtype=pl.String)
    return frame, error


def _decoded(column: pl.Series) -> tuple[pl.Series, pl.Series]:
    """A binary column as text, and which rows were not UTF-8 (null there)."""
    try:
        return column.cast(pl.String), pl.Series([False] * column.len(), dtype=pl.Boolean)
    except pl.exceptions.PolarsError:
        pairs = [_decoded_value(value) for value in column.to_list()]
        return (
            pl.Series(column.name, [value for value, _ in pairs], dtype=pl.String),
            pl.Series([bad for _, bad in pairs], dtype=pl.Boolean),
        )


def _decoded_value(value: Any) -> tuple[Any, bool]:
    """``value`` with every ``bytes`` in it decoded as UTF-8, and whether one was not UTF-8."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8"), False
        except UnicodeDecodeError:
            return None, True
    if isinstance(value, list):
        pairs = [_decoded_value(item) for item in value]
        return [item for item, _ in pairs], any(bad for _, bad in pairs)
    if isinstance(value, dict):
        pairs_by_key = {key: _decoded_value(item) for key, item in value.items()}
        return {key: item for key, (item, _) in pairs_by_key.items()}, any(
            b for _, b in pairs_by_key.values()
        )
    return value, False
