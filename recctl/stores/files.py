"""The embedded store: a directory of Parquet files.

Layout::

    <root>/interactions/date=YYYY-MM-DD/part-<time>-<uuid>.parquet   one file per write and day
    <root>/impressions/date=YYYY-MM-DD/part-<time>-<uuid>.parquet    the same, one row per item shown
    <root>/recommendations/recommendations.parquet                     the whole catalog
    <root>/assessments/assessments.parquet
    <root>/.lock                                                       held while writing
    <root>/.recctl-store                                               marks the directory as a store

Every file is written under a temporary name beginning with ``.`` and renamed into place, so a
reader (or a process killed mid-write) never leaves a half file where readers look; the next writer
deletes a killed writer's temporary. Writers take an
exclusive ``flock`` on ``.lock``, so concurrent ingests into one directory serialise their writes
and never store an ``event_id`` (or an impression's ``request_id``) twice.

A directory is taken for a store only when it holds the marker ``.recctl-store`` (written when the
store is created, and by every write) or one of the data directories (stores made before the
marker existed); a missing or empty directory is a new store. Any other directory is refused, so
a mistyped ``--store`` never reads as an empty store and an ingest never writes into a
directory of other files.

The queries of stats and history are polars lazy plans over a scan of the Parquet parts: only
the columns a query uses are read, and the time filter skips row groups by their statistics.
"""

from __future__ import annotations

import fcntl
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from recctl.atomic import write_atomically, write_text_atomically
from recctl.errors import NotAStoreError, StoreError
from recctl.records import KEYS, KINDS, SCHEMAS, RecordKind, as_utc
from recctl.stores.base import (
    CATALOG_SCHEMA,
    COUNT_COLUMNS,
    COUNTS_SCHEMA,
    IMPRESSION_COUNTS_SCHEMA,
    LABEL_UNIT,
    LOG_ORDER,
    READ_BATCH_ROWS,
    RECENT_SCHEMA,
    InteractionFilter,
    WriteResult,
    read_columns,
)
from recctl.stores.catalog import catalog_changes
from recctl.stores.key_index import KeyIndex, may_repeat

PART_GLOB = "date=*/part-*.parquet"
TEMPORARY_GLOB = ".*.parquet.*.tmp"
MARKER = ".recctl-store"
DATA_DIRECTORIES = ("interactions", "recommendations", "assessments", "impressions")


class FileStore:
    """A Parquet directory store; see the module docstring for the layout."""

    def __init__(self, root: Path, *, create: bool = False, must_exist: bool = False) -> None:
        """Open the store at ``root``; see :func:`recctl.stores.open_store` for ``create`` and
        ``must_exist``. Raises :class:`NotAStoreError` for a directory that is not a store."""
        self.root = root
        self.description = str(root)
        # Per log, the keys stored (event ids, request ids) and the part files they were read from.
        self._indexed_files: dict[RecordKind, set[str]] = {}
        self._known_keys: dict[RecordKind, KeyIndex] = {}
        if root.exists() and not root.is_dir():
            raise StoreError(f"store {root} exists and is not a directory")
        state = _state(root)
        if state == "other":
            known = ", ".join(f"{name}/" for name in DATA_DIRECTORIES)
            raise NotAStoreError(
                f"{root} is a directory but not a recctl store: it has other files, and neither "
                f"{MARKER} nor any of {known}"
            )
        if must_exist and state != "store":
            what = "an empty directory" if state == "empty" else "no such directory"
            raise NotAStoreError(f"no store at {root}: {what}, nothing was ingested there")
        if create:
            try:
                self._mark()
            except OSError as exc:
                raise StoreError(f"cannot create store {root}: {exc.strerror or exc}") from exc

    # -- writing ----------------------------------------------------------------------------------
    def write(self, kind: RecordKind, records: pl.DataFrame) -> WriteResult:
        if records.is_empty():
            return WriteResult()
        with self._write_lock():
            if KINDS[kind].log:
                return self._insert_log(kind, records)
            return self._upsert_catalog(kind, records)

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        try:
            self._mark()
            handle = open(self.root / ".lock", "a+b")  # noqa: SIM115 - released in finally
        except OSError as exc:
            raise StoreError(f"cannot write to store {self.root}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._remove_stale_temporaries()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def _mark(self) -> None:
        """Create the directory if needed and write the marker unless it is there (atomically, so
        two processes creating one store both succeed)."""
        marker = self.root / MARKER
        if marker.exists():
            return
        write_text_atomically(marker, '{"recctl_store": 1}\n')

    def _remove_stale_temporaries(self) -> None:
        """Delete the temporaries of writers that died mid-write (call with the write lock held).

        Every temporary is made by a writer holding the lock, so one found by the lock's new
        holder is an orphan: a process killed between creating it and renaming it into place.
        """
        for pattern in (f"*/date=*/{TEMPORARY_GLOB}", f"*/{TEMPORARY_GLOB}"):
            for orphan in self.root.glob(pattern):
                orphan.unlink(missing_ok=True)

    def _insert_log(self, kind: RecordKind, records: pl.DataFrame) -> WriteResult:
        """Insert the records of a log whose key is not stored yet; the rest are duplicates.

        A record is a row (interactions), or all the rows of one key (impressions: a list's items),
        which are counted, kept or dropped together.
        """
        key = KEYS[kind]
        stored = self._stored_keys(kind)
        if KINDS[kind].items is None:
            unique = records
            if may_repeat(records[key]):
                unique = records.unique(subset=key, keep="first", maintain_order=True)
            fresh = unique.filter(~stored.contains(unique[key]))
            total, inserted = records.height, fresh.height
        else:
            keys = records[key].unique(maintain_order=True)
            new_keys = keys.filter(~stored.contains(keys))
            fresh = records.filter(pl.col(key).is_in(new_keys.implode()))
            total, inserted = keys.len(), new_keys.len()
        written = 0
        try:
            for day, rows in _by_day(fresh):
                path = self._log_dir(kind) / f"date={day}" / _part_name()
                _write_parquet_atomically(rows, path)
                self._indexed_files.setdefault(kind, set()).add(str(path))
                day_keys = rows[key].unique(maintain_order=True)
                stored.add(day_keys)
                written += len(day_keys)
        except OSError as exc:
            raise StoreError(
                f"writing {kind} to {self.root} failed after {written} records: {exc.strerror or exc}",
                written=written,
            ) from exc
        return WriteResult(inserted=inserted, duplicates=total - inserted)

    def _stored_keys(self, kind: RecordKind) -> KeyIndex:
        """Every stored key of a log; reads only the part files this object has not indexed yet."""
        key = KEYS[kind]
        known = self._known_keys.setdefault(kind, KeyIndex(key))
        indexed = self._indexed_files.setdefault(kind, set())
        current = {str(p) for p in self._log_dir(kind).glob(PART_GLOB)}
        unseen = sorted(current - indexed)
        if unseen:
            keys = pl.scan_parquet(unseen).select(key).unique().collect().to_series()
            known.add(keys.filter(~known.contains(keys)))
            indexed.update(unseen)
        return known

    def _upsert_catalog(self, kind: RecordKind, records: pl.DataFrame) -> WriteResult:
        key = KEYS[kind]
        stored = self.read(kind)
        changes = catalog_changes(kind, records, stored)
        if changes.to_write.is_empty():
            return changes.result  # every row unchanged: the file is not rewritten
        written = changes.to_write
        merged = pl.concat([stored.filter(~pl.col(key).is_in(written[key].implode())), written]).sort(key)
        try:
            _write_parquet_atomically(merged, self._catalog_path(kind))
        except OSError as exc:
            raise StoreError(
                f"writing {kind} to {self.root} failed: {exc.strerror or exc}", written=0
            ) from exc
        return changes.result

    # -- reading ----------------------------------------------------------------------------------
    def read(
        self,
        kind: RecordKind,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        columns: list[str] | None = None,
    ) -> pl.DataFrame:
        schema = SCHEMAS[kind]
        selected = read_columns(kind, columns or None)
        if not KINDS[kind].log:
            path = self._catalog_path(kind)
            if not path.exists():
                return pl.DataFrame(schema={c: schema[c] for c in selected})
            return pl.read_parquet(path, columns=selected)
        scan = self._scan_log(kind)
        if scan is None:
            return pl.DataFrame(schema={c: schema[c] for c in selected})
        if since is not None:
            scan = scan.filter(pl.col("timestamp") >= as_utc(since))
        if until is not None:
            scan = scan.filter(pl.col("timestamp") < as_utc(until))
        return scan.sort(*LOG_ORDER[kind]).select(selected).collect()

    def read_batches(
        self,
        kind: RecordKind,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        columns: list[str] | None = None,
        batch_rows: int = READ_BATCH_ROWS,
    ) -> Iterator[pl.DataFrame]:
        """A log a few part files at a time (each is one write of one day, so at most an ingest's
        write batch), about ``batch_rows`` stored rows per batch before the window's filter; a
        catalog ``batch_rows`` rows at a time from its one file. Parts of days outside the window
        are not opened."""
        schema = SCHEMAS[kind]
        selected = read_columns(kind, columns or None)
        if not KINDS[kind].log:
            path = self._catalog_path(kind)
            if path.exists():
                import pyarrow.parquet as pq

                with pq.ParquetFile(path) as catalog:
                    for batch in catalog.iter_batches(batch_size=batch_rows, columns=selected):
                        yield pl.from_arrow(batch, schema={c: schema[c] for c in selected})  # type: ignore[misc]
            return
        import pyarrow.parquet as pq

        parts = [
            part
            for part in sorted(self._log_dir(kind).glob(PART_GLOB))
            if _day_may_overlap(part.parent.name, since, until)
        ]
        group: list[Path] = []
        rows = 0
        for number, part in enumerate(parts):
            group.append(part)
            rows += pq.read_metadata(part).num_rows
            if rows < batch_rows and number < len(parts) - 1:
                continue
            scan = pl.scan_parquet(group, schema=schema, missing_columns="insert", hive_partitioning=False)
            if since is not None:
                scan = scan.filter(pl.col("timestamp") >= as_utc(since))
            if until is not None:
                scan = scan.filter(pl.col("timestamp") < as_utc(until))
            frame = scan.select(selected).collect()
            if frame.height:
                yield frame
            group, rows = [], 0

    def _scan_log(self, kind: RecordKind) -> pl.LazyFrame | None:
        """A lazy scan of all stored records of a log (for pushdown by callers), None when there are
        none. Parts written before a column existed (interactions' ``request_id``) read it as null."""
        files = sorted(self._log_dir(kind).glob(PART_GLOB))
        if not files:
            return None
        return pl.scan_parquet(files, hive_partitioning=False, schema=SCHEMAS[kind], missing_columns="insert")

    def _scan_interactions(self) -> pl.LazyFrame | None:
        return self._scan_log("interactions")

    def close(self) -> None:
        self._known_keys.clear()
        self._indexed_files.clear()

    # -- the queries of stats and history ---------------------------------------------------------
    def interaction_counts(self, where: InteractionFilter) -> pl.LazyFrame:
        interactions = self._interactions(where)
        if interactions is None:
            return pl.LazyFrame(schema=COUNTS_SCHEMA)
        kind = pl.col("interaction_type")
        return (
            interactions.group_by("recommendation_id")
            .agg(
                pl.len().alias("total_interactions"),
                *((kind == name).sum().alias(column) for name, column in COUNT_COLUMNS.items()),
                (pl.col("label") / LABEL_UNIT + 0.5).floor().cast(pl.Int64).sum().alias("label_units"),
                pl.col("label").count().alias("label_count"),
            )
            .cast(pl.Schema(COUNTS_SCHEMA))
        )

    def impression_counts(self, where: InteractionFilter) -> pl.DataFrame:
        impressions = self._filtered(self._scan_log("impressions"), where)
        if impressions is None:
            return pl.DataFrame(schema=IMPRESSION_COUNTS_SCHEMA)
        return (
            impressions.group_by("recommendation_id")
            .agg(pl.len().alias("impressions"))
            .cast(pl.Schema(IMPRESSION_COUNTS_SCHEMA))
            .collect()
        )

    def recent_interactions(self, where: InteractionFilter, limit: int | None) -> pl.DataFrame:
        interactions = self._interactions(where)
        if interactions is None:
            return pl.DataFrame(schema=RECENT_SCHEMA)
        newest = interactions.select(list(RECENT_SCHEMA)).sort(["timestamp", "event_id"], descending=True)
        return (newest if limit is None else newest.head(limit)).collect()

    def with_catalog(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.join(self._catalog(), on="recommendation_id", how="left", maintain_order="left")

    def in_catalog(self, recommendation_id: str, category: tuple[str, ...] | None = None) -> bool:
        found = self._catalog().filter(pl.col("recommendation_id") == recommendation_id)
        return bool(found["category"].is_in(category).any() if category is not None else found.height)

    def categories(self) -> list[str]:
        return self._catalog()["category"].drop_nulls().unique().sort().to_list()

    def has_interactions(self, where: InteractionFilter) -> bool:
        interactions = self._interactions(where)
        return interactions is not None and not interactions.select("event_id").head(1).collect().is_empty()

    def has_assessment(self, user_id: str) -> bool:
        users = self.read("assessments", columns=["user_id"])
        return bool((users["user_id"] == user_id).any())

    def _interactions(self, where: InteractionFilter) -> pl.LazyFrame | None:
        """The scan filtered by ``where`` (None when no interaction is stored)."""
        return self._filtered(self._scan_interactions(), where)

    def _filtered(self, scan: pl.LazyFrame | None, where: InteractionFilter) -> pl.LazyFrame | None:
        """A log's ``scan`` filtered by ``where`` (None when the log is empty)."""
        if scan is None:
            return None
        conditions = []
        if where.since is not None:
            conditions.append(pl.col("timestamp") >= as_utc(where.since))
        if where.until is not None:
            conditions.append(pl.col("timestamp") < as_utc(where.until))
        if where.user_id is not None:
            conditions.append(pl.col("user_id") == where.user_id)
        if where.recommendation_id is not None:
            conditions.append(pl.col("recommendation_id") == where.recommendation_id)
        if conditions:
            scan = scan.filter(*conditions)
        if where.category is not None:
            in_category = self._catalog().filter(pl.col("category").is_in(where.category))
            scan = scan.join(in_category.lazy(), on="recommendation_id", how="semi")
        return scan

    def _catalog(self) -> pl.DataFrame:
        return self.read("recommendations", columns=list(CATALOG_SCHEMA))

    # -- paths ------------------------------------------------------------------------------------
    @property
    def rejects_dir(self) -> Path:
        return self.root / "rejects"

    def _log_dir(self, kind: RecordKind) -> Path:
        return self.root / kind

    def _catalog_path(self, kind: RecordKind) -> Path:
        return self.root / kind / f"{kind}.parquet"


def _state(root: Path) -> str:
    """``missing``, ``empty``, ``store`` (the marker or a data directory) or ``other``."""
    if not root.is_dir():
        return "missing"
    if (root / MARKER).is_file() or any((root / name).is_dir() for name in DATA_DIRECTORIES):
        return "store"
    try:
        # Another process creating the store at this moment has only its marker's temporary
        # file there (written, then renamed into place): the directory is as good as empty.
        if all(
            entry.name.startswith(f".{MARKER}.") and entry.name.endswith(".tmp") for entry in root.iterdir()
        ):
            return "empty"
    except OSError as exc:
        raise StoreError(f"cannot read store {root}: {exc.strerror or exc}") from exc
    return "other"


def _day_may_overlap(folder: str, since: datetime | None, until: datetime | None) -> bool:
    """Whether the part folder ``date=YYYY-MM-DD`` can hold a record of ``since <= t < until``."""
    try:
        day = datetime.strptime(folder.removeprefix("date="), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return True  # not a folder name recctl writes: read it rather than guess
    if since is not None and day + timedelta(days=1) <= as_utc(since):
        return False
    return until is None or day < as_utc(until)


def _by_day(records: pl.DataFrame) -> Iterator[tuple[str, pl.DataFrame]]:
    days = records.with_columns(pl.col("timestamp").dt.date().cast(pl.String).alias("__day"))
    for day_frame in days.partition_by("__day", maintain_order=True):
        yield day_frame["__day"][0], day_frame.drop("__day")


def _part_name() -> str:
    return f"part-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}.parquet"


def _write_parquet_atomically(frame: pl.DataFrame, path: Path) -> None:
    """Write ``frame`` as Parquet (zstd, with statistics for row-group skipping), atomically."""
    write_atomically(
        path, lambda temporary: frame.write_parquet(temporary, compression="zstd", statistics=True)
    )
