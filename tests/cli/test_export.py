"""``recctl export`` and ``recctl features`` as a user runs them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import polars as pl
from builders import SAMPLE_WINDOW, run

from recctl.features import FEATURE_NAMES
from recctl.stores import open_store


def test_export_directory_and_file(sample_store: Path, tmp_path: Path) -> None:
    store = ["--store", str(sample_store)]
    code, out, err = run(*store, "export", *SAMPLE_WINDOW, "--out", str(tmp_path / "ts"), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["features"] == len(FEATURE_NAMES) >= 50
    assert Path(summary["path"]) == tmp_path / "ts" / "training_set.parquet"
    manifest = json.loads((tmp_path / "ts" / "manifest.json").read_text())
    assert manifest["feature_names"] == list(FEATURE_NAMES)
    assert manifest["rows"] == pl.read_parquet(summary["path"]).height == summary["rows"]
    assert "rows in" in err
    code, out, _ = run(
        "-q", *store, "export", *SAMPLE_WINDOW, "--out", str(tmp_path / "set.parquet"), "--json"
    )
    assert code == 0
    assert (tmp_path / "set.manifest.json").exists() and (tmp_path / "set.parquet").exists()


def test_too_little_data_exits_3(sample_store: Path, tmp_path: Path) -> None:
    code, _, err = run(
        "--store",
        str(sample_store),
        "export",
        "--since",
        "2025-09-01",
        "--until",
        "2025-09-02",
        "--out",
        str(tmp_path / "ts"),
    )
    assert code == 3
    assert err.startswith("Error: only ") and "at least 100 are needed" in err
    open_store(tmp_path / "empty", create=True).close()  # a store with nothing in it
    code, _, err = run(
        "--store",
        str(tmp_path / "empty"),
        "export",
        *SAMPLE_WINDOW,
        "--min-interactions",
        "0",
        "--out",
        str(tmp_path / "ts"),
    )
    assert code == 3 and "no usable query group" in err


def test_a_store_that_is_not_there_is_an_error_not_too_little_data(tmp_path: Path) -> None:
    for command in (["export", *SAMPLE_WINDOW], ["train", *SAMPLE_WINDOW], ["stats"], ["history", "user-1"]):
        code, _, err = run("--store", str(tmp_path / "typo"), *command)
        assert code == 1, command
        errors = [line for line in err.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and errors[0].startswith("Error: no store at"), (command, err)
    assert not (tmp_path / "typo").exists()


def test_export_out_must_be_a_directory_or_parquet_file(sample_store: Path, tmp_path: Path) -> None:
    taken = tmp_path / "notes.json"
    taken.write_text("{}")
    code, _, err = run("--store", str(sample_store), "export", *SAMPLE_WINDOW, "--out", str(taken))
    assert code == 1 and err.startswith("Error: --out") and taken.read_text() == "{}"


def test_empty_window_is_a_usage_error(tmp_path: Path) -> None:
    code, _, _ = run("--store", str(tmp_path), "export", "--since", "2025-10-01", "--until", "2025-09-01")
    assert code == 2


def test_features_formats() -> None:
    code, out, _ = run("features", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [r["name"] for r in rows] == list(FEATURE_NAMES)
    code, out, _ = run("features", "--format", "csv")
    assert [r["name"] for r in csv.DictReader(io.StringIO(out))] == list(FEATURE_NAMES)
    code, out, _ = run("features")
    assert code == 0 and "own_category_priority" in out and "\x1b[" not in out
