"""What a catalog write does to each row, decided the same way for both stores.

A catalog row (recommendation or assessment) is ``inserted`` when its key is new, ``updated`` when
it replaces a different row, and ``unchanged`` when it is identical to the row it would replace.
Rows are judged in input order, as if written one at a time: the first row of a key against the
stored row, each later row of the same key against the one before it. So re-ingesting a catalog
as it is stored counts every row ``unchanged`` and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from recctl.records import KEYS, SCHEMAS, RecordKind
from recctl.stores.base import WriteResult

if TYPE_CHECKING:
    import polars as pl

JSON_TEXT_COLUMNS = ("extra", "priorities")
"""Catalog columns holding JSON object text: compared after one re-serialisation (spacing and the
serialiser do not matter; key order does, so a re-ordered object is written again)."""


@dataclass(frozen=True)
class CatalogChanges:
    """The accounting of one catalog write, and the rows that have to be written for it."""

    result: WriteResult
    to_write: pl.DataFrame
    """The last row of every key that is new or differs from the stored row, in input order."""


def catalog_changes(kind: RecordKind, records: pl.DataFrame, stored: pl.DataFrame) -> CatalogChanges:
    """Judge ``records`` (validated rows of ``kind``, in input order, keys may repeat) against
    ``stored`` (the stored rows; rows of other keys are ignored).

    Every column of the kind's schema takes part; nulls equal nulls; the JSON text columns are
    compared after one re-serialisation, so the same object written by another serialiser (a
    store that keeps it as a document) is the same.
    """
    import polars as pl

    key = KEYS[kind]
    columns = list(SCHEMAS[kind])
    incoming = records.select(columns)
    known = (
        stored.select(columns)
        .filter(pl.col(key).is_in(incoming[key].implode()))
        .unique(subset=key, keep="last", maintain_order=True)
    )
    repeated = incoming[key].is_duplicated().any()
    if known.is_empty() and not repeated:  # the common first ingest: every row is new
        return CatalogChanges(WriteResult(inserted=incoming.height), incoming)

    order = "__recctl_order"  # 0 for the stored row, then 1, 2, ... in input order
    comparable = [_comparable(name) for name in columns]
    sequence = (
        pl.concat(
            [
                known.with_columns(pl.lit(0, dtype=pl.Int64).alias(order)),
                incoming.with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(order)),
            ]
        )
        .with_columns(comparable)
        .sort(key, order)
    )
    # Sorted by key, so the row before is the previous one of the same key when the keys match
    # (a plain shift: no window per key).
    has_previous = pl.col(key).eq_missing(pl.col(key).shift(1))
    same = pl.all_horizontal(pl.col(name).eq_missing(pl.col(name).shift(1)) for name in columns)
    judged = sequence.select(pl.col(order), has_previous.alias("has_previous"), same.alias("same")).filter(
        pl.col(order) > 0
    )
    inserted = judged.filter(~pl.col("has_previous")).height
    unchanged = judged.filter(pl.col("has_previous") & pl.col("same")).height
    result = WriteResult(inserted=inserted, updated=judged.height - inserted - unchanged, unchanged=unchanged)

    # To write: the last row of each key, unless it is what is stored already.
    latest = incoming.unique(subset=key, keep="last", maintain_order=True)
    if known.is_empty():
        return CatalogChanges(result, latest)
    against = latest.with_columns(comparable).join(
        known.with_columns(comparable).with_columns(pl.lit(True).alias(order)),
        on=key,
        how="left",
        suffix="__stored",
        maintain_order="left",
    )
    differs = ~pl.all_horizontal(
        pl.col(name).eq_missing(pl.col(f"{name}__stored")) for name in columns if name != key
    )
    keep = against.select(pl.col(order).is_null() | differs).to_series()
    return CatalogChanges(result, latest.filter(keep))


def _comparable(name: str) -> pl.Expr:
    import polars as pl

    if name in JSON_TEXT_COLUMNS:
        return pl.col(name).str.json_path_match("$").alias(name)
    return pl.col(name)
