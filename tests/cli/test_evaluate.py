"""``recctl evaluate --grades``: NDCG against external judgments."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest
from builders import run, write_ndjson


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three groups of a learning-to-rank set, and a model too small to split (it scores every
    row the same, so its order is the input order)."""
    folder = tmp_path_factory.mktemp("tiny")
    data = folder / "set.parquet"
    pl.DataFrame(
        {
            "query_id": ["g1", "g1", "g1", "g2", "g2", "g3", "g3"],
            "recommendation_id": ["a", "b", "c", "d", "e", "f", "g"],
            "grade": [1, 0, 0, 0, 1, 0, 1],
            "confidence_score": [0.9, 0.5, 0.1, 0.2, 0.8, 0.4, 0.3],
            "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        }
    ).write_parquet(data)
    model = folder / "model.txt"
    code, _, err = run("-q", "train", "--data", str(data), "--model", str(model), "--num-boost-round", "2")
    assert code == 0, err
    return data, model


def test_grades_from_a_file_replace_the_data_s_and_the_counts_are_reported(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    data, model = tiny
    grades = write_ndjson(
        tmp_path / "truth.ndjson",
        [
            {"recommendation_id": "a", "grade": 0, "utility": -1.0},
            {"recommendation_id": "b", "grade": 3, "utility": 2.0},
            {"recommendation_id": "c", "grade": 1, "utility": 0.1},
            {"recommendation_id": "d", "grade": 2, "utility": 0.9},  # e unjudged: 0; g3 none: left out
        ],
    )
    code, out, err = run(
        "evaluate", "--data", str(data), "--model", str(model), "--grades", str(grades), "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    log2 = math.log2
    g1_input = (7 / log2(3) + 1 / log2(4)) / (7 + 1 / log2(3))  # a b c, ideal b c a
    g2_input = 1.0  # d e: d (grade 2) first
    g2_confidence = (3 / log2(3)) / 3  # e d
    assert summary["groups"] == 2 and summary["rows"] == 5
    assert summary["model"]["ndcg@10"] == pytest.approx((g1_input + g2_input) / 2)
    assert summary["baseline"]["ndcg@10"] == pytest.approx((g1_input + g2_confidence) / 2)
    assert summary["ideal"]["ndcg@10"] == pytest.approx(1.0)
    assert summary["grades"] == {
        "source": str(grades),
        "judgments": 4,
        "rows_judged": 4,
        "rows_unjudged": 1,
        "groups_left_out_unjudged": 1,
    }
    assert "1 unjudged (counted as 0)" in " ".join(err.split())


def test_a_bad_grades_file_is_one_line_exit_1_before_the_data_is_read(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    _, model = tiny
    bad = write_ndjson(tmp_path / "bad.ndjson", [{"recommendation_id": "a", "grade": 7}])
    code, _, err = run(
        "evaluate", "--data", str(tmp_path / "missing"), "--model", str(model), "--grades", str(bad)
    )
    assert code == 1
    assert err.startswith("Error: grades file") and "whole grade 0..4" in err and err.count("\n") == 1
