"""The learning-to-rank training set: query groups, pair labels, grades and features.

What a query group is is decided per assessment:

- **An assessment with served lists** (impressions) in the window: each list is a group
  (``query_id`` = its ``request_id``), its rows are the list's items (those in the catalog) with
  their ``position``, ``propensity`` and ``prefix_propensity``, and an item's label comes from the
  interactions linked to *that* list (:func:`recctl.attribution.link_interactions`). The
  assessment's interactions that link to none of its lists are counted (``unlinked_interactions``),
  never used for another list. A list served shortly before the window (within the attribution
  window) is a group only when an interaction of the window links to it.
- **Any other assessment**: one group (``query_id`` = the assessment), the list of its catalog
  recommendations, included when at least one of them has an interaction in the window; an item
  with no interaction is a shown-but-ignored negative (label 0), and its ``position`` is the
  smallest slot an interaction logged for it, when one did.

Each (group, recommendation) pair is one row:

- ``label`` = the largest label of the pair's interactions (labels recomputed with the policy in
  force), except that a pair with a ``dismiss`` and nothing at click strength or above is 0;
- ``grade`` = floor(4 * label + 0.5), clipped to 0..4 (LambdaRank's integer relevance);
- ``event_time`` = the newest interaction of the group (of a list: its newest linked interaction,
  else the time it was served); the time split orders assessments by their newest group;
- ``assessment_id``: the assessment the group belongs to (validation keeps an assessment's
  groups on one side).

Within-list features are computed over the group: the served list, or the assessment's catalog
list. Groups with fewer than two rows, one grade for every row, or (lists) no linked interaction
teach nothing and are left out (counted by reason). Interactions whose recommendation is not in the
catalog are counted as orphans, list items not in the catalog as ``list_items_not_in_catalog``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from recctl import defaults
from recctl._version import __version__
from recctl.atomic import write_atomically, write_text_atomically
from recctl.errors import InputError, InsufficientDataError
from recctl.features import (
    FEATURE_NAMES,
    FEATURE_SET_VERSION,
    GROUP,
    candidates,
    compute_features,
    empty_feature_groups,
    feature_coverage,
    present_shares,
)
from recctl.labels import DEFAULT_POLICY, LabelPolicy
from recctl.records import SCHEMAS, as_utc
from recctl.stores.base import Store

MAX_GRADE = 4
INTERACTIONS_PER_BUCKET = 750_000
"""A window of up to twice this many interactions is built in memory (1.5M: about 3 GB at peak); a
larger one in buckets of assessments of about this many interactions each (see
:mod:`recctl.bucketed_export`), whose peak stays below that of the largest window built in memory
(a bucket costs more than its share: the spilled inputs are read back beside it)."""
INTERACTION_COLUMNS = [
    "event_id",
    "recommendation_id",
    "interaction_type",
    "interaction_value",
    "timestamp",
    "position",
]
LINKING_COLUMNS = ["user_id", "assessment_id", "request_id"]
"""The interaction columns linking to served lists needs besides :data:`INTERACTION_COLUMNS`."""
IMPRESSION_COLUMNS = [
    "request_id",
    "timestamp",
    "assessment_id",
    "user_id",
    "recommendation_id",
    "position",
    "propensity",
    "prefix_propensity",
    "policy",
]
EXPORT_COLUMNS = [
    GROUP,
    "recommendation_id",
    "label",
    "grade",
    "event_time",
    "position",
    "assessment_id",
    "propensity",
    "prefix_propensity",
]
"""The columns of a training set before the features, in order."""


class TooFewInteractionsError(InsufficientDataError):
    """The window holds fewer interactions than ``min_interactions``.

    ``message(flag)`` names ``min_interactions`` as ``flag`` spells it (the command line: its flag).
    """

    def __init__(self, interactions: int, min_interactions: int, window: TimeWindow) -> None:
        self.interactions = interactions
        self.min_interactions = min_interactions
        self.window = window
        super().__init__(self.message())

    def message(self, flag: Callable[[str], str] | None = None) -> str:
        named = f" ({flag('min_interactions')})" if flag else ""
        return (
            f"only {self.interactions:,} interactions in the window {_describe(self.window)}; "
            f"at least {self.min_interactions:,} are needed{named}"
        )


class OutputPathError(InputError):
    """``out`` cannot hold a training set: a ``.parquet`` path that is a directory, another path that
    is a file, or a folder that cannot be created (``reason`` then says why).

    ``message(flag)`` names the ``out`` argument as ``flag`` spells it (the command line: its flag).
    """

    def __init__(self, out: Path, *, reason: str | None = None) -> None:
        self.out = out
        self.reason = reason
        super().__init__(self.message())

    def message(self, flag: Callable[[str], str] | None = None) -> str:
        name = flag("out") if flag else None
        subject = f"{name} {self.out}" if name else str(self.out)
        if self.reason is not None:
            return f"{subject}: {self.reason}"
        if self.out.suffix == ".parquet":  # see output_paths
            return f"{subject} is a directory; a .parquet {name or 'path'} names the file to write"
        return f"{subject} exists and is not a directory (name a directory or a .parquet file)"


@dataclass(frozen=True)
class TimeWindow:
    """``since <= timestamp < until``; either side may be open (None)."""

    since: datetime | None
    until: datetime | None

    @classmethod
    def resolve(
        cls,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        lookback_days: int = defaults.LOOKBACK_DAYS,
        now: datetime | None = None,
    ) -> TimeWindow:
        """The window ``since <= timestamp < until``.

        ``until`` defaults to now; ``since`` defaults to ``until - lookback_days`` and
        ``lookback_days=0`` means no lower bound. Naive datetimes are UTC.
        """
        end = as_utc(until) if until is not None else (now or datetime.now(UTC))
        if since is not None:
            start: datetime | None = as_utc(since)
        elif lookback_days > 0:
            start = end - timedelta(days=lookback_days)
        else:
            start = None
        if start is not None and start >= end:
            raise ValueError(
                f"the time window is empty: since {start:%Y-%m-%d} is not before until {end:%Y-%m-%d}"
            )
        return cls(start, end)

    def as_json(self) -> dict[str, str | None]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }


@dataclass
class TrainingSet:
    """Rows sorted by ``query_id`` (then ``recommendation_id``; a large window: by bucket first, see
    :func:`assemble`) and the manifest describing them.

    ``click_log``: with served lists, one row per item shown and whether a click was linked to it
    (:func:`recctl.bias.click_log`), what a bias curve is estimated from; None without lists.
    """

    frame: pl.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)
    click_log: pl.DataFrame | None = None

    @property
    def feature_names(self) -> list[str]:
        return list(FEATURE_NAMES)


def pair_labels(interactions: pl.DataFrame, policy: LabelPolicy = DEFAULT_POLICY) -> pl.DataFrame:
    """One row per (query_id, recommendation_id) with its pair ``label``, ``position`` and ``last_seen``.

    ``interactions`` needs ``query_id``, ``recommendation_id``, ``interaction_type``,
    ``interaction_value``, ``timestamp`` and ``position``.
    """
    labelled = interactions.with_columns(
        policy.label_expr(pl.col("interaction_type"), pl.col("interaction_value")).alias("__label")
    )
    return (
        labelled.group_by(GROUP, "recommendation_id")
        .agg(
            pl.col("__label").max().alias("__best"),
            (pl.col("interaction_type") == "dismiss").any().alias("__dismissed"),
            pl.col("position").min().alias("position"),
            pl.col("timestamp").max().alias("last_seen"),
        )
        .with_columns(
            pl.when(pl.col("__dismissed") & (pl.col("__best") < policy.click_strength))
            .then(0.0)
            .otherwise(pl.col("__best"))
            .fill_null(0.0)
            .alias("label")
        )
        .drop("__best", "__dismissed")
    )


def bucket_count(interactions: int, per_bucket: int = INTERACTIONS_PER_BUCKET) -> int:
    """How many buckets a window of ``interactions`` interactions is exported in: one (in memory)
    up to ``2 * per_bucket``, else ``ceil(interactions / per_bucket)``."""
    return 1 if interactions <= 2 * per_bucket else -(-interactions // per_bucket)


def grade_of(label: pl.Expr) -> pl.Expr:
    """floor(4 * label + 0.5) as an integer grade clipped to 0..4."""
    return (label * MAX_GRADE + 0.5).floor().clip(0, MAX_GRADE).cast(pl.Int32)


def build_training_set(
    store: Store,
    window: TimeWindow,
    *,
    policy: LabelPolicy = DEFAULT_POLICY,
    min_interactions: int = defaults.MIN_INTERACTIONS,
    attribution_hours: float = defaults.ATTRIBUTION_HOURS,
    progress: Callable[[str], None] | None = None,
    interactions_per_bucket: int = INTERACTIONS_PER_BUCKET,
) -> TrainingSet:
    """Read the window's interactions, served lists and the catalogs from ``store`` and build the
    training set (see the module docstring), in memory; rows in the order of an export of the same
    window (:func:`recctl.bucketed_export.export_training_set`, ``interactions_per_bucket`` as there).

    Lists are read from ``attribution_hours`` before the window starts, so that an interaction
    early in the window still finds the list it was shown in.

    Raises :class:`InsufficientDataError` when the window holds no usable query group, and
    :class:`TooFewInteractionsError` (one) when it holds fewer than ``min_interactions`` interactions.
    """
    step = progress or (lambda _message: None)
    step("reading interactions")
    stored = SCHEMAS["interactions"]
    columns = [c for c in (*INTERACTION_COLUMNS, *LINKING_COLUMNS) if c in stored]
    interactions = store.read("interactions", since=window.since, until=window.until, columns=columns)
    if interactions.height < min_interactions:
        raise TooFewInteractionsError(interactions.height, min_interactions, window)
    step("reading served lists")
    lists_since = window.since - timedelta(hours=attribution_hours) if window.since is not None else None
    impressions = store.read("impressions", since=lists_since, until=window.until, columns=IMPRESSION_COLUMNS)
    step("reading catalogs")
    recommendations = store.read("recommendations")
    assessments = store.read("assessments")
    step("building pairs and features")
    training = assemble(
        interactions,
        recommendations,
        assessments,
        policy=policy,
        impressions=impressions,
        lists_since=window.since,
        attribution_hours=attribution_hours,
        buckets=bucket_count(interactions.height, interactions_per_bucket),
    )
    if training.frame.is_empty():
        groups = training.manifest["groups"]
        raise InsufficientDataError(
            f"no usable query group in the window {_describe(window)}: {groups['seen']:,} groups seen, "
            f"left out {groups['left_out']}, {training.manifest['orphan_interactions']:,} orphan interactions"
        )
    training.manifest.update(
        {
            "time_window": window.as_json(),
            "source": store.description,
        }
    )
    return training


def assemble(
    interactions: pl.DataFrame,
    recommendations: pl.DataFrame,
    assessments: pl.DataFrame,
    *,
    policy: LabelPolicy = DEFAULT_POLICY,
    impressions: pl.DataFrame | None = None,
    lists_since: datetime | None = None,
    attribution_hours: float = defaults.ATTRIBUTION_HOURS,
    buckets: int = 1,
    group_ids: Callable[[pl.Series, pl.Series], None] | None = None,
) -> TrainingSet:
    """The training set from frames already in memory (see the module docstring for the rules).

    Rows are sorted by the bucket of their ``assessment_id`` among ``buckets``
    (:func:`recctl.buckets.bucket_of`), then ``query_id`` and ``recommendation_id``: the order an
    export built one bucket at a time has (one bucket: by ``query_id``). ``group_ids``, when given,
    is called with the ids of the list groups and of the assessment groups, and checking that
    none is both is left to it (an export in buckets checks across its buckets).

    ``impressions`` are the stored item rows of the served lists (:data:`IMPRESSION_COLUMNS`);
    ``interactions`` then also need ``user_id``, ``assessment_id`` and ``request_id`` (missing
    columns count as null). Lists served before ``lists_since`` only help linking: such a list is a
    group only when an interaction links to it. Raises :class:`InputError` when a list's
    ``request_id`` is also the id of an assessment group (the two would be one group).
    """
    catalog = recommendations.select("recommendation_id", pl.col("assessment_id").alias("__catalog"))
    joined = interactions.join(catalog, on="recommendation_id", how="left")
    orphans = int(joined["__catalog"].null_count())
    known = joined.filter(pl.col("__catalog").is_not_null())
    lists = _lists(impressions)
    linked = _linked(known, lists, attribution_hours)
    group_lists = lists.filter(
        (pl.col("timestamp") >= as_utc(lists_since) if lists_since is not None else pl.lit(True))
        | pl.col("request_id").is_in(linked["request_id"].drop_nulls().unique().implode())
    )
    with_lists = group_lists["assessment_id"].unique().implode()
    on_lists = linked.filter(pl.col("request_id").is_not_null())
    unlinked = linked.filter(pl.col("request_id").is_null() & pl.col("__catalog").is_in(with_lists))
    by_assessment = linked.filter(pl.col("request_id").is_null() & ~pl.col("__catalog").is_in(with_lists))

    assessment_rows = _assessment_rows(by_assessment, recommendations, assessments, policy)
    list_rows, items_not_in_catalog = _list_rows(on_lists, group_lists, recommendations, assessments, policy)
    if group_ids is None:
        _refuse_shared_ids(list_rows, assessment_rows)
    else:
        group_ids(list_rows[GROUP].unique(), assessment_rows[GROUP].unique())
    rows = pl.concat([assessment_rows, list_rows], how="vertical").with_columns(
        grade_of(pl.col("label")).alias("grade")
    )
    group_stats = rows.group_by(GROUP).agg(
        pl.len().alias("items"),
        pl.col("grade").n_unique().alias("grades"),
        pl.col("group_is_list").first().alias("from_list"),
        pl.col("group_interactions").first().alias("interactions"),
    )
    unclicked = group_stats.filter(pl.col("from_list") & (pl.col("interactions") == 0))[GROUP]
    rest = group_stats.filter(~pl.col(GROUP).is_in(unclicked.implode()))
    too_small = rest.filter(pl.col("items") < 2)[GROUP]
    flat = rest.filter((pl.col("items") >= 2) & (pl.col("grades") < 2))[GROUP]
    left_out = pl.concat([unclicked, too_small, flat]).implode()
    kept = rows.filter(~pl.col(GROUP).is_in(left_out))
    featured = compute_features(kept)
    if buckets > 1:
        from recctl.buckets import bucket_of

        featured = featured.with_columns(bucket_of(featured["assessment_id"], buckets))
        featured = featured.sort("__bucket", GROUP, "recommendation_id").drop("__bucket")
    else:
        featured = featured.sort(GROUP, "recommendation_id")
    frame = featured.select(*EXPORT_COLUMNS, *FEATURE_NAMES)
    kept_lists = int(featured.filter(pl.col("group_is_list"))[GROUP].n_unique())
    coverage = feature_coverage(present_shares(frame, list(FEATURE_NAMES)))
    manifest = {
        "recctl_version": __version__,
        "feature_set_version": FEATURE_SET_VERSION,
        "feature_names": list(FEATURE_NAMES),
        "label_policy": policy.as_dict(),
        "label_policy_hash": policy.content_hash(),
        "rows": frame.height,
        "pairs_before_left_out": rows.height,
        "groups": {
            "seen": group_stats.height,
            "kept": int(frame[GROUP].n_unique()),
            "lists": kept_lists,
            "assessments": int(frame[GROUP].n_unique()) - kept_lists,
            "left_out": {
                "fewer_than_2_items": too_small.len(),
                "all_grades_equal": flat.len(),
                "lists_without_interactions": unclicked.len(),
            },
        },
        "interactions": interactions.height,
        "orphan_interactions": orphans,
        "linked_interactions": on_lists.height,
        "unlinked_interactions": unlinked.height,
        "impressions": {
            "lists": int(lists["request_id"].n_unique()),
            "list_groups_seen": int(group_lists["request_id"].n_unique()),
            "assessments_with_lists": with_lists.list.len().item(),
            "list_items_not_in_catalog": items_not_in_catalog,
            "attribution_hours": attribution_hours,
        },
        "grade_counts": {str(g): int(n) for g, n in frame["grade"].value_counts().sort("grade").iter_rows()},
        "feature_coverage": coverage,
        "empty_feature_groups": empty_feature_groups(coverage),
        "data_fingerprint": fingerprint(frame, buckets),
        "buckets": buckets,
    }
    shown = None
    if not lists.is_empty():
        from recctl.bias import click_log

        shown = click_log(lists, linked.filter(pl.col("request_id").is_not_null()))
    return TrainingSet(frame, manifest, shown)


def _lists(impressions: pl.DataFrame | None) -> pl.DataFrame:
    """The served items, one row per (list, recommendation): a recommendation a list shows twice
    keeps its first slot."""
    schema = SCHEMAS["impressions"]
    if impressions is None:
        return pl.DataFrame(schema={name: schema[name] for name in IMPRESSION_COLUMNS})
    return (
        impressions.select(IMPRESSION_COLUMNS)
        .sort("request_id", "position")
        .unique(["request_id", "recommendation_id"], keep="first", maintain_order=True)
    )


def _linked(known: pl.DataFrame, lists: pl.DataFrame, attribution_hours: float) -> pl.DataFrame:
    """``known`` (interactions in the catalog) with ``request_id`` = the list each is linked to
    (null: none). An interaction's assessment is its recommendation's, as for the groups."""
    from recctl.attribution import link_interactions

    missing = [
        pl.lit(None, dtype=pl.String).alias(name) for name in LINKING_COLUMNS if name not in known.columns
    ]
    prepared = known.with_columns(missing).with_columns(pl.col("__catalog").alias("assessment_id"))
    if lists.is_empty():
        return prepared.with_columns(pl.lit(None, dtype=pl.String).alias("request_id"))
    return link_interactions(prepared, lists, attribution_hours=attribution_hours)


def _assessment_rows(
    interactions: pl.DataFrame, recommendations: pl.DataFrame, assessments: pl.DataFrame, policy: LabelPolicy
) -> pl.DataFrame:
    """The candidate rows of the assessment groups: each seen assessment's catalog list, labelled."""
    pairs = pair_labels(interactions.with_columns(pl.col("__catalog").alias(GROUP)), policy)
    seen = pairs.group_by(GROUP).agg(
        pl.col("last_seen").max().alias("event_time"), pl.len().alias("group_interactions")
    )
    return (
        recommendations.join(seen, left_on="assessment_id", right_on=GROUP, how="semi")
        .pipe(candidates, assessments)
        .join(pairs.drop("last_seen"), on=[GROUP, "recommendation_id"], how="left")
        .join(seen, on=GROUP, how="left")
        .with_columns(
            pl.col("label").fill_null(0.0),
            pl.col(GROUP).alias("assessment_id"),
            pl.lit(None, dtype=pl.Float64).alias("propensity"),
            pl.lit(None, dtype=pl.Float64).alias("prefix_propensity"),
            pl.lit(False).alias("group_is_list"),
        )
        .pipe(_row_columns)
    )


def _list_rows(
    interactions: pl.DataFrame,
    lists: pl.DataFrame,
    recommendations: pl.DataFrame,
    assessments: pl.DataFrame,
    policy: LabelPolicy,
) -> tuple[pl.DataFrame, int]:
    """The candidate rows of the list groups (the items in the catalog, labelled by the list's own
    interactions) and how many items were not in the catalog."""
    pairs = pair_labels(interactions.with_columns(pl.col("request_id").alias(GROUP)), policy).drop("position")
    clicked = pairs.group_by(GROUP).agg(
        pl.col("last_seen").max().alias("__newest"), pl.len().alias("group_interactions")
    )
    items = lists.select("request_id", "recommendation_id").join(
        recommendations, on="recommendation_id", how="inner"
    )
    served = lists.rename({"assessment_id": "__list_assessment"}).select(
        pl.col("request_id").alias(GROUP),
        "recommendation_id",
        "__list_assessment",
        pl.col("timestamp").alias("__served"),
        "position",
        "propensity",
        "prefix_propensity",
    )
    rows = (
        candidates(items, assessments, query_id=pl.col("request_id"))
        .join(served, on=[GROUP, "recommendation_id"], how="left")
        .join(pairs.drop("last_seen"), on=[GROUP, "recommendation_id"], how="left")
        .join(clicked, on=GROUP, how="left")
        .with_columns(
            pl.col("label").fill_null(0.0),
            pl.col("__list_assessment").alias("assessment_id"),
            pl.coalesce("__newest", "__served").alias("event_time"),
            pl.col("group_interactions").fill_null(0),
            pl.lit(True).alias("group_is_list"),
        )
        .pipe(_row_columns)
    )
    return rows, lists.height - items.height


def _row_columns(rows: pl.DataFrame) -> pl.DataFrame:
    """The columns both kinds of group share before grading: the candidates', then the export's."""
    from recctl.features import CANDIDATE_COLUMNS

    extra = [
        pl.col("label").cast(pl.Float64),
        pl.col("event_time").cast(pl.Datetime("ms", "UTC")),
        pl.col("position").cast(pl.Int64),
        pl.col("propensity").cast(pl.Float64),
        pl.col("prefix_propensity").cast(pl.Float64),
        pl.col("group_is_list"),
        pl.col("group_interactions").cast(pl.Int64),
    ]
    return rows.select(
        *[pl.col(name) for name in CANDIDATE_COLUMNS if name != "assessment_id"], "assessment_id", *extra
    )


def _refuse_shared_ids(list_rows: pl.DataFrame, assessment_rows: pl.DataFrame) -> None:
    shared = (
        list_rows.select(GROUP).unique().join(assessment_rows.select(GROUP).unique(), on=GROUP, how="semi")
    )
    if shared.height:
        raise InputError(
            f"{shared.height:,} served list id(s) are also assessment ids (e.g. {shared[GROUP][0]!r}); "
            "a list's request_id must not be an assessment_id"
        )


def fingerprint(frame: pl.DataFrame, buckets: int = 1) -> str:
    """sha256 over the frame's column names, types, null masks and values: equal data, equal print.

    Built from the values themselves (not a file encoding), so the same rows read from either
    store, in any chunking, give the same fingerprint. A frame of several ``buckets`` (rows in
    bucket order, see :func:`assemble`) is printed a bucket at a time, and its print is the sha256
    of its non-empty buckets' prints in order, so that an export written a bucket at a time can
    compute it without holding the whole frame.
    """
    if buckets > 1:
        from recctl.buckets import bucket_of

        parts = frame.with_columns(bucket_of(frame["assessment_id"], buckets)).partition_by(
            "__bucket", maintain_order=True, include_key=False
        )
        return combined_fingerprint([fingerprint(part) for part in parts])
    digest = hashlib.sha256()
    for column in frame.get_columns():
        digest.update(f"{column.name}\x00{column.dtype}\x00".encode())
        digest.update(column.is_null().to_numpy().tobytes())
        if column.dtype == pl.String:
            digest.update((column.fill_null("").str.join("\x1f").item() or "").encode())
        else:
            digest.update(column.to_physical().fill_null(0).to_numpy().tobytes())
    return "sha256:" + digest.hexdigest()


def combined_fingerprint(prints: list[str]) -> str:
    """The print of a frame of several buckets, from its non-empty buckets' prints in order."""
    return "sha256:" + hashlib.sha256("\n".join(prints).encode()).hexdigest()


def _describe(window: TimeWindow) -> str:
    since = f"{window.since:%Y-%m-%d %H:%M}" if window.since else "the beginning"
    until = f"{window.until:%Y-%m-%d %H:%M}" if window.until else "now"
    return f"{since} .. {until} UTC"


def output_paths(out: Path) -> tuple[Path, Path]:
    """(Parquet path, manifest path) for ``out``; :class:`OutputPathError` when ``out`` cannot be one.

    Cheap, so commands call it before the work: a bad ``out`` fails at once, not after the export.
    """
    if out.suffix == ".parquet":
        if out.is_dir():
            raise OutputPathError(out)
        return out, out.with_name(f"{out.stem}.manifest.json")
    if out.exists() and not out.is_dir():
        raise OutputPathError(out)
    return out / "training_set.parquet", out / "manifest.json"


def write_training_set(training: TrainingSet, out: Path, *, partitions: int = 1) -> tuple[Path, Path]:
    """Write the Parquet file(s) and ``manifest.json``; returns the data path and the manifest's.

    ``out`` ending in ``.parquet`` is the file itself, with ``<stem>.manifest.json`` beside it;
    any other ``out`` is a directory holding ``training_set.parquet`` and ``manifest.json``. With
    ``partitions`` > 1 the directory holds ``part-00000.parquet`` ... instead, each of whole query
    groups (consecutive groups, about the same number of rows each), listed in the manifest's
    ``data_files``; the data path returned is then the directory, and the export's files of an
    earlier run there (``training_set.parquet``, other ``part-*.parquet``) are removed. Every file
    is written under a temporary name and renamed into place.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    data_path, manifest_path = output_paths(out)
    if partitions > 1 and out.suffix == ".parquet":
        raise OutputPathError(out, reason="a partitioned export is a directory, not one .parquet file")
    try:
        data_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = f"cannot create {data_path.parent}: {exc.strerror or exc}"
        raise OutputPathError(out, reason=reason) from None
    if partitions == 1:
        pieces = {data_path: training.frame}
    else:
        pieces = {
            data_path.parent / f"part-{number:05d}.parquet": piece
            for number, piece in enumerate(_whole_group_slices(training.frame, partitions))
        }
    for path, piece in pieces.items():
        write_atomically(path, functools.partial(_write_parquet, piece))
    names = [path.name for path in pieces]
    manifest = {**training.manifest, "data_file": names[0] if partitions == 1 else None, "data_files": names}
    write_text_atomically(manifest_path, json.dumps(manifest, indent=2) + "\n")
    if out.suffix != ".parquet":
        for stale in [data_path.parent / "training_set.parquet", *data_path.parent.glob("part-*.parquet")]:
            if stale.name not in names:
                stale.unlink(missing_ok=True)
    return (data_path if partitions == 1 else data_path.parent), manifest_path


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    frame.write_parquet(path, compression="zstd", statistics=True)


def _whole_group_slices(frame: pl.DataFrame, partitions: int) -> list[pl.DataFrame]:
    """``frame`` cut into ``partitions`` runs of consecutive query groups of about equal rows
    (fewer when there are fewer groups); a group is never cut."""
    import numpy as np

    sizes = frame.group_by(GROUP, maintain_order=True).len()["len"].to_numpy()
    ends = np.cumsum(sizes)
    targets = ends[-1] * np.arange(1, partitions) / partitions if len(ends) else np.zeros(0)
    cuts = np.unique(
        np.concatenate([[0], ends[np.minimum(np.searchsorted(ends, targets), len(ends) - 1)], ends[-1:]])
    )
    return [
        frame.slice(int(start), int(length)) for start, length in zip(cuts[:-1], np.diff(cuts), strict=True)
    ]
