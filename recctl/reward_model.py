"""The reward model of the doubly robust estimator: expected reward of an item at a slot, cross-fitted.

``rhat(item, slot)`` is a LightGBM model (binary cross-entropy, so it predicts a probability in
0..1 for a click or implementation, and a mean label for labels) on the item's ranking features
(the ones ``rank`` computes) plus its slot, fitted on every logged (item, slot) of the evaluated
lists. It is **cross-fitted**: the assessments are split at random into ``folds`` folds, and the
prediction for a list comes from the model fitted on the other folds, so no list's own reward
is in the model that corrects it (which would leak it into the direct part and shrink the
residuals dishonestly). Lists of one assessment share a fold.

The model is deliberately small (60 rounds of 31 leaves at learning rate 0.15, 63 histogram bins,
at least 100 rows a leaf), and each fold's model is fitted on at most :data:`MAX_TRAIN_ROWS` of the
other folds' rows (a random sample when there are more): it only has to be roughly right, since
the weighted residuals of ``dr`` correct it, and it must be fast on a million logged items. The
predictions the direct part needs are made only for the (item, slot) pairs the target can serve
(target probability > 0): ``n`` pairs a list for a deterministic target, ``n x slots`` for a
randomised one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["REWARD_MODEL_PARAMS", "RewardModelFit", "cross_fitted_terms"]

REWARD_MODEL_PARAMS: dict[str, Any] = {
    "objective": "cross_entropy",
    "learning_rate": 0.15,
    "num_leaves": 31,
    "max_bin": 63,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "verbose": -1,
    "deterministic": True,
    # One thread: the fit is bounded (MAX_TRAIN_ROWS), and OpenMP threads that wait on a busy
    # machine cost far more than they save (measured: 200k rows x 90 features, 20 s on one
    # thread, 32 s on two while other work ran).
    "num_threads": 1,
}
REWARD_MODEL_ROUNDS = 60
MAX_TRAIN_ROWS = 100_000
"""Rows each fold's model is fitted on, at most (a random sample of the other folds' rows beyond)."""
_PREDICT_CHUNK = 500_000


@dataclass(frozen=True)
class RewardModelFit:
    """What was fitted: ``folds`` models on ``rows`` logged (item, slot) rows, ``pairs`` predictions
    for the direct part."""

    folds: int
    rows: int
    pairs: int

    def as_json(self) -> dict[str, Any]:
        return {
            "model": "lightgbm cross_entropy on the ranking features and the slot",
            "folds": self.folds,
            "rows": self.rows,
            "rounds": REWARD_MODEL_ROUNDS,
            "predictions": self.pairs,
        }


def cross_fitted_terms(
    features: npt.NDArray[np.float32],
    starts: npt.NDArray[np.int64],
    groups: npt.NDArray[np.int64],
    logged_rows: npt.NDArray[np.int64],
    rewards: npt.NDArray[np.float64],
    mask: npt.NDArray[np.bool_],
    marginals: Sequence[npt.NDArray[np.float64]],
    *,
    folds: int = 2,
    seed: int = 0,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], RewardModelFit]:
    """The ``direct`` and ``logged`` terms of :class:`recctl.off_policy.RewardModelTerms`.

    Parameters
    ----------
    features
        ``(rows, F)``: every item's features, lists contiguous (list ``l`` starts at ``starts[l]``).
    groups
        ``(n,)`` each list's assessment number (folds keep an assessment together).
    logged_rows, rewards, mask
        ``(n, K)``: the feature row of the logged item at each slot, its reward, and whether the
        slot is evaluated.
    marginals
        Per list an ``(items, slots)`` array, the target's P(item at slot).
    folds
        Cross-fitting folds (at least 2, at most the number of assessments).

    Raises
    ------
    ValueError
        With fewer than two assessments (nothing to cross-fit on).
    """
    import lightgbm

    n, width = mask.shape
    assessments = int(groups.max()) + 1 if groups.size else 0
    if assessments < 2:
        raise ValueError("the reward model needs lists of at least two assessments to cross-fit")
    folds = max(2, min(folds, assessments))
    fold_of_group = np.random.default_rng(seed).permutation(assessments) % folds
    fold_of_list = fold_of_group[groups]
    listed, slot = np.nonzero(mask)
    train_x = _with_slot(features[logged_rows[listed, slot]], slot)
    train_y = rewards[listed, slot]
    train_fold = fold_of_list[listed]

    pair_list, pair_item, pair_slot, pair_weight = _target_pairs(marginals, mask)
    direct = np.zeros(n * width)
    logged = np.zeros((n, width))
    sampler = np.random.default_rng(seed + 1)
    for fold in range(folds):
        fitted = np.flatnonzero(train_fold != fold)
        if len(fitted) > MAX_TRAIN_ROWS:
            fitted = np.sort(sampler.choice(fitted, MAX_TRAIN_ROWS, replace=False))
        params = {**REWARD_MODEL_PARAMS, "seed": seed + fold}
        booster = lightgbm.train(
            params,
            lightgbm.Dataset(train_x[fitted], label=train_y[fitted], free_raw_data=True),
            num_boost_round=REWARD_MODEL_ROUNDS,
        )
        own = train_fold == fold
        logged[listed[own], slot[own]] = _predict(booster, train_x[own])
        in_fold = fold_of_list[pair_list] == fold
        rows = starts[pair_list[in_fold]] + pair_item[in_fold]
        predicted = _predict(booster, _with_slot(features[rows], pair_slot[in_fold]))
        cells = pair_list[in_fold] * width + pair_slot[in_fold]
        direct += np.bincount(cells, weights=pair_weight[in_fold] * predicted, minlength=n * width)
    fit = RewardModelFit(folds=folds, rows=len(train_y), pairs=len(pair_list))
    return direct.reshape(n, width), logged, fit


def _with_slot(features: npt.NDArray[np.float32], slot: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    return np.column_stack([features, slot.astype(np.float32)])


def _predict(booster: Any, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    out = np.empty(len(rows))
    for start in range(0, len(rows), _PREDICT_CHUNK):
        out[start : start + _PREDICT_CHUNK] = booster.predict(rows[start : start + _PREDICT_CHUNK])
    return out


def _target_pairs(
    marginals: Sequence[npt.NDArray[np.float64]], mask: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """(list, item, slot, probability) of every evaluated slot's placement the target can make,
    gathered per list size (a loop over sizes, not lists)."""
    evaluated = mask.sum(axis=1)
    sizes = np.array([len(m) for m in marginals], dtype=np.int64)
    parts: list[tuple[Any, ...]] = []
    for size in np.unique(sizes):
        members = np.flatnonzero(sizes == size)
        stacked = np.stack([marginals[index] for index in members.tolist()])  # (m, size, slots)
        slots = min(stacked.shape[2], mask.shape[1])
        stacked = (
            stacked[:, :, :slots] * (np.arange(slots)[None, :] < evaluated[members][:, None])[:, None, :]
        )
        which, item, slot = np.nonzero(stacked > 0)
        parts.append((members[which], item, slot, stacked[which, item, slot]))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0)
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))  # type: ignore[return-value]
