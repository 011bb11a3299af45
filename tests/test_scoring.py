"""The numpy scorer equals LightGBM's Booster.predict bit for bit."""

from __future__ import annotations

import lightgbm
import numpy as np
import pytest

from recctl.scoring import TreeEnsemble, UnsupportedModel


def matrix(rng: np.random.Generator, rows: int) -> np.ndarray:
    values = rng.normal(size=(rows, 6))
    values[rng.random(values.shape) < 0.15] = np.nan
    values[rng.random(values.shape) < 0.15] = 0.0
    values[rng.random(values.shape) < 0.02] = -0.0
    return values


@pytest.mark.parametrize(
    "extra",
    [{}, {"zero_as_missing": True}, {"use_missing": False}, {"num_leaves": 3, "learning_rate": 0.3}],
)
def test_equals_booster_predict(extra: dict) -> None:
    rng = np.random.default_rng(len(extra))
    train = matrix(rng, 1500)
    grades = rng.integers(0, 5, 1500)
    params = {"objective": "lambdarank", "verbosity": -1, "num_threads": 1, "min_data_in_leaf": 5, **extra}
    booster = lightgbm.train(params, lightgbm.Dataset(train, grades, group=[15] * 100), num_boost_round=40)
    ensemble = TreeEnsemble.from_model_text(booster.model_to_string())
    test = matrix(rng, 700)
    expected = booster.predict(test)
    assert np.array_equal(ensemble.predict(test), expected)  # bit for bit, not approximately


def test_one_leaf_trees_and_shapes() -> None:
    train = np.zeros((60, 2))
    booster = lightgbm.train(
        {"objective": "lambdarank", "verbosity": -1, "num_threads": 1},
        lightgbm.Dataset(train, np.arange(60) % 2, group=[6] * 10),
        num_boost_round=3,
    )
    ensemble = TreeEnsemble.from_model_text(booster.model_to_string())
    assert np.array_equal(ensemble.predict(np.ones((4, 2))), booster.predict(np.ones((4, 2))))
    with pytest.raises(ValueError, match="expected 2 feature columns"):
        ensemble.predict(np.ones((4, 3)))


def test_categorical_models_are_refused() -> None:
    rng = np.random.default_rng(3)
    train = np.column_stack([rng.integers(0, 5, 600), rng.random(600)])
    booster = lightgbm.train(
        {
            "objective": "lambdarank",
            "verbosity": -1,
            "num_threads": 1,
            "min_data_in_leaf": 5,
            "min_data_per_group": 5,
            "cat_smooth": 1,
        },
        lightgbm.Dataset(train, rng.integers(0, 3, 600), group=[10] * 60, categorical_feature=[0]),
        num_boost_round=5,
    )
    with pytest.raises(UnsupportedModel, match="categorical"):
        TreeEnsemble.from_model_text(booster.model_to_string())
