"""Off-policy evaluation of a ranking policy on the served lists of a window.

:func:`evaluate_off_policy` puts the pieces together: the served lists and their rewards
(:mod:`recctl.served`), the target policy's probabilities of what the logs show (from the ranker
itself, :meth:`recctl.ranking.Ranker.policy`: the same code ``rank`` serves with), the reward model
of ``dr`` (:mod:`recctl.reward_model`), and the estimators (:mod:`recctl.off_policy`).

Support is checked before anything is estimated, and failures are :class:`SupportError` (exit 3):

* an estimator whose logged propensity some evaluated list lacks (``iips``/``sniips``/``dr``
  need the marginal ``propensity``, the others ``prefix_propensity``): asked for by name, it is an
  error; by default it is skipped, and the report says why;
* a list logged for certain (propensity 1.0: a deterministic policy) that the target would order
  otherwise: nothing in the logs says what users would have done with the target's list.

The value reported is the expected reward per list over its first ``depth`` slots (the whole list
by default): clicks, implementations, or the sum of the items' labels. A target that fills fewer
slots than the log (``--top-k``) earns nothing below its last slot. A target asked to fill more
slots than the logs show cannot be evaluated there (nothing was observed), which is an error:
``depth`` must stay within the logged lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from recctl.errors import InsufficientDataError
from recctl.off_policy import (
    ASSUMPTIONS,
    ESTIMATORS,
    Estimate,
    RewardModelTerms,
    SlateLog,
    TargetProbabilities,
    deterministic_conflicts,
    estimate,
    logged_value,
    needed_propensity,
)

if TYPE_CHECKING:
    from recctl.dataset import TimeWindow
    from recctl.labels import LabelPolicy
    from recctl.ranking import Ranker, RankOptions
    from recctl.served import ServedLists
    from recctl.stores.base import Store

__all__ = ["OffPolicyReport", "SupportError", "Target", "evaluate_off_policy", "evaluate_store"]


_NO_WEIGHT = "no logged list agrees with the target on the evaluated slots (effective sample size 0)"


class SupportError(InsufficientDataError):
    """The logs cannot support the estimate asked for (missing propensities, deterministic lists the
    target orders otherwise). Exit code 3."""


@dataclass(frozen=True)
class Target:
    """The policy to evaluate: ``ranker`` with ``options`` (its name in reports is ``name``), or
    the logging policy itself (``ranker`` None: every weight is 1, a check of the machinery)."""

    name: str
    ranker: Ranker | None = None
    options: RankOptions | None = None
    seed: int | None = None

    @property
    def is_logged(self) -> bool:
        return self.ranker is None


@dataclass
class OffPolicyReport:
    target: str
    reward: str
    lists: int
    assessments: int
    depth: int | None
    logged: Estimate
    estimates: dict[str, Estimate]
    skipped: dict[str, str] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=dict)
    reward_model: dict[str, Any] | None = None
    policy: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "policy": self.policy,
            "reward": self.reward,
            "depth": self.depth,
            "lists": self.lists,
            "assessments": self.assessments,
            "logged": self.logged.as_json(),
            "estimators": {
                name: {**result.as_json(), "assumption": ASSUMPTIONS[name]}
                for name, result in self.estimates.items()
            },
            "skipped": self.skipped,
            "left_out": self.left_out,
            "reward_model": self.reward_model,
        }


def evaluate_store(
    store: Store,
    window: TimeWindow,
    target: Target,
    *,
    labels: LabelPolicy | None = None,
    attribution_hours: float | None = None,
    **options: Any,
) -> OffPolicyReport:
    """:func:`evaluate_off_policy` on the lists ``store`` served in ``window``
    (:func:`recctl.served.read_served`); ``options`` are :func:`evaluate_off_policy`'s."""
    from recctl import defaults
    from recctl.labels import DEFAULT_POLICY
    from recctl.served import read_served

    served = read_served(
        store,
        window,
        policy=labels or DEFAULT_POLICY,
        attribution_hours=defaults.ATTRIBUTION_HOURS if attribution_hours is None else attribution_hours,
    )
    return evaluate_off_policy(served, target, **options)


def evaluate_off_policy(
    served: ServedLists,
    target: Target,
    *,
    reward: str = "click",
    depth: int | None = None,
    estimators: Sequence[str] | None = None,
    resamples: int = 1000,
    seed: int = 0,
    folds: int = 2,
) -> OffPolicyReport:
    """Estimate ``target``'s expected ``reward`` per list on ``served`` (see the module docstring).

    ``estimators`` None runs every estimator the logs support; named ones must all be supported.
    Raises :class:`SupportError` when the logs cannot support the estimate.
    """
    chosen = list(ESTIMATORS if estimators is None else estimators)
    log = served.slate_log(reward, depth)
    skipped: dict[str, str] = {}
    for name in chosen:
        field_name = needed_propensity(name)
        available = log.prefix_propensity if field_name == "prefix_propensity" else log.propensity
        if available is None:
            lacking = served.lacking(field_name, depth)
            skipped[name] = f"{lacking:,} of {log.lists:,} lists log no {field_name}"
        elif name == "dr" and target.is_logged:
            skipped[name] = "the logging policy's probabilities of the items it did not show are not logged"
    if estimators is not None and skipped:
        name, reason = next(iter(skipped.items()))
        raise SupportError(f"{name} cannot be estimated from these logs: {reason}")
    runnable = [name for name in chosen if name not in skipped]
    if not runnable:
        raise SupportError(
            "no estimator can run on these logs ("
            + "; ".join(f"{name}: {reason}" for name, reason in skipped.items())
            + "): off-policy evaluation needs lists logged by a randomised policy with their propensities"
        )

    needs_marginals = any(needed_propensity(name) == "propensity" for name in runnable)
    if target.is_logged:
        probabilities, marginals = _logged_probabilities(log), None
        policy_name = None
    else:
        probabilities, marginals, policy_name = _target_probabilities(
            served, target, log, depth, marginals=needs_marginals
        )
    _check_support(log, probabilities, runnable, target.name)

    reward_terms = None
    fit_json = None
    if "dr" in runnable:
        assert marginals is not None  # computed above whenever dr runs
        reward_terms, fit_json = _reward_model(served, log, depth, marginals, reward, folds, seed)
    results = estimate(
        log, probabilities, runnable, reward_model=reward_terms, resamples=resamples, seed=seed
    )
    for name in [name for name, result in results.items() if result.ess == 0]:
        if estimators is not None:
            raise SupportError(f"{name} cannot be estimated from these logs: {_NO_WEIGHT}")
        skipped[name] = _NO_WEIGHT
        del results[name]
    if not results:
        raise SupportError(f"no estimator has any support: {_NO_WEIGHT}")
    return OffPolicyReport(
        target=target.name,
        reward=reward,
        lists=log.lists,
        assessments=int(log.groups.max()) + 1 if log.lists else 0,
        depth=depth,
        logged=logged_value(log, resamples=resamples, seed=seed),
        estimates=results,
        skipped=skipped,
        left_out=served.left_out,
        reward_model=fit_json,
        policy=policy_name,
    )


def _logged_probabilities(log: SlateLog) -> TargetProbabilities:
    occupancy = log.mask.astype(np.float64)
    return TargetProbabilities(occupancy, prefix=log.prefix_propensity, marginal=log.propensity)


def _target_probabilities(
    served: ServedLists, target: Target, log: SlateLog, depth: int | None, *, marginals: bool
) -> tuple[TargetProbabilities, list[npt.NDArray[np.float64]] | None, str]:
    """The target's probabilities of the logged lists, from the ranker's own policy."""
    from recctl.exploration import list_seed

    assert target.ranker is not None and target.options is not None
    sizes = served.sizes
    policy = target.ranker.policy(served.featured, sizes, target.options)
    top_k = target.options.top_k
    filled = np.array([min(size, top_k) if top_k is not None else size for size in sizes], dtype=np.int64)
    evaluated = log.mask.sum(axis=1)
    n, width = log.mask.shape
    orders = served.orders(depth)
    cut = np.minimum(evaluated, filled)
    prefix_lists = policy.prefix_probabilities(
        [order[:count] for order, count in zip(orders, cut.tolist(), strict=True)]
    )
    prefix = _padded(prefix_lists, n, width)
    occupancy = (np.arange(width)[None, :] < filled[:, None]).astype(np.float64)
    marginal = None
    per_list = None
    if marginals:
        seeds = [list_seed(target.seed, request_id) for request_id in served.lists["request_id"].to_list()]
        per_list = [np.asarray(m, dtype=np.float64) for m in policy.marginals(seeds)]
        marginal, occupancy = _marginal_arrays(per_list, served.logged_items(depth), width)
    return TargetProbabilities(occupancy, prefix=prefix, marginal=marginal), per_list, policy.name


def _padded(rows: Sequence[npt.ArrayLike], n: int, width: int) -> npt.NDArray[np.float64]:
    """Per-list 1-D arrays (of at most ``width``) as an ``(n, width)`` array padded with 0."""
    out = np.zeros((n, width))
    lengths = np.array([len(np.asarray(row)) for row in rows], dtype=np.int64)
    if lengths.sum():
        flat = np.concatenate([np.asarray(row, dtype=np.float64) for row in rows])
        owner = np.repeat(np.arange(n), lengths)
        slot = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        out[owner, slot] = flat
    return out


def _marginal_arrays(
    per_list: Sequence[npt.NDArray[np.float64]], items: npt.NDArray[np.int64], width: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The target's P(logged item at its slot) and P(slot filled), ``(n, width)`` each, from its
    per-list marginals and the logged item at each slot (``items``, -1 where not evaluated),
    gathered per list size (a loop over sizes and slots)."""
    n = len(per_list)
    marginal = np.zeros((n, width))
    occupancy = np.zeros((n, width))
    sizes = np.array([len(m) for m in per_list], dtype=np.int64)
    for size in np.unique(sizes):
        members = np.flatnonzero(sizes == size)
        stacked = np.stack([per_list[index] for index in members.tolist()])  # (m, size, slots)
        slots = min(stacked.shape[2], width)
        occupancy[members, :slots] = stacked[:, :, :slots].sum(axis=1)
        logged = items[members]
        for slot in range(slots):  # a loop over slots
            shown = logged[:, slot]
            has = shown >= 0
            marginal[members[has], slot] = stacked[np.flatnonzero(has), shown[has], slot]
    return marginal, occupancy


def _check_support(
    log: SlateLog, probabilities: TargetProbabilities, estimators: Sequence[str], target: str
) -> None:
    for field_name, logged, wanted in (
        ("prefix_propensity", log.prefix_propensity, probabilities.prefix),
        ("propensity", log.propensity, probabilities.marginal),
    ):
        if logged is None or wanted is None:
            continue
        if not any(needed_propensity(name) == field_name for name in estimators):
            continue
        conflicts = deterministic_conflicts(logged, wanted, log.mask)
        if conflicts:
            raise SupportError(
                f"{conflicts:,} of {log.lists:,} lists were served for certain (propensity 1.0: a "
                f"deterministic policy) and {target} would order them otherwise: nothing in these logs "
                "says what users would do with its lists; log randomised ones (rank --explore) to evaluate it"
            )


def _reward_model(
    served: ServedLists,
    log: SlateLog,
    depth: int | None,
    marginals: Sequence[npt.NDArray[np.float64]],
    reward: str,
    folds: int,
    seed: int,
) -> tuple[RewardModelTerms, dict[str, Any]]:
    from recctl.features import FEATURE_NAMES, feature_matrix
    from recctl.reward_model import cross_fitted_terms

    features = feature_matrix(served.featured, FEATURE_NAMES).to_numpy().astype(np.float32)
    sizes = np.asarray(served.sizes, dtype=np.int64)
    starts = np.cumsum(sizes) - sizes
    logged_rows = served.logged_rows(depth)
    try:
        direct, logged, fit = cross_fitted_terms(
            features,
            starts,
            log.groups,
            logged_rows,
            log.rewards,
            log.mask,
            marginals,
            folds=folds,
            seed=seed,
        )
    except ValueError as exc:
        raise SupportError(f"dr: {exc}") from None
    return RewardModelTerms(direct=direct, logged=logged), fit.as_json()
