"""Engagement statistics per recommendation and per user, computed inside the store.

Per recommendation (:func:`recommendation_stats`): ``total_interactions``, one count per
interaction type (``view_count``, ``click_count``, ``save_count``, ``share_count``,
``implementation_count``, ``dismiss_count``, ``rate_count``), and

- ``click_through_rate = click_count / view_count``
- ``implementation_rate = implementation_count / click_count``
- ``avg_label`` = the mean of the stored labels that are not null (documents written by the original
  API carry no label).

Where impressions (served lists) are stored for the window, two more columns: ``impressions``
(how many times the recommendation was shown, in any list) and ``ctr_per_impression = click_count
/ impressions``. The other columns keep their definitions; they are absent when no impression
falls in the window.

A rate whose denominator is 0 is null, never 0 and never an error. ``rate_count`` is not in the
original system's list; it is there so that the type counts add up to ``total_interactions`` (an interaction
of a type recctl does not know, from an original-API document, counts only in the total).

Per user (:func:`user_history`): ``total_interactions``, ``type_counts``, ``category_preferences``
(interactions per catalog category of the recommendations involved, most first; interactions on
recommendations missing from the catalog count in no category), ``implementation_rate``
(implementations / clicks) and ``avg_engagement`` (mean non-null label), plus the most recent
interactions.

Where the work happens: in the store, behind :class:`~recctl.stores.base.Store`'s queries. The
file store runs one polars lazy plan over its Parquet parts (projection and time-filter pushdown,
then a group-by); MongoDB runs an aggregation pipeline (``$match`` on the indexed fields,
``$group`` by recommendation and type) and sends back one document per pair. Either way only the
aggregated rows reach Python, where they are joined with the (small) catalog columns and the
rates are computed once, by this module, so both stores give identical results. Labels are summed
as whole multiples of :data:`LABEL_UNIT` (integers), because a float sum depends on the order the
engine adds in and the stores add in different orders; integer sums do not.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import polars as pl

from recctl import defaults
from recctl.errors import NotFoundError
from recctl.records import INTERACTION_TYPES
from recctl.stores.base import COUNT_COLUMNS, COUNTS_SCHEMA, LABEL_UNIT, RECENT_SCHEMA, InteractionFilter

if TYPE_CHECKING:
    from recctl.stores.base import Store

__all__ = [
    "COUNT_COLUMNS",
    "IMPRESSION_METRICS",
    "LABEL_UNIT",
    "METRICS",
    "RECENT_COLUMNS",
    "STATS_COLUMNS",
    "UserHistory",
    "recommendation_stats",
    "user_history",
]

METRICS: tuple[str, ...] = (
    "total_interactions",
    *COUNT_COLUMNS.values(),
    "click_through_rate",
    "implementation_rate",
    "avg_label",
)
"""The numeric columns of :func:`recommendation_stats`; any of them can be sorted by."""

STATS_COLUMNS: tuple[str, ...] = ("recommendation_id", "category", "title", *METRICS)
IMPRESSION_METRICS: tuple[str, ...] = ("impressions", "ctr_per_impression")
"""The columns :func:`recommendation_stats` adds after :data:`STATS_COLUMNS` where impressions exist."""
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
# An unknown category lists the catalog's categories, up to this many.
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
        The store, which runs the queries itself (:class:`~recctl.stores.base.Store`).
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
        recommendation that is not in the catalog. When any impression matches the filters, also
        :data:`IMPRESSION_METRICS`: ``impressions`` (0 for a recommendation never shown then) and
        ``ctr_per_impression`` (clicks / impressions, null when it was not shown).

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
    if recommendation_id is not None:
        _require_recommendation(store, recommendation_id)
    categories = None if category is None else _catalog_spellings(store, category)
    where = InteractionFilter(
        since, until, user_id=user, recommendation_id=recommendation_id, category=categories
    )
    counts = store.interaction_counts(where)
    if recommendation_id is not None:
        counts = _with_zero_row(store, counts.collect(), recommendation_id, categories).lazy()
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
        _require_user(store, user)
    stats = store.with_catalog(top).select(STATS_COLUMNS)
    shown = store.impression_counts(where)
    if shown.is_empty():
        return stats
    return stats.join(shown, on="recommendation_id", how="left", maintain_order="left").with_columns(
        pl.col("impressions").fill_null(0),
        _ratio("click_count", "impressions").alias("ctr_per_impression"),
    )


def user_history(
    store: Store,
    user_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = defaults.HISTORY_LIMIT,
) -> UserHistory:
    """One user's engagement summary and their ``limit`` most recent interactions.

    Parameters
    ----------
    store
        The store, as for :func:`recommendation_stats`.
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
    where = InteractionFilter(since, until, user_id=user_id)
    counts = store.with_catalog(store.interaction_counts(where).collect())
    if counts.is_empty():
        _require_user(store, user_id)
    recent = (
        pl.DataFrame(schema=RECENT_SCHEMA) if counts.is_empty() else store.recent_interactions(where, limit)
    )
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


def _require_recommendation(store: Store, recommendation_id: str) -> None:
    if not (
        store.in_catalog(recommendation_id)
        or store.has_interactions(InteractionFilter(recommendation_id=recommendation_id))
    ):
        raise NotFoundError(
            f"unknown recommendation {recommendation_id!r}: it is not in the catalog and has no interactions"
        )


def _require_user(store: Store, user_id: str) -> None:
    if not (store.has_interactions(InteractionFilter(user_id=user_id)) or store.has_assessment(user_id)):
        raise NotFoundError(f"unknown user {user_id!r}: no interaction or assessment is stored for it")


def _catalog_spellings(store: Store, category: str) -> tuple[str, ...]:
    """The catalog's categories that are ``category`` but for case and surrounding spaces."""
    known = store.categories()
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
    store: Store, counts: pl.DataFrame, recommendation_id: str, category: tuple[str, ...] | None
) -> pl.DataFrame:
    """``counts``, or a row of zeros for a known recommendation without a matching interaction."""
    if not counts.is_empty() or (category is not None and not store.in_catalog(recommendation_id, category)):
        return counts
    zeros = {name: [0] for name in COUNTS_SCHEMA}
    return pl.DataFrame({**zeros, "recommendation_id": [recommendation_id]}, schema=COUNTS_SCHEMA)
