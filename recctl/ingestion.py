"""Ingest: read records, validate them, store the valid ones, account for every row.

For every call ``read == inserted + duplicates + updated + unchanged + rejected``: each input record
is stored, counted as a duplicate (interactions whose ``event_id``, impressions whose
``request_id`` is already stored or came earlier in the input), as an update
(catalog rows replacing a different stored row) or as unchanged (identical to the stored row), or
written to the rejects file with its position and reason.
Input is streamed chunk by chunk, and valid rows are written in batches of at most ``batch_rows``,
so memory stays bounded whatever the input size. Reading, validating and writing overlap: a thread
reads the next chunks of NDJSON while one is validated, and a batch is written by a writer thread
while the next one is validated (the stages overlap where polars and the stores release the
interpreter lock; polars' JSON reader holds it). Writes stay one at a time and in input order.
An impression (one served list) is one record and is counted as one, however many items (stored
rows) it has; a list is never split between two writes.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import polars as pl

from recctl.errors import StoreError, StrictModeError
from recctl.formats import CHUNK_ROWS, Format, RawChunk, read_records, source_size
from recctl.labels import DEFAULT_POLICY, LabelPolicy
from recctl.records import FLATTENED_FIELDS, KEYS, KINDS, RecordKind, validate
from recctl.stores.base import Store, WriteResult

BATCH_ROWS = 250_000
READ_AHEAD = 2
"""Chunks of NDJSON read ahead of the one being validated (see :func:`recctl.formats.read_records`)."""
CHUNK_LISTS = 25_000
"""Records read at a time for a kind stored as several rows per record (impressions: a list of
about ten items is ten rows): about one write batch of rows per chunk, as the per-chunk cost of
taking lists apart is paid once per chunk."""


@dataclass
class IngestSummary:
    """The accounting of one ingest; :meth:`as_json` has the keys of ``--json``."""

    kind: RecordKind
    sources: list[str]
    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    reject_reasons: Counter[str] = field(default_factory=Counter)
    rejects_path: str | None = None
    strict_failed: bool = False
    empty_sources: list[str] = field(default_factory=list)
    """Sources that held no records at all (no bytes, only blank lines, or a CSV header alone)."""

    def add(self, result: WriteResult) -> None:
        self.inserted += result.inserted
        self.duplicates += result.duplicates
        self.updated += result.updated
        self.unchanged += result.unchanged

    def reasons_by_count(self) -> list[tuple[str, int]]:
        """The reject reasons, most frequent first; equal counts in the reasons' order (so the same
        input always reports them alike)."""
        return sorted(self.reject_reasons.items(), key=lambda item: (-item[1], item[0]))

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "sources": self.sources,
            "read": self.read,
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "reject_reasons": dict(self.reasons_by_count()),
            "rejects_path": self.rejects_path,
        }


class RejectsFile:
    """NDJSON file of rejected rows: ``source``, ``line``/``row``/``index``, ``reason``, ``raw``.

    Created on the first reject only, so a clean ingest leaves no empty file behind.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None

    def write(self, source: str, position_kind: str, rejects: pl.DataFrame) -> None:
        if rejects.is_empty():
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        rejects.select(
            pl.lit(source).alias("source"),
            pl.col("input_position").alias(position_kind),
            "reason",
            "raw",
        ).write_ndjson(self._handle)
        self._handle.flush()

    @property
    def used(self) -> bool:
        return self._handle is not None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def default_rejects_path(store: Store, kind: RecordKind, now: datetime | None = None) -> Path:
    """``<kind>-<UTC time>.ndjson`` in the store's :attr:`~recctl.stores.base.Store.rejects_dir`:
    ``<store>/rejects/`` for a directory store, ``./recctl-rejects/`` for MongoDB."""
    moment = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    return store.rejects_dir / f"{kind}-{moment}.ndjson"


def ingest(
    store: Store,
    kind: RecordKind,
    sources: list[str],
    *,
    format: Format | None = None,
    policy: LabelPolicy = DEFAULT_POLICY,
    rejects_path: Path | None = None,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
    batch_rows: int = BATCH_ROWS,
    now: datetime | None = None,
) -> IngestSummary:
    """Validate and store the records of ``sources`` (paths, ``-`` for stdin) as ``kind``.

    ``strict``: validate everything first and write nothing if any row is invalid (raises
    :class:`StrictModeError`, "N of M rows are invalid, ...", after writing the rejects file).
    ``progress`` is called with the number of input bytes consumed so far. A store failure part-way
    raises :class:`StoreError` whose message says how many rows were stored before it.
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    sources = sources or ["-"]
    now = now or datetime.now(UTC)
    rejects = RejectsFile(rejects_path or default_rejects_path(store, kind, now))
    summary = IngestSummary(kind, sources)
    names: dict[str, str] = {}
    with ExitStack() as cleanup:
        cleanup.callback(rejects.close)
        if strict:
            spooled = [_spooled(source, cleanup) for source in sources]
            names.update(zip(spooled, sources, strict=True))  # stdin keeps its name "-" in reports
            sources = spooled
            checked = IngestSummary(kind, sources)
            for _records in _validated(sources, kind, format, policy, now, rejects, checked, progress, names):
                pass
            if checked.rejected:
                summary.read, summary.rejected = checked.read, checked.rejected
                summary.reject_reasons = checked.reject_reasons
                summary.rejects_path = str(rejects.path)
                summary.strict_failed = True
                raise StrictModeError(
                    f"{checked.rejected} of {checked.read} rows are invalid, nothing was written "
                    f"(rejects in {rejects.path})"
                )
        writer = _Writer(store, kind, summary)
        cleanup.callback(writer.close)
        batch: list[pl.DataFrame] = []
        pending = 0
        whole_records = KINDS[kind].items is not None
        for records in _validated(sources, kind, format, policy, now, rejects, summary, progress, names):
            if whole_records:  # never cut a list between writes: a batch may exceed batch_rows by a chunk
                batch.append(records)
                pending += records.height
                if pending >= batch_rows:
                    writer.write(batch)
                    batch, pending = [], 0
                continue
            # A chunk can be larger than a batch: cut it so that no write exceeds ``batch_rows``.
            offset = 0
            while offset < records.height:
                piece = records.slice(offset, batch_rows - pending)
                offset += piece.height
                batch.append(piece)
                pending += piece.height
                if pending >= batch_rows:
                    writer.write(batch)
                    batch, pending = [], 0
        writer.write(batch)
        writer.finish()
    summary.rejects_path = str(rejects.path) if rejects.used else None
    return summary


def _validated(
    sources: list[str],
    kind: RecordKind,
    format: Format | None,
    policy: LabelPolicy,
    now: datetime,
    rejects: RejectsFile,
    summary: IngestSummary,
    progress: Callable[[int], None] | None,
    names: dict[str, str],
) -> Iterator[pl.DataFrame]:
    """Valid records chunk by chunk; counts reads and rejects into ``summary`` as it goes.

    ``names`` maps a spooled copy of stdin back to ``-``, the name reports and rejects use.
    A kind stored as several rows per record (impressions) has its repeats within the input
    counted as duplicates here, since the rows written no longer tell two lists of one key apart.
    """
    done_before = 0
    key = KEYS[kind]
    several_rows = KINDS[kind].items is not None
    seen = pl.Series(key, [], dtype=pl.String)  # the keys of the input so far (several_rows only)
    chunk_rows = CHUNK_LISTS if several_rows else CHUNK_ROWS
    for source in sources:
        chunk: RawChunk | None = None
        read_before = summary.read
        for chunk in read_records(
            source, format=format, chunk_rows=chunk_rows, nested=FLATTENED_FIELDS[kind], read_ahead=READ_AHEAD
        ):
            result = validate(kind, chunk.rows, policy, now=now)
            records = result.records
            summary.duplicates += result.duplicates
            if several_rows and not records.is_empty():
                repeated = records[key].is_in(seen.implode())
                if repeated.any():
                    summary.duplicates += records.filter(repeated)[key].n_unique()
                    records = records.filter(~repeated)
                seen = pl.concat([seen, records[key].unique(maintain_order=True)])
            summary.read += chunk.rows.height
            summary.rejected += result.rejects.height
            summary.reject_reasons.update(dict(result.rejects["reason"].value_counts().iter_rows()))
            rejects.write(names.get(source, source), chunk.position_kind, result.rejects)
            if progress is not None:
                progress(done_before + chunk.bytes_done)
            yield records
        if chunk is not None:
            done_before += chunk.bytes_done
        if summary.read == read_before and names.get(source, source) not in summary.empty_sources:
            summary.empty_sources.append(names.get(source, source))


class _Writer:
    """Writes batches to the store one at a time, in order, on a thread of its own.

    :meth:`write` hands a batch over and returns at once, after waiting for the batch before it
    (so at most one batch is being written while the next is built). A store failure is raised by
    the next :meth:`write` or by :meth:`finish`, as a :class:`StoreError` that says how many rows
    this ingest stored before it.
    """

    def __init__(self, store: Store, kind: RecordKind, summary: IngestSummary) -> None:
        self.store, self.kind, self.summary = store, kind, summary
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="recctl-ingest-writer")
        self._writing: Future[WriteResult] | None = None

    def write(self, batch: list[pl.DataFrame]) -> None:
        self.finish()
        if batch:
            self._writing = self._pool.submit(self.store.write, self.kind, pl.concat(batch))

    def finish(self) -> None:
        """Wait for the batch being written and count it."""
        writing, self._writing = self._writing, None
        if writing is None:
            return
        try:
            self.summary.add(writing.result())
        except StoreError as exc:
            stored = self.summary.inserted + self.summary.updated + (exc.written or 0)
            raise StoreError(
                f"{exc}; {stored} rows were stored by this ingest before the failure", written=stored
            ) from exc

    def close(self) -> None:
        """Let a write under way end (a part file is written whole or not at all), then stop. A
        failure of that write is raised here, also while another error is on its way out (the
        store's failure came first: it is the one to report, with the other as its context)."""
        self._pool.shutdown(wait=True)
        self.finish()


def _spooled(source: str, cleanup: ExitStack) -> str:
    """stdin copied to a temporary file (strict mode reads its input twice); paths as they are."""
    if source != "-":
        return source
    spool = cleanup.enter_context(tempfile.NamedTemporaryFile(prefix="recctl-stdin-"))  # noqa: SIM115
    shutil.copyfileobj(sys.stdin.buffer, spool)
    spool.flush()
    return spool.name


def total_size(sources: list[str]) -> int | None:
    """Sum of the sources' sizes in bytes, None when one of them is stdin."""
    sizes = [source_size(source) for source in sources or ["-"]]
    return None if any(size is None for size in sizes) else sum(s for s in sizes if s is not None)
