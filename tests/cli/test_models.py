"""``recctl models show`` and ``recctl evaluate --model A --model B``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from builders import SAMPLE_WINDOW, run


def test_models_show_gives_the_meta_as_a_table_and_as_json(sample_model: Path) -> None:
    code, out, err = run("models", "show", str(sample_model), "--json", columns=120)
    assert code == 0, err
    meta = json.loads(out)
    on_disk = json.loads(sample_model.with_name("ranker.meta.json").read_text())
    assert meta == {"model_path": str(sample_model), **on_disk}
    code, table, err = run("models", "show", str(sample_model), columns=120)
    assert code == 0 and err == ""
    for shown in (meta["model_version"], "position correction", "train", "valid", "Top features"):
        assert shown in table  # the table is the data: on stdout, for grep


@pytest.mark.parametrize("broken", ["missing", "truncated"])
def test_models_show_of_a_bad_model_is_one_line_exit_1(
    tmp_path: Path, sample_model: Path, broken: str
) -> None:
    path = tmp_path / "ranker.txt"
    if broken == "truncated":
        shutil.copy(sample_model.with_name("ranker.meta.json"), tmp_path / "ranker.meta.json")
        path.write_text(sample_model.read_text()[:200])
    code, out, err = run("models", "show", str(path))
    assert code == 1 and out == ""
    assert err.startswith("Error: ") and err.count("\n") == 1


def _copy(model: Path, folder: Path) -> Path:
    folder.mkdir()
    shutil.copy(model, folder / model.name)
    shutil.copy(model.with_name("ranker.meta.json"), folder / "ranker.meta.json")
    return folder / model.name


def compare(store: Path, a: Path, b: Path, *extra: str) -> dict:
    code, out, err = run(
        "--store",
        str(store),
        "evaluate",
        *SAMPLE_WINDOW,
        "--model",
        str(a),
        "--model",
        str(b),
        *extra,
        "--json",
    )
    assert code == 0, err
    return json.loads(out)


def test_identical_models_differ_by_exactly_zero(
    sample_store: Path, sample_model: Path, tmp_path: Path
) -> None:
    twin = _copy(sample_model, tmp_path / "twin")
    summary = compare(sample_store, sample_model, twin)
    assert summary["groups"] > 0
    for row in summary["ndcg"].values():
        assert row["a"] == row["b"] and row["difference"] == 0.0
        assert row["interval"] == [0.0, 0.0]


def test_two_models_are_judged_on_the_same_groups_with_a_paired_interval(
    sample_store: Path, sample_model: Path, tmp_path: Path
) -> None:
    weak = tmp_path / "weak.txt"
    code, _, err = run(
        "--store", str(sample_store), "train", *SAMPLE_WINDOW, "--model", str(weak), "--num-boost-round", "3",
        "--param", "num_leaves=2",
    )  # fmt: skip
    assert code == 0, err
    ab = compare(sample_store, sample_model, weak)
    ba = compare(sample_store, weak, sample_model)
    single = {}
    for path in (sample_model, weak):
        code, out, err = run(
            "--store", str(sample_store), "evaluate", *SAMPLE_WINDOW, "--model", str(path), "--json"
        )
        assert code == 0, err
        single[path] = json.loads(out)
    assert ab["groups"] == single[sample_model]["groups"]
    for metric, row in ab["ndcg"].items():
        assert row["a"] == pytest.approx(single[sample_model]["model"][metric])
        assert row["b"] == pytest.approx(single[weak]["model"][metric])
        assert row["difference"] == pytest.approx(row["a"] - row["b"])
        low, high = row["interval"]
        assert low <= row["difference"] <= high
        mirrored = ba["ndcg"][metric]
        assert mirrored["difference"] == pytest.approx(-row["difference"])


def test_holdout_only_leaves_out_what_either_model_learned_from(sample_store: Path, tmp_path: Path) -> None:
    models = {}
    for until in ("2025-10-01", "2025-10-15"):  # the later window holds the earlier one's groups
        models[until] = tmp_path / f"until-{until}.txt"
        code, _, err = run(
            "--store", str(sample_store), "train", "--since", "2025-09-01", "--until", until,
            "--model", str(models[until]), "--num-boost-round", "20",
        )  # fmt: skip
        assert code == 0, err
    held_out = compare(sample_store, models["2025-10-01"], models["2025-10-15"], "--holdout-only")
    alone = {}
    for until, path in models.items():
        code, out, err = run(
            "--store",
            str(sample_store),
            "evaluate",
            *SAMPLE_WINDOW,
            "--model",
            str(path),
            "--holdout-only",
            "--json",
        )
        assert code == 0, err
        alone[until] = json.loads(out)["groups"]
    assert held_out["groups"] == alone["2025-10-15"] < alone["2025-10-01"]
    everything = compare(sample_store, models["2025-10-01"], models["2025-10-15"])
    for name, until in (("a", "2025-10-01"), ("b", "2025-10-15")):  # each counted on all the groups
        code, out, err = run(
            "--store", str(sample_store), "evaluate", *SAMPLE_WINDOW, "--model", str(models[until]), "--json"
        )
        assert code == 0, err
        assert held_out[name]["training_overlap"]["groups"] == json.loads(out)["training_overlap"]["groups"]
        assert everything[name]["training_overlap"]["groups"] == held_out[name]["training_overlap"]["groups"]
    assert held_out["a"]["training_overlap"]["left_out"] and held_out["b"]["training_overlap"]["left_out"]


def test_more_than_two_models_or_two_off_policy_targets_are_usage_errors(sample_model: Path) -> None:
    three = [arg for _ in range(3) for arg in ("--model", str(sample_model))]
    assert run("evaluate", *three)[0] == 2
    code, _, err = run("evaluate", "--off-policy", "--model", str(sample_model), "--model", str(sample_model))
    assert code == 2 and "once per model" in err
