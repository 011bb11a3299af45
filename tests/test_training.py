"""Group splits, parameters and gates of training."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from builders import grouped
from hypothesis import given, settings
from hypothesis import strategies as st

from recctl.cli.common import flag
from recctl.errors import InsufficientDataError
from recctl.ltrdata import LtrData
from recctl.training import (
    TimeSplitError,
    TooFewValidationGroupsError,
    check_gate_groups,
    gate_failures,
    parse_param,
    split_groups,
    subset,
    unknown_params,
    validation_group_count,
)


def test_time_split_validates_the_newest_groups_whole() -> None:
    data = grouped([3, 2, 4, 1, 5, 2, 3, 2, 2, 4])
    train, valid = split_groups(data, 0.2, "time", seed=0)
    assert (train == ~valid).all()
    assert valid.tolist() == [False] * 8 + [True, True]
    part = subset(data, valid)
    assert part.group_sizes.tolist() == [2, 4] and len(part.grades) == 6


def test_random_split_is_seeded_and_by_group() -> None:
    data = grouped([2] * 50, with_time=False)
    first = split_groups(data, 0.3, "group-random", seed=1)[1]
    again = split_groups(data, 0.3, "group-random", seed=1)[1]
    other = split_groups(data, 0.3, "group-random", seed=2)[1]
    assert first.sum() == 15 and (first == again).all() and (first != other).any()


def test_time_split_without_times_is_an_error() -> None:
    with pytest.raises(TimeSplitError, match="the time split needs an event_time") as caught:
        split_groups(grouped([2, 2, 2], with_time=False), 0.3, "time", seed=0)
    assert "--" not in str(caught.value)
    assert caught.value.message(flag) == "--split time needs an event_time column; use --split group-random"


def test_too_few_validation_groups_names_its_arguments() -> None:
    check_gate_groups(20, 20)
    with pytest.raises(TooFewValidationGroupsError) as caught:
        check_gate_groups(3, 20)
    assert (caught.value.valid_groups, caught.value.min_valid_groups) == (3, 20)
    assert str(caught.value).endswith("at least 20 are needed: more data or a larger validation split")
    assert caught.value.message(flag).endswith(
        "at least 20 are needed (--min-valid-groups): more data or a larger --validation-split"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("num_leaves=31", ("num_leaves", 31)),
        ("learning_rate=0.1", ("learning_rate", 0.1)),
        ("deterministic=true", ("deterministic", True)),
        ("eval_at=1,3,5", ("eval_at", [1, 3, 5])),
        ("boosting= dart", ("boosting", "dart")),
    ],
)
def test_parse_param(text: str, expected: tuple[str, object]) -> None:
    assert parse_param(text) == expected


def test_parse_param_needs_key_and_value() -> None:
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_param("num_leaves")


def test_gates() -> None:
    metrics = {"valid": {"ndcg@10": 0.8}}
    assert gate_failures(metrics, {"valid": {"ndcg@10": 0.7}}, min_ndcg=0.75, fail_below_baseline=True) == []
    failures = gate_failures(metrics, {"valid": {"ndcg@10": 0.85}}, min_ndcg=0.9, fail_below_baseline=True)
    assert [failure.gate for failure in failures] == ["min_ndcg", "fail_below_baseline"]
    assert [str(failure) for failure in failures] == [
        "valid NDCG@10 0.8000 is below the minimum 0.9000",
        "valid NDCG@10 0.8000 is below the confidence baseline 0.8500",
    ]
    assert failures[0].message(flag) == "valid NDCG@10 0.8000 is below --min-ndcg 0.9000"
    [no_baseline] = gate_failures(metrics, None, min_ndcg=None, fail_below_baseline=True)
    assert no_baseline.reference is None
    assert str(no_baseline) == "the baseline gate needs confidence_score in the data"
    assert no_baseline.message(flag) == "--fail-below-baseline needs confidence_score in the data"


def test_scores_held_by_lightgbm_equal_a_fresh_prediction() -> None:
    """Training metrics come from LightGBM's held scores when they can: they must be the same numbers."""
    from recctl.training import TrainOptions, _scores_at, score, train_model

    rng = np.random.default_rng(4)
    sizes = [10] * 60
    data = LtrData(
        features=rng.normal(size=(600, 5)),
        feature_names=[f"x{i}" for i in range(5)],
        grades=rng.integers(0, 4, 600).astype(np.int32),
        group_sizes=np.array(sizes, dtype=np.int64),
        query_ids=np.array([f"q{i}" for i in range(60)]),
        confidence_score=None,
        event_time=None,
        source="test",
    )
    options = TrainOptions(
        num_boost_round=15,
        early_stopping_rounds=0,
        validation_split=0.25,
        seed=3,
        params={"bagging_fraction": 0.8, "bagging_freq": 1, "min_data_in_leaf": 5},
    )
    result = train_model(data, options)
    train_mask, valid_mask = split_groups(data, 0.25, "group-random", 3)
    for mask, index in ((train_mask, 0), (valid_mask, 1)):
        part = subset(data, mask)
        held = _scores_at(result.booster, result.best_iteration, part, data_index=index)
        assert np.array_equal(held, score(result.booster, part, result.best_iteration))


def test_unknown_params_asks_lightgbm_for_its_names_and_aliases() -> None:
    assert unknown_params(["num_leaves", "num_leaf", "eta", "ndcg_eval_at", "seed"]) == {}
    assert unknown_params(["num_leave", "colour"]) == {"num_leave": "num_leaves", "colour": None}


@settings(max_examples=150, deadline=None)
@given(
    sizes_and_keys=st.lists(st.tuples(st.integers(1, 4), st.integers(0, 5)), min_size=2, max_size=30).filter(
        lambda groups: len({key for _, key in groups}) >= 2
    ),
    share=st.sampled_from([0.1, 0.2, 0.5, 0.9]),
    split=st.sampled_from(["time", "group-random"]),
    seed=st.integers(0, 3),
)
def test_a_split_keeps_every_assessment_on_one_side(
    sizes_and_keys: list[tuple[int, int]], share: float, split: str, seed: int
) -> None:
    sizes = [size for size, _ in sizes_and_keys]
    data = dataclasses.replace(
        grouped(sizes), split_keys=np.array([f"asm-{key}" for _, key in sizes_and_keys])
    )
    train, valid = split_groups(data, share, split, seed)  # type: ignore[arg-type]
    assert not (train & valid).any() and (train | valid).all()
    assert train.any() and valid.any()
    keys = data.split_keys
    assert keys is not None
    assert not set(keys[train]) & set(keys[valid])
    # Keys are added until the validation share is reached, unless only one key would train.
    if len(set(keys[train])) > 1:
        assert valid.sum() >= validation_group_count(len(sizes), share)
    if split == "time":  # group k is day k: every validation assessment's newest group is newer
        newest = {key: day for day, key in enumerate(keys)}
        assert min(newest[key] for key in keys[valid]) > max(newest[key] for key in keys[train])


def test_a_split_of_one_assessment_is_too_little_data() -> None:
    data = dataclasses.replace(grouped([2, 2, 2]), split_keys=np.array(["asm-1"] * 3))
    with pytest.raises(InsufficientDataError, match="one assessment"):
        split_groups(data, 0.3, "group-random", 0)


def test_subset_carries_positions_split_keys_and_recommendation_ids() -> None:
    data = dataclasses.replace(
        grouped([2, 1, 2]),
        position=np.array([0, 1, -1, 1, 0]),
        split_keys=np.array(["a", "b", "a"]),
        recommendation_ids=np.array(["r0", "r1", "r2", "r3", "r4"]),
    )
    part = subset(data, np.array([True, False, True]))
    assert part.position is not None and part.position.tolist() == [0, 1, 1, 0]
    assert part.split_keys is not None and part.split_keys.tolist() == ["a", "a"]
    assert part.recommendation_ids is not None and part.recommendation_ids.tolist() == [
        "r0",
        "r1",
        "r3",
        "r4",
    ]
