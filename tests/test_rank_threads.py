"""A stream's thread settings change how scores are computed, never what they are."""

from __future__ import annotations

import os
import sys

import lightgbm
import numpy as np
import pytest

from recctl import native
from recctl.cli import rank


def test_one_thread_scores_equal_the_default_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    data = rng.normal(size=(3000, 5))
    data[rng.random(data.shape) < 0.1] = np.nan
    params = {"objective": "lambdarank", "verbosity": -1, "num_threads": 1, "min_data_in_leaf": 5}
    booster = lightgbm.train(
        params, lightgbm.Dataset(data, rng.integers(0, 4, 3000), group=[20] * 150), num_boost_round=30
    )
    scorer = native.load(booster.model_to_string())
    assert scorer is not None
    default = scorer.predict(data)
    scorer.threads = 1
    assert scorer.predict(data).tobytes() == default.tobytes()
    assert (
        scorer.contributions(data).tobytes()
        == native.load(booster.model_to_string()).contributions(data).tobytes()
    )
    package = native.PackageBooster(booster)
    package.threads = 1
    assert package.predict(data).tobytes() == default.tobytes()


def test_the_stream_keeps_a_polars_thread_count_the_caller_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "polars", raising=False)  # as in a fresh process (restored after)
    monkeypatch.setenv("POLARS_MAX_THREADS", "2")
    rank._polars_threads_for_stream()
    assert os.environ["POLARS_MAX_THREADS"] == "2"
    monkeypatch.delenv("POLARS_MAX_THREADS")
    rank._polars_threads_for_stream()
    assert os.environ["POLARS_MAX_THREADS"] == "1"
