"""The learning-to-rank training set: query groups, pair labels, grades and features.

A query group is one assessment: the list of its catalog recommendations, included when at least
one of them has an interaction in the time window. Each (group, recommendation) pair is one row:

- ``label`` = the largest label of the pair's interactions (labels recomputed with the policy in
  force), except that a pair with a ``dismiss`` and nothing at click strength or above is 0;
  a catalog recommendation of a seen group with no interaction is a negative with label 0;
- ``grade`` = floor(4 * label + 0.5), clipped to 0..4 (LambdaRank's integer relevance);
- ``event_time`` = the newest interaction of the group (the time split orders groups by it);
- ``position`` = the smallest slot the recommendation was shown in, when the log says.

Groups with fewer than two rows or one grade for every row teach nothing and are left out (counted
by reason). Interactions whose recommendation is not in the catalog are counted as orphans.
"""

from __future__ import annotations

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
from recctl.records import as_utc
from recctl.stores.base import Store

MAX_GRADE = 4
INTERACTION_COLUMNS = [
    "event_id",
    "recommendation_id",
    "interaction_type",
    "interaction_value",
    "timestamp",
    "position",
]


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
    """Rows sorted by ``query_id`` (then ``recommendation_id``) and the manifest describing them."""

    frame: pl.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)

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


def grade_of(label: pl.Expr) -> pl.Expr:
    """floor(4 * label + 0.5) as an integer grade clipped to 0..4."""
    return (label * MAX_GRADE + 0.5).floor().clip(0, MAX_GRADE).cast(pl.Int32)


def build_training_set(
    store: Store,
    window: TimeWindow,
    *,
    policy: LabelPolicy = DEFAULT_POLICY,
    min_interactions: int = defaults.MIN_INTERACTIONS,
    progress: Callable[[str], None] | None = None,
) -> TrainingSet:
    """Read the window's interactions and the catalogs from ``store`` and build the training set.

    Raises :class:`InsufficientDataError` when the window holds no usable query group, and
    :class:`TooFewInteractionsError` (one) when it holds fewer than ``min_interactions`` interactions.
    """
    step = progress or (lambda _message: None)
    step("reading interactions")
    interactions = store.read(
        "interactions", since=window.since, until=window.until, columns=INTERACTION_COLUMNS
    )
    if interactions.height < min_interactions:
        raise TooFewInteractionsError(interactions.height, min_interactions, window)
    step("reading catalogs")
    recommendations = store.read("recommendations")
    assessments = store.read("assessments")
    step("building pairs and features")
    training = assemble(interactions, recommendations, assessments, policy=policy)
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
) -> TrainingSet:
    """The training set from frames already in memory (see the module docstring for the rules)."""
    catalog_groups = recommendations.select("recommendation_id", pl.col("assessment_id").alias(GROUP))
    joined = interactions.join(catalog_groups, on="recommendation_id", how="left")
    orphans = int(joined[GROUP].null_count())
    pairs = pair_labels(joined.filter(pl.col(GROUP).is_not_null()), policy)
    seen_groups = pairs.group_by(GROUP).agg(pl.col("last_seen").max().alias("event_time"))
    rows = (
        recommendations.join(seen_groups, left_on="assessment_id", right_on=GROUP, how="semi")
        .pipe(candidates, assessments)
        .join(pairs.drop("last_seen"), on=[GROUP, "recommendation_id"], how="left")
        .join(seen_groups, on=GROUP, how="left")
        .with_columns(pl.col("label").fill_null(0.0))
        .with_columns(grade_of(pl.col("label")).alias("grade"))
    )
    group_stats = rows.group_by(GROUP).agg(
        pl.len().alias("items"), pl.col("grade").n_unique().alias("grades")
    )
    too_small = group_stats.filter(pl.col("items") < 2)[GROUP]
    flat = group_stats.filter((pl.col("items") >= 2) & (pl.col("grades") < 2))[GROUP]
    kept = rows.filter(~pl.col(GROUP).is_in(too_small.implode()) & ~pl.col(GROUP).is_in(flat.implode()))
    featured = compute_features(kept).sort(GROUP, "recommendation_id")
    frame = featured.select(
        pl.col(GROUP),
        pl.col("recommendation_id"),
        pl.col("label"),
        pl.col("grade"),
        pl.col("event_time"),
        pl.col("position"),
        *FEATURE_NAMES,
    )
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
            "left_out": {"fewer_than_2_items": too_small.len(), "all_grades_equal": flat.len()},
        },
        "interactions": interactions.height,
        "orphan_interactions": orphans,
        "grade_counts": {str(g): int(n) for g, n in frame["grade"].value_counts().sort("grade").iter_rows()},
        "feature_coverage": coverage,
        "empty_feature_groups": empty_feature_groups(coverage),
        "data_fingerprint": fingerprint(frame),
    }
    return TrainingSet(frame, manifest)


def fingerprint(frame: pl.DataFrame) -> str:
    """sha256 over the frame's column names, types, null masks and values: equal data, equal print.

    Built from the values themselves (not a file encoding), so the same rows read from either
    store, in any chunking, give the same fingerprint.
    """
    digest = hashlib.sha256()
    for column in frame.get_columns():
        digest.update(f"{column.name}\x00{column.dtype}\x00".encode())
        digest.update(column.is_null().to_numpy().tobytes())
        if column.dtype == pl.String:
            digest.update((column.fill_null("").str.join("\x1f").item() or "").encode())
        else:
            digest.update(column.to_physical().fill_null(0).to_numpy().tobytes())
    return "sha256:" + digest.hexdigest()


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


def write_training_set(training: TrainingSet, out: Path) -> tuple[Path, Path]:
    """Write the Parquet file and ``manifest.json``; returns both paths.

    ``out`` ending in ``.parquet`` is the file itself, with ``<stem>.manifest.json`` beside it;
    any other ``out`` is a directory holding ``training_set.parquet`` and ``manifest.json``.
    Both are written under temporary names and renamed into place.
    """
    data_path, manifest_path = output_paths(out)
    try:
        data_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = f"cannot create {data_path.parent}: {exc.strerror or exc}"
        raise OutputPathError(out, reason=reason) from None
    manifest = {**training.manifest, "data_file": data_path.name}
    write_atomically(
        data_path, lambda tmp: training.frame.write_parquet(tmp, compression="zstd", statistics=True)
    )
    write_text_atomically(manifest_path, json.dumps(manifest, indent=2) + "\n")
    return data_path, manifest_path
