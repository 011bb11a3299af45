"""Debiasing pays, end to end, against the simulator's truth: the smaller version of
``make check-debias``, on a world of its own seed.

``recctl sample --explore plackett-luce --truth`` simulates users who look at the top of each list
more than at the bottom; the same window is trained on naively (``--debias none``) and with
``--debias auto``, and both are judged with ``evaluate --grades`` against the users' hidden grades on
the later assessments that neither model saw.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import run

SEED = 31337
ASSESSMENTS = 1500
TRAIN_WINDOW = ("--since", "2025-09-01", "--until", "2025-10-11")
HELDOUT_WINDOW = ("--since", "2025-10-11", "--until", "2025-11-01")


def _json(*args: str) -> dict:
    code, out, err = run(*args, "--json")
    assert code == 0, err
    return dict(json.loads(out))


@pytest.mark.slow
def test_the_debiased_model_beats_the_naive_one_and_the_old_order_against_the_truth(tmp_path: Path) -> None:
    data, store = tmp_path / "world", str(tmp_path / "store")
    truth = str(data / "truth.ndjson")
    _json(
        "sample",
        "--out",
        str(data),
        "--assessments",
        str(ASSESSMENTS),
        "--seed",
        str(SEED),
        "--explore",
        "plackett-luce",
        "--truth",
        truth,
    )
    for kind in ("assessments", "recommendations", "impressions", "interactions"):
        _json("--store", store, "ingest", kind, str(data / f"{kind}.ndjson"))
    judged = {}
    for debias in ("none", "auto"):
        model = str(tmp_path / f"{debias}.txt")
        trained = _json(
            "--store", store, "train", *TRAIN_WINDOW, "--debias", debias, "--model", model, "--seed", "1"
        )
        assert trained["debias"]["method"] == ("none" if debias == "none" else "position")
        judged[debias] = _json(
            "--store",
            store,
            "evaluate",
            *HELDOUT_WINDOW,
            "--model",
            model,
            "--holdout-only",
            "--grades",
            truth,
        )
    naive, debiased = judged["none"]["model"]["ndcg@10"], judged["auto"]["model"]["ndcg@10"]
    old_order = judged["auto"]["baseline"]["ndcg@10"]
    print(f"true NDCG@10: naive {naive:.4f}, debiased {debiased:.4f}, confidence order {old_order:.4f}")
    assert judged["auto"]["groups"] >= 200  # held-out lists of assessments neither model saw
    assert debiased >= naive + 0.01, (naive, debiased)
    assert debiased >= old_order + 0.08, (old_order, debiased)
