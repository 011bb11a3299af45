"""LightGBM's C API through ctypes equals the lightgbm package's Booster.predict bit for bit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lightgbm
import numpy as np
import pytest

from recctl import native


def matrix(rng: np.random.Generator, rows: int, columns: int = 6) -> np.ndarray:
    values = rng.normal(size=(rows, columns))
    values[rng.random(values.shape) < 0.15] = np.nan
    values[rng.random(values.shape) < 0.15] = 0.0
    values[rng.random(values.shape) < 0.02] = -0.0
    return values


def train(rng: np.random.Generator, extra: dict, categorical: bool = False) -> lightgbm.Booster:
    data = matrix(rng, 1500)
    if categorical:
        data[:, 0] = rng.integers(0, 5, 1500)
    params = {"objective": "lambdarank", "verbosity": -1, "num_threads": 1, "min_data_in_leaf": 5, **extra}
    dataset = lightgbm.Dataset(
        data, rng.integers(0, 5, 1500), group=[15] * 100, categorical_feature=[0] if categorical else "auto"
    )
    return lightgbm.train(params, dataset, num_boost_round=40)


@pytest.mark.parametrize(
    ("extra", "categorical"),
    [
        ({}, False),
        ({"zero_as_missing": True}, False),
        ({"use_missing": False}, False),
        ({"num_leaves": 3, "learning_rate": 0.3}, False),
        ({"min_data_per_group": 5, "cat_smooth": 1}, True),
        ({"linear_tree": True}, False),
    ],
)
def test_scores_and_contributions_equal_booster_predict(extra: dict, categorical: bool) -> None:
    rng = np.random.default_rng(len(extra))
    booster = train(rng, extra, categorical)
    scorer = native.load(booster.model_to_string())
    assert scorer is not None and scorer.num_features == 6
    test = matrix(rng, 700)
    assert np.array_equal(scorer.predict(test), booster.predict(test))  # bit for bit
    if extra.get("linear_tree"):  # LightGBM has no SHAP values for linear trees, either way
        with pytest.raises(native.NativeError, match="linear trees"):
            scorer.contributions(test[:50])
    else:
        assert np.array_equal(scorer.contributions(test[:50]), booster.predict(test[:50], pred_contrib=True))
    fortran_order = np.asfortranarray(test)  # what polars' to_numpy gives
    assert np.array_equal(scorer.predict(fortran_order), booster.predict(test))


def test_shapes_and_refused_models() -> None:
    booster = train(np.random.default_rng(9), {})
    scorer = native.load(booster.model_to_string())
    assert scorer is not None
    assert scorer.predict(np.ones((0, 6))).shape == (0,)
    with pytest.raises(ValueError, match="expected 6 feature columns"):
        scorer.predict(np.ones((4, 3)))
    with pytest.raises(native.NativeError):
        native.load("not a model at all")


def test_scoring_does_not_import_the_lightgbm_package(tmp_path: Path) -> None:
    booster = train(np.random.default_rng(4), {})
    (tmp_path / "model.txt").write_text(booster.model_to_string())
    probe = (
        "import sys, numpy as np\n"
        "from recctl import native\n"
        f"scorer = native.load(open({str(tmp_path / 'model.txt')!r}).read())\n"
        "print(float(scorer.predict(np.ones((1, 6)))[0]).hex(), 'lightgbm' in sys.modules)\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert completed.stdout.split() == [float(booster.predict(np.ones((1, 6)))[0]).hex(), "False"]


def test_multiclass_models_get_a_buffer_of_their_size() -> None:
    """LightGBM says how many values it writes (3 per row here), so the buffer always fits."""
    rng = np.random.default_rng(5)
    data = lightgbm.Dataset(rng.random((300, 6)), label=rng.integers(0, 3, 300))
    params = {"objective": "multiclass", "num_class": 3, "verbosity": -1, "num_threads": 1}
    booster = lightgbm.train(params, data, num_boost_round=5)
    scorer = native.load(booster.model_to_string())
    assert scorer is not None and scorer.num_outputs == 3
    test = matrix(rng, 40)
    assert np.array_equal(scorer.predict(test), booster.predict(test))
    assert np.array_equal(scorer.contributions(test), booster.predict(test, pred_contrib=True))


def test_the_package_fallback_answers_the_same_calls() -> None:
    booster = train(np.random.default_rng(6), {})
    scorer = native.load(booster.model_to_string())
    package = native.PackageBooster(booster)
    assert scorer is not None and package.num_outputs == scorer.num_outputs == 1
    test = matrix(np.random.default_rng(7), 50)
    assert np.array_equal(package.predict(test), scorer.predict(test))
    assert np.array_equal(package.contributions(test), scorer.contributions(test))
    linear = native.PackageBooster(train(np.random.default_rng(8), {"linear_tree": True}))
    with pytest.raises(native.NativeError, match="linear trees"):
        linear.contributions(test)
