"""Training and evaluating LightGBM LambdaRank models.

The split is by query group, never by row: ``time`` validates on the newest groups (by the
group's ``event_time``), ``group-random`` on a seeded random choice of groups. Early stopping
watches validation NDCG@10. Every NDCG reported here comes from :mod:`recctl.metrics`, and the
confidence-score baseline is scored on exactly the same groups as the model.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from recctl import defaults
from recctl.errors import InsufficientDataError, RecctlError
from recctl.labels import DEFAULT_POLICY, LabelPolicy
from recctl.ltrdata import LtrData
from recctl.metrics import bootstrap_interval, ndcg, random_scores

if TYPE_CHECKING:
    import lightgbm

    from recctl.dataset import TimeWindow
    from recctl.model import ModelBundle
    from recctl.stores.base import Store

Split = Literal["time", "group-random"]
REPORT_K = (5, 10)
SMALL_DATA_ROWS = 50_000

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10, 5],  # the first one drives early stopping
    "learning_rate": 0.05,
    "num_leaves": 15,  # small trees: recommendation lists are short and feedback is sparse
    "min_data_in_leaf": 50,
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}
"""recctl's defaults; :attr:`TrainOptions.params` overrides any of them. No ``seed`` is passed
unless one is given, so LightGBM's own fixed default seeds apply (as in its command-line tool)."""


@dataclass(frozen=True)
class TrainOptions:
    """How to train (the defaults are the original training script's).

    ``split`` is ``"time"`` (the newest groups validate) or ``"group-random"`` (seeded), by default
    ``"time"`` when the data has event times; ``params`` are LightGBM parameters over
    :data:`DEFAULT_PARAMS`.
    """

    num_boost_round: int = defaults.NUM_BOOST_ROUND
    early_stopping_rounds: int = defaults.EARLY_STOPPING_ROUNDS
    validation_split: float = defaults.VALIDATION_SPLIT
    split: Split | None = None
    seed: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    gated: bool = False
    """A quality gate will judge the model: then too few validation groups, or a model without a
    single split, is :class:`InsufficientDataError`, never a model to judge."""
    min_valid_groups: int = defaults.MIN_VALID_GROUPS


@dataclass
class TrainResult:
    """A trained booster with the figures of the report."""

    booster: lightgbm.Booster
    params: dict[str, Any]
    best_iteration: int
    split: Split
    train_groups: int
    valid_groups: int
    metrics: dict[str, dict[str, float]]
    baseline: dict[str, dict[str, float]] | None
    top_features: list[tuple[str, float]]
    splits: int = 0
    """Splits in the trees up to ``best_iteration``; 0 = a constant model that learned nothing."""
    training_groups: dict[str, Any] = field(default_factory=dict)
    """The groups it was trained and validated on, as the meta records them
    (:func:`training_groups_meta`)."""

    def model_text(self) -> str:
        return str(self.booster.model_to_string(num_iteration=self.best_iteration))


def parse_param(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (key, value) with the value read as int, float, bool, a list or text."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"a parameter is KEY=VALUE, got {text!r}")
    return key, _param_value(raw.strip())


def unknown_params(names: Iterable[str]) -> dict[str, str | None]:
    """The names LightGBM does not know as a parameter or alias, each with its likely meaning.

    ``{"num_leave": "num_leaves"}``; the value is None when no known name is close. LightGBM
    itself is asked (:func:`recctl.native.param_aliases`), so its aliases count as known.
    """
    import difflib

    from recctl.native import param_aliases

    canonical = {alias: name for name, aliases in param_aliases().items() for alias in (name, *aliases)}
    unknown = {}
    for name in names:
        if name not in canonical:
            close = difflib.get_close_matches(name, list(canonical), n=1, cutoff=0.75)
            unknown[name] = canonical[close[0]] if close else None
    return unknown


def _param_value(raw: str) -> Any:
    if "," in raw:
        return [_param_value(part.strip()) for part in raw.split(",") if part.strip()]
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def group_offsets(group_sizes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return np.concatenate([[0], np.cumsum(group_sizes)]).astype(np.int64)


def validation_group_count(groups: int, validation_split: float) -> int:
    """How many of ``groups`` validate: the share rounded, at least 1 and at most all but one."""
    if validation_split <= 0:
        return 0
    return min(max(round(groups * validation_split), 1), groups - 1)


class TooFewValidationGroupsError(InsufficientDataError):
    """A quality gate would be judged on fewer validation groups than ``min_valid_groups``.

    ``message(flag)`` names ``min_valid_groups`` and ``validation_split`` as ``flag`` spells them
    (the command line: its flags); ``str()`` says them in the library's words.
    """

    def __init__(self, valid_groups: int, min_valid_groups: int) -> None:
        self.valid_groups = valid_groups
        self.min_valid_groups = min_valid_groups
        super().__init__(self.message())

    def message(self, flag: Callable[[str], str] | None = None) -> str:
        minimum = f" ({flag('min_valid_groups')})" if flag else ""
        share = flag("validation_split") if flag else "validation split"
        return (
            f"the quality gates would be judged on {self.valid_groups} validation group(s); at least "
            f"{self.min_valid_groups} are needed{minimum}: more data or a larger {share}"
        )


class TimeSplitError(RecctlError):
    """The time split was asked for, but the data has no ``event_time`` column.

    ``message(flag)`` names the ``split`` argument as ``flag`` spells it.
    """

    def __init__(self) -> None:
        super().__init__(self.message())

    def message(self, flag: Callable[[str], str] | None = None) -> str:
        if flag is None:
            return "the time split needs an event_time column; use the group-random split"
        return f"{flag('split')} time needs an event_time column; use {flag('split')} group-random"


def check_gate_groups(valid_groups: int, min_valid_groups: int) -> None:
    """:class:`TooFewValidationGroupsError` when a gate would be judged on fewer than the minimum
    groups: NDCG over a handful of groups is noise, and a gate must not pass on it."""
    if valid_groups < min_valid_groups:
        raise TooFewValidationGroupsError(valid_groups, min_valid_groups)


def tree_splits(booster: lightgbm.Booster, iteration: int | None = None) -> int:
    """Number of splits in the booster's trees (up to ``iteration``); 0 for a constant model."""
    counts = booster.feature_importance(importance_type="split", iteration=iteration)
    return int(np.asarray(counts).sum())


def _refuse_constant_model(splits: int, what: str) -> None:
    if splits == 0:
        raise InsufficientDataError(
            f"{what} has no split (every tree is a single leaf, all gains 0): the data taught it "
            "nothing, so no quality gate can pass it"
        )


def split_groups(
    data: LtrData, validation_split: float, split: Split, seed: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Boolean masks over groups: (train, valid). Whole groups only, never rows."""
    groups = len(data.group_sizes)
    valid_count = validation_group_count(groups, validation_split)
    valid = np.zeros(groups, dtype=bool)
    if valid_count == 0:
        return ~valid, valid
    if split == "time":
        if data.event_time is None:
            raise TimeSplitError()
        starts = group_offsets(data.group_sizes)[:-1]
        newest = data.event_time[starts].astype("datetime64[ms]").astype(np.int64)
        ids = data.query_ids if data.query_ids is not None else np.arange(groups)
        order = np.lexsort((ids.astype(str), newest))  # oldest first, ties by query id
        valid[order[groups - valid_count :]] = True
    else:
        chosen = np.random.default_rng(seed).choice(groups, size=valid_count, replace=False)
        valid[chosen] = True
    return ~valid, valid


def subset(data: LtrData, group_mask: npt.NDArray[np.bool_]) -> LtrData:
    """The groups of ``data`` selected by ``group_mask``, in their original order (no copy if all)."""
    if group_mask.all():
        return data
    row_mask = np.repeat(group_mask, data.group_sizes)
    return LtrData(
        features=data.features[row_mask],
        feature_names=data.feature_names,
        grades=data.grades[row_mask],
        group_sizes=data.group_sizes[group_mask],
        query_ids=data.query_ids[group_mask] if data.query_ids is not None else None,
        confidence_score=data.confidence_score[row_mask] if data.confidence_score is not None else None,
        event_time=data.event_time[row_mask] if data.event_time is not None else None,
        source=data.source,
    )


def ndcg_at(data: LtrData, scores: npt.NDArray[np.float64], ks: tuple[int, ...]) -> dict[str, float]:
    return {f"ndcg@{k}": ndcg(data.grades, scores, data.group_sizes, k).mean for k in ks}


def confidence_scores(data: LtrData) -> npt.NDArray[np.float64] | None:
    """The old order's scores: confidence_score, missing values last."""
    if data.confidence_score is None:
        return None
    return np.nan_to_num(data.confidence_score.astype(np.float64), nan=-np.inf)


def train_model(data: LtrData, options: TrainOptions) -> TrainResult:
    """Train a LambdaRank booster on ``data`` with a group split and early stopping.

    Raises :class:`InsufficientDataError` when there are too few groups to split; with
    ``options.gated``, also when the validation part would be smaller than
    ``options.min_valid_groups`` (before training) or the trained model has no split.
    """
    import lightgbm

    split: Split = options.split or ("time" if data.event_time is not None else "group-random")
    groups = len(data.group_sizes)
    needed = 2 if options.validation_split > 0 else 1
    if groups < needed:
        raise InsufficientDataError(
            f"{groups} usable query group(s); training with a validation split needs at least {needed}"
        )
    if options.gated:
        check_gate_groups(validation_group_count(groups, options.validation_split), options.min_valid_groups)
    train_mask, valid_mask = split_groups(data, options.validation_split, split, options.seed or 0)
    train, valid = subset(data, train_mask), subset(data, valid_mask)
    params = {**DEFAULT_PARAMS}
    params["num_threads"] = 1 if data.features.shape[0] < SMALL_DATA_ROWS else 0
    if options.seed is not None:
        params["seed"] = options.seed
    params.update(options.params)
    train_set = lightgbm.Dataset(
        train.features,
        label=train.grades,
        group=train.group_sizes,
        feature_name=data.feature_names,
        free_raw_data=False,
    )
    valid_sets = []
    callbacks: list[Callable[..., Any]] = []
    if len(valid.group_sizes) > 0:
        valid_sets.append(
            lightgbm.Dataset(valid.features, label=valid.grades, group=valid.group_sizes, reference=train_set)
        )
        if options.early_stopping_rounds > 0:
            callbacks.append(
                lightgbm.early_stopping(options.early_stopping_rounds, first_metric_only=True, verbose=False)
            )
    try:
        booster = lightgbm.train(
            params,
            train_set,
            num_boost_round=options.num_boost_round,
            valid_sets=valid_sets,
            callbacks=callbacks,
            keep_training_booster=True,  # keeps its scores of the training rows (see _scores_at)
        )
    except lightgbm.basic.LightGBMError as exc:
        raise RecctlError(f"LightGBM refused the training run: {str(exc).strip().splitlines()[0]}") from None
    best = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
    splits = tree_splits(booster, best)
    if options.gated:
        _refuse_constant_model(splits, "the trained model")
    metrics = {"train": ndcg_at(train, _scores_at(booster, best, train, data_index=0), REPORT_K)}
    baseline: dict[str, dict[str, float]] | None = None
    train_confidence = confidence_scores(train)
    if train_confidence is not None:
        baseline = {"train": ndcg_at(train, train_confidence, REPORT_K)}
    if len(valid.group_sizes) > 0:
        metrics["valid"] = ndcg_at(valid, _scores_at(booster, best, valid, data_index=1), REPORT_K)
        valid_confidence = confidence_scores(valid)
        if baseline is not None and valid_confidence is not None:
            baseline["valid"] = ndcg_at(valid, valid_confidence, REPORT_K)
    gains = booster.feature_importance(importance_type="gain", iteration=best)
    ranked = sorted(zip(data.feature_names, gains.tolist(), strict=True), key=lambda item: -item[1])
    return TrainResult(
        booster=booster,
        params=params,
        best_iteration=best,
        split=split,
        train_groups=len(train.group_sizes),
        valid_groups=len(valid.group_sizes),
        metrics=metrics,
        baseline=baseline,
        top_features=[(name, round(gain, 4)) for name, gain in ranked[:10]],
        splits=splits,
        training_groups=training_groups_meta(train, valid),
    )


def _scores_at(
    booster: lightgbm.Booster, iteration: int, data: LtrData, *, data_index: int
) -> npt.NDArray[np.float64]:
    """The booster's scores of ``data`` at ``iteration``.

    When training stopped at that iteration, LightGBM already holds the scores of its training
    (``data_index`` 0) and validation (1) rows: reading them back costs nothing, where predicting
    500k rows again takes seconds. After early stopping the held scores are those of the last
    round, so the rows are scored again at the best one.
    """
    if iteration != booster.current_iteration():
        return score(booster, data, iteration)
    held: list[npt.NDArray[np.float64]] = []

    def capture(predictions: npt.NDArray[np.float64], _dataset: Any) -> tuple[str, float, bool]:
        held.append(np.asarray(predictions, dtype=np.float64))
        return "held", 0.0, True

    if data_index == 0:
        booster.eval_train(feval=capture)
    else:
        booster.eval_valid(feval=capture)
    return held[0] if held and len(held[0]) == len(data.grades) else score(booster, data, iteration)


@dataclass(frozen=True)
class GateFailure:
    """A quality gate a model failed.

    ``gate`` is the argument that set it (``min_ndcg`` or ``fail_below_baseline`` of
    :func:`gate_failures`); ``observed`` is the model's NDCG@10 on ``split_name`` (None when not
    measured) and ``reference`` the minimum or the confidence baseline's NDCG@10 (None when the data
    has no confidence_score). ``message(flag)`` names the gate as ``flag`` spells it (the command
    line: its flag); ``str()`` says it in the library's words.
    """

    gate: Literal["min_ndcg", "fail_below_baseline"]
    split_name: str
    observed: float | None
    reference: float | None

    def __str__(self) -> str:
        return self.message()

    def message(self, flag: Callable[[str], str] | None = None) -> str:
        observed = f"{self.split_name} NDCG@10 {_fmt(self.observed)}"
        if self.gate == "min_ndcg":
            return f"{observed} is below {flag(self.gate) if flag else 'the minimum'} {self.reference:.4f}"
        if self.reference is None:
            return f"{flag(self.gate) if flag else 'the baseline gate'} needs confidence_score in the data"
        return f"{observed} is below the confidence baseline {self.reference:.4f}"


def gate_failures(
    result_metrics: dict[str, dict[str, float]],
    baseline: dict[str, dict[str, float]] | None,
    *,
    min_ndcg: float | None,
    fail_below_baseline: bool,
    split_name: str = "valid",
) -> list[GateFailure]:
    """The quality gates that fail (empty when they pass): validation NDCG@10 below ``min_ndcg``,
    and with ``fail_below_baseline``, below the confidence baseline's (or no baseline at all)."""
    failures = []
    observed = result_metrics.get(split_name, {}).get("ndcg@10")
    if min_ndcg is not None and (observed is None or observed < min_ndcg):
        failures.append(GateFailure("min_ndcg", split_name, observed, min_ndcg))
    if fail_below_baseline:
        reference = (baseline or {}).get(split_name, {}).get("ndcg@10")
        if reference is None or observed is None or observed < reference:
            failures.append(GateFailure("fail_below_baseline", split_name, observed, reference))
    return failures


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4f}"


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
) -> Evaluation:
    """Score the model at ``model_path`` on ``training``: NDCG@k (``ks``) of the model, the confidence
    order, a random order (``seed``) and the ideal order, each with a bootstrap 95% interval over
    ``resamples`` resamples of the groups.

    With ``holdout_only``, the groups the model was trained or validated on are left out (see
    :func:`evaluation_data`). Raises :class:`ModelError` when the model is unusable or was trained
    on other features than ``training``'s.
    """
    from recctl.model import load_bundle

    model_path = Path(model_path)
    bundle = load_bundle(model_path, expected_features=training.data.feature_names)
    judged, overlap = evaluation_data(training.data, bundle.meta, holdout_only=holdout_only)
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
    )


def library_versions() -> dict[str, str]:
    import lightgbm
    import polars

    from recctl._version import __version__

    return {
        "recctl": __version__,
        "lightgbm": lightgbm.__version__,
        "numpy": np.__version__,
        "polars": polars.__version__,
        "python": platform.python_version(),
    }


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class TrainingData:
    """What train/evaluate work on, with where it came from (for the report and the meta file)."""

    data: LtrData
    source: str
    retrieved: int
    manifest: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def feature_coverage(self) -> dict[str, dict[str, Any]]:
        """Per feature group: features, share of values present, features with none
        (:func:`recctl.features.feature_coverage`)."""
        from recctl.features import feature_coverage

        rows = max(self.data.num_rows, 1)
        present = np.count_nonzero(~np.isnan(self.data.features), axis=0) / rows
        return feature_coverage(dict(zip(self.data.feature_names, present.tolist(), strict=True)))

    @property
    def empty_feature_groups(self) -> list[str]:
        from recctl.features import empty_feature_groups

        return empty_feature_groups(self.feature_coverage)


def data_from_store(
    store: Store,
    window: TimeWindow,
    *,
    policy: LabelPolicy = DEFAULT_POLICY,
    min_interactions: int = defaults.MIN_INTERACTIONS,
    progress: Callable[[str], None] | None = None,
) -> TrainingData:
    """The training set of ``window`` built from the store, in memory, by the same code as an export
    (:func:`recctl.dataset.build_training_set`, which says what ``policy`` and ``min_interactions``
    do); ``progress`` is called with a short message at each step."""
    from recctl.dataset import build_training_set
    from recctl.features import FEATURE_NAMES
    from recctl.ltrdata import ltr_from_frame

    training = build_training_set(
        store, window, policy=policy, min_interactions=min_interactions, progress=progress
    )
    data = ltr_from_frame(training.frame, feature_cols=list(FEATURE_NAMES), source=store.description)
    return TrainingData(
        data, store.description, int(training.manifest["pairs_before_left_out"]), training.manifest
    )


def data_from_path(
    path: str | Path,
    *,
    label_col: str = "grade",
    group_col: str = "query_id",
    feature_cols: list[str] | None = None,
    num_features: int | None = None,
) -> TrainingData:
    """A learning-to-rank set read from a file or directory: a recctl export, Parquet, or LibSVM
    (:func:`recctl.ltrdata.load_ltr` says what the arguments do)."""
    from recctl.ltrdata import load_ltr

    data = load_ltr(
        path, label_col=label_col, group_col=group_col, feature_cols=feature_cols, num_features=num_features
    )
    return TrainingData(data, str(path), len(data.grades))


def model_meta(
    result: TrainResult,
    training: TrainingData,
    *,
    model_text: str,
    status: str,
    gate_failures: list[str],
) -> dict[str, Any]:
    """The ``.meta.json`` of a trained model."""
    from recctl.features import FEATURE_NAMES, FEATURE_SET_VERSION
    from recctl.model import model_version

    manifest = training.manifest
    uses_recctl_features = training.data.feature_names == list(FEATURE_NAMES)
    return {
        "model_version": model_version(model_text),
        "status": status,
        "gate_failures": gate_failures,
        "feature_names": training.data.feature_names,
        "feature_set_version": FEATURE_SET_VERSION if uses_recctl_features else None,
        "label_policy_hash": manifest.get("label_policy_hash"),
        "params": result.params,
        "best_iteration": result.best_iteration,
        "splits": result.splits,
        "split": result.split,
        "groups": {"train": result.train_groups, "valid": result.valid_groups},
        "examples": len(training.data.grades),
        "metrics": result.metrics,
        "baseline": result.baseline,
        "top_features": [list(item) for item in result.top_features],
        "training_groups": result.training_groups,
        "data_source": training.source,
        "feature_coverage": training.feature_coverage,
        "empty_feature_groups": training.empty_feature_groups,
        "data_fingerprint": manifest.get("data_fingerprint") or _array_fingerprint(training.data),
        "time_window": manifest.get("time_window"),
        "library_versions": library_versions(),
        "created_at": utc_now(),
    }


def save_model(
    result: TrainResult,
    training: TrainingData,
    model_path: str | Path,
    *,
    gate_failures: Sequence[str] = (),
) -> ModelBundle:
    """Write a trained model and its meta to ``model_path``, or beside it as ``*.rejected.txt``
    when it failed quality gates (``gate_failures``, as the meta records them); returns the bundle
    written. The model at ``model_path`` is then left as it was."""
    from recctl.model import rejected_path_for, save_bundle

    model_path = Path(model_path)
    model_text = result.model_text()
    status = "gate_failed" if gate_failures else "trained"
    failures = list(gate_failures)
    meta = model_meta(result, training, model_text=model_text, status=status, gate_failures=failures)
    return save_bundle(model_text, meta, rejected_path_for(model_path) if gate_failures else model_path)


QUERY_ID_ENCODING = 'zlib+base64 of NDJSON {"id": query_id}, sorted'


def encode_query_ids(ids: npt.NDArray[Any]) -> str:
    """Query ids as compact text for the meta (sorted, so equal sets give equal text)."""
    import base64
    import zlib

    import polars as pl

    text = pl.DataFrame({"id": pl.Series(ids).cast(pl.String)}).sort("id").write_ndjson()
    return base64.b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")


def decode_query_ids(text: str) -> Any:
    """The ids of :func:`encode_query_ids` as a polars String Series; ValueError when not such text."""
    import base64
    import binascii
    import io
    import zlib

    import polars as pl

    try:
        raw = zlib.decompress(base64.b64decode(text.encode("ascii"), validate=True))
        if not raw.strip():
            return pl.Series("id", [], dtype=pl.String)
        return pl.read_ndjson(io.BytesIO(raw), schema={"id": pl.String})["id"]
    except (binascii.Error, zlib.error, UnicodeError, pl.exceptions.PolarsError) as exc:
        raise ValueError(f"not a list of query ids ({exc})") from None


def training_groups_meta(train: LtrData, valid: LtrData) -> dict[str, Any]:
    """What the meta records of the groups a model learned from, for ``evaluate`` to find them again.

    ``train``/``valid``: group counts; ``event_time``: the ``event_time`` (newest interaction) of
    the oldest and of the newest group; ``fingerprint``: sha256 of all their ids, sorted; ``ids``:
    each part's ids (:func:`encode_query_ids`). Without query ids (LibSVM with a ``.query``
    file) the last two are None.
    """
    import hashlib

    recorded: dict[str, Any] = {"train": train.num_groups, "valid": valid.num_groups, "event_time": None}
    times = [part.event_time for part in (train, valid) if part.event_time is not None and part.num_rows]
    if times:
        recorded["event_time"] = {
            "first": f"{min(t.min() for t in times).astype('datetime64[ms]')}Z",
            "last": f"{max(t.max() for t in times).astype('datetime64[ms]')}Z",
        }
    if train.query_ids is None or valid.query_ids is None:
        return {**recorded, "fingerprint": None, "ids": None}
    every_id = encode_query_ids(np.concatenate([train.query_ids, valid.query_ids]))
    return {
        **recorded,
        "fingerprint": "sha256:" + hashlib.sha256(every_id.encode()).hexdigest(),
        "ids_encoding": QUERY_ID_ENCODING,
        "ids": {"train": encode_query_ids(train.query_ids), "valid": encode_query_ids(valid.query_ids)},
    }


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
    """The groups of ``data`` that the model of ``meta`` was trained or validated on, by query id.

    None when the meta does not list its groups (a model from an older recctl, or data without
    query ids) or ``data`` has no query ids. Raises :class:`ModelError` when the list is damaged.
    """
    import polars as pl

    from recctl.errors import ModelError

    recorded = meta.get("training_groups")
    ids = recorded.get("ids") if isinstance(recorded, dict) else None
    if not isinstance(ids, dict) or data.query_ids is None:
        return None
    query_ids = pl.Series(data.query_ids).cast(pl.String)
    flags = {}
    for part in ("train", "valid"):
        try:
            known = decode_query_ids(ids[part]) if isinstance(ids.get(part), str) else None
        except ValueError as exc:
            raise ModelError(f"the model meta's list of {part} groups is damaged: {exc}") from None
        flags[part] = (
            query_ids.is_in(known.implode()).to_numpy()
            if known is not None
            else np.zeros(len(query_ids), dtype=bool)
        )
    return GroupOverlap(trained=flags["train"], validated=flags["valid"])


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


def _array_fingerprint(data: LtrData) -> str:
    import hashlib

    digest = hashlib.sha256()
    for array in (data.features, data.grades, data.group_sizes):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update("\x1f".join(data.feature_names).encode())
    return "sha256:" + digest.hexdigest()


def score(booster: lightgbm.Booster, data: LtrData, iteration: int | None = None) -> npt.NDArray[np.float64]:
    """The booster's scores for every row of ``data`` (at ``iteration``, default: the model's best)."""
    return np.asarray(booster.predict(data.features, num_iteration=iteration), dtype=np.float64)


def existing_model_metrics(
    booster: lightgbm.Booster, data: LtrData, options: TrainOptions
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]] | None, Split]:
    """An existing model's NDCG@5/@10 on the same train/valid split as :func:`train_model` makes.

    With ``options.gated``, too few validation groups or a model without a split is
    :class:`InsufficientDataError`, as in :func:`train_model`.
    """
    split: Split = options.split or ("time" if data.event_time is not None else "group-random")
    if options.gated:
        check_gate_groups(
            validation_group_count(len(data.group_sizes), options.validation_split), options.min_valid_groups
        )
        _refuse_constant_model(tree_splits(booster), "the model")
    train_mask, valid_mask = split_groups(data, options.validation_split, split, options.seed or 0)
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
