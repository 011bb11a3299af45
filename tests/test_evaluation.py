"""Evaluating a model: which groups of the data it learned from; external judgments."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from builders import grouped

from recctl.errors import InputError, InsufficientDataError
from recctl.evaluation import Judgments, read_judgments, training_overlap
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


def write_grades(path: Path, kind: str, rows: list[dict[str, object]]) -> Path:
    frame = pl.DataFrame(rows)
    if kind == "ndjson":
        frame.write_ndjson(path)
    elif kind == "json":
        path.write_text(json.dumps(rows))
    elif kind == "csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return path


@pytest.mark.parametrize("kind", ["ndjson", "json", "csv", "parquet"])
def test_judgments_are_read_from_every_format_ignoring_other_columns(tmp_path: Path, kind: str) -> None:
    rows: list[dict[str, object]] = [
        {"recommendation_id": "r1", "assessment_id": "a", "utility": 0.5, "grade": 3},
        {"recommendation_id": "r2", "assessment_id": "a", "utility": -1.0, "grade": 0},
        {"recommendation_id": "r1", "assessment_id": "a", "utility": 0.5, "grade": 3},  # same twice: once
    ]
    judgments = read_judgments(write_grades(tmp_path / f"grades.{kind}", kind, rows))
    assert judgments.grades.rows() == [("r1", 3), ("r2", 0)]


def test_integer_recommendation_ids_are_their_decimal_text(tmp_path: Path) -> None:
    path = write_grades(tmp_path / "g.ndjson", "ndjson", [{"recommendation_id": 7, "grade": 2}])
    assert read_judgments(path).grades.rows() == [("7", 2)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"recommendation_id": "r1"}\n', "has no 'grade' column"),
        (
            '{"recommendation_id": "r1", "grade": 5}\n',
            "row 1: needs a recommendation_id and a whole grade 0..4",
        ),
        ('{"recommendation_id": "r1", "grade": 1.5}\n', "whole grade 0..4"),
        ('{"recommendation_id": "", "grade": 1}\n', "row 1"),
        (
            '{"recommendation_id": "r1", "grade": 1}\n{"recommendation_id": "r1", "grade": 2}\n',
            "judged twice",
        ),
        ("recommendation_id,grade\n", "has no rows"),
        ('{"recommendation_id": "r1", "grade": 1', "cannot read grades file"),
    ],
)
def test_a_bad_grades_file_is_one_line_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "grades.txt"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as caught:
        read_judgments(path)
    assert "\n" not in str(caught.value)


def test_unjudged_rows_count_as_0_and_groups_with_no_judgment_are_left_out() -> None:
    data = dataclasses.replace(
        grouped([3, 2, 2]), recommendation_ids=np.array(["a", "b", "c", "d", "e", "f", "g"])
    )
    judgments = Judgments(
        pl.DataFrame({"recommendation_id": ["a", "b", "c", "d"], "grade": [0, 3, 1, 2]}), "g"
    )
    judged, counts = judgments.apply(data)
    assert judged.grades.tolist() == [0, 3, 1, 2, 0] and judged.group_sizes.tolist() == [3, 2]
    assert counts == {
        "source": "g",
        "judgments": 4,
        "rows_judged": 4,
        "rows_unjudged": 1,
        "groups_left_out_unjudged": 1,
    }
    with pytest.raises(InsufficientDataError, match="none of the 3 groups"):
        Judgments(pl.DataFrame({"recommendation_id": ["z"], "grade": [1]}), "g").apply(data)


def test_a_later_list_of_an_assessment_the_model_learned_from_counts_as_seen() -> None:
    keyed = dataclasses.replace(grouped([2, 2, 2]), split_keys=np.array(["a1", "a2", "a3"]))
    meta = {
        "training_groups": training_groups_meta(
            subset(keyed, np.array([True, False, False])), subset(keyed, np.array([False, True, False]))
        )
    }
    # New lists q7 (of a1, trained on), q8 (of a2, validated on), q9 (of a4, never seen).
    later = dataclasses.replace(
        grouped([2, 2, 2]), query_ids=np.array(["q7", "q8", "q9"]), split_keys=np.array(["a1", "a2", "a4"])
    )
    overlap = training_overlap(meta, later)
    assert overlap is not None
    assert overlap.trained.tolist() == [True, False, False]
    assert overlap.validated.tolist() == [False, True, False]
