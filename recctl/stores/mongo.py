"""The MongoDB store: the original system's collections, read through Arrow.

Documents keep the original system's shape: one document per interaction in ``recommendation_interactions``
with ``context`` as an embedded object and unknown input fields at the top level; catalogs in
``recommendations`` and ``assessments``. Impressions (served lists) are one document per list in
``recommendation_impressions``, its items an array of subdocuments (an item's unknown fields in
it), and read back unwound, one row per item. Documents written by the original API (no ``event_id``,
``assessment_id`` inside ``context``, no ``label``) are read as they are: their ``event_id`` is
the text of their ``_id`` and their ``label`` is null.

The queries of stats and history are aggregation pipelines: ``$match`` on the indexed fields
(recommendation_id, user_id + timestamp, timestamp), then ``$group`` or ``$sort``, so that only
their results come back (through Arrow). Interaction fields are converted by the same
``$convert`` projection :meth:`MongoStore.read` uses, so original-API documents give the same
values there and here; catalog fields are converted to text in the pipeline.

This module is imported only when a ``mongodb://`` / ``mongodb+srv://`` store is opened;
pymongoarrow (and pyarrow) only when interactions are read or aggregated.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pymongo
from bson.errors import BSONError
from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure, PyMongoError

from recctl.errors import StoreError
from recctl.records import KEYS, KINDS, SCHEMAS, RecordKind, as_utc
from recctl.records.schema import IMPRESSION_ITEM_FIELDS, IMPRESSION_LIST_FIELDS
from recctl.stores import redact, uri_secrets
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

if TYPE_CHECKING:
    from pymongo.collection import Collection
    from pymongo.database import Database

__all__ = ["COLLECTIONS", "DEFAULT_DATABASE", "MongoStore"]

DEFAULT_DATABASE = "recctl"
COLLECTIONS: dict[RecordKind, str] = {
    "interactions": "recommendation_interactions",
    "recommendations": "recommendations",
    "assessments": "assessments",
    "impressions": "recommendation_impressions",
}
MAX_IN_LIST = 1_000
"""The most ids recctl sends in one ``$in`` list. A catalog write reads the stored rows of up to
this many keys by ``$in`` and the whole catalog for more (one scan beats thousands of index
look-ups); a query of interactions in a category with more recommendations than this filters by
them here, after the server's ``$match``."""
REJECTS_DIR = Path("recctl-rejects")
"""Where an ingest into MongoDB writes its rejects file by default, relative to the working directory."""
WRITE_BATCH = 5_000
"""Documents per ``insert_many`` / ``bulk_write`` call: the unit of progress reported on failure."""

_DUPLICATE_KEY = 11000
_UNAUTHORIZED = 13
_INDEX_CONFLICTS = (85, 86)  # IndexOptionsConflict, IndexKeySpecsConflict

# Typed top-level fields of a stored interaction; everything else but ``_id`` and ``context`` is extra.
_INTERACTION_FIELDS = (
    "event_id",
    "recommendation_id",
    "user_id",
    "assessment_id",
    "interaction_type",
    "interaction_value",
    "timestamp",
    "label",
)
_JSON_COLUMNS = ("context", "extra")
_SORT_COLUMNS = ("timestamp", "event_id")
# Joins the Arrow query to the JSON-text query: computed the same way, by the server, in both.
_ROW_KEY = "__recctl_row"
_ROW_KEY_VALUE = {"$toString": "$_id"}
# MongoDB owns ``_id``; an input field of that name is kept under this one and read back as ``_id``.
_INPUT_ID_FIELD = "_input_id"


def _convert(path: str | dict[str, Any], to: str) -> dict[str, Any]:
    """``$convert`` that turns a missing or unconvertible value into null (original-API documents vary)."""
    return {"$convert": {"input": path, "to": to, "onError": None, "onNull": None}}


_INTERACTION_PROJECTION: dict[str, dict[str, Any]] = {
    "event_id": _convert({"$ifNull": ["$event_id", {"$toString": "$_id"}]}, "string"),
    "recommendation_id": _convert("$recommendation_id", "string"),
    "user_id": _convert("$user_id", "string"),
    "assessment_id": _convert({"$ifNull": ["$assessment_id", "$context.assessment_id"]}, "string"),
    "interaction_type": _convert("$interaction_type", "string"),
    "interaction_value": _convert("$interaction_value", "double"),
    "timestamp": _convert("$timestamp", "date"),
    "session_id": _convert("$context.session_id", "string"),
    "request_id": _convert("$context.request_id", "string"),
    "position": _convert("$context.position", "long"),
    "propensity": _convert("$context.propensity", "double"),
    "model_version": _convert("$context.model_version", "string"),
    "variant": _convert("$context.variant", "string"),
    "label": _convert("$label", "double"),
}
"""The typed interaction columns (all but the JSON text ones) as ``$project`` expressions over a
stored document, recctl's or the original API's: an ``event_id`` missing is the text of ``_id``,
``assessment_id`` may be in ``context``, ``session_id`` .. ``variant`` are read from ``context``."""
# Typed fields of a stored impression (the list) and of one of its items; the rest is extra.
_LIST_FIELDS = IMPRESSION_LIST_FIELDS
_ITEM_FIELDS = IMPRESSION_ITEM_FIELDS
_ITEM_INDEX = "__recctl_item"
_IMPRESSION_PROJECTION: dict[str, dict[str, Any]] = {
    **{name: _convert(f"${name}", "string") for name in _LIST_FIELDS},
    "timestamp": _convert("$timestamp", "date"),
    "policy": _convert({"$ifNull": ["$policy", "deterministic"]}, "string"),
    "recommendation_id": _convert("$items.recommendation_id", "string"),
    "position": _convert("$items.position", "long"),
    "propensity": _convert("$items.propensity", "double"),
    "prefix_propensity": _convert("$items.prefix_propensity", "double"),
    "team": _convert("$items.team", "string"),
}
"""The typed impression columns as ``$project`` expressions over a document unwound by its items."""
_CATALOG_PROJECTION: dict[str, dict[str, Any]] = {
    "recommendation_id": _convert({"$ifNull": ["$recommendation_id", {"$toString": "$_id"}]}, "string"),
    "category": _convert("$category", "string"),
    "title": _convert("$title", "string"),
}
"""The :data:`~recctl.stores.base.CATALOG_SCHEMA` columns of a recommendation document, as
``$project`` expressions (a document without a key has the text of its ``_id``, as in ``read``)."""


class MongoStore:
    """A MongoDB database holding recctl's three collections.

    Parameters
    ----------
    uri
        ``mongodb://`` or ``mongodb+srv://`` URI, passed to :class:`pymongo.MongoClient` untouched
        (TLS and auth options included). The database is the URI path, ``recctl`` when empty.
    timeout_ms
        Server selection and connect timeout. An unreachable server raises
        :class:`~recctl.errors.StoreError` after about this long, with a one-line message whose
        password is masked.

    Indexes are created on open; a user without the right to create them (read-only) can still
    read, and the indexes are tried again, strictly, before the first write.
    """

    def __init__(self, uri: str, *, timeout_ms: int = 5000) -> None:
        self.description = redact(uri)
        self._passwords = _passwords(uri)
        try:
            self._client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
                uri,
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
                tz_aware=True,
                appname="recctl",
            )
            self.database: Database[dict[str, Any]] = self._client.get_default_database(DEFAULT_DATABASE)
        except (PyMongoError, ValueError, TypeError) as exc:
            raise self._failure("invalid URI for", exc) from None
        try:
            self._client.admin.command("ping")
        except OperationFailure as exc:
            self._client.close()
            raise self._failure("refused by", exc) from None
        except PyMongoError as exc:
            self._client.close()
            raise self._failure("cannot reach", exc) from None
        self._indexed = False
        try:
            self._ensure_indexes(strict=False)
        except StoreError:
            self._client.close()
            raise

    # -- public interface -------------------------------------------------------------------------
    def collection(self, kind: RecordKind) -> Collection[dict[str, Any]]:
        """The collection holding ``kind`` (for aggregations that run inside MongoDB)."""
        return self.database[COLLECTIONS[kind]]

    @property
    def rejects_dir(self) -> Path:
        """:data:`REJECTS_DIR`: a database has no folder of its own."""
        return REJECTS_DIR

    def write(self, kind: RecordKind, records: pl.DataFrame) -> WriteResult:
        """Store validated records (the frame has the columns of ``SCHEMAS[kind]``).

        Interactions are inserted unordered in batches of :data:`WRITE_BATCH`; a duplicate-key
        error on ``event_id`` (already stored, or repeated within the frame) counts as a duplicate.
        Catalog rows replace the document with the same key or are inserted; a key repeated within
        the frame keeps its last row. Each row counts as inserted, updated or unchanged
        (:mod:`recctl.stores.catalog`); unchanged documents are not written again.

        On any other write error, or a connection lost part-way, :class:`StoreError` is raised with
        ``written`` = rows acknowledged before it. Rows of the batch in flight when the connection
        went may or may not be stored; re-ingesting is safe (event ids are unique, catalogs upsert).
        """
        records = _schema_columns(kind, records)
        key = KEYS[kind]
        if records[key].null_count():
            raise ValueError(f"{kind}: {key} must not be null")
        self._ensure_indexes(strict=True)
        if KINDS[kind].items is not None:
            return self._insert_impressions(records)
        if KINDS[kind].log:
            return self._insert_interactions(records)
        return self._upsert_catalog(kind, records)

    def read(
        self,
        kind: RecordKind,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        columns: list[str] | None = None,
    ) -> pl.DataFrame:
        """Stored records with exactly the schema's columns and dtypes (or ``columns``, in that order).

        Interactions come through pymongoarrow, limited in the query to ``since <= timestamp < until``
        and sorted by (timestamp, event_id). The JSON text columns ``context`` and ``extra`` cannot
        come from Arrow: when asked for (``columns=None`` includes them) a second query fetches just
        those fields and each document is encoded in Python, which is the slow path; callers that
        need speed ask for the typed columns only. Catalogs (small) are read with ``find()`` and
        sorted by key; ``since``/``until`` do not apply to them. An original-API document without a key reads
        with the text of its ``_id`` as key.
        """
        wanted = read_columns(kind, columns)
        try:
            if kind == "interactions":
                frame = self._read_interactions(since, until, wanted)
            elif kind == "impressions":
                frame = self._read_impressions(since, until, wanted)
            else:
                frame = self._read_catalog(kind)
        except PyMongoError as exc:
            raise self._failure(f"cannot read {kind} from", exc) from None
        return frame.select(wanted)

    def read_batches(
        self,
        kind: RecordKind,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        columns: list[str] | None = None,
        batch_rows: int = READ_BATCH_ROWS,
    ) -> Iterator[pl.DataFrame]:
        """:meth:`read` over consecutive ranges of the log's ``timestamp`` (the catalog's key),
        each of about ``batch_rows`` documents. The server finds where each range ends on its
        index (a sort and a skip), so no range needs the one before it in memory. A range ends
        between two timestamps: documents of one millisecond are never split, so a batch may be
        larger by them."""
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
        wanted = read_columns(kind, columns)
        log = KINDS[kind].log
        field = "timestamp" if log else KEYS[kind]
        try:
            start: Any = since
            while True:
                end = self._range_end(kind, field, start, until if log else None, batch_rows)
                frame = (
                    self._read_log(
                        kind, _range_match(field, start, end if end is not None else until), wanted
                    )
                    if log
                    else self._read_catalog(kind, {field: _bounds(start, end)}).select(wanted)
                )
                if frame.height:
                    yield frame
                if end is None:
                    break
                start = end
            # What no range reaches: a catalog's documents without a key (read with the text of
            # their _id as key), a log's without a timestamp when the window is open.
            if not log or (since is None and until is None):
                rest = (
                    self._read_log(kind, [{"$match": {field: None}}], wanted)
                    if log
                    else self._read_catalog(kind, {field: None}).select(wanted)
                )
                if rest.height:
                    yield rest
        except PyMongoError as exc:
            raise self._failure(f"cannot read {kind} from", exc) from None

    def _range_end(
        self, kind: RecordKind, field: str, start: Any, until: datetime | None, batch_rows: int
    ) -> Any:
        """The ``field`` value ending the range that begins at ``start`` (None: the range runs to
        ``until``): the value of the document ``batch_rows`` places on, or the next larger value
        when that one equals ``start``."""
        collection = self.collection(kind)
        query = {field: _bounds(start, until)}
        found = list(collection.find(query, {field: 1, "_id": 0}).sort(field, 1).skip(batch_rows).limit(1))
        if not found:
            return None
        end = found[0][field]
        if start is not None and end == start:
            later = {field: {"$gt": start, **({"$lt": until} if until is not None else {})}}
            after = list(collection.find(later, {field: 1, "_id": 0}).sort(field, 1).limit(1))
            return after[0][field] if after else None
        return end

    def _read_log(self, kind: RecordKind, match: list[dict[str, Any]], wanted: list[str]) -> pl.DataFrame:
        if kind == "interactions":
            return self._read_interactions(None, None, wanted, match=match)
        return self._read_impressions(None, None, wanted, match=match)

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    def __repr__(self) -> str:
        return f"MongoStore({self.description!r})"

    # -- the queries of stats and history ---------------------------------------------------------
    def interaction_counts(self, where: InteractionFilter) -> pl.LazyFrame:
        match, in_category = self._match(where)
        # Grouped by (recommendation, type) on the server, then the few types become columns here:
        # cheaper for the server than a $cond per type and document, and as exact.
        group = {
            "_id": {
                "recommendation_id": _INTERACTION_PROJECTION["recommendation_id"],
                "interaction_type": _INTERACTION_PROJECTION["interaction_type"],
            },
            "interactions": {"$sum": 1},
            # the file store's rounding; $sum and $isNumber skip null and missing labels
            "label_units": {
                "$sum": {"$toLong": {"$floor": {"$add": [{"$divide": ["$label", LABEL_UNIT]}, 0.5]}}}
            },
            "label_count": {"$sum": {"$cond": [{"$isNumber": "$label"}, 1, 0]}},
        }
        by_type_schema = {
            "recommendation_id": pl.String(),
            "interaction_type": pl.String(),
            "interactions": pl.Int64(),
            "label_units": pl.Int64(),
            "label_count": pl.Int64(),
        }
        output = {"_id": 0, **{name: f"$_id.{name}" for name in list(by_type_schema)[:2]}}
        output |= dict.fromkeys(list(by_type_schema)[2:], 1)
        pipeline = [{"$match": match}, {"$group": group}, {"$project": output}]
        by_type = self._aggregate_frame("interactions", pipeline, by_type_schema)
        if in_category is not None:
            by_type = by_type.filter(pl.col("recommendation_id").is_in(in_category.implode()))
        interactions, kind = pl.col("interactions"), pl.col("interaction_type")
        return (
            by_type.lazy()
            .group_by("recommendation_id")
            .agg(
                interactions.sum().alias("total_interactions"),
                *(
                    interactions.filter(kind == name).sum().alias(column)
                    for name, column in COUNT_COLUMNS.items()
                ),
                pl.col("label_units", "label_count").sum(),
            )
            .cast(pl.Schema(COUNTS_SCHEMA))
        )

    def impression_counts(self, where: InteractionFilter) -> pl.DataFrame:
        match, in_category = self._match(where)
        # A list's match names its items' recommendation_id: once to find the lists that hold it
        # (by document), once more after $unwind to keep only those items.
        item_match = {}
        if "recommendation_id" in match:
            item_match["items.recommendation_id"] = match.pop("recommendation_id")
        pipeline: list[dict[str, Any]] = [
            {"$match": {**match, **item_match}},
            {"$unwind": "$items"},
            *([{"$match": item_match}] if item_match else []),
            {"$group": {"_id": _IMPRESSION_PROJECTION["recommendation_id"], "impressions": {"$sum": 1}}},
            {"$project": {"_id": 0, "recommendation_id": "$_id", "impressions": 1}},
        ]
        counts = self._aggregate_frame("impressions", pipeline, IMPRESSION_COUNTS_SCHEMA)
        if in_category is not None:
            counts = counts.filter(pl.col("recommendation_id").is_in(in_category.implode()))
        return counts

    def recent_interactions(self, where: InteractionFilter, limit: int | None) -> pl.DataFrame:
        match, in_category = self._match(where)
        fields = {name: _INTERACTION_PROJECTION[name] for name in RECENT_SCHEMA}
        pipeline: list[dict[str, Any]] = [
            {"$match": match},
            {"$project": {"_id": 0, **fields}},
            {"$sort": {"timestamp": -1, "event_id": -1}},
        ]
        if limit is not None and in_category is None:
            pipeline.append({"$limit": limit})
        recent = self._aggregate_frame("interactions", pipeline, RECENT_SCHEMA)
        if in_category is not None:
            recent = recent.filter(pl.col("recommendation_id").is_in(in_category.implode()))
            recent = recent if limit is None else recent.head(limit)
        return recent

    def with_catalog(self, frame: pl.DataFrame) -> pl.DataFrame:
        ids = frame["recommendation_id"].unique()
        # Few ids: fetch just those; many: the three catalog columns whole, which is cheaper than
        # a huge $in (and a pipeline must stay under MongoDB's 16 MB document limit).
        match = {"recommendation_id": {"$in": ids.to_list()}} if ids.len() <= MAX_IN_LIST else {}
        return frame.join(self._catalog(match), on="recommendation_id", how="left", maintain_order="left")

    def in_catalog(self, recommendation_id: str, category: tuple[str, ...] | None = None) -> bool:
        match: dict[str, Any] = {"recommendation_id": recommendation_id}
        if category is not None:
            match["category"] = {"$in": list(category)}
        return self._exists("recommendations", match)

    def categories(self) -> list[str]:
        # One group per distinct category (a handful), formed in MongoDB and converted to text
        # there, so a category that is not text (an original-API document) reads as its text,
        # or not at all.
        pipeline: list[dict[str, Any]] = [
            {"$group": {"_id": _CATALOG_PROJECTION["category"]}},
            {"$project": {"_id": 0, "category": "$_id"}},
        ]
        found = self._aggregate_frame("recommendations", pipeline, {"category": pl.String()})
        return found["category"].drop_nulls().sort().to_list()

    def has_interactions(self, where: InteractionFilter) -> bool:
        match, in_category = self._match(where)
        if in_category is not None:
            return not self.interaction_counts(where).head(1).collect().is_empty()
        return self._exists("interactions", match)

    def has_assessment(self, user_id: str) -> bool:
        return self._exists("assessments", {"user_id": user_id})

    def _match(self, where: InteractionFilter) -> tuple[dict[str, Any], pl.Series | None]:
        """The ``$match`` of ``where``, and the ids of its category when too many for an ``$in``."""
        match: dict[str, Any] = {}
        window = {}
        if where.since is not None:
            window["$gte"] = as_utc(where.since)
        if where.until is not None:
            window["$lt"] = as_utc(where.until)
        if window:
            match["timestamp"] = window
        if where.user_id is not None:
            match["user_id"] = where.user_id
        if where.recommendation_id is not None:
            match["recommendation_id"] = where.recommendation_id
        in_category = None
        if where.category is not None:
            in_category = self._catalog({"category": {"$in": list(where.category)}})["recommendation_id"]
            if in_category.len() <= MAX_IN_LIST and where.recommendation_id is None:
                match["recommendation_id"] = {"$in": in_category.to_list()}
                in_category = None
        return match, in_category

    def _catalog(self, match: dict[str, Any]) -> pl.DataFrame:
        """The :data:`~recctl.stores.base.CATALOG_SCHEMA` columns of the recommendations ``match`` finds."""
        pipeline = [{"$match": match}, {"$project": {"_id": 0, **_CATALOG_PROJECTION}}]
        return self._aggregate_frame("recommendations", pipeline, CATALOG_SCHEMA)

    def _exists(self, kind: RecordKind, match: dict[str, Any]) -> bool:
        pipeline: list[dict[str, Any]] = [
            {"$match": match},
            {"$limit": 1},
            {"$project": {"_id": 0, "found": {"$literal": 1}}},
        ]
        return not self._aggregate_frame(kind, pipeline, {"found": pl.Int64()}).is_empty()

    def _aggregate_frame(
        self, kind: RecordKind, pipeline: list[dict[str, Any]], schema: Mapping[str, pl.DataType]
    ) -> pl.DataFrame:
        """Run ``pipeline`` inside MongoDB on the collection of ``kind``; its result as a frame.

        For aggregations whose result is small next to their input: the server does the work and
        the result comes back through Arrow. ``schema`` names the result fields
        and their dtypes (String, Float64, Int64 or a Datetime, read as UTC milliseconds); a field
        missing from a result document is null. A driver failure raises :class:`StoreError`.
        """
        pa, schema_type, aggregate_arrow_all = _pymongoarrow()
        arrow_schema = schema_type({name: _arrow_type(pa, dtype) for name, dtype in schema.items()})
        try:
            table = aggregate_arrow_all(self.collection(kind), pipeline, schema=arrow_schema)
        except PyMongoError as exc:
            raise self._failure(f"cannot aggregate {kind} in", exc) from None
        frame = pl.DataFrame(table)
        return frame.with_columns(
            _as_utc_ms(pl.col(name)) if isinstance(dtype, pl.Datetime) else pl.col(name).cast(dtype)
            for name, dtype in schema.items()
        )

    # -- indexes ----------------------------------------------------------------------------------
    def _ensure_indexes(self, *, strict: bool) -> None:
        """Create recctl's indexes, idempotently.

        The unique keys are sparse, so documents written by the original API, which have no
        ``event_id``, coexist with recctl's. Sparse rather than partial: a partial index serves an
        equality query only when the query repeats its filter, and catalog upserts query by key.
        A conflicting existing index of the same name is fine for the plain indexes but not for the
        unique ones (it would break dedup).
        Without ``strict`` a missing privilege (read-only user) is ignored.
        """
        if self._indexed:
            return
        specs: list[tuple[RecordKind, list[tuple[str, int]], bool]] = [
            ("interactions", [("event_id", 1)], True),
            ("interactions", [("recommendation_id", 1)], False),
            ("interactions", [("user_id", 1), ("timestamp", 1)], False),
            ("interactions", [("timestamp", 1)], False),
            ("recommendations", [("recommendation_id", 1)], True),
            ("recommendations", [("assessment_id", 1)], False),
            ("assessments", [("assessment_id", 1)], True),
            ("impressions", [("request_id", 1)], True),
            ("impressions", [("assessment_id", 1), ("timestamp", 1)], False),
            ("impressions", [("timestamp", 1)], False),
        ]
        try:
            for kind, keys, unique in specs:
                options: dict[str, Any] = {}
                if unique:
                    options = {"unique": True, "sparse": True}
                try:
                    self.collection(kind).create_index(keys, **options)
                except OperationFailure as exc:
                    if exc.code in _INDEX_CONFLICTS and not unique:
                        continue
                    if exc.code == _UNAUTHORIZED and not strict:
                        return
                    fields = ", ".join(name for name, _ in keys)
                    index = f"{'unique ' if unique else ''}index on {COLLECTIONS[kind]} ({fields})"
                    raise self._failure(f"cannot create the {index} in", exc) from None
        except ConnectionFailure as exc:
            raise self._failure("cannot reach", exc) from None
        self._indexed = True

    # -- writing ----------------------------------------------------------------------------------
    def _insert_interactions(self, records: pl.DataFrame) -> WriteResult:
        # A repeat inside the frame is dropped here so that the first row wins whatever order the
        # server applies an unordered batch in; repeats of stored rows are the unique index's job.
        unique_rows = records.unique(subset=["event_id"], keep="first", maintain_order=True)
        inserted, refused = self._insert_documents("interactions", unique_rows, _interaction_document)
        return WriteResult(inserted=inserted, duplicates=records.height - unique_rows.height + refused)

    def _insert_impressions(self, records: pl.DataFrame) -> WriteResult:
        # The rows of one request_id are one list: grouped into its document (items in row order).
        lists = records.group_by("request_id", maintain_order=True).agg(
            *(pl.col(name).first() for name in (*_LIST_FIELDS[1:], "extra")),
            pl.struct(*_ITEM_FIELDS, "item_extra").alias("items"),
        )
        inserted, refused = self._insert_documents("impressions", lists, _impression_document)
        return WriteResult(inserted=inserted, duplicates=refused)

    def _insert_documents(
        self, kind: RecordKind, rows: pl.DataFrame, document: Callable[[Mapping[str, Any]], dict[str, Any]]
    ) -> tuple[int, int]:
        """Insert one document per row of ``rows`` in unordered batches: (inserted, refused by the
        unique index as already stored). Any other refusal is a :class:`StoreError` that says how
        many were stored before it."""
        collection = self.collection(kind)
        inserted = refused = 0
        for batch in _batches(rows):
            documents = [document(row) for row in batch]
            try:
                result = collection.insert_many(documents, ordered=False)
                inserted += len(result.inserted_ids)
            except BulkWriteError as exc:
                details = exc.details
                stored = inserted + int(details.get("nInserted", 0))
                errors = details.get("writeErrors", [])
                others = [error for error in errors if error.get("code") != _DUPLICATE_KEY]
                if others or details.get("writeConcernErrors"):
                    error = others[0] if others else details["writeConcernErrors"][0]
                    reason = error.get("errmsg", error)
                    message = self._safe(f"MongoDB rejected {KINDS[kind].row_name}: {reason}")
                    raise StoreError(message, written=stored) from None
                inserted = stored
                refused += len(errors)
            except (PyMongoError, BSONError, OverflowError) as exc:
                raise self._write_failure(kind, exc, inserted) from None
        return inserted, refused

    def _upsert_catalog(self, kind: RecordKind, records: pl.DataFrame) -> WriteResult:
        key = KEYS[kind]
        # Inserted, updated or unchanged is judged against the stored rows, read back as ``read``
        # reads them, by the code the file store uses too; only new or changed rows are written.
        keys = records[key].unique(maintain_order=True)
        try:
            # The stored rows of these keys: by $in for a few (the index finds them), the whole
            # collection for many (one scan beats thousands of lookups; catalogs are small).
            query = {key: {"$in": keys.to_list()}} if keys.len() <= MAX_IN_LIST else None
            stored = self._read_catalog(kind, query)
        except PyMongoError as exc:
            raise self._failure(f"cannot read {kind} from", exc, 0) from None
        changes = catalog_changes(kind, records, stored)
        collection = self.collection(kind)
        written = 0
        for batch in _batches(changes.to_write):
            documents = map(_catalog_document, batch)
            requests = [ReplaceOne({key: document[key]}, document, upsert=True) for document in documents]
            try:
                result = collection.bulk_write(requests, ordered=False)
                written += result.upserted_count + result.matched_count
            except BulkWriteError as exc:
                details = exc.details
                stored_now = int(details.get("nUpserted", 0)) + int(details.get("nMatched", 0))
                errors = details.get("writeErrors") or details.get("writeConcernErrors") or [{}]
                raise StoreError(
                    self._safe(f"MongoDB rejected a {kind[:-1]}: {errors[0].get('errmsg', errors[0])}"),
                    written=written + stored_now,
                ) from None
            except (PyMongoError, BSONError, OverflowError) as exc:
                raise self._write_failure(kind, exc, written) from None
        return changes.result

    def _write_failure(self, kind: str, exc: Exception, written: int) -> StoreError:
        if isinstance(exc, ConnectionFailure):
            return self._failure(f"lost the connection writing {kind} to", exc, written)
        return self._failure(f"cannot write {kind} to", exc, written)

    # -- reading ----------------------------------------------------------------------------------
    def _read_interactions(
        self,
        since: datetime | None,
        until: datetime | None,
        wanted: list[str],
        *,
        match: list[dict[str, Any]] | None = None,
    ) -> pl.DataFrame:
        schema = SCHEMAS["interactions"]
        match = _time_match(since, until) if match is None else match
        json_columns = [name for name in _JSON_COLUMNS if name in wanted]
        needed = {*wanted, *_SORT_COLUMNS}
        typed = [name for name in schema if name not in _JSON_COLUMNS and name in needed]
        if json_columns:
            typed.append(_ROW_KEY)

        fields = {**_INTERACTION_PROJECTION, _ROW_KEY: _ROW_KEY_VALUE}
        projection = {"_id": 0, **{name: fields[name] for name in typed}}
        pa, schema_type, aggregate_arrow_all = _pymongoarrow()
        arrow_types = {name: _arrow_type(pa, schema.get(name, pl.String())) for name in typed}
        pipeline = [*match, {"$project": projection}]
        collection = self.collection("interactions")
        table = aggregate_arrow_all(collection, pipeline, schema=schema_type(arrow_types))
        frame = pl.DataFrame(table).with_columns(_as_utc_ms(pl.col("timestamp")))
        if json_columns:
            texts = self._interaction_json(match, json_columns)
            frame = frame.join(texts, on=_ROW_KEY, how="left", maintain_order="left").drop(_ROW_KEY)
        frame = frame.sort(list(_SORT_COLUMNS), nulls_last=True, maintain_order=True)
        return frame.select([pl.col(name).cast(schema[name]) for name in wanted])

    def _interaction_json(self, match: list[dict[str, Any]], json_columns: list[str]) -> pl.DataFrame:
        """The ``context`` / ``extra`` JSON text of the interactions in the window, by row key (slow)."""
        pipeline: list[dict[str, Any]] = [*match]
        if "extra" in json_columns:
            excluded = [*_INTERACTION_FIELDS, *(() if "context" in json_columns else ("context",))]
            pipeline += [{"$addFields": {_ROW_KEY: _ROW_KEY_VALUE}}, {"$project": dict.fromkeys(excluded, 0)}]
        else:
            pipeline.append({"$project": {"_id": 0, "context": 1, _ROW_KEY: _ROW_KEY_VALUE}})
        keys: list[str] = []
        values: dict[str, list[str | None]] = {name: [] for name in json_columns}
        for document in self.collection("interactions").aggregate(pipeline):
            keys.append(document.pop(_ROW_KEY))
            context = document.pop("context", None)
            if "context" in values:
                values["context"].append(None if context is None else _dumps(context))
            if "extra" in values:
                values["extra"].append(_extra_text(document))
        schema = {_ROW_KEY: pl.String(), **dict.fromkeys(json_columns, pl.String())}
        return pl.DataFrame({_ROW_KEY: keys, **values}, schema=schema)

    def _read_impressions(
        self,
        since: datetime | None,
        until: datetime | None,
        wanted: list[str],
        *,
        match: list[dict[str, Any]] | None = None,
    ) -> pl.DataFrame:
        """Impressions unwound to one row per item, through Arrow; ``extra`` / ``item_extra`` (JSON
        text) from a second query, encoded in Python (the slow path, as for interactions)."""
        schema = SCHEMAS["impressions"]
        match = _time_match(since, until) if match is None else match
        json_columns = [name for name in ("extra", "item_extra") if name in wanted]
        needed = {*wanted, *LOG_ORDER["impressions"]}
        typed = [name for name in _IMPRESSION_PROJECTION if name in needed]
        fields: dict[str, Any] = dict(_IMPRESSION_PROJECTION)
        if json_columns:
            typed += [_ROW_KEY, _ITEM_INDEX]
            fields |= {_ROW_KEY: _ROW_KEY_VALUE, _ITEM_INDEX: f"${_ITEM_INDEX}"}
        pipeline = [
            *match,
            {"$unwind": {"path": "$items", "includeArrayIndex": _ITEM_INDEX}},
            {"$project": {"_id": 0, **{name: fields[name] for name in typed}}},
        ]
        pa, schema_type, aggregate_arrow_all = _pymongoarrow()
        arrow_types = {name: _arrow_type(pa, schema.get(name, pl.String())) for name in typed}
        arrow_types[_ITEM_INDEX] = pa.int64()
        arrow_types = {name: arrow_types[name] for name in typed}
        table = aggregate_arrow_all(self.collection("impressions"), pipeline, schema=schema_type(arrow_types))
        frame = pl.DataFrame(table).with_columns(_as_utc_ms(pl.col("timestamp")))
        if json_columns:
            texts = self._impression_json(match)
            frame = frame.join(texts, on=[_ROW_KEY, _ITEM_INDEX], how="left", maintain_order="left")
            frame = frame.drop(_ROW_KEY, _ITEM_INDEX)
        frame = frame.sort(list(LOG_ORDER["impressions"]), nulls_last=True, maintain_order=True)
        return frame.select([pl.col(name).cast(schema[name]) for name in wanted])

    def _impression_json(self, match: list[dict[str, Any]]) -> pl.DataFrame:
        """The ``extra`` and ``item_extra`` JSON text of the impressions in the window, by row key and
        item index (slow: every document is walked in Python)."""
        keys: list[str] = []
        indexes: list[int] = []
        extras: list[str | None] = []
        item_extras: list[str | None] = []
        pipeline = [*match, {"$addFields": {_ROW_KEY: _ROW_KEY_VALUE}}]
        for document in self.collection("impressions").aggregate(pipeline):
            key = document.pop(_ROW_KEY)
            items = document.pop("items", None)
            for name in _LIST_FIELDS:
                document.pop(name, None)
            extra = _extra_text(document)
            for index, item in enumerate(items if isinstance(items, list) else []):
                keys.append(key)
                indexes.append(index)
                extras.append(extra)
                rest = (
                    {k: v for k, v in item.items() if k not in _ITEM_FIELDS} if isinstance(item, dict) else {}
                )
                item_extras.append(_dumps(rest) if rest else None)
        return pl.DataFrame(
            {_ROW_KEY: keys, _ITEM_INDEX: indexes, "extra": extras, "item_extra": item_extras},
            schema={
                _ROW_KEY: pl.String(),
                _ITEM_INDEX: pl.Int64(),
                "extra": pl.String(),
                "item_extra": pl.String(),
            },
        )

    def _read_catalog(self, kind: RecordKind, query: dict[str, Any] | None = None) -> pl.DataFrame:
        schema = SCHEMAS[kind]
        key = KEYS[kind]
        cells: dict[str, list[Any]] = {name: [] for name in schema}
        for document in self.collection(kind).find(query or {}):
            if document.get(key) is None:
                document[key] = str(document["_id"])
            for name, dtype in schema.items():
                if name == "priorities":
                    cells[name].append(_json_text(document.pop(name, None)))
                elif name != "extra":
                    cells[name].append(_cell(document.pop(name, None), dtype))
            cells["extra"].append(_extra_text(document))  # what is left once the typed fields are taken
        frame = pl.DataFrame(
            [pl.Series(name, cells[name], dtype=dtype, strict=False) for name, dtype in schema.items()]
        )
        return frame.sort(key, nulls_last=True, maintain_order=True)

    # -- messages ---------------------------------------------------------------------------------
    def _failure(self, doing: str, exc: BaseException, written: int | None = None) -> StoreError:
        """``<doing> MongoDB at <redacted uri>: <short reason>`` as a StoreError."""
        message = self._safe(f"{doing} MongoDB at {self.description}: {_short(exc)}")
        return StoreError(message, written=written)

    def _safe(self, message: str) -> str:
        """One line, with the URI's password masked wherever it appears."""
        message = redact(" ".join(message.split()))
        for password in self._passwords:
            message = message.replace(password, "***")
        return message


# -- documents ------------------------------------------------------------------------------------
def _bounds(start: Any, end: Any) -> dict[str, Any]:
    """``start <= value < end`` as a query condition (an open end: no bound; no bound at all: any
    value but null, so the documents without one are left to a query of their own)."""
    bounds = {**({"$gte": start} if start is not None else {}), **({"$lt": end} if end is not None else {})}
    return bounds or {"$ne": None}


def _range_match(field: str, start: Any, end: Any) -> list[dict[str, Any]]:
    return [{"$match": {field: _bounds(start, end)}}]


def _time_match(since: datetime | None, until: datetime | None) -> list[dict[str, Any]]:
    """The ``$match`` stage of ``since <= timestamp < until`` (none when the window is open)."""
    window: dict[str, datetime] = {}
    if since is not None:
        window["$gte"] = since
    if until is not None:
        window["$lt"] = until
    return [{"$match": {"timestamp": window}}] if window else []


def _schema_columns(kind: RecordKind, records: pl.DataFrame) -> pl.DataFrame:
    """The frame's columns of ``SCHEMAS[kind]`` (others ignored); ValueError if one is missing."""
    missing = [name for name in SCHEMAS[kind] if name not in records.columns]
    if missing:
        raise ValueError(f"{kind}: frame lacks column(s) {', '.join(missing)}")
    return records.select(list(SCHEMAS[kind]))


def _batches(records: pl.DataFrame) -> Iterator[list[dict[str, Any]]]:
    """Rows as dicts, :data:`WRITE_BATCH` at a time; datetimes naive UTC (what BSON stores)."""
    naive = records.with_columns(
        pl.col(name).dt.replace_time_zone(None)
        for name, dtype in records.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    )
    for offset in range(0, naive.height, WRITE_BATCH):
        yield naive.slice(offset, WRITE_BATCH).to_dicts()


def _interaction_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """The stored document of one interaction row.

    Typed fields when not null, ``context`` as an object, ``extra``'s fields at the top level.
    ``session_id`` .. ``variant`` are not stored separately: they live in ``context``.
    """
    document = {name: row[name] for name in _INTERACTION_FIELDS if row[name] is not None}
    if row["context"] is not None:
        document["context"] = json.loads(row["context"])
    return _merge_extra(document, row["extra"])


def _impression_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """The stored document of one served list: its fields, ``items`` as subdocuments (each with
    its unknown fields), the list's unknown fields at the top level."""
    document = {name: row[name] for name in _LIST_FIELDS if row[name] is not None}
    items = []
    for item in row["items"]:
        fields = {name: item[name] for name in _ITEM_FIELDS if item[name] is not None}
        if item["item_extra"] is not None:
            for name, value in json.loads(item["item_extra"]).items():
                fields.setdefault(name, value)
        items.append(fields)
    document["items"] = items
    return _merge_extra(document, row["extra"])


def _catalog_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """The stored document of one catalog row: lists as arrays, ``priorities`` as an object."""
    document = {name: value for name, value in row.items() if value is not None and name != "extra"}
    if "priorities" in document:
        document["priorities"] = json.loads(document["priorities"])
    return _merge_extra(document, row.get("extra"))


def _merge_extra(document: dict[str, Any], extra: str | None) -> dict[str, Any]:
    """``document`` with the fields of the ``extra`` JSON object added at the top level.

    A typed field is never overwritten; an input field named ``_id`` is kept as ``_input_id``.
    """
    if extra is None:
        return document
    for name, value in json.loads(extra).items():
        name = _INPUT_ID_FIELD if name == "_id" else name
        document.setdefault(name, value)
    return document


def _extra_text(document: dict[str, Any]) -> str | None:
    """The JSON text of what is left of a document once its known fields were taken (null if none)."""
    document.pop("_id", None)
    if _INPUT_ID_FIELD in document:
        document["_id"] = document.pop(_INPUT_ID_FIELD)
    return _dumps(document) if document else None


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return _dumps(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    """JSON for the BSON types an original-API document may hold (dates, ObjectIds, decimals, ...)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _cell(value: Any, dtype: pl.DataType) -> Any:
    """A stored value as the schema type, or null when an original-API document holds something else."""
    if value is None:
        return None
    if isinstance(dtype, pl.List):
        return [str(item) for item in value] if isinstance(value, list) else None
    if isinstance(dtype, pl.Datetime):
        return value if isinstance(value, datetime) else None
    if dtype == pl.Float64:
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if dtype == pl.String and not isinstance(value, str):
        return _json_text(value) if isinstance(value, dict | list) else str(value)
    return value


# -- Arrow ----------------------------------------------------------------------------------------
def _pymongoarrow() -> tuple[Any, Any, Any]:
    """pyarrow, pymongoarrow's Schema and aggregate_arrow_all, imported on first use.

    pymongoarrow built against another pyarrow patch release prints ABI "size changed" warnings at
    import; those are silenced here (pyproject excludes the pyarrow release that causes them).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*size changed.*", category=RuntimeWarning)
        import pyarrow as pa
        from pymongoarrow.api import Schema, aggregate_arrow_all
    return pa, Schema, aggregate_arrow_all


def _arrow_type(pa: Any, dtype: pl.DataType) -> Any:
    """The Arrow type pymongoarrow decodes a typed interaction column as (timestamps naive UTC)."""
    if isinstance(dtype, pl.Datetime):
        return pa.timestamp("ms")
    if isinstance(dtype, pl.Float64):
        return pa.float64()
    if isinstance(dtype, pl.Int64):
        return pa.int64()
    return pa.string()


def _as_utc_ms(column: pl.Expr) -> pl.Expr:
    # pymongoarrow returns naive timestamps that are UTC (BSON dates are UTC milliseconds).
    return column.dt.replace_time_zone("UTC").dt.cast_time_unit("ms")


# -- messages -------------------------------------------------------------------------------------
def _passwords(uri: str) -> list[str]:
    """The URI's secrets as written and decoded (to mask them wherever a driver message repeats them)."""
    return uri_secrets(uri)


def _short(exc: BaseException) -> str:
    """The useful head of a driver error: no topology description, no timeout settings."""
    text = " ".join(str(exc).split())
    text = text.split(", Timeout: ")[0]
    text = re.sub(r"\s*\(configured timeouts:[^)]*\)", "", text)
    text = re.sub(r", full error: .*", "", text)
    return text[:300] or type(exc).__name__
