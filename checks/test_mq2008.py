"""Parity with LightGBM on LETOR 4.0 MQ2008 (Fold 1): a public benchmark the repository does not ship.

Run it with ``make check-mq2008 MQ2008=/path/to/MQ2008/Fold1`` (or ``RECCTL_MQ2008=... python -m
pytest checks``): the folder holds LETOR's ``train.txt``, ``vali.txt`` and ``test.txt``. It is not
part of ``make test``; without ``RECCTL_MQ2008`` it is skipped, never failed.

Reference (LightGBM 4.7, two threads): the parameters of LightGBM's lambdarank example
(``tests/data/lightgbm_lambdarank/train.conf``), early stopping on validation NDCG@10 with patience
50, mean over seeds 0-4: test NDCG@10 = 0.803, with LightGBM's convention that a query with no
relevant document scores 1 (51 of the 156 test queries have none).
"""

from __future__ import annotations

import os
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
from builders import LAMBDARANK_EXAMPLE_CONF

from recctl.ltrdata import LtrData, load_ltr
from recctl.metrics import ndcg

SEEDS = range(5)
REFERENCE_NDCG_AT_10 = 0.803
TOLERANCE = 0.005  # the mean of five seeds moves by about this much between LightGBM builds
PARAMS: dict[str, object] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    **LAMBDARANK_EXAMPLE_CONF,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 2,
    "verbosity": -1,
}
SHAPES = {"train.txt": (9630, 471), "vali.txt": (2707, 157), "test.txt": (2874, 156)}


@pytest.fixture(scope="module")
def fold() -> dict[str, LtrData]:
    location = os.environ.get("RECCTL_MQ2008")
    if not location:
        pytest.skip("set RECCTL_MQ2008 to a folder with MQ2008's train.txt, vali.txt and test.txt")
    folder = Path(location).expanduser()
    missing = [name for name in SHAPES if not (folder / name).is_file()]
    assert not missing, f"RECCTL_MQ2008={folder} lacks {', '.join(missing)}"
    train = load_ltr(folder / "train.txt")
    width = train.features.shape[1]
    return {
        "train.txt": train,
        "vali.txt": load_ltr(folder / "vali.txt", num_features=width),
        "test.txt": load_ltr(folder / "test.txt", num_features=width),
    }


def test_shapes(fold: dict[str, LtrData]) -> None:
    for name, (rows, groups) in SHAPES.items():
        data = fold[name]
        assert (data.num_rows, data.num_groups) == (rows, groups), name
        # 46 features numbered 1..46: column f0 exists (as in LightGBM) and is all zero.
        assert data.features.shape == (rows, 47)
        assert not data.features[:, 0].any()
        assert set(np.unique(data.grades)) == {0, 1, 2}
        assert data.query_ids is not None and len(set(data.query_ids.tolist())) == groups
    test = fold["test.txt"]
    assert ndcg(test.grades, np.zeros(test.num_rows), test.group_sizes, 10).groups_without_relevant == 51


def test_early_stopped_lambdarank_reaches_the_reference_ndcg(fold: dict[str, LtrData]) -> None:
    train, vali, test = fold["train.txt"], fold["vali.txt"], fold["test.txt"]
    figures = []
    for seed in SEEDS:
        train_set = lgb.Dataset(train.features, train.grades, group=train.group_sizes)
        vali_set = lgb.Dataset(vali.features, vali.grades, group=vali.group_sizes, reference=train_set)
        history: dict[str, dict[str, list[float]]] = {}
        booster = lgb.train(
            {**PARAMS, "seed": seed},
            train_set,
            num_boost_round=1000,
            valid_sets=[vali_set],
            valid_names=["vali"],
            callbacks=[lgb.early_stopping(50, verbose=False), lgb.record_evaluation(history)],
        )
        best = booster.best_iteration
        # recctl's NDCG of the validation scores is LightGBM's own metric at the chosen iteration
        vali_scores = booster.predict(vali.features, num_iteration=best)
        vali_ndcg = ndcg(vali.grades, vali_scores, vali.group_sizes, 10)
        assert abs(vali_ndcg.mean - history["vali"]["ndcg@10"][best - 1]) < 1e-9, f"seed {seed}"
        scores = booster.predict(test.features, num_iteration=best)
        figures.append(ndcg(test.grades, scores, test.group_sizes, 10).mean)
    mean = float(np.mean(figures))
    per_seed = ", ".join(f"{value:.4f}" for value in figures)
    assert mean == pytest.approx(REFERENCE_NDCG_AT_10, abs=TOLERANCE), f"seeds 0-4: {per_seed}"
