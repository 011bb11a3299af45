"""Off-policy estimators for ranked lists: what a target policy would have earned, from logs of another.

A log is ``n`` served lists, each evaluated over its first ``K_l`` slots (``--depth``, at most the
list's length). Arrays are ``(n, K)`` with ``K = max K_l``; ``mask[l, k]`` says slot ``k`` of list
``l`` is evaluated. The reward of a list is ``R_l = sum_k r[l, k]``, and an estimator's value is the
expected reward per list under the target policy. For list ``l`` and slot ``k``, with ``a_{l,k}``
the item the log shows there:

* ``p0[l, k]`` (logged ``prefix_propensity``): the logging policy's probability of the list down to
  slot ``k``; ``q0[l, k]`` (logged ``propensity``): its probability of ``a_{l,k}`` at slot ``k``;
* ``pe[l, k]``, ``qe[l, k]``: the same two probabilities under the target policy; ``occupancy[l, k]``
  the target's probability of filling slot ``k`` at all (1, or 0 beyond its ``top_k``).

The estimators, and what each assumes about how rewards arise (besides *support*: every list or
placement the target can serve, the logger could serve too):

``ips`` (Swaminathan et al. 2017's standard slate IPS)
    ``mean_l  pe[l, K_l-1] / p0[l, K_l-1] * R_l``. Unbiased with no assumption on the rewards
    (within ``--depth``: rewards above the depth do not depend on items below it). Its weights are
    products over the whole list, so its variance is the largest.
``iips`` (independent IPS, Li et al. 2018)
    ``mean_l sum_k qe[l, k] / q0[l, k] * r[l, k]``. Unbiased when the reward at a slot depends only
    on the item and the slot (the position-based click model); biased otherwise, e.g. when users
    stop after a click (cascade).
``rips`` (reward-interaction IPS, McInerney et al. 2020)
    ``mean_l sum_k pe[l, k] / p0[l, k] * r[l, k]``. Unbiased when the reward at slot ``k`` depends
    only on the items at slots ``0..k`` (cascade-like behaviour; the position-based model too).
``dr`` (item-position doubly robust, after Kiyohara et al. 2022 in the item-position form)
    ``mean_l sum_k [ sum_i Pe_l(i, k) rhat_l(i, k) + qe/q0 * (r[l, k] - rhat_l(a_{l,k}, k)) ]``.
    Unbiased under the item-position assumption whatever the reward model ``rhat`` (the weighted
    residual corrects it), and whatever the propensities when ``rhat`` is the true expected reward.
    Its variance is smaller than IIPS's when ``rhat`` is good.
``snips``, ``sniips``, ``snrips`` (self-normalised)
    The weights divided by their mean (per slot for the slot-wise forms, scaled by the target's
    occupancy of the slot). The expected weight is 1 (the occupancy), so these are *consistent*:
    they converge to the true value under their estimator's assumption as lists grow, but they are
    biased in small samples (a ratio of two means). They trade that for a smaller variance and
    values that stay within the rewards' range.

The **effective sample size** of an estimator is Kish's ``(sum w)^2 / sum w^2`` over its weights:
the list weights for ``ips``/``snips``. For the slot-wise estimators it is computed per slot, over
the lists that reach that slot, as a share of those lists (its *efficiency*); the figure reported
is the number of lists times the worst slot's efficiency (a deep slot, with the most variable
weights, usually). Either way it equals the number of lists when the target is the logging
policy, and a figure far below it says the estimate rests on a few lists.

Intervals are percentile bootstrap intervals that resample *groups* (assessments: the lists of one
assessment share its catalog and user, so they are not independent). Every figure is computed from
per-group sums, so one matrix product evaluates every estimator on every resample.

Everything here is numpy on arrays: :mod:`recctl.served` assembles them from a store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "ASSUMPTIONS",
    "ESTIMATORS",
    "Estimate",
    "RewardModelTerms",
    "SlateLog",
    "TargetProbabilities",
    "deterministic_conflicts",
    "estimate",
    "logged_value",
    "needed_propensity",
]

FloatArray = npt.NDArray[np.float64]

ESTIMATORS = ("ips", "snips", "iips", "sniips", "rips", "snrips", "dr")
"""Every estimator :func:`estimate` knows, in report order."""

ASSUMPTIONS = {
    "ips": "none beyond support",
    "snips": "none beyond support; self-normalised: consistent, biased in small samples",
    "iips": "item-position: a slot's reward depends only on its item and the slot",
    "sniips": "item-position; self-normalised: consistent, biased in small samples",
    "rips": "cascade: a slot's reward depends only on the items at it and above it",
    "snrips": "cascade; self-normalised: consistent, biased in small samples",
    "dr": "item-position, or a correct reward model",
}
"""What each estimator needs of the rewards to be unbiased (besides support)."""

_PREFIX_ESTIMATORS = ("ips", "snips", "rips", "snrips")
_MARGINAL_ESTIMATORS = ("iips", "sniips", "dr")
#: A logged probability this close to 1 is a deterministic choice.
_CERTAIN = 1.0 - 1e-9


def needed_propensity(name: str) -> str:
    """The logged field an estimator's weights need: ``prefix_propensity`` or ``propensity``."""
    if name in _PREFIX_ESTIMATORS:
        return "prefix_propensity"
    if name in _MARGINAL_ESTIMATORS:
        return "propensity"
    raise ValueError(f"unknown estimator {name!r}; known: {', '.join(ESTIMATORS)}")


@dataclass(frozen=True)
class SlateLog:
    """Logged lists as ``(n, K)`` arrays (see the module docstring).

    ``rewards`` are 0 and propensities 1 where ``mask`` is False. ``groups`` numbers each list's
    bootstrap cluster (its assessment) ``0..G-1``. A propensity array is None when the log does not
    carry it. ``frequency`` optionally counts each list more than once (a frequency weight: a log
    with a list twice is the log with that list at weight 2); the exact tests use it to weight every
    possible outcome by its probability.
    """

    rewards: FloatArray
    mask: npt.NDArray[np.bool_]
    groups: npt.NDArray[np.int64]
    prefix_propensity: FloatArray | None = None
    propensity: FloatArray | None = None
    frequency: FloatArray | None = None

    @property
    def lists(self) -> int:
        return int(self.rewards.shape[0])

    def last_slot(self) -> npt.NDArray[np.int64]:
        """Each list's last evaluated slot (``K_l - 1``; -1 for a list with none)."""
        return self.mask.sum(axis=1).astype(np.int64) - 1


@dataclass(frozen=True)
class TargetProbabilities:
    """The target policy's probabilities of what the log shows, ``(n, K)`` each.

    ``prefix``: P_target(the logged list down to slot k); ``marginal``: P_target(the logged item at
    slot k); ``occupancy``: P_target(slot k is filled at all). Either of the first two may be None
    when not computed (the estimators needing it cannot run).
    """

    occupancy: FloatArray
    prefix: FloatArray | None = None
    marginal: FloatArray | None = None


@dataclass(frozen=True)
class RewardModelTerms:
    """A reward model's part of ``dr``, ``(n, K)`` each: ``direct[l, k] = sum_i Pe_l(i, k) rhat_l(i, k)``
    (its prediction of the target's reward at slot k) and ``logged[l, k] = rhat_l(a_{l,k}, k)``."""

    direct: FloatArray
    logged: FloatArray


@dataclass(frozen=True)
class Estimate:
    """One estimator's value (expected reward per list), 95% bootstrap interval and effective
    sample size."""

    value: float
    low: float
    high: float
    ess: float

    def as_json(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high, "ess": self.ess}


def deterministic_conflicts(logged: FloatArray, target: FloatArray, mask: npt.NDArray[np.bool_]) -> int:
    """How many lists have an evaluated slot the logger filled for certain (probability 1) while the
    target gives that choice less than certainty: the target then serves something the logger never
    could, which no weighting can estimate (no support)."""
    conflict = mask & (logged >= _CERTAIN) & (target < _CERTAIN)
    return int(conflict.any(axis=1).sum())


def estimate(
    log: SlateLog,
    target: TargetProbabilities,
    estimators: Sequence[str] = ESTIMATORS,
    *,
    reward_model: RewardModelTerms | None = None,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Estimate]:
    """Estimate the target's expected reward per list with each of ``estimators``.

    Parameters
    ----------
    log, target
        The logged lists and the target's probabilities of them (see the classes).
    estimators
        Names from :data:`ESTIMATORS`. Each needs the logged and target probabilities of its kind
        (:func:`needed_propensity`); ``dr`` also needs ``reward_model``.
    resamples
        Bootstrap resamples of the groups for the intervals (0: the intervals are the value).
    seed, confidence
        The bootstrap's seed and coverage.

    Returns
    -------
    dict
        name -> :class:`Estimate`, in the order asked.

    Raises
    ------
    ValueError
        On an unknown estimator, or one whose inputs are missing.
    """
    terms = _Terms(log, target, reward_model)
    columns: list[FloatArray] = []
    plans: dict[str, tuple[slice, Callable[[FloatArray], FloatArray]]] = {}
    for name in estimators:
        sums, combine = terms.plan(name)
        plans[name] = (slice(len(columns), len(columns) + len(sums)), combine)
        columns.extend(sums)
    stats = np.column_stack([terms.lists_column(), *columns])  # (n, 1 + S), one row per list
    frequency = log.frequency if log.frequency is not None else np.ones(log.lists)
    by_group = _group_sums(stats * frequency[:, None], log.groups)
    totals = by_group.sum(axis=0, keepdims=True)
    resampled = _bootstrap_totals(by_group, resamples, seed)
    tail = (1.0 - confidence) / 2.0
    results = {}
    for name, (part, combine) in plans.items():
        value = float(combine(_with_lists(totals, part))[0])
        if resampled is None:
            low = high = value
        else:
            draws = combine(_with_lists(resampled, part))
            low, high = (float(bound) for bound in np.quantile(draws, [tail, 1.0 - tail]))
        results[name] = Estimate(value, low, high, terms.ess(name, frequency))
    return results


def logged_value(
    log: SlateLog, *, resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> Estimate:
    """The logging policy's own average reward per list, with its bootstrap interval (ESS: the lists)."""
    probabilities = TargetProbabilities(log.mask.astype(np.float64))
    return estimate(log, probabilities, ["logged"], resamples=resamples, seed=seed, confidence=confidence)[
        "logged"
    ]


def _with_lists(totals: FloatArray, part: slice) -> FloatArray:
    """Column 0 (the number of lists) beside an estimator's own columns."""
    return np.column_stack([totals[:, 0], totals[:, part.start + 1 : part.stop + 1]])


class _Terms:
    """Per-list sums that each estimator's value is a function of (after summing over lists)."""

    def __init__(self, log: SlateLog, target: TargetProbabilities, reward_model: RewardModelTerms | None):
        self.log = log
        self.target = target
        self.reward_model = reward_model
        self.mask = log.mask
        self.rewards = np.where(log.mask, log.rewards, 0.0)

    def lists_column(self) -> FloatArray:
        return np.ones(self.log.lists)

    def list_weights(self) -> FloatArray:
        """``pe / p0`` at each list's last evaluated slot (0 for a list with none)."""
        ratio = self.slot_weights("prefix")
        last = self.log.last_slot()
        rows = np.arange(self.log.lists)
        return np.where(last >= 0, ratio[rows, np.maximum(last, 0)], 0.0)

    def slot_weights(self, kind: str) -> FloatArray:
        if kind == "prefix":
            logged, target = self.log.prefix_propensity, self.target.prefix
            field = "prefix_propensity"
        else:
            logged, target = self.log.propensity, self.target.marginal
            field = "propensity"
        if logged is None:
            raise ValueError(f"the log carries no {field}")
        if target is None:
            raise ValueError(f"the target's {kind} probabilities are missing")
        safe = np.where(self.mask, logged, 1.0)
        return np.where(self.mask, target / safe, 0.0)

    def plan(self, name: str) -> tuple[list[FloatArray], Callable[[FloatArray], FloatArray]]:
        """The per-list columns an estimator sums, and how its value follows from the totals
        (column 0 of the totals is the number of lists, then the estimator's own columns)."""
        reward = self.rewards
        if name == "logged":
            return [reward.sum(axis=1)], _mean
        if name == "ips":
            return [self.list_weights() * reward.sum(axis=1)], _mean
        if name == "snips":
            weights = self.list_weights()
            return [weights * reward.sum(axis=1), weights], _ratio
        if name in ("iips", "rips"):
            weights = self.slot_weights("marginal" if name == "iips" else "prefix")
            return [(weights * reward).sum(axis=1)], _mean
        if name in ("sniips", "snrips"):
            weights = self.slot_weights("marginal" if name == "sniips" else "prefix")
            occupancy = np.where(self.mask, self.target.occupancy, 0.0)
            slots = reward.shape[1]
            columns = [*(weights * reward).T, *weights.T, *occupancy.T]
            return columns, lambda totals: _slotwise_ratio(totals, slots)
        if name == "dr":
            if self.reward_model is None:
                raise ValueError("dr needs a reward model")
            weights = self.slot_weights("marginal")
            model = self.reward_model
            direct = np.where(self.mask, model.direct, 0.0)
            corrected = direct + weights * (reward - np.where(self.mask, model.logged, 0.0))
            return [corrected.sum(axis=1)], _mean
        raise ValueError(f"unknown estimator {name!r}; known: {', '.join(ESTIMATORS)}")

    def ess(self, name: str, frequency: FloatArray) -> float:
        if name == "logged":
            return float(frequency.sum())
        if name in ("ips", "snips"):
            return _kish(self.list_weights()[:, None], frequency, np.ones((self.log.lists, 1), bool))
        kind = "prefix" if name in ("rips", "snrips") else "marginal"
        occupied = self.mask & (self.target.occupancy > 0)
        return _kish(self.slot_weights(kind), frequency, occupied)


def _mean(totals: FloatArray) -> FloatArray:
    lists = totals[:, 0]
    return np.divide(totals[:, 1], lists, out=np.zeros_like(lists), where=lists > 0)


def _ratio(totals: FloatArray) -> FloatArray:
    weight = totals[:, 2]
    return np.divide(totals[:, 1], weight, out=np.zeros_like(weight), where=weight > 0)


def _slotwise_ratio(totals: FloatArray, slots: int) -> FloatArray:
    """``sum_k occupancy_k / n * (sum w r)_k / (sum w)_k``: per slot, the weighted mean reward
    (0 where no weight) times the share of lists the target fills that slot in."""
    lists = totals[:, [0]]
    weighted = totals[:, 1 : 1 + slots]
    weight = totals[:, 1 + slots : 1 + 2 * slots]
    occupancy = totals[:, 1 + 2 * slots : 1 + 3 * slots]
    mean_reward = np.divide(weighted, weight, out=np.zeros_like(weighted), where=weight > 0)
    share = np.divide(occupancy, lists, out=np.zeros_like(occupancy), where=lists > 0)
    return (mean_reward * share).sum(axis=1)


def _kish(weights: FloatArray, frequency: FloatArray, mask: npt.NDArray[np.bool_]) -> float:
    """Lists x the worst column's efficiency: ``min over columns of [(sum f w)^2 / sum f w^2] / (sum f)``
    over the masked cells, times the number of lists (``sum f``); 0 if no weight anywhere."""
    counted = np.where(mask, weights, 0.0)
    first = (frequency[:, None] * counted).sum(axis=0)
    second = (frequency[:, None] * counted**2).sum(axis=0)
    present = (frequency[:, None] * mask).sum(axis=0)
    used = (present > 0) & (second > 0)
    if not used.any():
        return 0.0
    efficiency = first[used] ** 2 / second[used] / present[used]
    return float(frequency.sum() * np.min(efficiency))


def _group_sums(stats: FloatArray, groups: npt.NDArray[np.int64]) -> FloatArray:
    """Rows of ``stats`` summed per group: ``(G, S)``."""
    count = int(groups.max()) + 1 if groups.size else 0
    out = np.zeros((count, stats.shape[1]))
    for column in range(stats.shape[1]):  # a loop over columns (a few per slot), not rows
        out[:, column] = np.bincount(groups, weights=stats[:, column], minlength=count)
    return out


#: Largest number of (resample, group) counts held at once: 32 MB of float64.
_BOOTSTRAP_BLOCK = 1 << 22


def _bootstrap_totals(by_group: FloatArray, resamples: int, seed: int) -> FloatArray | None:
    """Totals of ``resamples`` bootstrap samples of the groups (drawn with replacement, as many as
    there are): ``(resamples, S)``; None without resamples or groups."""
    groups = by_group.shape[0]
    if resamples < 1 or groups == 0:
        return None
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, by_group.shape[1]))
    block = max(1, _BOOTSTRAP_BLOCK // groups)
    for start in range(0, resamples, block):
        stop = min(start + block, resamples)
        rows = stop - start
        picks = rng.integers(0, groups, size=(rows, groups), dtype=np.int32 if groups < 2**31 else np.int64)
        flat = picks + (np.arange(rows, dtype=picks.dtype) * groups)[:, None]
        counts = np.bincount(flat.ravel(), minlength=rows * groups).reshape(rows, groups)
        out[start:stop] = counts.astype(np.float64) @ by_group
    return out
