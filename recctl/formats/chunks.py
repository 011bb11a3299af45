"""The frame every reader yields (:class:`RawChunk`), and records made from table rows.

CSV and Parquet rows become records as JSON objects of their cells (:func:`rows_as_json`); an
object field exported flattened, one column per key (``context.position``), is folded back into
the field (:func:`fold_flattened`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

import polars as pl

from recctl.errors import InputError, first_line

BOM = b"\xef\xbb\xbf"
"""A UTF-8 byte-order mark, which the text formats drop from the start of their input."""


@dataclass(frozen=True)
class RawChunk:
    """One block of input records (see :mod:`recctl.formats` for the columns)."""

    rows: pl.DataFrame
    position_kind: Literal["line", "row", "index"]
    bytes_done: int


def chunk_frame(position: pl.Series, raw: pl.Series, parsed: pl.Series, error: pl.Series) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "input_position": position.cast(pl.Int64),
            "raw": raw.cast(pl.String),
            "json": parsed.cast(pl.String),
            "error": error.cast(pl.String),
        }
    )


Nested = Mapping[str, Collection[str] | None]
"""Object fields that tabular input may give flattened, one column per key (``context.position``):
field -> the keys whose text is a number (None: every key's)."""


def rows_as_json(frame: pl.DataFrame, source: str = "-") -> pl.Series:
    """Each row of ``frame`` as the text of a JSON object of its columns."""
    if frame.width == 0:
        return pl.Series([None] * frame.height, dtype=pl.String)
    try:
        return frame.select(pl.struct(pl.all()).struct.json_encode()).to_series()
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:  # a type JSON lacks
        raise InputError(f"{source}: columns recctl cannot turn into JSON: {first_line(exc)}") from None


_JSON_NUMBER = r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$"


def fold_flattened(frame: pl.DataFrame, nested: Nested) -> tuple[pl.DataFrame, pl.Series | None]:
    """``frame`` with every column ``<field>.<key>`` of a ``nested`` field folded into ``<field>``.

    The folded ``<field>`` is the JSON text of an object of the row's non-null flattened values
    (so ``context.session_id`` fills ``context.session_id``, not an unknown top-level field). A
    text value stays text, except for the keys ``nested`` names as numbers, where text that is a
    JSON number becomes that number (``"3"`` in a CSV cell: position 3). A row that also has a
    ``<field>`` value keeps it, with the flattened keys added; when both give the same key, the
    row's error says so (which one was meant cannot be known). Returns the frame (unchanged when
    it has no such column) and the per-row error, or None.
    """
    errors: list[pl.Expr] = []
    folded: list[pl.Expr] = []
    dropped: list[str] = []
    for field, numeric in nested.items():
        prefix = f"{field}."
        columns = [name for name in frame.columns if name.startswith(prefix) and len(name) > len(prefix)]
        if not columns:
            continue
        pieces = []
        for name in columns:
            key = name[len(prefix) :]
            value = _json_value(pl.col(name), frame.schema[name])
            if frame.schema[name] == pl.String and (numeric is None or key in numeric):
                text = pl.col(name).str.strip_chars()
                value = pl.when(text.str.contains(_JSON_NUMBER)).then(text).otherwise(value)
            pieces.append(
                pl.when(pl.col(name).is_not_null()).then(pl.concat_str(pl.lit(_dumps(key) + ":"), value))
            )
        joined = pl.concat_str(pieces, separator=",", ignore_nulls=True)
        flat = pl.when(joined.str.len_bytes() > 0).then(pl.concat_str(pl.lit("{"), joined, pl.lit("}")))
        if field in frame.columns:
            # The row's own value as JSON text: a CSV cell is text already, a Parquet struct is not.
            original = (
                pl.col(field)
                if frame.schema[field] == pl.String
                else _json_value(pl.col(field), frame.schema[field])
            )
            given = original.str.strip_chars()
            is_object = given.str.contains(r"^\{[\s\S]*\}$").fill_null(False)
            is_empty = given.str.contains(r"^\{\s*\}$").fill_null(False)
            merged = (
                pl.when(given.is_null() | is_empty)
                .then(flat)
                .when(flat.is_null() | ~is_object)
                .then(original)  # not an object: validation rejects it, naming the field
                .otherwise(pl.concat_str(given.str.strip_suffix("}"), pl.lit(","), joined, pl.lit("}")))
            )
            for name in columns:
                key = name[len(prefix) :]
                both = (
                    is_object
                    & pl.col(name).is_not_null()
                    & given.str.json_path_match(f"$[{_dumps(key)}]").is_not_null()
                )
                errors.append(
                    pl.when(both).then(pl.lit(f"{field}.{key}: given both in {field} and as a column"))
                )
            folded.append(merged.alias(field))
        else:
            folded.append(flat.alias(field))
        dropped += columns
    if not folded:
        return frame, None
    error = frame.select(pl.coalesce(errors) if errors else pl.lit(None, dtype=pl.String)).to_series()
    result = frame.with_columns(folded).drop(dropped)
    return result, error if error.null_count() < error.len() else None


def _json_value(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """The JSON text of each value of ``column`` (null stays null)."""
    encoded = (
        pl.struct(column.alias("v")).struct.json_encode().str.strip_prefix('{"v":').str.strip_suffix("}")
    )
    return pl.when(column.is_not_null()).then(encoded)


def _dumps(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def with_flattened_folded(
    frame: pl.DataFrame, as_json: pl.Series, error: pl.Series, nested: Nested, source: str
) -> tuple[pl.Series, pl.Series]:
    """The records' JSON with flattened columns folded (``as_json`` when there are none), and the
    errors with any folding conflict added."""
    if not nested:
        return as_json, error
    folded, conflict = fold_flattened(frame, nested)
    if folded is frame:
        return as_json, error
    if conflict is not None:
        error = pl.select(pl.coalesce(error, conflict)).to_series()
    return rows_as_json(folded, source), error
