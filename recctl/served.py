"""Every list served in a window, with what each item earned: the data off-policy evaluation reads.

Unlike the training set (:mod:`recctl.dataset`), which keeps only lists that taught something,
this keeps **every** served list of the window, clicked or not: an estimate of what a policy earns
per list must count the lists that earned nothing.

For each list (an impression with ``timestamp`` in the window):

* its items, in ``recommendation_id`` order (the order the target policy is handed them, so that no
  target sees the logged order), each with its logged ``slot`` (0-based rank of its ``position``
  in the list), ``propensity`` and ``prefix_propensity``, and its features computed over the list
  (:func:`recctl.features.compute_features`: the same values ``rank`` computes for that batch);
* the item's rewards from the interactions linked to that list
  (:func:`recctl.attribution.link_interactions`): ``click`` (1 if it was clicked), ``implement``
  (1 if it was implemented) and ``label`` (the pair label of its interactions, 0..1, as in
  training: :func:`recctl.dataset.pair_labels`). Interactions are read up to ``attribution_hours``
  past the window's end, so a list served just before the end still gets its reactions.

Logged propensities: a list whose ``policy`` is ``deterministic`` (or unnamed) and that logs none is
taken at propensity 1.0 (a deterministic policy serves its list for certain); a randomised list
without them stays null, and the estimators that need them cannot use it. A list with an item not in
the catalog (no features, so no target can rank it) is left out and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import polars as pl

from recctl import defaults
from recctl.errors import InsufficientDataError
from recctl.features import GROUP, candidates, compute_features
from recctl.labels import DEFAULT_POLICY, LabelPolicy
from recctl.off_policy import SlateLog
from recctl.records import SCHEMAS

if TYPE_CHECKING:
    from recctl.dataset import TimeWindow
    from recctl.stores.base import Store

__all__ = ["REWARDS", "ServedLists", "assemble_served", "read_served"]

REWARDS = ("click", "implement", "label")
"""What a slot can earn: a click, an implementation, or the item's label."""

_LIST_COLUMNS = ["request_id", "timestamp", "assessment_id", "user_id", "policy"]
_ITEM_COLUMNS = ["recommendation_id", "position", "propensity", "prefix_propensity"]
_INTERACTION_COLUMNS = [
    "recommendation_id",
    "interaction_type",
    "interaction_value",
    "timestamp",
    "position",
    "user_id",
    "assessment_id",
    "request_id",
]


class NoServedListsError(InsufficientDataError):
    """The window holds no served list to evaluate on. Exit code 3."""


@dataclass(frozen=True)
class ServedLists:
    """The window's served lists.

    ``lists``: one row per list (``request_id``, ``timestamp``, ``assessment_id``, ``user_id``,
    ``policy``, ``items``), in the order of ``featured``. ``featured``: one row per item, each list's
    rows contiguous and in ``recommendation_id`` order: the candidate columns, the features, and
    ``slot``, ``propensity``, ``prefix_propensity`` and the rewards of :data:`REWARDS`.
    ``left_out`` counts lists not kept, by reason.
    """

    lists: pl.DataFrame
    featured: pl.DataFrame
    left_out: dict[str, int] = field(default_factory=dict)

    @property
    def sizes(self) -> list[int]:
        """Items per list, in order."""
        return self.lists["items"].to_list()

    def slots(self, depth: int | None) -> npt.NDArray[np.int64]:
        """How many slots of each list are evaluated: its length, or ``depth`` when shorter."""
        sizes = self.lists["items"].to_numpy().astype(np.int64)
        return sizes if depth is None else np.minimum(sizes, depth)

    def orders(self, depth: int | None) -> list[npt.NDArray[np.int64]]:
        """Per list, the logged item (its row within the list) at each evaluated slot."""
        grid = self._grid(depth)
        evaluated = self.slots(depth)
        return [row[:count] for row, count in zip(grid.item.tolist(), evaluated.tolist(), strict=True)]

    def logged_items(self, depth: int | None) -> npt.NDArray[np.int64]:
        """``(n, K)``: the logged item (its row within the list) at each evaluated slot, -1 elsewhere."""
        return self._grid(depth).item

    def logged_rows(self, depth: int | None) -> npt.NDArray[np.int64]:
        """``(n, K)``: the ``featured`` row of the logged item at each evaluated slot (0 elsewhere)."""
        return self._grid(depth).rows

    def slate_log(self, reward: str, depth: int | None = None) -> SlateLog:
        """The lists as :class:`recctl.off_policy.SlateLog` arrays for ``reward`` over the first
        ``depth`` slots (None: all); bootstrap groups are assessments. A propensity array is None
        when any evaluated slot lacks it."""
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {', '.join(REWARDS)}, got {reward!r}")
        grid = self._grid(depth)
        groups = self.lists["assessment_id"].cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
        values = {
            name: self.featured[name].to_numpy().astype(np.float64)
            for name in (reward, "propensity", "prefix_propensity")
        }
        arrays = {}
        for name, column in values.items():
            filler = 0.0 if name == reward else 1.0
            placed = np.full(grid.mask.shape, filler)
            placed[grid.mask] = column[grid.rows[grid.mask]]
            arrays[name] = placed
        missing = {name: bool(np.isnan(arrays[name][grid.mask]).any()) for name in arrays}
        return SlateLog(
            rewards=arrays[reward],
            mask=grid.mask,
            groups=np.unique(groups, return_inverse=True)[1].astype(np.int64),
            prefix_propensity=None if missing["prefix_propensity"] else arrays["prefix_propensity"],
            propensity=None if missing["propensity"] else arrays["propensity"],
        )

    def lacking(self, name: str, depth: int | None = None) -> int:
        """How many lists lack the logged ``name`` (a propensity column) at an evaluated slot."""
        grid = self._grid(depth)
        column = self.featured[name].is_null().to_numpy()
        lacks = np.zeros(grid.mask.shape, dtype=bool)
        lacks[grid.mask] = column[grid.rows[grid.mask]]
        return int(lacks.any(axis=1).sum())

    def _grid(self, depth: int | None) -> _Grid:
        sizes = self.lists["items"].to_numpy().astype(np.int64)
        evaluated = self.slots(depth)
        width = int(evaluated.max()) if evaluated.size else 0
        starts = np.cumsum(sizes) - sizes
        slot = self.featured["slot"].to_numpy().astype(np.int64)
        owner = np.repeat(np.arange(len(sizes)), sizes)
        keep = slot < evaluated[owner]
        rows = np.zeros((len(sizes), width), dtype=np.int64)
        item = np.full((len(sizes), width), -1, dtype=np.int64)
        mask = np.zeros((len(sizes), width), dtype=bool)
        everywhere = np.arange(len(slot))
        rows[owner[keep], slot[keep]] = everywhere[keep]
        item[owner[keep], slot[keep]] = everywhere[keep] - starts[owner[keep]]
        mask[owner[keep], slot[keep]] = True
        return _Grid(rows, item, mask)


@dataclass(frozen=True)
class _Grid:
    """``(n, K)``: the ``featured`` row, the item within its list, and whether the slot is evaluated."""

    rows: npt.NDArray[np.int64]
    item: npt.NDArray[np.int64]
    mask: npt.NDArray[np.bool_]


def read_served(
    store: Store,
    window: TimeWindow,
    *,
    policy: LabelPolicy = DEFAULT_POLICY,
    attribution_hours: float = defaults.ATTRIBUTION_HOURS,
) -> ServedLists:
    """The window's served lists from ``store`` (see the module docstring).

    Raises :class:`NoServedListsError` (exit 3) when the window holds no list to evaluate.
    """
    impressions = store.read(
        "impressions", since=window.since, until=window.until, columns=[*_LIST_COLUMNS, *_ITEM_COLUMNS]
    )
    if impressions.is_empty():
        raise NoServedListsError(f"no served lists (impressions) in the window {_describe(window)}")
    until = window.until + timedelta(hours=attribution_hours) if window.until is not None else None
    stored = SCHEMAS["interactions"]
    columns = [name for name in _INTERACTION_COLUMNS if name in stored]
    interactions = store.read("interactions", since=window.since, until=until, columns=columns)
    missing = [
        pl.lit(None, dtype=pl.String).alias(name) for name in _INTERACTION_COLUMNS if name not in stored
    ]
    interactions = interactions.with_columns(missing)
    served = assemble_served(
        impressions,
        interactions,
        store.read("recommendations"),
        store.read("assessments"),
        policy=policy,
        attribution_hours=attribution_hours,
    )
    if served.lists.is_empty():
        raise NoServedListsError(
            f"none of the {impressions['request_id'].n_unique():,} served lists in the window "
            f"{_describe(window)} can be evaluated ({_reasons(served.left_out)})"
        )
    return served


def assemble_served(
    impressions: pl.DataFrame,
    interactions: pl.DataFrame,
    recommendations: pl.DataFrame,
    assessments: pl.DataFrame,
    *,
    policy: LabelPolicy = DEFAULT_POLICY,
    attribution_hours: float = defaults.ATTRIBUTION_HOURS,
) -> ServedLists:
    """:class:`ServedLists` from frames in memory: ``impressions`` (stored item rows), the
    ``interactions`` that may link to them, and the catalogs."""
    items = (
        impressions.sort("request_id", "position")
        .unique(["request_id", "recommendation_id"], keep="first", maintain_order=True)
        .with_columns(
            pl.col("position").rank("ordinal").over("request_id").cast(pl.Int64).sub(1).alias("slot")
        )
    )
    catalog = recommendations.unique("recommendation_id", keep="last")
    unknown = items.join(catalog.select("recommendation_id"), on="recommendation_id", how="anti")
    outside = unknown["request_id"].unique()
    items = items.filter(~pl.col("request_id").is_in(outside.implode()))
    deterministic = pl.col("policy").is_null() | (pl.col("policy") == "deterministic")
    items = items.with_columns(
        pl.when(deterministic).then(pl.col(name).fill_null(1.0)).otherwise(pl.col(name)).alias(name)
        for name in ("propensity", "prefix_propensity")
    ).sort("request_id", "recommendation_id")

    rewards = _rewards(interactions, items, recommendations, policy, attribution_hours)
    rows = items.join(rewards, on=["request_id", "recommendation_id"], how="left", maintain_order="left")
    rows = rows.with_columns(pl.col(name).fill_null(0.0) for name in REWARDS)
    featured_items = candidates(
        rows.select("request_id", "recommendation_id").join(
            catalog.drop("request_id", strict=False),
            on="recommendation_id",
            how="left",
            maintain_order="left",
        ),
        assessments,
        query_id=pl.col("request_id"),
    )
    featured = compute_features(featured_items).with_columns(
        rows.select("slot", "propensity", "prefix_propensity", *REWARDS).get_columns()
    )
    lists = (
        rows.group_by("request_id", maintain_order=True)
        .agg(
            pl.col("timestamp").first(),
            pl.col("assessment_id").first(),
            pl.col("user_id").first(),
            pl.col("policy").first(),
            pl.len().alias("items"),
        )
        .select(*_LIST_COLUMNS, pl.col("items").cast(pl.Int64))
    )
    return ServedLists(lists, featured, {"lists_with_items_not_in_catalog": outside.len()})


def _rewards(
    interactions: pl.DataFrame,
    items: pl.DataFrame,
    recommendations: pl.DataFrame,
    policy: LabelPolicy,
    attribution_hours: float,
) -> pl.DataFrame:
    """Per (request_id, recommendation_id) with a linked interaction: ``click``, ``implement``, ``label``."""
    from recctl.attribution import fill_assessment_ids, link_interactions
    from recctl.dataset import pair_labels

    schema = {"request_id": pl.String, "recommendation_id": pl.String}
    if interactions.is_empty() or items.is_empty():
        return pl.DataFrame(schema={**schema, **dict.fromkeys(REWARDS, pl.Float64)})
    prepared = fill_assessment_ids(interactions, recommendations.select("recommendation_id", "assessment_id"))
    linked = link_interactions(prepared, items, attribution_hours=attribution_hours).filter(
        pl.col("request_id").is_not_null()
    )
    labels = pair_labels(linked.with_columns(pl.col("request_id").alias(GROUP)), policy).select(
        pl.col(GROUP).alias("request_id"), "recommendation_id", "label"
    )
    kinds = linked.group_by("request_id", "recommendation_id").agg(
        (pl.col("interaction_type") == "click").any().cast(pl.Float64).alias("click"),
        (pl.col("interaction_type") == "implement").any().cast(pl.Float64).alias("implement"),
    )
    return kinds.join(labels, on=["request_id", "recommendation_id"], how="left")


def _reasons(left_out: dict[str, int]) -> str:
    named = [f"{count:,} {reason.replace('_', ' ')}" for reason, count in left_out.items() if count]
    return ", ".join(named) or "none left out"


def _describe(window: TimeWindow) -> str:
    since = f"{window.since:%Y-%m-%d %H:%M}" if window.since else "the beginning"
    until = f"{window.until:%Y-%m-%d %H:%M}" if window.until else "now"
    return f"{since} .. {until} UTC"
