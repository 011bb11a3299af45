"""Which served list an interaction belongs to.

An interaction belongs to the list its ``request_id`` (``context.request_id``) names, when that list
was stored and shows the interaction's recommendation. Otherwise it belongs to the newest list of
the same assessment that showed the recommendation at or before the interaction, at most
``attribution_hours`` earlier, and whose user is the interaction's (a list that names no user
matches any). An interaction no list claims is unlinked: it keeps a null ``request_id``, and the
callers count it.

Both rules are joins (an equi-join for the named lists, an as-of join backwards in time for the
others), so linking is linear in the rows, whatever their number.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import polars as pl

from recctl import defaults

if TYPE_CHECKING:
    from recctl.stores.base import Store

LINK_COLUMNS = ("request_id", "list_position")
"""The columns :func:`link_interactions` sets: the linked list and the item's slot in it."""

_ITEM_KEYS = ["assessment_id", "recommendation_id"]

LINKED_INTERACTION_COLUMNS = (
    "event_id",
    "recommendation_id",
    "user_id",
    "assessment_id",
    "timestamp",
    "request_id",
    "interaction_type",
)
"""The interaction columns :func:`linked_window` reads unless told to read more."""


def fill_assessment_ids(interactions: pl.DataFrame, recommendations: pl.DataFrame) -> pl.DataFrame:
    """``interactions`` with a null ``assessment_id`` taken from the catalog's recommendation
    (``recommendations`` has ``recommendation_id`` and ``assessment_id``); rows keep their order."""
    catalog = recommendations.select(
        "recommendation_id", pl.col("assessment_id").alias("__catalog_assessment")
    ).unique("recommendation_id", keep="first")
    return (
        interactions.join(catalog, on="recommendation_id", how="left", maintain_order="left")
        .with_columns(pl.coalesce("assessment_id", "__catalog_assessment").alias("assessment_id"))
        .drop("__catalog_assessment")
    )


def link_interactions(
    interactions: pl.DataFrame,
    impressions: pl.DataFrame,
    *,
    attribution_hours: float = defaults.ATTRIBUTION_HOURS,
) -> pl.DataFrame:
    """``interactions`` (same rows, same order) with ``request_id`` set to the list each belongs to
    (null: unlinked) and ``list_position``, the recommendation's slot in that list.

    ``interactions`` needs ``recommendation_id``, ``user_id``, ``assessment_id``, ``timestamp`` and
    ``request_id`` (the one the log named, or null); ``impressions`` the stored item rows of the
    lists (``request_id``, ``timestamp``, ``assessment_id``, ``user_id``, ``recommendation_id``,
    ``position``). See the module docstring for the rules.
    """
    if attribution_hours < 0:
        raise ValueError(f"attribution_hours must be >= 0, got {attribution_hours}")
    rows = interactions.drop("list_position", strict=False).with_row_index("__row")
    items = (
        impressions.select("request_id", "timestamp", *_ITEM_KEYS, "user_id", "position")
        .sort("position")
        .unique(["request_id", "recommendation_id"], keep="first")
    )
    named = rows.select("__row", "request_id", "recommendation_id").join(
        items.select("request_id", "recommendation_id", pl.col("position").alias("list_position")),
        on=["request_id", "recommendation_id"],
        how="inner",
    )
    unnamed = rows.join(named.select("__row"), on="__row", how="anti")
    by_time = _newest_list_before(unnamed, items, timedelta(hours=attribution_hours))
    links = pl.concat([named.select("__row", "request_id", "list_position"), by_time])
    return (
        rows.drop("request_id")
        .join(links, on="__row", how="left")
        .sort("__row")
        .drop("__row")
        .select(*interactions.drop("list_position", strict=False).columns, "list_position")
    )


def _newest_list_before(rows: pl.DataFrame, items: pl.DataFrame, window: timedelta) -> pl.DataFrame:
    """``__row``, ``request_id``, ``list_position`` of the newest list in ``window`` before each row:
    one as-of join against the lists that name a user (matched on it), one against those that do
    not, and the newer of the two matches."""
    left = rows.select("__row", "timestamp", *_ITEM_KEYS, "user_id").drop_nulls(_ITEM_KEYS).sort("timestamp")
    right = items.sort("timestamp", "request_id").select(
        pl.col("timestamp").alias("__shown"),
        "timestamp",
        *_ITEM_KEYS,
        "user_id",
        "request_id",
        pl.col("position").alias("list_position"),
    )
    matches = []
    for by, lists in (
        ([*_ITEM_KEYS, "user_id"], right.filter(pl.col("user_id").is_not_null())),
        (_ITEM_KEYS, right.filter(pl.col("user_id").is_null()).drop("user_id")),
    ):
        matched = left.join_asof(
            lists, on="timestamp", by=by, strategy="backward", tolerance=window, check_sortedness=False
        )
        matches.append(matched.select("__row", "__shown", "request_id", "list_position"))
    return (
        pl.concat(matches)
        .drop_nulls("request_id")
        .sort("__shown", "request_id", descending=True)
        .unique("__row", keep="first")
        .select("__row", "request_id", "list_position")
    )


def linked_window(
    store: Store,
    since: datetime | None,
    until: datetime | None,
    *,
    interaction_columns: Sequence[str] = LINKED_INTERACTION_COLUMNS,
    catalog_columns: Sequence[str] = (),
    attribution_hours: float = defaults.ATTRIBUTION_HOURS,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """The lists served in ``since <= timestamp < until``, the interactions linked to them, the
    catalog and the counts of interactions read and left unlinked.

    Interactions are read up to ``attribution_hours`` past the window's end, so that feedback on a
    list served just before the end still counts; they get their assessment from the catalog when
    they name none, then :func:`link_interactions`. ``interaction_columns`` are the ones read
    (:data:`LINKED_INTERACTION_COLUMNS` and any others); the catalog has ``recommendation_id``,
    ``assessment_id`` and ``catalog_columns``.
    """
    impressions = store.read("impressions", since=since, until=until)
    end = until + timedelta(hours=attribution_hours) if until is not None else None
    interactions = store.read("interactions", since=since, until=end, columns=list(interaction_columns))
    catalog = store.read("recommendations", columns=["recommendation_id", "assessment_id", *catalog_columns])
    linked = link_interactions(
        fill_assessment_ids(interactions, catalog), impressions, attribution_hours=attribution_hours
    )
    counts = {
        "interactions": interactions.height,
        "unlinked_interactions": int(linked["request_id"].null_count()),
    }
    return impressions, linked, catalog, counts
