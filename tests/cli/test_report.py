"""``recctl report``: what it writes, what it says when a section cannot be drawn, bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

from builders import SAMPLE_WINDOW, run


def test_without_a_model_the_model_sections_say_why_and_the_rest_is_drawn(
    sample_store: Path, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    code, out, err = run(
        "--store", str(sample_store), "report", *SAMPLE_WINDOW, "--model", str(tmp_path / "none.txt"),
        "--out", str(page), "--json",
    )  # fmt: skip
    assert code == 0, err
    sections = {section["key"]: section for section in json.loads(out)["sections"]}
    for key in ("model", "importance", "frontier"):
        assert not sections[key]["plot"] and "no model at" in sections[key]["missing"]
    for key in ("bias", "engagement", "categories"):
        assert sections[key]["plot"] and sections[key]["missing"] is None
    text = page.read_text()
    assert text.count("<svg") == 3 and "Not shown: no model at" in text
    assert "not shown (no model at" in err


def test_png_format_writes_one_png_per_plot(sample_store: Path, sample_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "slides"
    code, out, err = run(
        "--store", str(sample_store), "report", *SAMPLE_WINDOW, "--model", str(sample_model),
        "--format", "png", "--out", str(folder), "--json", "--lambda", "0.5,1",
    )  # fmt: skip
    assert code == 0, err
    files = json.loads(out)["files"]
    assert sorted(Path(name).name for name in files) == sorted(
        f"{key}.png" for key in ("model", "importance", "bias", "frontier", "engagement", "categories")
    )
    for name in files:
        assert Path(name).read_bytes()[:4] == b"\x89PNG"


def test_bad_arguments_fail_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    assert run("report", "--out", str(tmp_path / "folder"))[0] == 2
    assert run("report", "--lambda", "2")[0] == 2
    (tmp_path / "file.png").write_text("")
    assert run("report", "--format", "png", "--out", str(tmp_path / "file.png"))[0] == 2
    code, _, err = run("--store", str(tmp_path / "nothing"), "report", "--out", str(tmp_path / "r.html"))
    assert code == 1 and err.startswith("Error: ") and not (tmp_path / "r.html").exists()
