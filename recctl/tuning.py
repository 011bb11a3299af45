"""The relevance/diversity frontier of MMR's lambda: which trade-off to serve.

For each lambda, every list of a window is ranked as ``recctl rank --lambda L`` ranks it (the
model's scores, then MMR over the catalog's traits, :func:`recctl.diversity.mmr_many`), and the
sweep records two figures of the ranked lists:

- relevance: the mean NDCG@k of the ranked lists against the logged labels, or against external
  grades (:class:`recctl.evaluation.Judgments`), or the off-policy estimate of the ranking
  policy's reward per list (:mod:`recctl.policy_evaluation`);
- diversity: the mean ``diversity_discounted`` of the ranked lists (rank-discounted intra-list
  diversity of their first slots).

A lambda is on the frontier (``pareto``) when no other lambda is at least as good on both figures
and better on one. The suggested knee is the frontier point farthest from the straight line
joining the frontier's two ends, with both figures scaled to 0..1 over the frontier (Satopää et
al.'s Kneedle, for a curve given by a few points): the point where giving up relevance starts
buying little diversity. Ties go to the larger lambda (the one closer to plain relevance order).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from recctl.diversity import ListTraits

Values = npt.NDArray[np.float64]


MAX_LAMBDAS = 1_001
"""The most lambdas a grid may have (each is a full pass over the evaluation lists)."""


def lambda_grid(spec: str) -> list[float]:
    """The lambdas of ``START:STOP:STEP`` (both ends included when the steps land on them) or
    of a comma-separated list; each in 0..1, sorted, without repeats, at most :data:`MAX_LAMBDAS`.
    ValueError otherwise."""
    text = spec.strip()
    try:
        if ":" in text:
            start, stop, step = (float(part) for part in text.split(":"))
            if not (step > 0 and np.isfinite(step)):
                raise ValueError("the step must be a finite number > 0")
            if not (0.0 <= start <= 1.0 and 0.0 <= stop <= 1.0):
                raise ValueError("START and STOP must be in 0..1")
            if stop < start:
                raise ValueError("START must not exceed STOP")
            steps = np.floor((stop - start) / step + 1e-9)
            if steps + 1 > MAX_LAMBDAS:
                raise ValueError(f"the steps must give at most {MAX_LAMBDAS:,} lambdas, not {steps + 1:,.4g}")
            count = int(steps) + 1
            values = [round(start + i * step, 10) for i in range(count)]
        else:
            values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        reason = str(exc) if "must" in str(exc) else "numbers wanted"
        raise ValueError(
            f"expected START:STOP:STEP or a comma-separated list, got {spec!r} ({reason})"
        ) from None
    if not values:
        raise ValueError(f"no lambda in {spec!r}")
    if any(not 0.0 <= value <= 1.0 for value in values):
        raise ValueError(f"every lambda must be in 0..1, got {spec!r}")
    lambdas = sorted(set(values))
    if len(lambdas) > MAX_LAMBDAS:
        raise ValueError(f"at most {MAX_LAMBDAS:,} lambdas, got {len(lambdas):,}")
    return lambdas


def pareto_flags(relevance: npt.ArrayLike, diversity: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Per point, whether no other point is >= on both figures and > on one (not dominated)."""
    rel = np.asarray(relevance, dtype=np.float64)
    div = np.asarray(diversity, dtype=np.float64)
    at_least = (rel[None, :] >= rel[:, None]) & (div[None, :] >= div[:, None])
    better = (rel[None, :] > rel[:, None]) | (div[None, :] > div[:, None])
    return ~np.any(at_least & better, axis=1)  # (a sweep has tens of points: n x n is small)


def knee_index(relevance: npt.ArrayLike, diversity: npt.ArrayLike, lambdas: npt.ArrayLike) -> int:
    """The index of the suggested knee (module docstring): always a frontier point."""
    rel = np.asarray(relevance, dtype=np.float64)
    div = np.asarray(diversity, dtype=np.float64)
    lam = np.asarray(lambdas, dtype=np.float64)
    front = np.flatnonzero(pareto_flags(rel, div))

    def scaled(values: Values) -> Values:
        low, high = values.min(), values.max()
        return (values - low) / (high - low) if high > low else np.zeros_like(values)

    # Ends of the frontier are (diversity 0, relevance 1) and (1, 0) once scaled: the distance to
    # the line joining them grows with relevance + diversity.
    gain = scaled(rel[front]) + scaled(div[front])
    best = np.flatnonzero(np.isclose(gain, gain.max(), rtol=0.0, atol=1e-12))
    return int(front[best[np.argmax(lam[front[best]])]])


@dataclass(frozen=True)
class FrontierPoint:
    lambda_: float
    relevance: float
    diversity: float
    pareto: bool
    knee: bool
    estimate: dict[str, float] | None = None
    """With an off-policy relevance: its 95% interval (``low``, ``high``) and effective sample size."""

    def as_json(self) -> dict[str, Any]:
        point = {
            "lambda": self.lambda_,
            "relevance": self.relevance,
            "diversity": self.diversity,
            "pareto": self.pareto,
            "knee": self.knee,
        }
        return point if self.estimate is None else {**point, **self.estimate}


def frontier(lambdas: list[float], relevance: list[float], diversity: list[float]) -> list[FrontierPoint]:
    """The sweep's points with their ``pareto`` and ``knee`` marks."""
    flags = pareto_flags(relevance, diversity)
    knee = knee_index(relevance, diversity, lambdas)
    return [
        FrontierPoint(lam, rel, div, bool(flag), number == knee)
        for number, (lam, rel, div, flag) in enumerate(zip(lambdas, relevance, diversity, flags, strict=True))
    ]


def ranked_figures(
    scores: Values,
    grades: npt.NDArray[Any],
    traits: ListTraits,
    lambda_: float,
    *,
    top_k: int | None,
    k: int,
) -> tuple[float, float]:
    """Mean NDCG@``k`` (against ``grades``) and mean ``diversity_discounted`` of every list of
    ``traits`` ranked by MMR at ``lambda_`` on ``scores``, as rank ranks them (``k`` must not
    exceed ``top_k``: a cut list shows nothing past it)."""
    if top_k is not None and k > top_k:
        raise ValueError(f"NDCG@{k} of lists cut to {top_k} items")
    from recctl.diversity import mmr_many
    from recctl.metrics import ndcg

    ranked = mmr_many(scores, traits, lambda_=lambda_, top_k=top_k)
    # Each list in rank order, the items a --top-k cut leaves out after the returned ones: NDCG@k
    # (k <= top_k) then judges the returned items against the ideal of the whole list.
    kept = np.array([len(order) for order in ranked.orders], dtype=np.int64)
    returned = np.repeat(traits.starts, kept) + np.fromiter(
        (item for order in ranked.orders for item in order), dtype=np.int64, count=int(kept.sum())
    )
    left_out = np.ones(int(traits.sizes.sum()), dtype=bool)
    left_out[returned] = False
    rest = np.flatnonzero(left_out)
    list_of_row = np.repeat(np.arange(len(traits.sizes), dtype=np.int64), traits.sizes)
    candidates = np.concatenate([returned, rest])
    after = np.concatenate([np.zeros(len(returned), dtype=np.int64), np.ones(len(rest), dtype=np.int64)])
    order_rows = candidates[np.lexsort((after, list_of_row[candidates]))]  # stable: rank order kept
    relevance = ndcg(
        np.asarray(grades)[order_rows], -np.arange(len(order_rows), dtype=np.float64), traits.sizes, k
    ).mean
    return float(relevance), float(np.mean(ranked.diversity_discounted))


RELEVANCE_SOURCES = ("labels", "grades", "off-policy")


@dataclass(frozen=True)
class TuneReport:
    """A lambda sweep over a window's lists: the frontier and what it was measured on."""

    points: list[FrontierPoint]
    relevance: str
    """What relevance is: ``ndcg@K`` against the logged labels or the grades, or the off-policy
    estimate (``<estimator> <reward> per list``)."""
    lists: int
    rows: int
    model_version: str
    top_k: int | None
    grades: dict[str, Any] | None = None

    @property
    def knee(self) -> FrontierPoint:
        return next(point for point in self.points if point.knee)

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "tuned",
            "relevance": self.relevance,
            "diversity": "diversity_discounted",
            "lists": self.lists,
            "rows": self.rows,
            "model_version": self.model_version,
            "top_k": self.top_k,
            "grades": self.grades,
            "knee": self.knee.lambda_,
            "points": [point.as_json() for point in self.points],
        }


def tune_store(
    store: Any,
    window: Any,
    model_path: Any,
    lambdas: list[float],
    *,
    top_k: int | None = None,
    k: int = 10,
    judgments: Any = None,
    off_policy: str | None = None,
    reward: str = "click",
    min_interactions: int = 0,
    attribution_hours: float | None = None,
    seed: int = 0,
) -> TuneReport:
    """Sweep ``lambdas`` over the lists ``store`` served in ``window`` (module docstring), ranked
    with the model at ``model_path``. Relevance is NDCG@``k`` against the logged labels, or
    against ``judgments`` (:class:`recctl.evaluation.Judgments`), or, with ``off_policy`` (an
    estimator's name), that estimate of the target's ``reward`` per list. Raises
    :class:`~recctl.errors.ModelError` for an unusable model, :class:`InsufficientDataError`
    when the window has no list, and the off-policy estimators' errors."""
    import polars as pl

    from recctl import defaults
    from recctl.diversity import EXACT_FIELDS, SET_FIELDS, list_traits_of
    from recctl.errors import InsufficientDataError
    from recctl.model import load_bundle
    from recctl.training import score
    from recctl.training_data import data_from_store

    hours = defaults.ATTRIBUTION_HOURS if attribution_hours is None else attribution_hours
    load_bundle(model_path)  # an unusable model fails before the data is read
    training = data_from_store(store, window, min_interactions=min_interactions, attribution_hours=hours)
    data = training.data
    matched = None
    if judgments is not None:
        data, matched = judgments.apply(data)
    if data.num_groups == 0 or data.recommendation_ids is None:
        raise InsufficientDataError("the window has no served list to rank")
    bundle = load_bundle(model_path, known_features=data.feature_names)
    scores = score(bundle.booster(), data.select_features(bundle.feature_names))
    catalog = store.read("recommendations", columns=["recommendation_id", *EXACT_FIELDS, *SET_FIELDS]).unique(
        "recommendation_id", keep="first"
    )
    rows = pl.DataFrame({"recommendation_id": pl.Series(data.recommendation_ids, dtype=pl.String)})
    traits = list_traits_of(
        rows.join(catalog, on="recommendation_id", how="left", maintain_order="left"),
        data.group_sizes.tolist(),
    )
    cut = min(k, top_k) if top_k is not None else k
    relevance, diversity = [], []
    for lambda_ in lambdas:
        ndcg_value, spread = ranked_figures(scores, data.grades, traits, lambda_, top_k=top_k, k=cut)
        relevance.append(ndcg_value)
        diversity.append(spread)
    label = f"ndcg@{cut} ({'grades' if judgments is not None else 'logged labels'})"
    points = frontier(lambdas, relevance, diversity)
    if off_policy is not None:
        estimates = _off_policy_relevance(
            store, window, model_path, lambdas, top_k, off_policy, reward, hours, seed
        )
        label = f"{off_policy} estimate of {reward}s per list"
        marked = frontier(lambdas, [estimate.value for estimate in estimates], diversity)
        points = [
            dataclasses.replace(point, estimate={"low": e.low, "high": e.high, "ess": e.ess})
            for point, e in zip(marked, estimates, strict=True)
        ]
    return TuneReport(
        points=points,
        relevance=label,
        lists=data.num_groups,
        rows=data.num_rows,
        model_version=bundle.version,
        top_k=top_k,
        grades=matched,
    )


def _off_policy_relevance(
    store: Any,
    window: Any,
    model_path: Any,
    lambdas: list[float],
    top_k: int | None,
    estimator: str,
    reward: str,
    attribution_hours: float,
    seed: int,
) -> list[Any]:
    """Per lambda, ``estimator``'s :class:`~recctl.off_policy.Estimate` of the deterministic MMR
    policy's ``reward`` per list (value, 95% interval, effective sample size)."""
    from recctl.policy_evaluation import Target, evaluate_off_policy
    from recctl.ranking import Ranker, RankOptions
    from recctl.served import read_served

    served = read_served(store, window, attribution_hours=attribution_hours)
    ranker = Ranker(model_path, require_model=True)
    values = []
    for lambda_ in lambdas:
        target = Target(f"lambda {lambda_}", ranker, RankOptions(lambda_=lambda_, top_k=top_k), seed)
        report = evaluate_off_policy(
            served, target, reward=reward, estimators=[estimator], resamples=200, seed=seed
        )
        values.append(report.estimates[estimator])
    return values
