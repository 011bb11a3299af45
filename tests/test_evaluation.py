"""Evaluating a model: which groups of the data it learned from."""

from __future__ import annotations

import numpy as np
from builders import grouped

from recctl.evaluation import training_overlap
from recctl.provenance import training_groups_meta
from recctl.training import subset


def test_training_overlap_finds_the_groups_by_id() -> None:
    data = grouped([2, 3, 2, 2])  # groups q0..q3
    model_data = grouped([2, 2, 2])  # q0, q1, q2: q0 trained on, q2 validated on
    meta = {
        "training_groups": training_groups_meta(
            subset(model_data, np.array([True, False, False])),
            subset(model_data, np.array([False, False, True])),
        )
    }
    overlap = training_overlap(meta, data)
    assert overlap is not None
    assert overlap.trained.tolist() == [True, False, False, False]
    assert overlap.validated.tolist() == [False, False, True, False]
    assert overlap.counts() == {"groups": 2, "train": 1, "valid": 1}
    assert meta["training_groups"]["train"] == 1 and meta["training_groups"]["valid"] == 1
    assert training_overlap({}, data) is None
