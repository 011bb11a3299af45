"""Ranking JSON batches of recommendations: validate, featurise, score, diversify.

A batch is ``{"assessment": {...}, "recommendations": [...], "user_id": ...}`` or a bare array of
recommendations. The output is the same document with ``recommendations`` reordered (cut to
``top_k``), each recommendation gaining ``ml_score``, ``rank`` (1-based) and ``position`` (the 0-based
slot it is shown in), every other value passed through as it came, plus a ``summary`` and a
``request_id`` (the batch's own, else a new one). A bare array comes back as ``{"request_id": ...,
"recommendations": [...], "summary": {...}}``. An empty list is a valid batch (``count: 0``).

Many batches are processed together (``--ndjson`` hands over every line that has arrived): their
recommendations are validated, featurised and scored as one frame with one query group per batch,
which gives the same values as one batch at a time (features are computed per group).

This module must not import pymongo or pyarrow (start-up time). Scores come from LightGBM's
shared library through :mod:`recctl.native`; the lightgbm package (about 210 ms to import) is only
loaded where that library cannot be found.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from recctl import native
from recctl.defaults import DEFAULT_LAMBDA, DIVERSIFY_DEPTH
from recctl.diversity import list_traits_of
from recctl.errors import ModelError
from recctl.exploration import Exploration, ListPolicy, PolicyLists, list_seed, team_draft
from recctl.features import FEATURE_NAMES, candidates, compute_features, feature_matrix
from recctl.jsontext import BatchError, dumps, parse_json
from recctl.model import ModelBundle, load_bundle
from recctl.records import validate_objects

EXPLAIN_TOP = 5


@dataclass(frozen=True)
class RankOptions:
    """How to rank: MMR's ``lambda_`` and ``diversify_depth`` (see :mod:`recctl.diversity`), the
    ``top_k`` cut, ``explain`` (feature contributions) and ``seed`` (request ids derived from it and
    the line number instead of random ones, so a seeded run is reproducible)."""

    lambda_: float = DEFAULT_LAMBDA
    top_k: int | None = None
    diversity: bool = True
    explain: bool = False
    diversify_depth: int = DIVERSIFY_DEPTH
    seed: int | None = None
    log: bool = False
    """Also give each served list as an impression record (:func:`impression_of`); a list that
    cannot be one (no assessment_id to log it under) is then the batch's error."""
    explore: Exploration | None = None
    """Draw each list from an exploring policy (:mod:`recctl.exploration`) instead of serving MMR's
    order; its random stream is seeded by ``list_seed(seed, request_id)``."""
    interleave: str | Path | None = None
    """Another model: serve the team-draft interleaving of this ranker's list (team "A") and that
    model's (team "B"), each item naming its team. Not together with ``explore``."""

    def __post_init__(self) -> None:
        if self.explore is not None and self.interleave is not None:
            raise ValueError("interleaving merges two deterministic lists: it cannot also explore")


LARGE_LINE_BYTES = 1 << 20
"""In ``--ndjson``, a line longer than this (about 1,500 recommendations) is ranked alone."""


@dataclass
class _Batch:
    document: dict[str, Any] | None  # None for a bare array
    recommendations: list[Any]
    assessment: dict[str, Any] | None
    prefix: str  # JSON path of the list, for messages
    request_id: str | int


def _batch_of(document: Any, line: int, seed: int | None) -> _Batch:
    request_id: Any = None
    if isinstance(document, list):
        recommendations, wrapper, assessment, prefix = document, None, None, ""
    elif isinstance(document, dict):
        if "recommendations" not in document:
            raise BatchError("recommendations: required (or send a bare array of recommendations)")
        recommendations, wrapper, prefix = document["recommendations"], document, "recommendations"
        assessment = document.get("assessment")
        request_id = document.get("request_id")
        if not isinstance(recommendations, list):
            raise BatchError(f"recommendations: must be a list, got {_type_name(recommendations)}")
        if assessment is not None and not isinstance(assessment, dict):
            raise BatchError(f"assessment: must be an object, got {_type_name(assessment)}")
        if request_id is not None and not _is_id(request_id):
            raise BatchError(
                f"request_id: must be a non-empty string or an integer, got {_type_name(request_id)}"
            )
    else:
        raise BatchError(f"$: must be an object or an array, got {_type_name(document)}")
    if request_id is None:
        request_id = new_request_id(seed, line)
    return _Batch(wrapper, recommendations, assessment, prefix, request_id)


def new_request_id(seed: int | None, line: int) -> str:
    """A UUID4 for a batch that has no ``request_id``; with a seed, derived from it and the line
    number (so the same seeded run gives the same ids)."""
    if seed is None:
        return str(uuid.uuid4())
    digest = hashlib.blake2b(f"recctl rank {seed} {line}".encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def _is_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and value.strip() != "")


def _type_name(value: Any) -> str:
    if isinstance(value, str) and not value.strip():
        return "an empty string"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


@dataclass(frozen=True)
class _Valid:
    """The batches that passed validation, and all their rows (batch after batch)."""

    batches: list[tuple[int, _Batch]]
    recommendations: pl.DataFrame
    assessments: pl.DataFrame


@dataclass(frozen=True)
class RankedLines:
    """The answers to a run of NDJSON lines: one compact JSON line per ranked batch, and
    ``line N: message`` per bad line, each in input order; with :attr:`RankOptions.log`, the
    impression record of each served list (NDJSON), in the same order."""

    output: bytes
    errors: list[str]
    impressions: bytes = b""


class ExplainError(ModelError):
    """The model cannot explain its scores (``explain``), e.g. linear trees have no SHAP values.

    ``message(flag)`` names the ``explain`` option as ``flag`` spells it (the command line: its flag).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(self.message())

    def message(self, flag: Callable[[str], str] | None = None) -> str:
        return f"{flag('explain')}: {self.reason}" if flag else f"cannot explain the scores: {self.reason}"

    def __reduce__(self) -> tuple[Any, ...]:  # (raised in a helper process, re-raised here)
        return (type(self), (self.reason,))


class Ranker:
    """Loads the model once and ranks batches; falls back to confidence order without a model.

    ``require_model``: a missing or unusable model raises :class:`ModelError` instead of the
    fallback. ``warning`` says why the fallback is in use (None when the model is).
    """

    def __init__(self, model_path: str | Path | None, *, require_model: bool = False) -> None:
        self.bundle: ModelBundle | None = None
        self.warning: str | None = None
        self._scorer: native.NativeBooster | native.PackageBooster | None = None
        # Batches may be ranked from two threads: LightGBM's predictor is not safe to share
        # (LightGBM issues #6142, #5482), so every call into it takes this lock.
        self._scorer_lock = threading.Lock()
        self._others: dict[str, Ranker] = {}
        if model_path is None:
            return
        model_path = Path(model_path)
        try:
            # A model may use fewer features than the registry (train --exclude-features).
            self._use(load_bundle(model_path, known_features=FEATURE_NAMES))
        except ModelError as exc:
            if require_model:
                raise
            self.bundle = None
            self._scorer = None
            self.warning = f"{exc}; ranking by confidence_score"

    def _use(self, bundle: ModelBundle) -> None:
        """Score with ``bundle``'s model (raises :class:`ModelError` when it cannot be used)."""
        self.bundle = bundle
        try:
            scorer = native.load(bundle.model_text) or native.PackageBooster(bundle.booster())
        except native.NativeError as exc:
            raise ModelError(f"{bundle.path}: not a readable LightGBM model ({exc})") from None
        self._scorer = scorer
        outputs = scorer.num_outputs
        if outputs != 1:
            raise ModelError(f"{bundle.path}: gives {outputs} scores per row (multiclass?); a ranker gives 1")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its loaded models (not their paths): a copy in another process ranks with the
        very models this one loaded, even if the files have been replaced since."""
        others = {key: other.bundle for key, other in self._others.items()}
        return (_ranker_of_bundles, (self.bundle, self.warning, others))

    @classmethod
    def without_model(cls) -> Ranker:
        """The confidence order: what a ranker does without a model (no warning)."""
        return cls(None)

    def interleaved_with(self, model_path: str | Path) -> Ranker:
        """The ranker of the other model of team-draft interleaving (loaded once; it must be usable).

        Raises
        ------
        ModelError
            If that model cannot be loaded.
        """
        key = str(model_path)
        if key not in self._others:
            self._others[key] = Ranker(model_path, require_model=True)
        return self._others[key]

    def score_in_one_thread(self) -> None:
        """Let each scoring call use one thread (also for the interleaving models loaded so far): for
        a caller that ranks several chunks at once, one per core."""
        for ranker in (self, *self._others.values()):
            if ranker._scorer is not None:
                ranker._scorer.threads = 1

    @property
    def model_version(self) -> str | None:
        return self.bundle.version if self.bundle else None

    @property
    def models(self) -> tuple[str | None, ...]:
        """What this ranker scores with: a digest of its model bundle (None: confidence order),
        then each interleaving model's path and digest (a few milliseconds: hashes the models)."""
        others = sorted((key, other.models[0]) for key, other in self._others.items())
        return (_digest(self.bundle), *(part for pair in others for part in pair))

    def rank(
        self,
        documents: Sequence[Any],
        options: RankOptions,
        *,
        lines: Sequence[int] | None = None,
        isolate_failures: bool = False,
    ) -> list[dict[str, Any] | BatchError]:
        """Rank parsed JSON documents; each result is the output document or the batch's error.

        ``lines`` numbers the documents (default 1, 2, ...): seeded request ids derive from it.
        With ``isolate_failures``, a batch that breaks the ranking of the others (an unexpected
        error, memory) is ranked alone and, if it fails alone too, answered by its error; the
        others are still ranked. The documents are taken over: their recommendation objects
        become the output's (``ml_score``, ``rank`` and ``position`` are set in them), so do not
        rank the same parsed document twice.
        """
        numbers = range(1, len(documents) + 1) if lines is None else lines
        results: list[dict[str, Any] | BatchError] = []
        batches: list[tuple[int, _Batch]] = []
        for number, (document, line) in enumerate(zip(documents, numbers, strict=True)):
            try:
                batches.append((number, _batch_of(document, line, options.seed)))
                results.append(BatchError("pending"))
            except BatchError as exc:
                results.append(exc)
        self._rank_batches(batches, results, options, isolate_failures=isolate_failures)
        return results

    def rank_lines(
        self, lines: Sequence[bytes], first_line: int, options: RankOptions, *, errors_inline: bool = False
    ) -> RankedLines:
        """Rank one batch per line (blank lines are skipped); ``first_line`` numbers the first.

        The short lines are ranked together; a line of more than :data:`LARGE_LINE_BYTES` is parsed
        and ranked alone, after them, so that it never holds the others' memory at the same time.
        A bad line is reported in ``errors``; with ``errors_inline`` it is also answered in place by
        ``{"error": message, "line": N}``, so every input line gets one output line.
        """
        numbered = [
            (number, line)
            for number, line in enumerate(lines, start=first_line)
            if line and not line.isspace()
        ]
        answers: dict[int, bytes] = {}
        errors: dict[int, str] = {}
        logged: dict[int, bytes] = {}
        runs = [[(n, line) for n, line in numbered if len(line) <= LARGE_LINE_BYTES]]
        runs += [[(n, line)] for n, line in numbered if len(line) > LARGE_LINE_BYTES]
        for run in runs:
            documents: list[Any] = []
            numbers: list[int] = []
            outcome: dict[int, dict[str, Any] | BatchError] = {}
            for number, line in run:
                try:
                    documents.append(parse_json(line))
                    numbers.append(number)
                except BatchError as exc:
                    outcome[number] = exc
            ranked = self.rank(documents, options, lines=numbers, isolate_failures=True)
            outcome.update(zip(numbers, ranked, strict=True))
            del documents, ranked
            for number, result in outcome.items():
                if options.log and not isinstance(result, BatchError):
                    try:
                        logged[number] = impression_line(result)
                    except BatchError as exc:
                        result = exc
                if isinstance(result, BatchError):
                    errors[number] = f"line {number}: {result}"
                    if errors_inline:
                        answers[number] = dumps({"error": str(result), "line": number}) + b"\n"
                else:
                    answers[number] = dumps(result) + b"\n"
        return RankedLines(
            b"".join(answers[number] for number in sorted(answers)),
            [errors[number] for number in sorted(errors)],
            b"".join(logged[number] for number in sorted(logged)),
        )

    def _rank_batches(
        self,
        batches: list[tuple[int, _Batch]],
        results: list[dict[str, Any] | BatchError],
        options: RankOptions,
        *,
        isolate_failures: bool,
    ) -> None:
        valid = self._validated(batches, results)
        if not valid.batches:
            return
        try:
            self._rank_valid(valid, results, options)
        except ModelError:
            raise  # the model's problem (e.g. explaining linear trees), not the batch's
        except Exception as exc:  # isolated per batch below, or re-raised
            if not isolate_failures:
                raise
            if len(valid.batches) > 1:
                for one in valid.batches:
                    self._rank_batches([one], results, options, isolate_failures=True)
                return
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            results[valid.batches[0][0]] = BatchError(f"$: could not be ranked ({detail})")

    # -- validation -----------------------------------------------------------------------------------
    def _validated(
        self, batches: list[tuple[int, _Batch]], results: list[dict[str, Any] | BatchError]
    ) -> _Valid:
        """Validate every recommendation and assessment of every batch in two calls.

        A batch with any invalid item fails as a whole, with the first problem's JSON path. The
        returned frames hold the good batches' rows in batch order, so batches are contiguous.
        """
        sizes = np.array([len(batch.recommendations) for _, batch in batches], dtype=np.int64)
        row_batch = np.repeat(np.array([number for number, _ in batches], dtype=np.int64), sizes)
        row_index = np.arange(len(row_batch)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        keys = [f"b{number}" for number, _ in batches]  # joins each batch's rows to its assessment
        checked = validate_objects(
            "recommendations",
            [item for _, batch in batches for item in batch.recommendations],
            keep_extra=False,
            overrides={"assessment_id": np.repeat(np.array(keys, dtype=object), sizes).tolist()},
        )
        prefixes = {number: batch.prefix for number, batch in batches}
        failed: dict[int, str] = {}
        positions = checked.rejects["input_position"].to_numpy()
        for position, reason in zip(positions.tolist(), checked.rejects["reason"], strict=True):
            number = int(row_batch[position])
            failed.setdefault(number, _located(f"{prefixes[number]}[{row_index[position]}]", reason))
        with_assessment = [
            (number, batch.assessment) for number, batch in batches if batch.assessment is not None
        ]
        checked_assessments = validate_objects(
            "assessments",
            [item for _, item in with_assessment],
            keep_extra=False,
            overrides={"assessment_id": [f"b{number}" for number, _ in with_assessment]},
        )
        for position, reason in zip(
            checked_assessments.rejects["input_position"], checked_assessments.rejects["reason"], strict=True
        ):
            failed.setdefault(with_assessment[position][0], _located("assessment", reason))
        for number, message in failed.items():
            results[number] = BatchError(message)
        if not failed:
            return _Valid(batches, checked.records, checked_assessments.records)
        kept_rows = np.delete(row_batch, positions)  # the batch of each row that passed
        good_keys = [key for key, (number, _) in zip(keys, batches, strict=True) if number not in failed]
        return _Valid(
            batches=[(number, batch) for number, batch in batches if number not in failed],
            recommendations=checked.records.filter(pl.Series(~np.isin(kept_rows, list(failed)))),
            assessments=checked_assessments.records.filter(pl.col("assessment_id").is_in(good_keys)),
        )

    # -- scoring and ordering -------------------------------------------------------------------------
    def policy(self, featured: pl.DataFrame, sizes: Sequence[int], options: RankOptions) -> ListPolicy:
        """The policy this ranker serves ``featured``'s lists by (``compute_features(candidates(...))``,
        each list's rows contiguous, in ``sizes`` order): its scores, MMR and ``options.explore``.

        ``rank`` is this followed by :meth:`ListPolicy.serve` with ``list_seed(options.seed,
        request_id)`` per list, so a caller who serves the same lists gets the same orders."""
        return self._policy(featured, sizes, options)[0]

    def _policy(
        self, featured: pl.DataFrame, sizes: Sequence[int], options: RankOptions
    ) -> tuple[ListPolicy, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        names = self.bundle.feature_names if self.bundle is not None else FEATURE_NAMES
        matrix = feature_matrix(featured, names).to_numpy().astype(np.float64, copy=False)
        scores = self._scores(matrix, featured)
        finite = np.where(np.isfinite(scores), scores, np.min(scores[np.isfinite(scores)], initial=0.0) - 1.0)
        policy = ListPolicy(
            finite,
            list_traits_of(featured, sizes),
            lambda_=options.lambda_,
            top_k=options.top_k,
            diversity=options.diversity,
            depth=options.diversify_depth,
            exploration=options.explore,
        )
        return policy, matrix, scores

    def _rank_valid(
        self, valid: _Valid, results: list[dict[str, Any] | BatchError], options: RankOptions
    ) -> None:
        frame = compute_features(candidates(valid.recommendations, valid.assessments))
        sizes = [len(batch.recommendations) for _, batch in valid.batches]
        policy, matrix, scores = self._policy(frame, sizes, options)
        contributions = (
            self._contributions(matrix) if options.explain and self.bundle and len(matrix) else None
        )
        seeds = [list_seed(options.seed, batch.request_id) for _, batch in valid.batches]
        served = policy.serve(seeds)
        name = policy.name
        if options.interleave is not None:
            other = self.interleaved_with(options.interleave).policy(frame, sizes, options)
            served = team_draft(served, other.serve(seeds), seeds, traits=policy.traits, depth=policy.depth)
            name = "team-draft"
        start = 0
        for row, (number, batch) in enumerate(valid.batches):
            stop = start + len(batch.recommendations)
            results[number] = self._document(
                batch,
                served,
                row,
                name,
                scores[start:stop],
                None if contributions is None else contributions[start:stop],
                matrix[start:stop],
                options,
            )
            start = stop

    def _scores(self, matrix: npt.NDArray[np.float64], frame: pl.DataFrame) -> npt.NDArray[np.float64]:
        if self.bundle is None or not len(matrix):
            return frame["confidence_score"].fill_null(float("-inf")).to_numpy().astype(np.float64)
        assert self._scorer is not None
        with self._scorer_lock:
            return self._scorer.predict(matrix)

    def _contributions(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        assert self._scorer is not None
        with self._scorer_lock:
            try:
                return self._scorer.contributions(matrix)
            except native.NativeError as exc:  # e.g. linear trees have no SHAP values
                raise ExplainError(str(exc)) from None

    def _document(
        self,
        batch: _Batch,
        served: PolicyLists,
        row: int,
        policy_name: str,
        scores: npt.NDArray[np.float64],
        contributions: npt.NDArray[np.float64] | None,
        matrix: npt.NDArray[np.float64],
        options: RankOptions,
    ) -> dict[str, Any]:
        ranked = []
        chosen = served.orders[row].tolist()
        prefix = None if served.prefix_propensity is None else served.prefix_propensity[row].tolist()
        marginal = None if served.propensity is None else served.propensity[row].tolist()
        teams = None if served.teams is None else served.teams[row]
        for position, index in enumerate(chosen):
            item = batch.recommendations[index]  # parsed for this call only: filled in place
            item["ml_score"] = float(scores[index]) if self.bundle is not None else None
            item["rank"] = position + 1
            item["position"] = position
            if prefix is not None:
                item["prefix_propensity"] = prefix[position]
            if marginal is not None:
                item["propensity"] = marginal[position]
            if teams is not None:
                item["team"] = teams[position]
            if contributions is not None:
                assert self.bundle is not None  # contributions come from the model
                item["explanation"] = _explanation(
                    contributions[index], matrix[index], self.bundle.feature_names
                )
            ranked.append(item)
        summary = {
            "ml_ranking_applied": self.bundle is not None,
            "diversity_score": float(served.diversity[row]),
            "diversity_discounted": float(served.diversity_discounted[row]),
            "model_version": self.model_version,
            "mmr_lambda": options.lambda_ if options.diversity else None,
            "count": len(ranked),
            "policy": policy_name,
            "propensity_method": served.propensity_method[row],
        }
        document = dict(batch.document) if batch.document is not None else {}
        document["request_id"] = batch.request_id
        document["recommendations"] = ranked
        document["summary"] = summary
        return document


def impression_of(result: dict[str, Any], now: datetime | None = None) -> dict[str, Any] | None:
    """The impression record of a ranked batch (an output document of :meth:`Ranker.rank`):
    the list as it was served, for ``recctl ingest impressions``; None for an empty list.

    ``request_id``, ``timestamp`` (``now``, UTC, ISO-8601 with ``Z``), ``assessment_id``,
    ``model_version`` (the summary's, when a model ranked the list), ``policy`` (the summary's:
    ``deterministic``, ``plackett-luce``, ``epsilon-greedy`` or ``team-draft``), the batch's
    ``user_id`` and ``session_id`` when it names them, and ``items``: each recommendation's
    ``recommendation_id`` and ``position`` as the output gives them, with its ``propensity``,
    ``prefix_propensity`` and ``team`` when the output has them.

    The ``assessment_id`` is the batch's ``assessment.assessment_id``, else the one every
    recommendation names. A list with neither (no assessment, and recommendations naming none
    or several) cannot be logged: :class:`BatchError`, since an impression without its
    assessment could never be linked to the interactions it leads to.
    """
    recommendations = result["recommendations"]
    if not recommendations:
        return None
    assessment = result.get("assessment")
    assessment_id = assessment.get("assessment_id") if isinstance(assessment, dict) else None
    if not _is_id(assessment_id):
        named = {
            str(item.get("assessment_id")) if _is_id(item.get("assessment_id")) else None
            for item in recommendations
        }
        if len(named) != 1 or None in named:
            raise BatchError(
                "cannot log the served list: no assessment_id (give assessment.assessment_id, or the "
                "same assessment_id on every recommendation)"
            )
        assessment_id = named.pop()
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    record: dict[str, Any] = {
        "request_id": result["request_id"],
        "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
        "assessment_id": assessment_id,
    }
    for name in ("user_id", "session_id"):
        if _is_id(result.get(name)):
            record[name] = result[name]
    model_version = result.get("summary", {}).get("model_version")
    if model_version is not None:
        record["model_version"] = model_version
    record["policy"] = result.get("summary", {}).get("policy") or "deterministic"
    record["items"] = [_logged_item(item) for item in recommendations]
    return record


_LOGGED_EXTRAS = ("propensity", "prefix_propensity", "team")


def _logged_item(item: dict[str, Any]) -> dict[str, Any]:
    logged = {"recommendation_id": item.get("recommendation_id"), "position": item["position"]}
    for name in _LOGGED_EXTRAS:
        if name in item:
            logged[name] = item[name]
    return logged


def impression_line(result: dict[str, Any], now: datetime | None = None) -> bytes:
    """:func:`impression_of` as one NDJSON line (empty for an empty list)."""
    record = impression_of(result, now)
    return b"" if record is None else dumps(record) + b"\n"


def _explanation(
    contributions: npt.NDArray[np.float64], values: npt.NDArray[np.float64], names: Sequence[str]
) -> dict[str, Any]:
    features = contributions[:-1]
    top = np.argsort(-np.abs(features), kind="stable")[:EXPLAIN_TOP]
    return {
        "bias": float(contributions[-1]),
        "top_contributions": [
            {
                "feature": names[i],
                "contribution": float(features[i]),
                "value": None if math.isnan(values[i]) else float(values[i]),
            }
            for i in top
        ],
    }


def _located(path: str, reason: str) -> str:
    field, sep, message = reason.partition(": ")
    if not sep or " " in field:  # reader-level reasons like "not a JSON object"
        return f"{path}: {reason}"
    return f"{path}.{field}: {message}"


def _ranker_of_bundles(
    bundle: ModelBundle | None, warning: str | None, others: dict[str, ModelBundle | None]
) -> Ranker:
    """The :class:`Ranker` a pickled one stood for (:meth:`Ranker.__reduce__`)."""
    ranker = Ranker(None)
    ranker.warning = warning
    if bundle is not None:
        ranker._use(bundle)
    for key, other_bundle in others.items():
        other = ranker._others[key] = Ranker(None)
        if other_bundle is not None:
            other._use(other_bundle)
    return ranker


def _digest(bundle: ModelBundle | None) -> str | None:
    """A digest of a bundle's model text and meta data (None for no bundle)."""
    if bundle is None:
        return None
    meta = json.dumps(bundle.meta, sort_keys=True, default=str)
    return hashlib.sha256(bundle.model_text.encode() + b"\0" + meta.encode()).hexdigest()
