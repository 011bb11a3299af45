"""Ranking metrics: NDCG@k over query groups, with LightGBM's convention, and bootstrap intervals.

Everything is vectorised over all groups at once: one stable sort of the whole score vector (groups
are kept as contiguous blocks), then per-group sums with :func:`numpy.bincount`. There is no Python
loop per group, so NDCG@10 over 100,000 groups of ten items takes a fraction of a second.

The convention is LightGBM's ``ndcg`` metric, so ``ndcg(grades, booster.predict(X), sizes, k)``
equals the value LightGBM reports for the same data (to floating-point rounding):

* gain ``2**grade - 1``; discount ``1 / log2(rank + 1)`` with ``rank`` 1-based;
* items ordered by score, highest first; equal scores keep their input order (a stable sort);
* the ideal DCG orders the same group by grade, highest first;
* only the first ``k`` ranks count; a group shorter than ``k`` counts all of its items;
* a group with no relevant item (every grade 0, so the ideal DCG is 0) scores 1.0. Such groups are
  counted in :attr:`NdcgReport.groups_without_relevant`, because they lift the mean: a data set where
  many groups have nothing relevant looks better than it ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["NdcgReport", "bootstrap_interval", "ndcg", "random_scores"]

# Bound on the size of one block of the bootstrap index matrix (elements, i.e. 8 bytes each).
_BOOTSTRAP_BLOCK = 1 << 22
# The padded NDCG kernel is used while (groups x longest group) <= this x rows (+ a little).
_PADDING_FACTOR = 2


@dataclass(frozen=True, eq=False)
class NdcgReport:
    """NDCG@k of one scoring of a data set.

    Attributes
    ----------
    mean
        Mean of :attr:`per_group` (every group weighs the same, as in LightGBM).
    per_group
        NDCG@k of each group, in group order (read-only).
    groups
        Number of groups.
    groups_without_relevant
        Groups whose grades are all 0; each scored 1.0 and is part of :attr:`mean`.
    """

    mean: float
    per_group: npt.NDArray[np.float64]
    groups: int
    groups_without_relevant: int


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def _validated(
    grades: npt.ArrayLike, scores: npt.ArrayLike, group_sizes: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    grade_values = np.asarray(grades)
    score_values = np.asarray(scores, dtype=np.float64)
    size_values = np.asarray(group_sizes)
    if grade_values.ndim != 1 or score_values.ndim != 1 or size_values.ndim != 1:
        raise ValueError("grades, scores and group_sizes must be 1-D arrays")
    if grade_values.shape != score_values.shape:
        raise ValueError(
            f"grades and scores differ in length ({grade_values.shape[0]} != {score_values.shape[0]})"
        )
    integral_sizes = np.issubdtype(size_values.dtype, np.integer) or (
        np.issubdtype(size_values.dtype, np.floating) and bool(np.all(size_values == np.round(size_values)))
    )
    if size_values.size and not integral_sizes:
        raise ValueError("group_sizes must be integers")
    size_values = size_values.astype(np.int64)
    if np.any(size_values < 1):
        raise ValueError("every group size must be at least 1")
    if int(size_values.sum()) != grade_values.shape[0]:
        raise ValueError(
            f"group sizes add up to {int(size_values.sum())}, but there are {grade_values.shape[0]} rows"
        )
    if not (np.issubdtype(grade_values.dtype, np.integer) or np.issubdtype(grade_values.dtype, np.floating)):
        raise ValueError(f"grades must be numbers, got dtype {grade_values.dtype}")
    grade_floats = grade_values.astype(np.float64)
    if grade_floats.size and (
        not np.all(np.isfinite(grade_floats))
        or np.any(grade_floats < 0)
        or np.any(grade_floats != np.floor(grade_floats))
    ):
        raise ValueError("grades must be non-negative integers")
    if np.any(np.isnan(score_values)):
        raise ValueError(f"scores contain {int(np.isnan(score_values).sum())} NaN value(s)")
    return grade_floats, score_values, size_values


def _discounts(length: int) -> npt.NDArray[np.float64]:
    """``1 / log2(rank + 1)`` for ranks 1..length, multiplied in as LightGBM does."""
    return 1.0 / np.log2(np.arange(length, dtype=np.float64) + 2.0)


def _dcg_padded(
    gains: npt.NDArray[np.float64],
    scores: npt.NDArray[np.float64],
    sizes: npt.NDArray[np.int64],
    row_group: npt.NDArray[np.int64],
    row_slot: npt.NDArray[np.int64],
    k: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """DCG@k and ideal DCG@k with one row per group in a (groups, longest group) matrix.

    Padding has gain 0 and score -inf and sits after the group's real items, so a stable sort keeps
    it behind every real item (even one scored -inf) and it never adds to a DCG.
    """
    width = int(sizes.max())
    cut = min(k, width)
    gain_matrix = np.zeros((sizes.size, width), dtype=np.float64)
    gain_matrix[row_group, row_slot] = gains
    negated_scores = np.full((sizes.size, width), np.inf, dtype=np.float64)
    negated_scores[row_group, row_slot] = -scores
    by_score = np.argsort(negated_scores, axis=1, kind="stable")[:, :cut]
    discounts = _discounts(cut)
    dcg = np.take_along_axis(gain_matrix, by_score, axis=1) @ discounts
    ideal = -np.sort(-gain_matrix, axis=1)[:, :cut] @ discounts
    return dcg, ideal


def _dcg_flat(
    gains: npt.NDArray[np.float64],
    scores: npt.NDArray[np.float64],
    sizes: npt.NDArray[np.int64],
    row_group: npt.NDArray[np.int64],
    row_slot: npt.NDArray[np.int64],
    k: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """DCG@k and ideal DCG@k on the flat row vector: for very unequal group sizes, where padding costs."""
    # lexsort is stable: rows stay in their contiguous group block (primary key) and equal scores
    # keep their input order (secondary key, negated for descending order).
    by_score = np.lexsort((-scores, row_group))
    by_grade = np.lexsort((-gains, row_group))
    in_cut = row_slot < k
    discounts = _discounts(min(k, int(sizes.max())))[row_slot[in_cut]]
    weights = discounts * gains[by_score][in_cut]
    ideal_weights = discounts * gains[by_grade][in_cut]
    # With weights, bincount sums float64 (its stub says integers).
    dcg = np.asarray(np.bincount(row_group[in_cut], weights=weights, minlength=sizes.size), np.float64)
    ideal = np.asarray(
        np.bincount(row_group[in_cut], weights=ideal_weights, minlength=sizes.size), np.float64
    )
    return dcg, ideal


def _ndcg_kernel(
    grade_values: npt.NDArray[np.float64],
    score_values: npt.NDArray[np.float64],
    sizes: npt.NDArray[np.int64],
    k: int,
    gain_weights: npt.NDArray[np.float64] | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Per-group NDCG@k of validated inputs, and which groups have a relevant item.

    Items are ordered by score with equal scores in input order, as LightGBM's ``std::stable_sort``
    does. Groups of similar sizes are sorted row-wise in a padded matrix (fast); when padding would
    more than double the data, the flat path sorts the whole vector once instead.
    """
    groups = sizes.size
    if groups == 0:
        return np.zeros(0, dtype=np.float64), np.zeros(0, dtype=np.bool_)
    row_group = np.repeat(np.arange(groups, dtype=np.int64), sizes)
    starts = np.cumsum(sizes) - sizes
    row_slot = np.arange(row_group.size, dtype=np.int64) - np.repeat(starts, sizes)
    gains = np.exp2(grade_values) - 1.0
    if gain_weights is not None:
        gains = gains * gain_weights
    padded_cells = groups * int(sizes.max())
    dcg_of = _dcg_padded if padded_cells <= _PADDING_FACTOR * row_group.size + 1024 else _dcg_flat
    dcg, ideal = dcg_of(gains, score_values, sizes, row_group, row_slot, k)
    relevant = ideal > 0
    per_group = np.ones(groups, dtype=np.float64)
    per_group[relevant] = dcg[relevant] / ideal[relevant]
    return per_group, relevant


def ndcg(
    grades: npt.ArrayLike,
    scores: npt.ArrayLike,
    group_sizes: npt.ArrayLike,
    k: int,
    *,
    gain_weights: npt.ArrayLike | None = None,
) -> NdcgReport:
    r"""NDCG@k of a scored data set: the mean over groups, each group's value, and the no-relevant count.

    Vectorised over all groups. For one group ordered by ``scores`` (highest first, ties in input
    order),

    .. math::

        \mathrm{DCG@k} = \sum_{r=1}^{\min(k, n)} \frac{2^{g_r} - 1}{\log_2(r + 1)}, \qquad
        \mathrm{NDCG@k} = \frac{\mathrm{DCG@k}}{\mathrm{IDCG@k}}

    where ``g_r`` is the grade at rank ``r`` and IDCG@k is the DCG@k of the grades sorted in
    descending order. A group with IDCG@k = 0 (no grade above 0) scores 1.0. This is LightGBM's
    ``ndcg`` metric (default ``label_gain``).

    Parameters
    ----------
    grades
        Relevance grade of every row: non-negative integers (any numeric dtype).
    scores
        Model score of every row; higher ranks first. Infinite values are allowed, NaN is not.
    group_sizes
        Number of rows of each group; rows of a group are contiguous and groups follow each other in
        this order. Every size is at least 1 and the sizes add up to the number of rows.
    k
        Cut-off, at least 1. A ``k`` beyond a group's length counts the whole group.
    gain_weights
        Optional weight of every row's gain (finite, >= 0), in the DCG and in the ideal DCG alike:
        with inverse examination propensities this is the self-normalised IPS estimate of NDCG
        from position-biased clicks. None: every weight is 1 (the plain NDCG above).

    Returns
    -------
    NdcgReport
        The mean, and :attr:`NdcgReport.per_group`: one NDCG@k in [0, 1] per group, in group order.

    Raises
    ------
    ValueError
        On arrays that are not 1-D or differ in length, sizes that do not add up, negative or
        fractional grades, NaN scores, ``k < 1``, or no groups at all.

    Examples
    --------
    >>> report = ndcg([2, 0, 1, 0, 0], [0.9, 0.1, 0.2, 0.3, 0.4], [2, 3], k=3)
    >>> round(report.mean, 4), report.groups, report.groups_without_relevant
    (0.75, 2, 0)
    >>> report.per_group.round(4)
    array([1. , 0.5])

    Equal scores keep input order, so the first group ranks its grade-0 item first; the second
    group has no relevant item and scores 1.0:

    >>> ndcg([0, 3, 0, 0], [1.0, 1.0, 0.5, 0.1], [2, 2], k=10).per_group.round(4)
    array([0.6309, 1.    ])
    """
    _check_k(k)
    validated = _validated(grades, scores, group_sizes)
    weights = None
    if gain_weights is not None:
        weights = np.asarray(gain_weights, dtype=np.float64)
        if weights.shape != validated[0].shape or not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError("gain_weights must be finite, >= 0 and one per row")
    per_group, relevant = _ndcg_kernel(*validated, k, weights)
    if per_group.size == 0:
        raise ValueError("NDCG needs at least one query group")
    per_group.setflags(write=False)
    return NdcgReport(
        mean=float(per_group.mean()),
        per_group=per_group,
        groups=int(per_group.size),
        groups_without_relevant=int(np.count_nonzero(~relevant)),
    )


def bootstrap_interval(
    per_group: npt.ArrayLike, *, resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of per-group values.

    Draws ``resamples`` samples of the groups with replacement (each as large as the data), takes the
    mean of each, and returns the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of
    those means. Resampling is by group, the unit that is independent. The index matrix of shape
    ``(resamples, groups)`` is drawn in blocks of bounded size, so memory stays small for large data.
    The result depends only on the inputs and ``seed``.

    Parameters
    ----------
    per_group
        One value per group (e.g. :attr:`NdcgReport.per_group`); at least one, no NaN.
    resamples
        Number of bootstrap samples, at least 1.
    confidence
        Coverage of the interval, strictly between 0 and 1.
    seed
        Seed of the random generator (:func:`numpy.random.default_rng`).

    Returns
    -------
    tuple[float, float]
        Lower and upper bound. With a single group (or all values equal) both equal that value.

    Raises
    ------
    ValueError
        On an empty or non-1-D input, NaN values, ``resamples < 1`` or ``confidence`` outside (0, 1).

    Examples
    --------
    >>> low, high = bootstrap_interval([0.2, 0.4, 0.6, 0.8, 1.0], resamples=2000, seed=1)
    >>> bool(low < 0.6 < high)
    True
    """
    values = np.asarray(per_group, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("bootstrap_interval needs a non-empty 1-D array of per-group values")
    if np.any(np.isnan(values)):
        raise ValueError("per-group values contain NaN")
    if isinstance(resamples, bool) or not isinstance(resamples, int | np.integer) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence!r}")
    rng = np.random.default_rng(seed)
    groups = values.size
    block = max(1, _BOOTSTRAP_BLOCK // groups)
    means = np.empty(int(resamples), dtype=np.float64)
    index_type = np.int32 if groups < 2**31 else np.int64  # int32 draws are several times faster
    for start in range(0, int(resamples), block):
        stop = min(start + block, int(resamples))
        picks = rng.integers(0, groups, size=(stop - start, groups), dtype=index_type)
        means[start:stop] = values[picks].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def random_scores(n: int, seed: int = 0) -> npt.NDArray[np.float64]:
    """``n`` uniform random scores in [0, 1): the random-order baseline, reproducible for a seed.

    Examples
    --------
    >>> random_scores(3, seed=0).shape
    (3,)
    """
    return np.random.default_rng(seed).random(n)
