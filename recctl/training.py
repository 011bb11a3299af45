"""Training LightGBM LambdaRank models: options, LightGBM parameters, the group split, quality gates.

The split is by query group, never by row, and keeps the groups of one assessment (its served
lists) together: ``time`` validates on the newest assessments (by their newest group's
``event_time``), ``group-random`` on a seeded random choice of them. The position correction
(``--debias``) is planned by :mod:`recctl.debias`. Early stopping
watches validation NDCG@10. Every NDCG reported here comes from :mod:`recctl.metrics`, and the
confidence-score baseline is scored on exactly the same groups as the model.

Evaluating a model on other data is :mod:`recctl.evaluation`; the data trained on,
:mod:`recctl.training_data`; what a saved model records of its training, :mod:`recctl.provenance`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from recctl import defaults
from recctl.debias import Requested, ips_weights, plan_debias
from recctl.errors import InputError, InsufficientDataError, RecctlError, first_line
from recctl.ltrdata import LtrData
from recctl.metrics import ndcg
from recctl.provenance import training_groups_meta

if TYPE_CHECKING:
    import lightgbm

    from recctl.bias import BiasCurve

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
    debias: Requested = "auto"
    """The position correction (:mod:`recctl.debias`): ``auto``, ``none``, ``position`` or ``ips``."""
    bias_curve: BiasCurve | None = None
    """The examination curve ``ips`` weights by, and early stopping's IPS estimate of NDCG uses."""
    bias_curve_source: str | None = None
    """Where :attr:`bias_curve` came from (a path, or ``estimated``), for the report and the meta."""
    ips_clip: float = defaults.IPS_CLIP
    """The largest weight ``ips`` gives a row."""
    dask: str | None = None
    """Train on a Dask cluster (:mod:`recctl.distributed`): ``local:N`` or a scheduler address."""


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
    (:func:`recctl.provenance.training_groups_meta`)."""
    debias: dict[str, Any] = field(default_factory=dict)
    """The position correction that ran (:meth:`recctl.debias.DebiasPlan.as_json`)."""

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


def refuse_constant_model(splits: int, what: str) -> None:
    """:class:`InsufficientDataError` when ``what`` (a model) has no split: no gate can judge it."""
    if splits == 0:
        raise InsufficientDataError(
            f"{what} has no split (every tree is a single leaf, all gains 0): the data taught it "
            "nothing, so no quality gate can pass it"
        )


def split_groups(
    data: LtrData, validation_split: float, split: Split, seed: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Boolean masks over groups: (train, valid). Whole groups only, never rows.

    Groups that share a split key (:attr:`LtrData.split_keys`: the lists served for one
    assessment) stay on one side. ``time`` validates on the keys whose newest group is newest
    (ties by key), ``group-random`` on a seeded random choice of keys; keys are added until the
    validation part holds at least :func:`validation_group_count` groups, and at least one key
    always trains. Without split keys every group is its own key.
    """
    groups = len(data.group_sizes)
    valid_count = validation_group_count(groups, validation_split)
    valid = np.zeros(groups, dtype=bool)
    if valid_count == 0:
        return ~valid, valid
    if data.split_keys is None:
        keys: npt.NDArray[np.int64] = np.arange(groups, dtype=np.int64)
        key_names: npt.NDArray[Any] = data.query_ids if data.query_ids is not None else keys
    else:
        key_names, keys = np.unique(data.split_keys.astype(str), return_inverse=True)
    key_count = len(key_names)
    if key_count < 2:
        raise InsufficientDataError(
            f"all {groups:,} groups belong to one assessment; a validation split needs at least 2"
        )
    if split == "time":
        if data.event_time is None:
            raise TimeSplitError()
        starts = group_offsets(data.group_sizes)[:-1]
        newest = data.event_time[starts].astype("datetime64[ms]").astype(np.int64)
        key_newest = np.full(key_count, np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(key_newest, keys, newest)
        order = np.lexsort((key_names.astype(str), key_newest))  # oldest first, ties by key
        candidates = order[::-1]  # newest first
    elif data.split_keys is None:  # one group per key: the choice recctl has always made
        valid[np.random.default_rng(seed).choice(groups, size=valid_count, replace=False)] = True
        return ~valid, valid
    else:
        candidates = np.random.default_rng(seed).permutation(key_count)
    sizes = np.bincount(keys, minlength=key_count)
    taken = np.cumsum(sizes[candidates])
    chosen = min(int(np.searchsorted(taken, valid_count)) + 1, key_count - 1)
    valid = np.isin(keys, candidates[:chosen])
    return ~valid, valid


def subset(data: LtrData, group_mask: npt.NDArray[np.bool_]) -> LtrData:
    """The groups of ``data`` selected by ``group_mask``, in their original order (no copy if all)."""
    return data.subset(group_mask)


def ndcg_at(data: LtrData, scores: npt.NDArray[np.float64], ks: tuple[int, ...]) -> dict[str, float]:
    return {f"ndcg@{k}": ndcg(data.grades, scores, data.group_sizes, k).mean for k in ks}


def confidence_scores(data: LtrData) -> npt.NDArray[np.float64] | None:
    """The old order's scores: confidence_score, missing values last."""
    if data.confidence_score is None:
        return None
    return np.nan_to_num(data.confidence_score.astype(np.float64), nan=-np.inf)


def train_model(data: LtrData, options: TrainOptions) -> TrainResult:
    """Train a LambdaRank booster on ``data`` with a group split and early stopping.

    ``options.debias`` chooses the position correction (:func:`recctl.debias.plan_debias`):
    ``position`` passes every training row's position to LightGBM (the model scores without
    them), ``ips`` weights the relevant training rows. With a bias curve, early stopping watches
    the IPS estimate of validation NDCG@10 (the logged NDCG rewards the order the clicks were
    logged in); ``position`` without a curve trains all ``num_boost_round`` rounds, as nothing
    unbiased is left to stop on. The reported figures are always the plain NDCG of the logged
    grades.

    Raises :class:`InsufficientDataError` when there are too few groups to split or the data
    cannot support the correction asked for; with ``options.gated``, also when the validation part
    would be smaller than ``options.min_valid_groups`` (before training) or the trained model has
    no split.
    """
    import lightgbm

    split: Split = options.split or ("time" if data.event_time is not None else "group-random")
    groups = len(data.group_sizes)
    needed = 2 if options.validation_split > 0 else 1
    if groups < needed:
        raise InsufficientDataError(
            f"{groups} usable query group(s); training with a validation split needs at least {needed}"
        )
    plan = _debias_plan(data, options)
    train_mask, valid_mask = split_groups(data, options.validation_split, split, options.seed or 0)
    if options.gated:
        check_gate_groups(int(valid_mask.sum()), options.min_valid_groups)
    train, valid = subset(data, train_mask), subset(data, valid_mask)
    train_rows = np.repeat(train_mask, data.group_sizes)
    params = {**DEFAULT_PARAMS}
    params["num_threads"] = 1 if data.features.shape[0] < SMALL_DATA_ROWS else 0
    if options.seed is not None:
        params["seed"] = options.seed
    params.update(options.params)
    train_set = lightgbm.Dataset(
        train.features,
        label=train.grades,
        group=train.group_sizes,
        weight=plan.weights[train_rows] if plan.weights is not None else None,
        position=train.position.astype(np.int32)
        if plan.method == "position" and train.position is not None
        else None,
        feature_name=data.feature_names,
        free_raw_data=False,
    )
    valid_sets = []
    callbacks: list[Callable[..., Any]] = []
    feval = None
    watched = "ndcg@10"
    if plan.curve is not None and len(valid.group_sizes) > 0:
        # The logged NDCG rewards the old order (its clicks are where it put things): with a curve,
        # early stopping watches the IPS estimate of NDCG instead.
        feval, watched = (
            _debiased_ndcg(valid, ips_weights(valid, plan.curve, options.ips_clip)),
            "ips-ndcg@10",
        )
        params["metric"] = "None"
    # Without a curve, a position-corrected model has no unbiased validation figure to stop on:
    # the logged NDCG would stop it as soon as it stopped learning the old order back, so it
    # trains every round (still reporting the logged validation NDCG).
    stops_early = options.early_stopping_rounds > 0 and not (plan.method == "position" and plan.curve is None)
    if not stops_early:
        watched = "no early stopping"
    if len(valid.group_sizes) > 0:
        valid_sets.append(
            lightgbm.Dataset(valid.features, label=valid.grades, group=valid.group_sizes, reference=train_set)
        )
        if stops_early:
            callbacks.append(
                lightgbm.early_stopping(options.early_stopping_rounds, first_metric_only=True, verbose=False)
            )
    if options.dask is not None:
        booster, best, watched = _train_on_dask(
            params, train, valid, plan, options, train_rows, watched, stops_early
        )
    else:
        try:
            booster = lightgbm.train(
                params,
                train_set,
                num_boost_round=options.num_boost_round,
                valid_sets=valid_sets,
                callbacks=callbacks,
                feval=feval,
                keep_training_booster=True,  # keeps its scores of the training rows (see _scores_at)
            )
        except lightgbm.basic.LightGBMError as exc:
            raise RecctlError(f"LightGBM refused the training run: {first_line(exc)}") from None
        best = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
    splits = tree_splits(booster, best)
    if options.gated:
        refuse_constant_model(splits, "the trained model")
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
        debias={**plan.as_json(), "early_stopping_on": watched if valid_sets else None},
    )


def _debias_plan(data: LtrData, options: TrainOptions) -> Any:
    """The position correction of ``options`` (:func:`recctl.debias.plan_debias`); on Dask, which
    takes no positions, ``auto`` debiases by IPS weights when there is a curve, else not at all."""
    from recctl.debias import DebiasPlan

    def plan(requested: Any) -> Any:
        return plan_debias(
            data,
            requested,
            curve=options.bias_curve,
            curve_source=options.bias_curve_source,
            clip=options.ips_clip,
        )

    if options.dask is None:
        return plan(options.debias)
    if options.debias == "position":
        raise InputError(
            "--debias position passes positions to LightGBM's Dataset, which its Dask interface cannot "
            "take: use --debias ips (weights from a bias curve) or auto with --dask"
        )
    chosen = plan(options.debias)
    if chosen.method != "position":
        return chosen
    no_positions = "; LightGBM's Dask interface takes no positions"
    if options.bias_curve is None:
        return DebiasPlan(
            options.debias, "none", f"{chosen.reason}{no_positions}, and there is no bias curve for ips"
        )
    by_weights = plan("ips")
    return DebiasPlan(
        options.debias,
        "ips",
        f"{chosen.reason}{no_positions}: IPS weights instead",
        by_weights.curve,
        by_weights.clip,
        by_weights.weights,
        by_weights.curve_source,
    )


def _train_on_dask(
    params: dict[str, Any],
    train: LtrData,
    valid: LtrData,
    plan: Any,
    options: TrainOptions,
    train_rows: npt.NDArray[np.bool_],
    watched: str,
    stops_early: bool,
) -> tuple[lightgbm.Booster, int, str]:
    """Train on the cluster of ``options.dask`` every round, then keep the round a validation
    pass finds best by ``watched`` (:mod:`recctl.distributed`); the booster, that round and what
    was watched."""
    from recctl import distributed

    cluster = distributed.Cluster.parse(str(options.dask))
    distributed.check_available()
    weights = plan.weights[train_rows] if plan.weights is not None else None
    # Dask sets each worker's threads, and the validation pass replaces LightGBM's evaluation.
    dask_params = {
        key: value for key, value in params.items() if key not in ("num_threads", "eval_at", "metric")
    }
    with distributed.client_for(cluster) as client:
        workers = cluster.workers or max(1, len(client.scheduler_info().get("workers", {})))
        booster = distributed.fit(client, dask_params, train, weights, options.num_boost_round, workers)
    rounds = booster.current_iteration()
    if not stops_early or len(valid.group_sizes) == 0:
        return booster, rounds, f"{watched} (Dask: every round)"
    if plan.curve is not None:
        valid_weights = ips_weights(valid, plan.curve, options.ips_clip)
        best, _ = distributed.best_round(
            booster,
            valid,
            lambda s: ndcg(valid.grades, s, valid.group_sizes, 10, gain_weights=valid_weights).mean,
        )
    else:
        best, _ = distributed.best_round(
            booster, valid, lambda s: ndcg(valid.grades, s, valid.group_sizes, 10).mean
        )
    return booster, best, f"{watched} (Dask: every round trained, the best kept by a validation pass)"


def _debiased_ndcg(
    valid: LtrData, weights: npt.NDArray[np.float64]
) -> Callable[[npt.NDArray[np.float64], Any], tuple[str, float, bool]]:
    """A LightGBM ``feval``: NDCG@10 of the validation rows with each gain weighted (IPS)."""

    def metric(predictions: npt.NDArray[np.float64], _dataset: Any) -> tuple[str, float, bool]:
        report = ndcg(valid.grades, predictions, valid.group_sizes, 10, gain_weights=weights)
        return "ips-ndcg@10", report.mean, True

    return metric


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

    try:
        if data_index == 0:
            booster.eval_train(feval=capture)
        else:
            booster.eval_valid(feval=capture)
    except ValueError:  # a booster that holds no data (trained on Dask): score the rows
        return score(booster, data, iteration)
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


def score(booster: lightgbm.Booster, data: LtrData, iteration: int | None = None) -> npt.NDArray[np.float64]:
    """The booster's scores for every row of ``data`` (at ``iteration``, default: the model's best)."""
    return np.asarray(booster.predict(data.features, num_iteration=iteration), dtype=np.float64)
