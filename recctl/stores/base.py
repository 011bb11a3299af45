"""The store interface shared by the Parquet directory and MongoDB."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import polars as pl

    from recctl.records import RecordKind


@dataclass(frozen=True)
class WriteResult:
    """What one write did. Interactions are ``inserted`` or ``duplicates``; catalog rows are
    ``inserted``, ``updated`` (replacing a different row) or ``unchanged`` (identical to it)."""

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

    def write(self, kind: RecordKind, records: pl.DataFrame) -> WriteResult:
        """Store validated records.

        Interactions are insert-only: a row whose ``event_id`` is already stored (or repeats an
        earlier row of the same frame) is counted as a duplicate and not written. Catalog rows
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
        """Stored records of ``kind``; interactions optionally limited to ``since <= timestamp < until``."""
        ...

    def count(self, kind: RecordKind) -> int:
        """How many records of ``kind`` are stored."""
        ...

    def close(self) -> None:
        """Release connections and locks."""
        ...
