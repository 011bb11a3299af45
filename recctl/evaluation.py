"""Evaluating a model: NDCG@k of its order beside the confidence, random and ideal orders.

The grades are the data's own (logged feedback), or external judgments (:func:`read_judgments`:
editorial grades, or a simulator's truth) joined on ``recommendation_id``.

Each NDCG comes with a bootstrap 95% interval over the query groups
(:func:`recctl.metrics.bootstrap_interval`). A model's meta lists the groups it was trained and
validated on (:func:`recctl.provenance.training_groups_meta`): an evaluation says how many of the
data's groups the model learned from (:class:`GroupOverlap`), and can leave them out.
:func:`existing_model_metrics` scores an existing model on the split that
:func:`recctl.training.train_model` makes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from recctl import defaults
from recctl.errors import InsufficientDataError
from recctl.metrics import bootstrap_interval, ndcg, random_scores
from recctl.provenance import decode_query_ids
from recctl.training import (
    REPORT_K,
    check_gate_groups,
    confidence_scores,
    ndcg_at,
    refuse_constant_model,
    score,
    split_groups,
    subset,
    tree_splits,
)

if TYPE_CHECKING:
    import lightgbm
    import polars as pl

    from recctl.ltrdata import LtrData
    from recctl.training import Split, TrainOptions
    from recctl.training_data import TrainingData


@dataclass(frozen=True)
class OrderReport:
    """NDCG@k of one ordering with bootstrap 95% intervals: ``{"ndcg@10": (mean, low, high)}``."""

    values: dict[str, tuple[float, float, float]]

    def means(self) -> dict[str, float]:
        return {name: mean for name, (mean, _low, _high) in self.values.items()}


def evaluate_orders(
    data: LtrData,
    model_scores: npt.NDArray[np.float64],
    *,
    ks: tuple[int, ...] = defaults.EVALUATE_K,
    resamples: int = defaults.BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, OrderReport | None]:
    """The model, the confidence baseline, a random order and the ideal order, each NDCG@k with CIs."""
    orders: dict[str, npt.NDArray[np.float64] | None] = {
        "model": model_scores,
        "baseline": confidence_scores(data),
        "random": random_scores(len(data.grades), seed),
        "ideal": data.grades.astype(np.float64),
    }
    reports: dict[str, OrderReport | None] = {}
    for name, scores in orders.items():
        if scores is None:
            reports[name] = None
            continue
        values = {}
        for k in ks:
            report = ndcg(data.grades, scores, data.group_sizes, k)
            low, high = bootstrap_interval(report.per_group, resamples=resamples, seed=seed)
            values[f"ndcg@{k}"] = (report.mean, low, high)
        reports[name] = OrderReport(values)
    return reports


def groups_without_relevant(data: LtrData) -> int:
    return ndcg(data.grades, data.grades.astype(np.float64), data.group_sizes, 10).groups_without_relevant


@dataclass(frozen=True)
class Evaluation:
    """NDCG@k of a model on a data set, beside the confidence, random and ideal orders.

    ``orders`` maps ``model``, ``baseline`` (None when the data has no confidence_score),
    ``random`` and ``ideal`` to their :class:`OrderReport`. ``groups``, ``rows`` and
    ``groups_without_relevant`` count the groups evaluated; ``training_overlap`` is how many of the
    data's groups the model learned from (:func:`evaluation_data`), None when unknown.
    """

    model_path: Path
    model_version: str
    data: str
    groups: int
    groups_without_relevant: int
    rows: int
    training_overlap: dict[str, Any] | None
    orders: dict[str, OrderReport | None]
    judgments: dict[str, Any] | None = None
    """With external judgments, what matched (:meth:`Judgments.apply`); None: the data's grades."""

    def as_json(self) -> dict[str, Any]:
        """The evaluation as one JSON object: each order's means, and their intervals as [low, high]."""
        return {
            "status": "evaluated",
            "groups": self.groups,
            "groups_without_relevant": self.groups_without_relevant,
            "rows": self.rows,
            "training_overlap": self.training_overlap,
            "model_path": str(self.model_path),
            "model_version": self.model_version,
            "data": self.data,
            "grades": self.judgments or {"source": "data"},
            **{name: report.means() if report else None for name, report in self.orders.items()},
            "intervals": {
                name: {metric: [low, high] for metric, (_mean, low, high) in report.values.items()}
                if report
                else None
                for name, report in self.orders.items()
            },
        }


def evaluate(
    model_path: str | Path,
    training: TrainingData,
    *,
    ks: tuple[int, ...] = defaults.EVALUATE_K,
    resamples: int = defaults.BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    holdout_only: bool = False,
    judgments: Judgments | None = None,
) -> Evaluation:
    """Score the model at ``model_path`` on ``training``: NDCG@k (``ks``) of the model, the confidence
    order, a random order (``seed``) and the ideal order, each with a bootstrap 95% interval over
    ``resamples`` resamples of the groups.

    With ``holdout_only``, the groups the model was trained or validated on are left out (see
    :func:`evaluation_data`). With ``judgments``, the grades are those instead of the data's
    (:meth:`Judgments.apply` says how unjudged rows count). Raises :class:`ModelError` when the
    model is unusable or uses features ``training`` lacks.
    """
    from recctl.model import load_bundle

    model_path = Path(model_path)
    # A model trained with features left out scores just its own features of the data.
    bundle = load_bundle(model_path, known_features=training.data.feature_names)
    data = training.data.select_features(bundle.feature_names)
    judged, overlap = evaluation_data(data, bundle.meta, holdout_only=holdout_only)
    matched = None
    if judgments is not None:
        judged, matched = judgments.apply(judged)
    orders = evaluate_orders(judged, score(bundle.booster(), judged), ks=ks, resamples=resamples, seed=seed)
    return Evaluation(
        model_path=model_path,
        model_version=bundle.version,
        data=training.source,
        groups=judged.num_groups,
        groups_without_relevant=groups_without_relevant(judged),
        rows=judged.num_rows,
        training_overlap=overlap,
        orders=orders,
        judgments=matched,
    )


@dataclass(frozen=True)
class ModelComparison:
    """Two models scored on the same groups: per cut-off each one's NDCG and their difference
    (``a - b``) with a paired bootstrap 95% interval (the groups resampled together for both)."""

    models: tuple[tuple[Path, str], tuple[Path, str]]
    """``(path, version)`` of model A and of model B."""
    data: str
    groups: int
    rows: int
    training_overlap: tuple[dict[str, Any] | None, dict[str, Any] | None]
    differences: dict[str, tuple[float, float, float, float, float]]
    """``{"ndcg@10": (a, b, a - b, low, high)}``."""
    judgments: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        (path_a, version_a), (path_b, version_b) = self.models
        return {
            "status": "compared",
            "groups": self.groups,
            "rows": self.rows,
            "data": self.data,
            "grades": self.judgments or {"source": "data"},
            "a": {
                "model_path": str(path_a),
                "model_version": version_a,
                "training_overlap": self.training_overlap[0],
            },
            "b": {
                "model_path": str(path_b),
                "model_version": version_b,
                "training_overlap": self.training_overlap[1],
            },
            "ndcg": {
                metric: {"a": a, "b": b, "difference": difference, "interval": [low, high]}
                for metric, (a, b, difference, low, high) in self.differences.items()
            },
        }


def compare_models(
    model_a: str | Path,
    model_b: str | Path,
    training: TrainingData,
    *,
    ks: tuple[int, ...] = defaults.EVALUATE_K,
    resamples: int = defaults.BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    holdout_only: bool = False,
    judgments: Judgments | None = None,
) -> ModelComparison:
    """Score two models on the same groups of ``training`` and bootstrap their difference.

    The groups are those both may be judged on: with ``holdout_only``, every group either model
    was trained or validated on is left out. Each group's NDCG@k difference (A - B) is resampled
    by group (``resamples``, ``seed``), so the interval is of the paired difference: two identical
    models differ by exactly 0. ``judgments`` replace the data's grades as in :func:`evaluate`.
    """
    from recctl.model import load_bundle

    paths = (Path(model_a), Path(model_b))
    bundles = [load_bundle(path, known_features=training.data.feature_names) for path in paths]
    # Each model's overlap is counted on all of the data; then what either learned from is left out.
    overlaps = []
    for bundle in bundles:
        _, overlap = evaluation_data(training.data, bundle.meta, holdout_only=False)
        overlaps.append({**overlap, "left_out": holdout_only} if overlap is not None else None)
    judged = training.data
    for bundle in bundles:
        judged, _ = evaluation_data(judged, bundle.meta, holdout_only=holdout_only)
    matched = None
    if judgments is not None:
        judged, matched = judgments.apply(judged)
    scores = [score(bundle.booster(), judged.select_features(bundle.feature_names)) for bundle in bundles]
    differences = {}
    for k in ks:
        per_a, per_b = (
            ndcg(judged.grades, model_scores, judged.group_sizes, k).per_group for model_scores in scores
        )
        low, high = bootstrap_interval(per_a - per_b, resamples=resamples, seed=seed)
        differences[f"ndcg@{k}"] = (
            float(per_a.mean()),
            float(per_b.mean()),
            float((per_a - per_b).mean()),
            low,
            high,
        )
    return ModelComparison(
        models=((paths[0], bundles[0].version), (paths[1], bundles[1].version)),
        data=training.source,
        groups=judged.num_groups,
        rows=judged.num_rows,
        training_overlap=(overlaps[0], overlaps[1]),
        differences=differences,
        judgments=matched,
    )


@dataclass(frozen=True)
class Judgments:
    """External relevance judgments: one whole ``grade`` 0..4 per ``recommendation_id``.

    ``grades`` has the columns ``recommendation_id`` (String) and ``grade`` (Int32), one row per
    recommendation; ``source`` is where they were read from.
    """

    grades: pl.DataFrame
    source: str

    def apply(self, data: LtrData) -> tuple[LtrData, dict[str, Any]]:
        """``data`` with these grades, and what matched.

        A row whose recommendation has no judgment gets grade 0 (unjudged = not relevant, as in
        TREC-style pooling) and is counted; a group none of whose rows is judged says nothing about
        the model and is left out (counted). Returns the data and ``{"source", "judgments",
        "rows_judged", "rows_unjudged", "groups_left_out_unjudged"}``. Raises :class:`InputError`
        when the data have no recommendation ids, and :class:`InsufficientDataError` when no group
        has a judged row.
        """
        import polars as pl

        from recctl.errors import InputError

        if data.recommendation_ids is None:
            raise InputError(
                "these data have no recommendation_id column, so external grades cannot be matched to rows"
            )
        rows = pl.DataFrame({"recommendation_id": pl.Series(data.recommendation_ids, dtype=pl.String)})
        matched = rows.join(self.grades, on="recommendation_id", how="left", maintain_order="left")["grade"]
        judged_rows = matched.is_not_null().to_numpy()
        judged_groups = np.add.reduceat(judged_rows.astype(np.int64), _starts(data)) > 0
        if not judged_groups.any():
            raise InsufficientDataError(
                f"none of the {data.num_groups:,} groups has a recommendation judged in {self.source}"
            )
        regraded = data.with_grades(matched.fill_null(0).cast(pl.Int32).to_numpy()).subset(judged_groups)
        kept_rows = np.repeat(judged_groups, data.group_sizes)
        return regraded, {
            "source": self.source,
            "judgments": self.grades.height,
            "rows_judged": int(judged_rows[kept_rows].sum()),
            "rows_unjudged": int((~judged_rows[kept_rows]).sum()),
            "groups_left_out_unjudged": int((~judged_groups).sum()),
        }


def _starts(data: LtrData) -> npt.NDArray[np.int64]:
    return np.concatenate([[0], np.cumsum(data.group_sizes)[:-1]]).astype(np.int64)


def read_judgments(path: str | Path) -> Judgments:
    """Relevance judgments from any file ``recctl ingest`` reads (NDJSON, a JSON array, CSV, Parquet;
    gzip too; the format recognised as ingest recognises it): ``recommendation_id`` (text, or an
    integer) and ``grade`` (a whole number 0..4); other columns are ignored, and a recommendation
    judged twice with the same grade counts once.

    Raises :class:`InputError` (one line) for an unreadable file, a missing column, a grade that is
    not a whole number 0..4, an empty id, or a recommendation judged with two grades.
    """
    import polars as pl

    from recctl.errors import InputError
    from recctl.formats import read_records
    from recctl.records.scan import checked_objects

    location = Path(path)
    if not location.is_file():
        raise InputError(f"grades file {location} does not exist")
    fields = ("recommendation_id", "grade")
    pieces = [pl.DataFrame(schema=dict.fromkeys(fields, pl.String))]
    try:
        for chunk in read_records(str(location)):
            rows, texts = checked_objects(chunk.rows, fields)
            broken = rows.filter(pl.col("error").is_not_null())
            if broken.height:
                where = f"{chunk.position_kind} {broken['input_position'][0]}"
                raise InputError(f"{where}: {broken['error'][0]}")
            pieces.append(texts.rename({f"__top__{name}": name for name in fields}))
    except InputError as exc:
        raise InputError(f"cannot read grades file {location}: {exc.message()}") from None
    return Judgments(_checked_grades(pl.concat(pieces), location), str(location))


def _checked_grades(table: Any, location: Path) -> Any:
    """``recommendation_id`` and ``grade`` (their values' text) as checked judgments."""
    import polars as pl

    from recctl.errors import InputError

    where = f"grades file {location}"
    absent = [name for name in ("recommendation_id", "grade") if table[name].null_count() == table.height]
    if table.height == 0 or absent:
        detail = "has no rows" if table.height == 0 else f"has no {' or '.join(map(repr, absent))} column"
        raise InputError(f"{where} {detail}; it needs recommendation_id and grade")
    ids, grade = table["recommendation_id"], table["grade"]
    numbers = grade.cast(pl.Float64, strict=False)
    bad = numbers.is_null() | numbers.is_nan() | (numbers != numbers.floor()) | (numbers < 0) | (numbers > 4)
    bad = bad | ids.is_null() | (ids.str.strip_chars() == "")
    if bad.any():
        row = int(bad.arg_true()[0])
        raise InputError(
            f"{where}, row {row + 1}: needs a recommendation_id and a whole grade 0..4, got "
            f"recommendation_id={ids[row]!r}, grade={grade[row]!r}"
        )
    grades = pl.DataFrame({"recommendation_id": ids, "grade": numbers.cast(pl.Int32)}).unique()
    conflicting = grades.filter(pl.col("recommendation_id").is_duplicated())
    if conflicting.height:
        first = conflicting.sort("recommendation_id", "grade")
        example = first["recommendation_id"][0]
        values = first.filter(pl.col("recommendation_id") == example)["grade"].to_list()
        raise InputError(f"{where}: recommendation {example!r} is judged twice, with grades {values}")
    return grades.sort("recommendation_id")


@dataclass(frozen=True)
class GroupOverlap:
    """Which groups of a data set a model learned from: one flag per group of the data."""

    trained: npt.NDArray[np.bool_]
    validated: npt.NDArray[np.bool_]

    @property
    def seen(self) -> npt.NDArray[np.bool_]:
        """Trained or validated on: early stopping chose the model on its validation groups."""
        return self.trained | self.validated

    def counts(self) -> dict[str, int]:
        return {
            "groups": int(self.seen.sum()),
            "train": int(self.trained.sum()),
            "valid": int((self.validated & ~self.trained).sum()),
        }


def training_overlap(meta: dict[str, Any], data: LtrData) -> GroupOverlap | None:
    """The groups of ``data`` that the model of ``meta`` was trained or validated on: by query id,
    and by assessment (a served list of an assessment the model learned from counts as seen,
    when both the meta and ``data`` name the groups' assessments).

    None when the meta does not list its groups (a model from an older recctl, or data without
    query ids) or ``data`` has no query ids. Raises :class:`ModelError` when the list is damaged.
    """
    import polars as pl

    recorded = meta.get("training_groups")
    ids = recorded.get("ids") if isinstance(recorded, dict) else None
    if not isinstance(ids, dict) or data.query_ids is None:
        return None
    query_ids = pl.Series(data.query_ids).cast(pl.String)
    keys = pl.Series(data.split_keys).cast(pl.String) if data.split_keys is not None else None
    listed = recorded.get("assessments") if isinstance(recorded, dict) else None
    assessments: dict[str, Any] = listed if isinstance(listed, dict) else {}
    flags = {}
    for part in ("train", "valid"):
        flags[part] = _listed(ids, part, query_ids, "groups")
        if keys is not None and isinstance(assessments.get(part), str):
            flags[part] |= _listed(assessments, part, keys, "assessments")
    return GroupOverlap(trained=flags["train"], validated=flags["valid"])


def _listed(lists: dict[str, Any], part: str, values: pl.Series, what: str) -> npt.NDArray[np.bool_]:
    """Which of ``values`` the meta's encoded list ``lists[part]`` holds (none without a list)."""
    from recctl.errors import ModelError

    try:
        known = decode_query_ids(lists[part]) if isinstance(lists.get(part), str) else None
    except ValueError as exc:
        raise ModelError(f"the model meta's list of {part} {what} is damaged: {exc}") from None
    if known is None:
        return np.zeros(len(values), dtype=bool)
    return np.asarray(values.is_in(known.implode()).to_numpy(), dtype=bool)


def evaluation_data(
    data: LtrData, meta: dict[str, Any], *, holdout_only: bool
) -> tuple[LtrData, dict[str, Any] | None]:
    """The groups to evaluate a model on, and how many of ``data``'s groups it learned from.

    Returns ``(data, overlap)`` with ``overlap = {"groups": n, "train": n, "valid": n,
    "left_out": bool}`` (``valid`` counts groups validated on and not trained on), or None when
    it cannot be known (see :func:`training_overlap`). With ``holdout_only`` those groups are
    left out: then an unknown overlap is an error, and no group left is
    :class:`InsufficientDataError`.
    """
    from recctl.errors import InputError, ModelError

    overlap = training_overlap(meta, data)
    if overlap is None:
        if holdout_only and data.query_ids is None:
            raise InputError(
                "these data have no query ids, so the model's training groups cannot be left out"
            )
        if holdout_only:
            raise ModelError(
                "the model's meta does not list the groups it was trained on (a model from an older "
                "recctl?): retrain it to leave them out"
            )
        return data, None
    counts: dict[str, Any] = {**overlap.counts(), "left_out": holdout_only}
    if not holdout_only or counts["groups"] == 0:
        return data, counts
    if counts["groups"] == data.num_groups:
        raise InsufficientDataError(
            f"all {data.num_groups:,} groups were in the model's training data (trained or validated "
            "on): nothing is left to evaluate; choose a later window"
        )
    return subset(data, ~overlap.seen), counts


def existing_model_metrics(
    booster: lightgbm.Booster, data: LtrData, options: TrainOptions
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]] | None, Split]:
    """An existing model's NDCG@5/@10 on the same train/valid split as
    :func:`recctl.training.train_model` makes.

    With ``options.gated``, too few validation groups or a model without a split is
    :class:`InsufficientDataError`, as in :func:`recctl.training.train_model`.
    """
    split: Split = options.split or ("time" if data.event_time is not None else "group-random")
    train_mask, valid_mask = split_groups(data, options.validation_split, split, options.seed or 0)
    if options.gated:
        check_gate_groups(int(valid_mask.sum()), options.min_valid_groups)
        refuse_constant_model(tree_splits(booster), "the model")
    metrics: dict[str, dict[str, float]] = {}
    baseline: dict[str, dict[str, float]] = {}
    for name, mask in (("train", train_mask), ("valid", valid_mask)):
        if not mask.any():
            continue
        part = subset(data, mask)
        metrics[name] = ndcg_at(part, score(booster, part), REPORT_K)
        confidence = confidence_scores(part)
        if confidence is not None:
            baseline[name] = ndcg_at(part, confidence, REPORT_K)
    return metrics, baseline or None, split
