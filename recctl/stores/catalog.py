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
"""Catalog columns holding JSON object text: compared as JSON (one serialiser), not as text."""


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
    order = "__recctl_order"  # 0 for the stored row, then 1, 2, ... in input order
    incoming = records.select(columns).with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(order)
    )
    known = (
        stored.select(columns)
        .filter(pl.col(key).is_in(incoming[key].implode()))
        .unique(subset=key, keep="last")
        .with_columns(pl.lit(0, dtype=pl.Int64).alias(order))
    )
    comparable = [_comparable(name) for name in columns]
    sequence = pl.concat([known, incoming]).with_columns(comparable).sort(key, order)
    same_as_previous = pl.all_horizontal(
        pl.col(name).eq_missing(pl.col(name).shift(1).over(key)) for name in columns
    )
    judged = sequence.select(
        pl.col(order),
        pl.col(order).shift(1).over(key).is_not_null().alias("has_previous"),
        same_as_previous.alias("same"),
    ).filter(pl.col(order) > 0)
    inserted = judged.filter(~pl.col("has_previous")).height
    unchanged = judged.filter(pl.col("has_previous") & pl.col("same")).height
    result = WriteResult(inserted=inserted, updated=judged.height - inserted - unchanged, unchanged=unchanged)

    latest = incoming.unique(subset=key, keep="last", maintain_order=True)
    against = latest.with_columns(comparable).join(
        known.with_columns(comparable), on=key, how="left", suffix="__stored", maintain_order="left"
    )
    differs = ~pl.all_horizontal(
        pl.col(name).eq_missing(pl.col(f"{name}__stored")) for name in columns if name != key
    )
    keep = against.select(pl.col(f"{order}__stored").is_null() | differs).to_series()
    return CatalogChanges(result, latest.filter(keep).drop(order))


def _comparable(name: str) -> pl.Expr:
    import polars as pl

    if name in JSON_TEXT_COLUMNS:
        return pl.col(name).str.json_path_match("$").alias(name)
    return pl.col(name)
