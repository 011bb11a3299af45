"""``recctl sample``: writes a new directory by default and never overwrites data without --force."""

from __future__ import annotations

import json
from pathlib import Path

from builders import run

FILES = ("assessments.ndjson", "recommendations.ndjson", "interactions.ndjson")


def test_default_out_is_a_new_directory_not_sample_data(tmp_path: Path) -> None:
    committed = tmp_path / "sample_data"  # as in a clone: the committed data set in the working directory
    committed.mkdir()
    (committed / "interactions.ndjson").write_text('{"kept": true}\n')
    code, out, err = run("sample", "--assessments", "3", "--json")
    assert code == 0, err
    assert (committed / "interactions.ndjson").read_text() == '{"kept": true}\n'
    summary = json.loads(out)
    assert summary["assessments"] == 3
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
