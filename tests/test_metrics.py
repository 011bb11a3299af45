"""NDCG and bootstrap intervals: hand-computed values, LightGBM's own metric, and invariants."""

from __future__ import annotations

import math

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recctl import metrics
from recctl.metrics import NdcgReport, bootstrap_interval, ndcg, random_scores

INV_LOG2_3 = 1.0 / math.log2(3.0)  # discount of rank 2

# --- hand-computed values -----------------------------------------------------------------------------


def test_tied_scores_keep_input_order() -> None:
    # Equal scores: the first row ranks first. [0, 3] puts the relevant item second, [3, 0] first.
    worse = ndcg([0, 3], [1.0, 1.0], [2], k=10).per_group
    better = ndcg([3, 0], [1.0, 1.0], [2], k=10).per_group
    assert worse[0] == pytest.approx(7.0 * INV_LOG2_3 / 7.0)
    assert better[0] == pytest.approx(1.0)


def test_all_zero_group_scores_one_and_is_counted() -> None:
    report = ndcg([0, 0, 0, 1, 0], [0.3, 0.2, 0.1, 0.1, 0.9], [3, 2], k=5)
    assert report.per_group.tolist() == pytest.approx([1.0, INV_LOG2_3])
    assert report.groups == 2
    assert report.groups_without_relevant == 1
    assert report.mean == pytest.approx((1.0 + INV_LOG2_3) / 2)


def test_k_beyond_the_list_counts_the_whole_list() -> None:
    grades, scores = [1, 2, 0], [3.0, 2.0, 1.0]
    dcg = 1.0 + 3.0 * INV_LOG2_3
    ideal = 3.0 + 1.0 * INV_LOG2_3
    assert ndcg(grades, scores, [3], k=10).per_group[0] == pytest.approx(dcg / ideal)
    assert ndcg(grades, scores, [3], k=3).per_group[0] == pytest.approx(dcg / ideal)
    assert ndcg(grades, scores, [3], k=1).per_group[0] == pytest.approx(1.0 / 3.0)


def test_relevant_item_below_the_cut_scores_zero() -> None:
    report = ndcg([0, 0, 1], [3.0, 2.0, 1.0], [3], k=2)
    assert report.per_group.tolist() == [0.0]
    assert report.groups_without_relevant == 0


def test_single_item_groups() -> None:
    report = ndcg([2, 0], [0.1, 0.7], [1, 1], k=10)
    assert report.per_group.tolist() == [1.0, 1.0]
    assert report.groups_without_relevant == 1


def test_values_follow_group_order_and_grade_gain() -> None:
    # Gain is 2**grade - 1: grade 2 (gain 3) first and grade 1 (gain 1) second, versus swapped.
    per_group = ndcg([2, 1, 1, 2], [2.0, 1.0, 2.0, 1.0], [2, 2], k=2).per_group
    swapped = (1.0 + 3.0 * INV_LOG2_3) / (3.0 + 1.0 * INV_LOG2_3)
    assert per_group.tolist() == pytest.approx([1.0, swapped])


def test_report_is_frozen_and_read_only() -> None:
    report = ndcg([1, 0], [0.0, 1.0], [2], k=1)
    assert isinstance(report, NdcgReport)
    with pytest.raises(AttributeError):
        report.mean = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        report.per_group[0] = 1.0


def test_infinite_scores_rank_as_numbers() -> None:
    assert ndcg([0, 1], [-np.inf, np.inf], [2], k=1).per_group[0] == 1.0
    assert ndcg([1, 0], [-np.inf, -np.inf], [2], k=1).per_group[0] == 1.0


@pytest.mark.parametrize(
    ("grades", "scores", "sizes", "k", "message"),
    [
        ([1, 0], [0.5], [2], 1, "differ in length"),
        ([1, 0], [0.5, 0.1], [3], 1, "add up to 3"),
        ([1, 0], [0.5, 0.1], [2, 0], 1, "at least 1"),
        ([1, 0], [0.5, 0.1], [1.5, 0.5], 1, "integers"),
        ([-1, 0], [0.5, 0.1], [2], 1, "non-negative integers"),
        ([0.5, 0], [0.5, 0.1], [2], 1, "non-negative integers"),
        ([np.nan, 0], [0.5, 0.1], [2], 1, "non-negative integers"),
        ([1, 0], [np.nan, 0.1], [2], 1, "NaN"),
        ([[1, 0]], [[0.5, 0.1]], [2], 1, "1-D"),
        (["a", "b"], [0.5, 0.1], [2], 1, "numbers"),
        ([1, 0], [0.5, 0.1], [2], 0, "positive integer"),
        ([1, 0], [0.5, 0.1], [2], True, "positive integer"),
        ([1, 0], [0.5, 0.1], [2], 2.0, "positive integer"),
    ],
)
def test_invalid_input_raises_value_error(
    grades: object, scores: object, sizes: object, k: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ndcg(grades, scores, sizes, k)  # type: ignore[arg-type]


def test_no_groups() -> None:
    with pytest.raises(ValueError, match="at least one query group"):
        ndcg([], [], [], k=3)


def test_float_group_sizes_that_are_whole_numbers_are_accepted() -> None:
    # np.loadtxt reads a LightGBM .query file as floats.
    assert ndcg([1, 0, 1], [1.0, 0.0, 0.0], np.array([2.0, 1.0]), k=1).per_group.tolist() == [1.0, 1.0]


# --- equality with LightGBM's own ndcg metric ---------------------------------------------------------


def _grouped_data(rng: np.random.Generator, groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sizes = rng.integers(1, 25, groups)
    rows = int(sizes.sum())
    # Few distinct feature values and small trees: many items of a group get the same prediction.
    features = rng.integers(0, 4, (rows, 5)).astype(np.float64)
    grades = np.minimum(rng.poisson(np.exp(features[:, 0] - 2.0)), 4)
    no_relevant = rng.random(groups) < 0.2
    grades[np.repeat(no_relevant, sizes)] = 0
    return features, grades, sizes


def test_equals_lightgbm_ndcg_on_train_and_valid() -> None:
    rng = np.random.default_rng(7)
    train_x, train_y, train_sizes = _grouped_data(rng, 300)
    valid_x, valid_y, valid_sizes = _grouped_data(rng, 100)
    params = {
        "objective": "lambdarank",
        "metric": "ndcg",
        "eval_at": [1, 3, 5, 10],
        "num_leaves": 4,
        "min_data_in_leaf": 20,
        "verbose": -1,
        "num_threads": 1,
    }
    train_set = lgb.Dataset(train_x, train_y, group=train_sizes)
    valid_set = lgb.Dataset(valid_x, valid_y, group=valid_sizes, reference=train_set)
    booster = lgb.train(params, train_set, 5, valid_sets=[valid_set], keep_training_booster=True)

    cases = [
        (train_x, train_y, train_sizes, booster.eval_train()),
        (valid_x, valid_y, valid_sizes, booster.eval_valid()),
    ]
    for features, grades, sizes, lightgbm_results in cases:
        scores = np.asarray(booster.predict(features), dtype=np.float64)
        assert len(np.unique(scores)) < len(scores) / 10, "the test needs tied scores"
        assert len(lightgbm_results) == 4
        for result in lightgbm_results:
            metric_name, lightgbm_value = result[1], result[2]
            k = int(metric_name.removeprefix("ndcg@"))
            report = ndcg(grades, scores, sizes, k)
            assert report.groups_without_relevant > 0
            assert abs(report.mean - lightgbm_value) < 1e-9, metric_name
            # Breaking ties the other way (worst grade first) would not match: the ties matter here.
            order = np.lexsort((grades, -scores, np.repeat(np.arange(sizes.size), sizes)))
            pessimistic = ndcg(grades[order], scores[order], sizes, k).mean
            assert abs(pessimistic - lightgbm_value) > 1e-6, metric_name


# --- invariants (hypothesis) --------------------------------------------------------------------------

# A group: (grade, score) pairs; scores from a small set so that ties are common.
_items = st.tuples(st.integers(0, 4), st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0]))
_groups = st.lists(st.lists(_items, min_size=1, max_size=12), min_size=1, max_size=20)


def _arrays(groups: list[list[tuple[int, float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    grades = np.array([grade for group in groups for grade, _ in group], dtype=np.int64)
    scores = np.array([score for group in groups for _, score in group], dtype=np.float64)
    return grades, scores, np.array([len(group) for group in groups], dtype=np.int64)


@given(_groups, st.integers(1, 15))
def test_values_in_unit_interval_and_ideal_order_scores_one(
    groups: list[list[tuple[int, float]]], k: int
) -> None:
    grades, scores, sizes = _arrays(groups)
    report = ndcg(grades, scores, sizes, k)
    assert np.all((report.per_group >= 0.0) & (report.per_group <= 1.0 + 1e-12))
    assert 0.0 <= report.mean <= 1.0 + 1e-12
    assert report.groups == len(groups)
    assert report.groups_without_relevant == sum(all(g == 0 for g, _ in group) for group in groups)
    assert ndcg(grades, grades.astype(np.float64), sizes, k).per_group == pytest.approx(1.0)


@given(_groups, st.integers(1, 15), st.randoms(use_true_random=False))
def test_permutation_with_the_same_stable_order_changes_nothing(
    groups: list[list[tuple[int, float]]], k: int, random: object
) -> None:
    grades, scores, sizes = _arrays(groups)
    expected = ndcg(grades, scores, sizes, k).per_group
    permuted_grades, permuted_scores = grades.copy(), scores.copy()
    start = 0
    for size in sizes:
        block = slice(start, start + size)
        shuffled = list(range(size))
        random.shuffle(shuffled)  # type: ignore[attr-defined]
        new_scores = scores[block][shuffled]
        # Place the grades so that the stable order by score of the shuffled rows lists the same
        # grades as the original stable order: only the rows' positions change, not the ranking.
        original_rank = np.argsort(-scores[block], kind="stable")
        new_rank = np.argsort(-new_scores, kind="stable")
        new_grades = np.empty(size, dtype=grades.dtype)
        new_grades[new_rank] = grades[block][original_rank]
        permuted_grades[block], permuted_scores[block] = new_grades, new_scores
        start += size
    assert ndcg(permuted_grades, permuted_scores, sizes, k).per_group.tolist() == pytest.approx(
        expected.tolist(), abs=1e-12
    )


@given(_groups, st.integers(1, 15))
def test_padded_and_flat_kernels_agree(groups: list[list[tuple[int, float]]], k: int) -> None:
    grades, scores, sizes = _arrays(groups)
    row_group = np.repeat(np.arange(sizes.size), sizes)
    row_slot = np.arange(row_group.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    gains = np.exp2(grades.astype(np.float64)) - 1.0
    padded = metrics._dcg_padded(gains, scores, sizes, row_group, row_slot, k)
    flat = metrics._dcg_flat(gains, scores, sizes, row_group, row_slot, k)
    for padded_values, flat_values in zip(padded, flat, strict=True):
        assert padded_values == pytest.approx(flat_values, rel=1e-12, abs=1e-12)


def test_very_unequal_group_sizes_use_the_flat_kernel_with_the_same_result() -> None:
    rng = np.random.default_rng(3)
    sizes = np.array([2000] + [1] * 50 + [3] * 50)
    grades = rng.integers(0, 3, sizes.sum())
    scores = rng.integers(0, 5, sizes.sum()).astype(np.float64)
    whole = ndcg(grades, scores, sizes, k=10).per_group
    # The same groups one at a time (each evaluated on its own) give the same values.
    starts = np.cumsum(sizes) - sizes
    one_by_one = [
        ndcg(grades[s : s + n], scores[s : s + n], [n], k=10).per_group[0]
        for s, n in zip(starts, sizes, strict=True)
    ]
    assert whole.tolist() == pytest.approx(one_by_one, abs=1e-12)


# --- bootstrap ----------------------------------------------------------------------------------------


def test_bootstrap_contains_the_mean_and_narrows_with_more_groups() -> None:
    rng = np.random.default_rng(11)
    few, many = rng.random(50), rng.random(5000)
    few_low, few_high = bootstrap_interval(few)
    many_low, many_high = bootstrap_interval(many)
    assert few_low < few.mean() < few_high
    assert many_low < many.mean() < many_high
    # Width shrinks like 1/sqrt(groups): 10x narrower for 100x the groups, give or take.
    assert (many_high - many_low) < (few_high - few_low) / 5


def test_bootstrap_is_reproducible_and_independent_of_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    values = np.random.default_rng(5).random(300)
    first = bootstrap_interval(values, resamples=500, seed=9)
    assert bootstrap_interval(values, resamples=500, seed=9) == first
    assert bootstrap_interval(values, resamples=500, seed=10) != first
    monkeypatch.setattr(metrics, "_BOOTSTRAP_BLOCK", 300 * 7)  # blocks of 7 resamples
    assert bootstrap_interval(values, resamples=500, seed=9) == first


def test_bootstrap_confidence_widens_the_interval() -> None:
    values = np.random.default_rng(2).random(200)
    low90, high90 = bootstrap_interval(values, confidence=0.90)
    low99, high99 = bootstrap_interval(values, confidence=0.99)
    assert low99 < low90 < high90 < high99


def test_bootstrap_single_group_and_constant_values() -> None:
    assert bootstrap_interval([0.7]) == (0.7, 0.7)
    assert bootstrap_interval([1.0] * 30) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("values", "options", "message"),
    [
        ([], {}, "non-empty"),
        ([[0.5]], {}, "1-D"),
        ([0.5, np.nan], {}, "NaN"),
        ([0.5], {"resamples": 0}, "resamples"),
        ([0.5], {"confidence": 1.0}, "confidence"),
        ([0.5], {"confidence": 0.0}, "confidence"),
    ],
)
def test_bootstrap_rejects(values: object, options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bootstrap_interval(values, **options)  # type: ignore[arg-type]


# --- score helpers ------------------------------------------------------------------------------------


def test_random_scores() -> None:
    first, again = random_scores(6, seed=1), random_scores(6, seed=1)
    assert first.shape == (6,) and np.array_equal(first, again)
    assert not np.array_equal(first, random_scores(6, seed=2))
    assert np.all((first >= 0.0) & (first < 1.0))


@settings(max_examples=25)
@given(st.integers(1, 200))
def test_random_order_is_never_better_than_ideal(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 10, 30)
    grades = rng.integers(0, 4, sizes.sum())
    random_order = ndcg(grades, random_scores(sizes.sum(), seed), sizes, k=5).per_group
    assert np.all(random_order <= ndcg(grades, grades.astype(np.float64), sizes, k=5).per_group + 1e-12)


def test_docstring_examples_run() -> None:
    import doctest

    import recctl.ltrdata

    for module in (metrics, recctl.ltrdata):
        failures, tried = doctest.testmod(module)
        assert tried > 0 and failures == 0, module.__name__
