"""The store interface shared by the Parquet directory and MongoDB.

Besides reading and writing records, a store answers the few questions :mod:`recctl.stats` asks
(counts per recommendation, recent interactions, catalog look-ups), each in its own query
language, so that only aggregated rows reach Python. The frames those answers have are defined
here, once: :data:`COUNTS_SCHEMA`, :data:`RECENT_SCHEMA` and :data:`CATALOG_SCHEMA`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import polars as pl

from recctl.records import SCHEMAS, RecordKind

if TYPE_CHECKING:
    from pathlib import Path

COUNT_COLUMNS: dict[str, str] = {
    "view": "view_count",
    "click": "click_count",
    "save": "save_count",
    "share": "share_count",
    "implement": "implementation_count",
    "dismiss": "dismiss_count",
    "rate": "rate_count",
}
"""interaction_type -> its count column."""

LABEL_UNIT = 1e-9
"""Labels are added up as integer multiples of this (rounded half up): exact, in any order."""

COUNTS_SCHEMA: dict[str, pl.DataType] = {
    "recommendation_id": pl.String(),
    "total_interactions": pl.Int64(),
    **{column: pl.Int64() for column in COUNT_COLUMNS.values()},
    "label_units": pl.Int64(),
    "label_count": pl.Int64(),
}
"""What :meth:`Store.interaction_counts` returns, one row per recommendation: the interactions of
every type (an unknown type counts in ``total_interactions`` only), ``label_units`` the sum of the
non-null labels in units of :data:`LABEL_UNIT` (each rounded half up) and ``label_count`` how many
there are."""

RECENT_SCHEMA: dict[str, pl.DataType] = {
    name: SCHEMAS["interactions"][name]
    for name in (
        "timestamp",
        "event_id",
        "recommendation_id",
        "interaction_type",
        "interaction_value",
        "label",
        "assessment_id",
        "session_id",
        "position",
    )
}
"""What :meth:`Store.recent_interactions` returns: the interaction columns a history lists."""

IMPRESSION_COUNTS_SCHEMA: dict[str, pl.DataType] = {
    "recommendation_id": pl.String(),
    "impressions": pl.Int64(),
}
"""What :meth:`Store.impression_counts` returns: per recommendation, how many times it was shown
(items of stored impressions)."""


def read_columns(kind: RecordKind, columns: list[str] | None) -> list[str]:
    """The columns a read of ``kind`` returns: ``columns`` (all of the schema's when None), checked
    against the schema (ValueError naming the unknown ones)."""
    schema = SCHEMAS[kind]
    wanted = list(schema) if columns is None else list(columns)
    unknown = [name for name in wanted if name not in schema]
    if unknown:
        raise ValueError(f"{kind}: unknown column(s) {', '.join(unknown)}")
    return wanted


READ_BATCH_ROWS = 250_000
"""The rows of one batch of :meth:`Store.read_batches` unless told otherwise."""

LOG_ORDER: dict[RecordKind, tuple[str, ...]] = {
    "interactions": ("timestamp", "event_id"),
    "impressions": ("timestamp", "request_id", "position"),
}
"""The order :meth:`Store.read` returns the rows of each insert-only log in."""

CATALOG_SCHEMA: dict[str, pl.DataType] = {
    "recommendation_id": pl.String(),
    "category": pl.String(),
    "title": pl.String(),
}
"""The catalog columns that :meth:`Store.with_catalog` joins on (``recommendation_id``) and adds."""


@dataclass(frozen=True)
class InteractionFilter:
    """Which interactions a query covers: ``since <= timestamp < until`` (naive datetimes are UTC),
    the given user and recommendation, and only those on recommendations in the catalog whose
    category is one of ``category`` (exact stored values; an empty tuple matches nothing). A field
    left None does not filter."""

    since: datetime | None = None
    until: datetime | None = None
    user_id: str | None = None
    recommendation_id: str | None = None
    category: tuple[str, ...] | None = None


@dataclass(frozen=True)
class WriteResult:
    """What one write did. Records of a log are ``inserted`` or ``duplicates``; catalog rows are
    ``inserted``, ``updated`` (replacing a different row) or ``unchanged`` (identical to it).
    Impressions are counted in lists (a served list is one record, however many items it has)."""

    inserted: int = 0
    duplicates: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: WriteResult) -> WriteResult:
        return WriteResult(
            self.inserted + other.inserted,
            self.duplicates + other.duplicates,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )


class Store(Protocol):
    """Where validated records live. Both implementations give the same results for the same input.

    Frames passed in and returned have exactly the columns and types of
    :data:`recctl.records.SCHEMAS` for their kind (timestamps are UTC milliseconds).
    """

    description: str
    """Where the store is, safe to print (a MongoDB password is masked)."""

    @property
    def rejects_dir(self) -> Path:
        """Where an ingest writes its rejects file unless told otherwise: ``<store>/rejects`` for a
        directory store, ``./recctl-rejects`` (relative to the working directory) for MongoDB."""
        ...

    def write(self, kind: RecordKind, records: pl.DataFrame) -> WriteResult:
        """Store validated records.

        Interactions are insert-only: a row whose ``event_id`` is already stored (or repeats an
        earlier row of the same frame) is counted as a duplicate and not written. Impressions are
        insert-only too, a list at a time: the rows of one ``request_id`` in the frame are one
        list (its items), inserted whole, or a duplicate when that ``request_id`` is already
        stored. Catalog rows
        replace the stored row with the same key (``updated``), are identical to it (``unchanged``,
        not written again) or are inserted; see :mod:`recctl.stores.catalog`. A failure part-way
        raises :class:`~recctl.errors.StoreError` whose ``written`` attribute says how many rows
        were stored before it.
        """
        ...

    def read(
        self,
        kind: RecordKind,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        columns: list[str] | None = None,
    ) -> pl.DataFrame:
        """Stored records of ``kind``; those of a log (interactions, impressions) optionally limited
        to ``since <= timestamp < until`` and sorted by :data:`LOG_ORDER` (impressions: one row
        per item, by timestamp, request_id and position)."""
        ...

    def read_batches(
        self,
        kind: RecordKind,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        columns: list[str] | None = None,
        batch_rows: int = READ_BATCH_ROWS,
    ) -> Iterator[pl.DataFrame]:
        """The records :meth:`read` returns, as frames of about ``batch_rows`` rows each (a batch
        may be larger by the records of one write or one millisecond), in no promised order and
        together exactly once each: what a job that must not hold a whole log in memory reads.
        A served list (impressions) is never split between two batches."""
        ...

    # -- the queries of stats and history ----------------------------------------------------------
    def interaction_counts(self, where: InteractionFilter) -> pl.LazyFrame:
        """:data:`COUNTS_SCHEMA` rows, one per recommendation with an interaction ``where`` covers,
        in no particular order. Lazy, so that a caller's sort and limit can join the store's plan."""
        ...

    def impression_counts(self, where: InteractionFilter) -> pl.DataFrame:
        """:data:`IMPRESSION_COUNTS_SCHEMA` rows, one per recommendation shown in an impression
        ``where`` covers (its time window, user, recommendation and category), in no particular
        order; empty when none is."""
        ...

    def recent_interactions(self, where: InteractionFilter, limit: int | None) -> pl.DataFrame:
        """:data:`RECENT_SCHEMA` rows of the interactions ``where`` covers, newest first (ties by
        ``event_id``, descending), at most ``limit`` (all when None)."""
        ...

    def with_catalog(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` (with a ``recommendation_id`` column) plus the catalog's ``category`` and
        ``title``, null for a recommendation not in the catalog; rows keep their order."""
        ...

    def in_catalog(self, recommendation_id: str, category: tuple[str, ...] | None = None) -> bool:
        """Whether the catalog holds ``recommendation_id`` (with one of the categories ``category``,
        exact stored values, when given)."""
        ...

    def categories(self) -> list[str]:
        """The distinct non-null categories of the catalog, sorted."""
        ...

    def has_interactions(self, where: InteractionFilter) -> bool:
        """Whether any interaction is covered by ``where``."""
        ...

    def has_assessment(self, user_id: str) -> bool:
        """Whether an assessment names ``user_id``."""
        ...

    def close(self) -> None:
        """Release connections and locks."""
        ...
