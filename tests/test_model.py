"""The model bundle refuses anything it cannot trust, with one clear line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightgbm
import numpy as np
import pytest

from recctl.errors import ModelError
from recctl.model import load_bundle, meta_path_for, rejected_path_for, save_bundle


@pytest.fixture(scope="module")
def model_text() -> str:
    rng = np.random.default_rng(0)
    features = rng.random((200, 3))
    grades = rng.integers(0, 3, 200)
    data = lightgbm.Dataset(features, label=grades, group=[10] * 20, feature_name=["a", "b", "c"])
    params = {"objective": "lambdarank", "verbosity": -1, "num_threads": 1, "min_data_in_leaf": 5}
    return str(lightgbm.train(params, data, num_boost_round=3).model_to_string())


def saved(tmp_path: Path, model_text: str) -> Path:
    path = tmp_path / "models" / "ranker.txt"
    save_bundle(model_text, {"feature_names": ["a", "b", "c"], "model_version": "v1"}, path)
    return path


def test_round_trip_and_paths(tmp_path: Path, model_text: str) -> None:
    path = saved(tmp_path, model_text)
    bundle = load_bundle(path, expected_features=["a", "b", "c"])
    assert bundle.version == "v1" and bundle.feature_names == ["a", "b", "c"]
    assert bundle.booster().num_trees() == 3
    assert meta_path_for(path).name == "ranker.meta.json"
    assert rejected_path_for(path).name == "ranker.rejected.txt"
    assert not list(path.parent.glob(".*.tmp"))  # no temporary files left behind


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p, text: p.unlink(), "no model at"),
        (lambda p, text: p.write_text(""), "not a complete LightGBM text model"),
        (lambda p, text: p.write_text(text[: len(text) // 2]), "not a complete LightGBM text model"),
        (lambda p, text: p.write_bytes(b"\x00\xff\x13garbage"), "cannot read model"),
        (lambda p, text: meta_path_for(p).unlink(), "has no meta file"),
        (lambda p, text: meta_path_for(p).write_text("{not json"), "cannot read model meta"),
        (
            lambda p, text: meta_path_for(p).write_text(
                json.dumps(
                    {
                        "feature_names": ["x", "y", "z"],
                        "model_sha256": hashlib.sha256(text.encode()).hexdigest(),
                    }
                )
            ),
            "disagree on the feature",
        ),
        (
            lambda p, text: meta_path_for(p).write_text('{"feature_names": ["a", "b", "c"]}'),
            "has no model_sha256",
        ),
    ],
)
def test_broken_bundles_are_refused(tmp_path: Path, model_text: str, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    path = saved(tmp_path, model_text)
    damage(path, model_text)
    with pytest.raises(ModelError, match=message):
        load_bundle(path)


def test_other_features_are_refused(tmp_path: Path, model_text: str) -> None:
    path = saved(tmp_path, model_text)
    with pytest.raises(ModelError, match=r"trained on other features .* lacks 1 \(e.g. d\)"):
        load_bundle(path, expected_features=["a", "b", "c", "d"])
