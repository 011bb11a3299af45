"""``recctl sample``: writes a new directory by default and never overwrites data without --force."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
from builders import run

FILES = ("assessments.ndjson", "recommendations.ndjson", "interactions.ndjson", "impressions.ndjson")


def test_default_out_is_a_new_directory_not_sample_data(tmp_path: Path) -> None:
    committed = tmp_path / "sample_data"  # as in a clone: the committed data set in the working directory
    committed.mkdir()
    (committed / "interactions.ndjson").write_text('{"kept": true}\n')
    code, out, err = run("sample", "--assessments", "3", "--json")
    assert code == 0, err
    assert (committed / "interactions.ndjson").read_text() == '{"kept": true}\n'
    summary = json.loads(out)
    assert summary["assessments"] == 3
    assert summary["impressions"] >= 3 and summary["policy"] == "deterministic"
    assert summary["impressions_path"] == str(Path("recctl-sample") / "impressions.ndjson")
    assert sorted(path.name for path in (tmp_path / "recctl-sample").iterdir()) == sorted(FILES)


def test_a_non_empty_out_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / "interactions.ndjson").write_text("precious\n")
    code, _, err = run("sample", "--out", str(out), "--assessments", "3")
    assert code == 1
    assert err.startswith(f"Error: --out {out} is not empty") and "--force" in err
    assert err.count("\n") == 1
    assert (out / "interactions.ndjson").read_text() == "precious\n"
    code, _, err = run("sample", "--out", str(out), "--assessments", "3", "--force")
    assert code == 0, err
    assert (out / "interactions.ndjson").read_text() != "precious\n"


def test_the_default_out_is_not_overwritten_either(tmp_path: Path) -> None:
    assert run("sample", "--assessments", "2")[0] == 0
    code, _, err = run("sample", "--assessments", "2")
    assert code == 1 and "recctl-sample is not empty" in err


def test_an_empty_out_directory_and_a_file(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert run("sample", "--out", "empty", "--assessments", "2")[0] == 0
    (tmp_path / "file").write_text("x")
    code, _, err = run("sample", "--out", "file", "--assessments", "2", "--force")
    assert code == 1 and err.startswith("Error: --out file is a file, not a directory")


def test_explore_examination_and_truth(tmp_path: Path) -> None:
    code, out, err = run(
        "sample",
        "--out",
        "data",
        "--assessments",
        "20",
        "--explore",
        "plackett-luce",
        "--temperature",
        "0.2",
        "--examination",
        "cliff",
        "--truth",
        "judged/truth.ndjson",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["policy"] == "plackett-luce" and summary["truth_path"] == "judged/truth.ndjson"
    assert "served lists" in err and "truth -> judged/truth.ndjson" in err
    lists = pl.read_ndjson(tmp_path / "data" / "impressions.ndjson")
    assert lists.height == summary["impressions"] and set(lists["policy"]) == {"plackett-luce"}
    propensity = lists["items"].explode().struct.field("propensity")
    assert ((propensity > 0) & (propensity < 1)).all()
    truth = pl.read_ndjson(tmp_path / "judged" / "truth.ndjson")
    assert truth.height == summary["recommendations"] and set(truth["grade"]) <= {0, 1, 2, 3, 4}
    curve = json.loads((tmp_path / "judged" / "truth.examination.json").read_text())
    assert curve["curve"].startswith("cliff")
    examination = [row["examination"] for row in curve["positions"]]
    np.testing.assert_allclose(examination, [1.0] * 4 + [0.1] * 10)


def test_the_temperature_changes_the_lists_but_not_the_catalog(tmp_path: Path) -> None:
    for name, temperature in (("cool", "0.05"), ("warm", "1.0")):
        args = ("--assessments", "30", "--explore", "plackett-luce", "--temperature", temperature)
        assert run("sample", "--out", name, *args)[0] == 0
    assert (tmp_path / "cool/recommendations.ndjson").read_bytes() == (
        tmp_path / "warm/recommendations.ndjson"
    ).read_bytes()
    first = {
        name: pl.read_ndjson(tmp_path / name / "impressions.ndjson")["items"]
        .list.first()
        .struct.field("propensity")
        for name in ("cool", "warm")
    }
    # Cooler: the list's first item is a likelier pick.
    assert first["cool"].mean() > first["warm"].mean() + 0.1  # type: ignore[operator]


def test_bad_exploration_options_are_usage_errors(tmp_path: Path) -> None:
    for args, hint in (
        (("--examination", "flat"), "--examination"),
        (("--examination", "1.0,2.0"), "--examination"),
        (("--temperature", "0"), "--temperature"),
        (("--temperature", "-1"), "--temperature"),
        (("--explore", "greedy"), "--explore"),
    ):
        code, _, err = run("sample", "--out", "x", "--assessments", "2", *args)
        assert code == 2 and hint in err, (args, err)
    assert not (tmp_path / "x").exists()
