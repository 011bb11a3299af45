"""Engagement statistics per recommendation and per user, computed inside the store.

Per recommendation (:func:`recommendation_stats`): ``total_interactions``, one count per
interaction type (``view_count``, ``click_count``, ``save_count``, ``share_count``,
``implementation_count``, ``dismiss_count``, ``rate_count``), and

- ``click_through_rate = click_count / view_count``
- ``implementation_rate = implementation_count / click_count``
- ``avg_label`` = the mean of the stored labels that are not null (documents written by the original
  API carry no label).

A rate whose denominator is 0 is null, never 0 and never an error. ``rate_count`` is not in the
original system's list; it is there so that the type counts add up to ``total_interactions`` (an interaction
of a type recctl does not know, from an original-API document, counts only in the total).

Per user (:func:`user_history`): ``total_interactions``, ``type_counts``, ``category_preferences``
(interactions per catalog category of the recommendations involved, most first; interactions on
recommendations missing from the catalog count in no category), ``implementation_rate``
(implementations / clicks) and ``avg_engagement`` (mean non-null label), plus the most recent
interactions.

Where the work happens: the file store runs one polars lazy plan over its Parquet parts
(projection and time-filter pushdown, then a group-by); MongoDB runs an aggregation pipeline
(``$match`` on the indexed fields, ``$group`` with a ``$sum`` per type) and sends back one
document per recommendation. Either way only the aggregated rows reach Python, where they are
joined with the (small) catalog columns and the rates are computed once, by the same code, so both
stores give identical results. Labels are summed as whole multiples of :data:`LABEL_UNIT`
(integers), because a float sum depends on the order the engine adds in and the stores add in
different orders; integer sums do not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import polars as pl

from recctl.errors import NotFoundError
from recctl.records import INTERACTION_TYPES, SCHEMAS, RecordKind, as_utc

if TYPE_CHECKING:
    from recctl.stores.base import Store
    from recctl.stores.mongo import MongoStore

__all__ = [
    "COUNT_COLUMNS",
    "LABEL_UNIT",
    "METRICS",
    "RECENT_COLUMNS",
    "STATS_COLUMNS",
    "UserHistory",
    "recommendation_stats",
    "user_history",
]

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

METRICS: tuple[str, ...] = (
    "total_interactions",
    *COUNT_COLUMNS.values(),
    "click_through_rate",
    "implementation_rate",
    "avg_label",
)
"""The numeric columns of :func:`recommendation_stats`; any of them can be sorted by."""

STATS_COLUMNS: tuple[str, ...] = ("recommendation_id", "category", "title", *METRICS)
RECENT_COLUMNS: tuple[str, ...] = (
    "user_id",
    "timestamp",
    "event_id",
    "recommendation_id",
    "category",
    "interaction_type",
    "interaction_value",
    "label",
    "assessment_id",
    "session_id",
    "position",
)
LABEL_UNIT = 1e-9
"""Labels are added up as integer multiples of this (rounded half up): exact, in any order."""

# What a store's query returns: counts per recommendation, before the catalog and the rates.
_COUNTS_SCHEMA: dict[str, pl.DataType] = {
    "recommendation_id": pl.String(),
    "total_interactions": pl.Int64(),
    **{column: pl.Int64() for column in COUNT_COLUMNS.values()},
    "label_units": pl.Int64(),  # sum of the labels in LABEL_UNITs
    "label_count": pl.Int64(),
}
_CATALOG_SCHEMA: dict[str, pl.DataType] = {  # the catalog columns stats and history show
    "recommendation_id": pl.String(),
    "category": pl.String(),
    "title": pl.String(),
}
_RECENT_SCHEMA: dict[str, pl.DataType] = {  # what a store's query returns (user and category come after)
    name: SCHEMAS["interactions"][name] for name in RECENT_COLUMNS if name not in ("user_id", "category")
}
# Above this many ids, Mongo does not send them as an $in list (see _MongoQueries).
_MAX_IN_LIST = 1_000
# An unknown --category lists the catalog's categories, up to this many.
_LISTED_CATEGORIES = 20


class UserHistory(NamedTuple):
    """One user's summary (a JSON-ready dict) and most recent interactions, newest first."""

    summary: dict[str, Any]
    recent: pl.DataFrame


def recommendation_stats(
    store: Store,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    category: str | None = None,
    user: str | None = None,
    recommendation_id: str | None = None,
    min_views: int = 0,
    sort: str = "total_interactions",
    descending: bool = True,
    limit: int | None = None,
) -> pl.DataFrame:
    """Engagement metrics, one row per recommendation with interactions that match the filters.

    Parameters
    ----------
    store
        A :class:`~recctl.stores.files.FileStore` or :class:`~recctl.stores.mongo.MongoStore`
        (any other :class:`~recctl.stores.base.Store` works too, read into memory).
    since, until
        Only interactions with ``since <= timestamp < until`` (naive datetimes are UTC); all time
        when None.
    category
        Only recommendations of this catalog category, compared case-insensitively (``Security``
        finds ``security``; a catalog spelling it both ways gets both).
    user
        Only this user's interactions.
    recommendation_id
        Only this recommendation. It gets a row even when no interaction matches (counts 0, rates
        and ``avg_label`` null), unless ``category`` or ``min_views`` exclude it.
    min_views
        Leave out recommendations with fewer views than this.
    sort, descending
        The metric (one of :data:`METRICS`) to order by; ties are broken by ``recommendation_id``
        ascending and nulls come last either way.
    limit
        Only the first ``limit`` rows of that order (a top-k, cheaper than sorting everything).

    Returns
    -------
    polars.DataFrame
        The columns of :data:`STATS_COLUMNS`; ``category`` and ``title`` are null for a
        recommendation that is not in the catalog.

    Raises
    ------
    ValueError
        ``sort`` is not a metric.
    NotFoundError
        ``recommendation_id`` is neither in the catalog nor in any stored interaction; no
        catalog recommendation has ``category`` (the message lists the categories there are);
        no interaction and no assessment names ``user``.

    Examples
    --------
    >>> from recctl.stores import open_store
    >>> store = open_store("./recctl-data")
    >>> top = recommendation_stats(store, sort="implementation_rate", min_views=3, limit=10)
    >>> top.columns[:3]
    ['recommendation_id', 'category', 'title']
    """
    if sort not in METRICS:
        raise ValueError(f"cannot sort by {sort!r}: choose one of {', '.join(METRICS)}")
    queries = _queries(store)
    if recommendation_id is not None:
        _require_recommendation(queries, recommendation_id)
    categories = None if category is None else _catalog_spellings(queries, category)
    where = _Where(since, until, user_id=user, recommendation_id=recommendation_id, category=categories)
    counts = queries.counts(where)
    if recommendation_id is not None:
        counts = _with_zero_row(queries, counts.collect(), recommendation_id, categories).lazy()
    ordered = (
        counts.with_columns(
            _ratio("click_count", "view_count").alias("click_through_rate"),
            _ratio("implementation_count", "click_count").alias("implementation_rate"),
            _average_label().alias("avg_label"),
        )
        .filter(pl.col("view_count") >= min_views)
        .sort([sort, "recommendation_id"], descending=[descending, False], nulls_last=True)
    )
    # The catalog is joined after the sort: with a limit, only ``limit`` rows are looked up.
    top = (ordered if limit is None else ordered.head(limit)).collect()
    if top.is_empty() and user is not None:
        _require_user(queries, user)
    return queries.with_catalog(top).select(STATS_COLUMNS)


def user_history(
    store: Store,
    user_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = 100,
) -> UserHistory:
    """One user's engagement summary and their ``limit`` most recent interactions.

    Parameters
    ----------
    store
        Any store, as for :func:`recommendation_stats`.
    user_id
        The user.
    since, until
        Only interactions with ``since <= timestamp < until`` (naive datetimes are UTC).
    limit
        How many recent interactions to return; None for all of them.

    Returns
    -------
    UserHistory
        ``summary``: ``user_id``, ``total_interactions``, ``type_counts`` (every interaction type,
        zeros included), ``category_preferences`` (category -> interactions, most first; ties by
        name), ``implementation_rate`` (implementations / clicks; None without clicks) and
        ``avg_engagement`` (mean non-null label; None without one). ``recent``: the columns of
        :data:`RECENT_COLUMNS` (``user_id`` first, so that rows of several users can be put
        together), newest first (ties by ``event_id``, descending).

    Raises
    ------
    NotFoundError
        No interaction and no assessment is stored for ``user_id``.
    """
    queries = _queries(store)
    where = _Where(since, until, user_id=user_id)
    counts = queries.with_catalog(queries.counts(where).collect())
    if counts.is_empty():
        _require_user(queries, user_id)
    recent = _empty(_RECENT_SCHEMA) if counts.is_empty() else queries.recent(where, limit)
    categories = counts.select("recommendation_id", "category")
    recent = recent.join(categories, on="recommendation_id", how="left", maintain_order="left")
    recent = recent.with_columns(pl.lit(user_id, pl.String()).alias("user_id"))
    return UserHistory(_user_summary(user_id, counts), recent.select(RECENT_COLUMNS))


def _user_summary(user_id: str, counts: pl.DataFrame) -> dict[str, Any]:
    totals = counts.select(
        pl.col("total_interactions", *COUNT_COLUMNS.values(), "label_units", "label_count").sum()
    ).with_columns(
        _ratio("implementation_count", "click_count").alias("implementation_rate"),
        _average_label().alias("avg_engagement"),
    )
    by_category = (
        counts.filter(pl.col("category").is_not_null())
        .group_by("category")
        .agg(pl.col("total_interactions").sum())
        .sort(["total_interactions", "category"], descending=[True, False])
    )
    row = totals.row(0, named=True)
    return {
        "user_id": user_id,
        "total_interactions": row["total_interactions"],
        "type_counts": {kind: row[COUNT_COLUMNS[kind]] for kind in INTERACTION_TYPES},
        "category_preferences": dict(by_category.iter_rows()),
        "implementation_rate": row["implementation_rate"],
        "avg_engagement": row["avg_engagement"],
    }


def _ratio(numerator: str, denominator: str) -> pl.Expr:
    """numerator / denominator, null when the denominator is 0."""
    return pl.when(pl.col(denominator) > 0).then(pl.col(numerator) / pl.col(denominator))


def _average_label() -> pl.Expr:
    return _ratio("label_units", "label_count") * LABEL_UNIT


def _require_recommendation(queries: _Queries, recommendation_id: str) -> None:
    if not (
        queries.in_catalog(recommendation_id)
        or queries.has_interactions(_Where(recommendation_id=recommendation_id))
    ):
        raise NotFoundError(
            f"unknown recommendation {recommendation_id!r}: it is not in the catalog and has no interactions"
        )


def _require_user(queries: _Queries, user_id: str) -> None:
    if not (queries.has_interactions(_Where(user_id=user_id)) or queries.has_user(user_id)):
        raise NotFoundError(f"unknown user {user_id!r}: no interaction or assessment is stored for it")


def _catalog_spellings(queries: _Queries, category: str) -> tuple[str, ...]:
    """The catalog's categories that are ``category`` but for case and surrounding spaces."""
    known = queries.categories()
    wanted = category.strip().casefold()
    matches = tuple(value for value in known if value.strip().casefold() == wanted)
    if matches:
        return matches
    if not known:
        raise NotFoundError(f"unknown category {category!r}: the catalog has no recommendations")
    listed = ", ".join(known[:_LISTED_CATEGORIES])
    more = f" and {len(known) - _LISTED_CATEGORIES:,} more" if len(known) > _LISTED_CATEGORIES else ""
    raise NotFoundError(f"unknown category {category!r}: the catalog's categories are {listed}{more}")


def _with_zero_row(
    queries: _Queries, counts: pl.DataFrame, recommendation_id: str, category: tuple[str, ...] | None
) -> pl.DataFrame:
    """``counts``, or a row of zeros for a known recommendation without a matching interaction."""
    if not counts.is_empty() or (
        category is not None and not queries.in_catalog(recommendation_id, category)
    ):
        return counts
    zeros = {name: [0] for name in _COUNTS_SCHEMA}
    return pl.DataFrame({**zeros, "recommendation_id": [recommendation_id]}, schema=_COUNTS_SCHEMA)


def _empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


# -- the store-specific part: a few small queries per store kind -------------------------------------
@dataclass(frozen=True)
class _Where:
    """Which interactions a query covers: ``since <= timestamp < until`` and the given ids, and
    only those on recommendations in the catalog whose category is one of ``category`` (exact
    stored values)."""

    since: datetime | None = None
    until: datetime | None = None
    user_id: str | None = None
    recommendation_id: str | None = None
    category: tuple[str, ...] | None = None

    def at_any_time(self) -> _Where:
        return _Where(user_id=self.user_id, recommendation_id=self.recommendation_id, category=self.category)


class _Queries(Protocol):
    """The store-specific part: what each store kind runs itself."""

    def counts(self, where: _Where) -> pl.LazyFrame:
        """:data:`_COUNTS_SCHEMA` rows, one per recommendation with a matching interaction."""
        ...

    def recent(self, where: _Where, limit: int | None) -> pl.DataFrame:
        """:data:`_RECENT_SCHEMA` rows, newest first (then event_id descending), at most ``limit``."""
        ...

    def with_catalog(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` (with a ``recommendation_id`` column) plus the catalog's ``category`` and
        ``title`` (null when not in the catalog); rows stay in their order."""
        ...

    def in_catalog(self, recommendation_id: str, category: tuple[str, ...] | None = None) -> bool: ...

    def categories(self) -> list[str]:
        """The distinct categories of the catalog, sorted."""
        ...

    def has_interactions(self, where: _Where) -> bool: ...

    def has_user(self, user_id: str) -> bool:
        """Whether an assessment names ``user_id``."""
        ...


def _queries(store: Store) -> _Queries:
    from recctl.stores.files import FileStore

    if isinstance(store, FileStore):
        return _PolarsQueries(store, store.scan_interactions)
    from recctl.stores.mongo import MongoStore  # imported only for a MongoDB store (pymongo is heavy)

    if isinstance(store, MongoStore):
        return _MongoQueries(store)
    return _PolarsQueries(store, lambda: store.read("interactions").lazy())


class _PolarsQueries:
    """Polars lazy plans over the file store's Parquet scan: only the columns a query uses are
    read, and the time filter skips row groups by their statistics. Any other store's
    interactions can be read into memory and queried the same way."""

    def __init__(self, store: Store, scan: Callable[[], pl.LazyFrame | None]) -> None:
        self._store = store
        self._scan = scan

    def _interactions(self, where: _Where) -> pl.LazyFrame | None:
        scan = self._scan()
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
        return self._store.read("recommendations", columns=list(_CATALOG_SCHEMA))

    def counts(self, where: _Where) -> pl.LazyFrame:
        interactions = self._interactions(where)
        if interactions is None:
            return _empty(_COUNTS_SCHEMA).lazy()
        kind = pl.col("interaction_type")
        return (
            interactions.group_by("recommendation_id")
            .agg(
                pl.len().alias("total_interactions"),
                *((kind == name).sum().alias(column) for name, column in COUNT_COLUMNS.items()),
                (pl.col("label") / LABEL_UNIT + 0.5).floor().cast(pl.Int64).sum().alias("label_units"),
                pl.col("label").count().alias("label_count"),
            )
            .cast(pl.Schema(_COUNTS_SCHEMA))
        )

    def recent(self, where: _Where, limit: int | None) -> pl.DataFrame:
        interactions = self._interactions(where)
        if interactions is None:
            return _empty(_RECENT_SCHEMA)
        newest = interactions.select(list(_RECENT_SCHEMA)).sort(["timestamp", "event_id"], descending=True)
        return (newest if limit is None else newest.head(limit)).collect()

    def with_catalog(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.join(self._catalog(), on="recommendation_id", how="left", maintain_order="left")

    def in_catalog(self, recommendation_id: str, category: tuple[str, ...] | None = None) -> bool:
        found = self._catalog().filter(pl.col("recommendation_id") == recommendation_id)
        return bool(found["category"].is_in(category).any() if category is not None else found.height)

    def categories(self) -> list[str]:
        return self._catalog()["category"].drop_nulls().unique().sort().to_list()

    def has_interactions(self, where: _Where) -> bool:
        interactions = self._interactions(where)
        return interactions is not None and not interactions.select("event_id").head(1).collect().is_empty()

    def has_user(self, user_id: str) -> bool:
        users = self._store.read("assessments", columns=["user_id"])
        return bool((users["user_id"] == user_id).any())


def _convert(path: Any, to: str) -> dict[str, Any]:
    """``$convert`` that turns a missing or unconvertible value into null (original-API documents vary)."""
    return {"$convert": {"input": path, "to": to, "onError": None, "onNull": None}}


class _MongoQueries:
    """Aggregation pipelines run inside MongoDB; only their results come back (through Arrow).

    ``$match`` uses the collection's indexes (recommendation_id, user_id + timestamp, timestamp).
    Fields are converted as :meth:`MongoStore.read` converts them, so original-API documents (no
    ``event_id``, ``assessment_id`` in ``context``, no ``label``) give the same values here.
    """

    def __init__(self, store: MongoStore) -> None:
        self._store = store

    def _match(self, where: _Where) -> tuple[dict[str, Any], pl.Series | None]:
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
            if in_category.len() <= _MAX_IN_LIST and where.recommendation_id is None:
                match["recommendation_id"] = {"$in": in_category.to_list()}
                in_category = None
        return match, in_category

    def counts(self, where: _Where) -> pl.LazyFrame:
        match, in_category = self._match(where)
        # Grouped by (recommendation, type) on the server, then the few types become columns here:
        # cheaper for the server than a $cond per type and document, and as exact.
        group = {
            "_id": {
                "recommendation_id": _convert("$recommendation_id", "string"),
                "interaction_type": _convert("$interaction_type", "string"),
            },
            "interactions": {"$sum": 1},
            # the polars plan's rounding; $sum and $isNumber skip null and missing labels
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
        by_type = self._store.aggregate_frame("interactions", pipeline, by_type_schema)
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
            .cast(pl.Schema(_COUNTS_SCHEMA))
        )

    def recent(self, where: _Where, limit: int | None) -> pl.DataFrame:
        match, in_category = self._match(where)
        fields = {
            "timestamp": _convert("$timestamp", "date"),
            "event_id": _convert({"$ifNull": ["$event_id", {"$toString": "$_id"}]}, "string"),
            "recommendation_id": _convert("$recommendation_id", "string"),
            "interaction_type": _convert("$interaction_type", "string"),
            "interaction_value": _convert("$interaction_value", "double"),
            "label": _convert("$label", "double"),
            "assessment_id": _convert({"$ifNull": ["$assessment_id", "$context.assessment_id"]}, "string"),
            "session_id": _convert("$context.session_id", "string"),
            "position": _convert("$context.position", "long"),
        }
        pipeline: list[dict[str, Any]] = [
            {"$match": match},
            {"$project": {"_id": 0, **fields}},
            {"$sort": {"timestamp": -1, "event_id": -1}},
        ]
        if limit is not None and in_category is None:
            pipeline.append({"$limit": limit})
        recent = self._store.aggregate_frame("interactions", pipeline, _RECENT_SCHEMA)
        if in_category is not None:
            recent = recent.filter(pl.col("recommendation_id").is_in(in_category.implode()))
            recent = recent if limit is None else recent.head(limit)
        return recent

    def _catalog(self, match: dict[str, Any]) -> pl.DataFrame:
        fields = {
            "recommendation_id": _convert(
                {"$ifNull": ["$recommendation_id", {"$toString": "$_id"}]}, "string"
            ),
            "category": _convert("$category", "string"),
            "title": _convert("$title", "string"),
        }
        pipeline = [{"$match": match}, {"$project": {"_id": 0, **fields}}]
        return self._store.aggregate_frame("recommendations", pipeline, _CATALOG_SCHEMA)

    def with_catalog(self, frame: pl.DataFrame) -> pl.DataFrame:
        ids = frame["recommendation_id"].unique()
        # Few ids: fetch just those; many: the three catalog columns whole, which is cheaper than
        # a huge $in (and a pipeline must stay under MongoDB's 16 MB document limit).
        match = {"recommendation_id": {"$in": ids.to_list()}} if ids.len() <= _MAX_IN_LIST else {}
        return frame.join(self._catalog(match), on="recommendation_id", how="left", maintain_order="left")

    def in_catalog(self, recommendation_id: str, category: tuple[str, ...] | None = None) -> bool:
        match: dict[str, Any] = {"recommendation_id": recommendation_id}
        if category is not None:
            match["category"] = {"$in": list(category)}
        return self._exists("recommendations", match)

    def categories(self) -> list[str]:
        # One group per distinct category (a handful), formed in MongoDB; converted like the
        # catalog's own reads, so a category that is not text (an original-API document) reads as
        # its text, or not at all.
        pipeline: list[dict[str, Any]] = [
            {"$group": {"_id": _convert("$category", "string")}},
            {"$project": {"_id": 0, "category": "$_id"}},
        ]
        found = self._store.aggregate_frame("recommendations", pipeline, {"category": pl.String()})
        return found["category"].drop_nulls().sort().to_list()

    def has_interactions(self, where: _Where) -> bool:
        match, in_category = self._match(where)
        if in_category is not None:
            return not self.counts(where).head(1).collect().is_empty()
        return self._exists("interactions", match)

    def has_user(self, user_id: str) -> bool:
        return self._exists("assessments", {"user_id": user_id})

    def _exists(self, kind: RecordKind, match: dict[str, Any]) -> bool:
        pipeline: list[dict[str, Any]] = [
            {"$match": match},
            {"$limit": 1},
            {"$project": {"_id": 0, "found": {"$literal": 1}}},
        ]
        return not self._store.aggregate_frame(kind, pipeline, {"found": pl.Int64()}).is_empty()
