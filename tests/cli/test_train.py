"""``recctl train`` / ``recctl evaluate`` as CI runs them: figures, exit codes, bundles."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from builders import LAMBDARANK_EXAMPLE_CONF, RECORD_KINDS, SAMPLE_DATA, SAMPLE_WINDOW, Training, run

from recctl.cli import app

TRAIN_CONF = [f"{name}={value}" for name, value in LAMBDARANK_EXAMPLE_CONF.items()]


def flat(text: str) -> str:
    """Text with the usage-error box and its line wrapping taken out."""
    return " ".join(text.replace("│", " ").split())


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 assessments, 128 interactions in 12 served lists: above --min-interactions, far too little
    to learn from (at 6 assessments, about 200 interactions, LightGBM already finds splits)."""
    folder = tmp_path_factory.mktemp("tiny")
    assert run("-q", "sample", "--out", str(folder / "data"), "--assessments", "5", "--seed", "1")[0] == 0
    for kind in RECORD_KINDS:
        code = run(
            "-q", "--store", str(folder / "store"), "ingest", kind, str(folder / "data" / f"{kind}.ndjson")
        )
        assert code[0] == 0
    return folder / "store"


def test_lightgbm_example_reproduces_its_ndcg(lightgbm_example: Path, tmp_path: Path) -> None:
    model = tmp_path / "lgb.txt"
    params = [arg for value in TRAIN_CONF for arg in ("--param", value)]
    code, _, err = run(
        "train",
        "--data",
        str(lightgbm_example / "rank.train"),
        "--validation-split",
        "0",
        "--num-boost-round",
        "100",
        "--early-stopping-rounds",
        "0",
        *params,
        "--model",
        str(model),
    )
    assert code == 0, err
    code, out, err = run(
        "evaluate", "--data", str(lightgbm_example / "rank.test"), "--model", str(model), "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["groups"] == 50
    assert result["model"]["ndcg@10"] == pytest.approx(0.7243, abs=0.0005)
    assert result["model"]["ndcg@1"] == pytest.approx(0.5775, abs=0.0005)
    assert result["baseline"] is None  # LibSVM data has no confidence_score
    assert result["ideal"]["ndcg@10"] == 1.0
    low, high = result["intervals"]["model"]["ndcg@10"]
    assert low < result["model"]["ndcg@10"] < high


def test_sample_model_beats_the_confidence_order(sample_store: Path, sample_training: Training) -> None:
    model, summary, err = sample_training  # recctl train --json with the defaults, on the sample window
    assert summary["status"] == "trained"
    assert {
        "examples",
        "groups",
        "best_iteration",
        "model_path",
        "metrics",
        "baseline",
        "top_features",
    } <= set(summary)
    valid, baseline = summary["metrics"]["valid"], summary["baseline"]["valid"]
    # The logged clicks favour the order they were served in (Plackett-Luce around the confidence
    # order, so position-biased towards it), and the default model is position-debiased: on them
    # it only has to be ahead on the held-out (newest) groups ...
    assert valid["ndcg@10"] > baseline["ndcg@10"]
    # ... and the clear margin is judged against the users' hidden grades (sample_data/truth.ndjson),
    # which it never saw: on every group of the window, as no group of it is held out of training.
    code, out, judged = run(
        "--store",
        str(sample_store),
        "evaluate",
        *SAMPLE_WINDOW,
        "--model",
        str(model),
        "--grades",
        str(SAMPLE_DATA / "truth.ndjson"),
        "--resamples",
        "200",
        "--json",
    )
    assert code == 0, judged
    truth = json.loads(out)
    assert truth["grades"]["rows_unjudged"] == 0 and truth["groups"] == summary["groups"]
    for k in ("ndcg@5", "ndcg@10"):
        assert truth["model"][k] > truth["baseline"][k] + 0.03, k
        assert truth["intervals"]["model"][k][0] > truth["intervals"]["baseline"][k][1], k
    assert len(summary["top_features"]) == 10
    meta = json.loads((model.parent / "ranker.meta.json").read_text())
    assert (
        meta["feature_set_version"] == "recctl-fs-1" and meta["best_iteration"] == summary["best_iteration"]
    )
    assert meta["label_policy_hash"] and meta["data_fingerprint"].startswith("sha256:")
    assert "Top features by gain" in err and "NDCG" in err
    code, out, _ = run(
        "--store",
        str(sample_store),
        "train",
        *SAMPLE_WINDOW,
        "--model",
        str(model),
        "--evaluate-only",
        "--json",
    )
    assert code == 0 and json.loads(out)["status"] == "evaluated"
    assert json.loads(out)["metrics"]["valid"] == pytest.approx(valid)


def test_same_seed_same_model_text(sample_store: Path, tmp_path: Path) -> None:
    texts = []
    for attempt in range(2):
        model = tmp_path / f"m{attempt}.txt"
        code, _, err = run(
            "-q",
            "--store",
            str(sample_store),
            "train",
            *SAMPLE_WINDOW,
            "--seed",
            "7",
            "--model",
            str(model),
            "--param",
            "feature_fraction=0.8",
            "--num-boost-round",
            "60",
        )
        assert code == 0, err
        texts.append(model.read_bytes())
    assert texts[0] == texts[1]


def test_too_little_data_exits_3(sample_store: Path, tmp_path: Path) -> None:
    code, out, err = run(
        "--store",
        str(sample_store),
        "train",
        "--since",
        "2025-09-01",
        "--until",
        "2025-09-02",
        "--model",
        str(tmp_path / "m.txt"),
        "--json",
    )
    assert code == 3
    assert "interactions in the window" in err and "at least 100 are needed" in err
    assert not (tmp_path / "m.txt").exists()
    summary = json.loads(out)  # CI gets the status in the JSON too
    assert summary["status"] == "insufficient_data" and "at least 100" in summary["message"]


def test_failed_gate_exits_4_and_keeps_the_old_model(
    sample_store: Path, sample_model: Path, tmp_path: Path
) -> None:
    model = tmp_path / "ranker.txt"  # the model in place: the sample model's bundle
    shutil.copyfile(sample_model, model)
    shutil.copyfile(sample_model.with_suffix(".meta.json"), tmp_path / "ranker.meta.json")
    before = model.read_bytes(), (tmp_path / "ranker.meta.json").read_bytes()
    code, out, err = run(
        "--store",
        str(sample_store),
        "train",
        *SAMPLE_WINDOW,
        "--model",
        str(model),
        "--num-boost-round",
        "5",
        "--min-ndcg",
        "0.999",
        "--json",
    )
    assert code == 4
    assert json.loads(out)["status"] == "gate_failed"
    assert "below --min-ndcg 0.9990" in err
    assert (model.read_bytes(), (tmp_path / "ranker.meta.json").read_bytes()) == before
    rejected = tmp_path / "ranker.rejected.txt"
    assert rejected.exists() and rejected.read_bytes() != before[0]
    assert json.loads((tmp_path / "ranker.rejected.meta.json").read_text())["status"] == "gate_failed"


def test_evaluate_refuses_a_model_with_other_features(
    sample_store: Path, lightgbm_example: Path, tmp_path: Path
) -> None:
    model = tmp_path / "lgb.txt"
    code, _, _ = run(
        "-q",
        "train",
        "--data",
        str(lightgbm_example / "rank.train"),
        "--num-boost-round",
        "3",
        "--model",
        str(model),
    )
    assert code == 0
    code, _, err = run("--store", str(sample_store), "evaluate", *SAMPLE_WINDOW, "--model", str(model))
    assert code == 1
    assert err.startswith("Error: model") and "trained on other features" in err
    assert err.count("\n") == 1


def test_usage_errors(tmp_path: Path) -> None:
    assert run("train", "--param", "nonsense", "--model", str(tmp_path / "m.txt"))[0] == 2
    assert run("train", "--validation-split", "0", "--min-ndcg", "0.5")[0] == 2
    assert run("evaluate", "--k", "a,b", "--model", str(tmp_path / "m.txt"))[0] == 2


def test_json_is_a_flag_on_every_command_with_a_summary(sample_store: Path, tmp_path: Path) -> None:
    from typer.main import get_command

    commands = get_command(app).commands  # type: ignore[attr-defined]
    for name in ("ingest", "export", "train", "evaluate", "sample"):
        (option,) = [param for param in commands[name].params if "--json" in param.opts]
        assert option.is_flag, name
    model = tmp_path / "m.txt"
    code, out, err = run(
        "--store",
        str(sample_store),
        "train",
        *SAMPLE_WINDOW,
        "--num-boost-round",
        "3",
        "--model",
        str(model),
        "--json",
    )
    assert code == 0, err
    assert out.count("\n") == 1 and json.loads(out)["status"] == "trained"  # stdout: the JSON alone
    assert "NDCG" in err and "Model saved" in err  # the human report: stderr
    assert (
        run("--store", str(sample_store), "train", *SAMPLE_WINDOW, "--json", str(tmp_path / "s.json"))[0] == 2
    )


def test_unknown_lightgbm_parameter_is_a_usage_error_before_any_data_is_read(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-set.parquet"  # read first, this would be exit 1
    code, _, err = run(
        "train", "--data", str(missing), "--param", "num_leave=63", "--model", str(tmp_path / "m")
    )
    assert code == 2
    assert "unknown LightGBM parameter 'num_leave' (did you mean 'num_leaves'?)" in flat(err)
    assert "no-such-set" not in err
    # LightGBM's own aliases are known names: the run gets as far as the data
    code, _, err = run(
        "train", "--data", str(missing), "--param", "max_leaves=7", "--model", str(tmp_path / "m")
    )
    assert code == 1 and "does not exist" in err


def test_arguments_are_checked_before_the_data_is_read(sample_store: Path, tmp_path: Path) -> None:
    store = ["--store", str(sample_store)]
    (tmp_path / "m42").mkdir()
    (tmp_path / "a-file").write_text("")
    bad_models = {
        "/proc/nope/r.txt": "--model: cannot write /proc/nope/r.txt: cannot create files in /proc",
        str(tmp_path / "m42"): f"--model: {tmp_path / 'm42'} is a directory; name the model file",
        str(
            tmp_path / "a-file" / "x" / "m.txt"
        ): f"--model: cannot write {tmp_path / 'a-file' / 'x' / 'm.txt'}: "
        f"{tmp_path / 'a-file'} is a file, not a directory",
    }
    for model, message in bad_models.items():
        code, out, err = run(*store, "train", *SAMPLE_WINDOW, "--model", model, "--json")
        assert code == 1, err
        assert err.startswith(f"Error: {message}") and err.count("\n") == 1, err
        assert "Retrieved" not in err  # refused before the training data was read
        assert json.loads(out) == {
            "status": "error",
            "message": err[len("Error: ") :].strip(),
            "model_path": model,
        }
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file", "m42"]  # no probe left behind
    assert list((tmp_path / "m42").iterdir()) == []
    code, _, err = run(
        *store, "train", *SAMPLE_WINDOW, "--min-ndcg", "1.5", "--model", str(tmp_path / "m.txt")
    )
    assert code == 2 and "--min-ndcg" in err and not (tmp_path / "m.txt").exists()
    code, out, err = run(
        *store, "train", *SAMPLE_WINDOW, "--evaluate-only", "--model", str(tmp_path / "none.txt")
    )
    assert code == 1 and err.startswith("Error: no model at") and "Retrieved" not in err


def test_data_that_is_not_a_learning_to_rank_set_says_so(tmp_path: Path) -> None:
    code, _, err = run(
        "-q", "train", "--data", str(SAMPLE_DATA / "interactions.ndjson"), "--model", str(tmp_path / "m")
    )
    assert code == 1
    assert "interactions.ndjson is JSON (NDJSON or a JSON array), not a learning-to-rank set" in err
    assert "recommendation_id" not in err and err.count("\n") == 1
    (tmp_path / "table.csv").write_text("query_id,grade,x\nq1,1,0.5\n")
    code, _, err = run("train", "--data", str(tmp_path / "table.csv"), "--model", str(tmp_path / "m"))
    assert code == 1 and "table.csv is CSV with a header line, not a learning-to-rank set" in err


def test_json_failures_are_json_too(sample_store: Path, tmp_path: Path) -> None:
    missing = str(tmp_path / "none.txt")
    code, out, err = run(
        "--store", str(sample_store), "evaluate", *SAMPLE_WINDOW, "--model", missing, "--json"
    )
    assert code == 1 and err.startswith("Error: no model at")
    assert json.loads(out) == {
        "status": "error",
        "message": err[len("Error: ") :].strip(),
        "model_path": missing,
    }
    code, out, err = run("--store", str(tmp_path / "nothing"), "train", *SAMPLE_WINDOW, "--json")
    assert code == 1 and json.loads(out)["status"] == "error" and "no store at" in json.loads(out)["message"]


def test_a_gate_judged_on_too_few_validation_groups_is_not_a_pass(tiny_store: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.txt"
    store = ["--store", str(tiny_store)]
    code, out, err = run(
        *store, "train", *SAMPLE_WINDOW, "--fail-below-baseline", "--model", str(model), "--json"
    )
    assert code == 3, err  # a handful of validation groups (the newest assessment's lists) judge nothing
    summary = json.loads(out)
    assert summary["status"] == "insufficient_data"
    found = re.search(
        r"judged on (\d+) validation group\(s\); at least 20 are needed \(--min-valid-groups\)",
        summary["message"],
    )
    assert found, summary["message"]
    valid_groups = int(found[1])
    assert 1 <= valid_groups < 20
    assert err.strip().splitlines()[-1] == f"Error: {summary['message']}"
    assert list(tmp_path.iterdir()) == []  # refused before training: no model, no rejected model
    needed = str(valid_groups + 1)
    code, _, err = run(
        *store,
        "train",
        *SAMPLE_WINDOW,
        "--min-ndcg",
        "0.5",
        "--min-valid-groups",
        needed,
        "--model",
        str(model),
    )
    assert code == 3 and f"judged on {valid_groups} validation group(s); at least {needed} are needed" in err


def test_a_model_without_a_split_is_not_a_pass(tiny_store: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.txt"
    # Leaves of more rows than the store holds: no tree can split, even on every group at once
    # (the tiny store's ~140 examples would allow one split of two 50-row leaves, LightGBM's default).
    train = ["--store", str(tiny_store), "train", *SAMPLE_WINDOW, "--param", "min_data_in_leaf=1000"]
    gates = ["--fail-below-baseline", "--min-ndcg", "0.1", "--min-valid-groups", "1"]
    code, out, err = run(*train, *gates, "--model", str(model), "--json")
    assert code == 3, err
    assert json.loads(out)["status"] == "insufficient_data"
    assert "Error: the trained model has no split (every tree is a single leaf, all gains 0)" in err
    assert list(tmp_path.iterdir()) == []
    # without a gate, training is as it was: the model is written, with a warning
    for extra in ([], ["--validation-split", "0"]):
        code, out, err = run(*train, *extra, "--model", str(model), "--json")
        assert code == 0 and json.loads(out)["status"] == "trained", err
        assert "Warning: the model has no split" in err
    assert json.loads((tmp_path / "m.meta.json").read_text())["splits"] == 0
    # ... and the gates of --evaluate-only do not pass it either
    code, out, err = run(*train, "--evaluate-only", *gates, "--model", str(model), "--json")
    assert code == 3 and "Error: the model has no split" in err
    assert json.loads(out)["status"] == "insufficient_data"
    code, _, err = run(*train, "--evaluate-only", "--fail-below-baseline", "--model", str(model))
    found = re.search(r"judged on (\d+) validation group\(s\); at least 20 are needed", flat(err))
    assert code == 3 and found and int(found[1]) < 20, err


def test_training_without_assessments_warns_of_the_empty_feature_groups(tmp_path: Path) -> None:
    store = ["--store", str(tmp_path / "store")]
    for kind in ("recommendations", "interactions"):  # the assessments catalog was forgotten
        assert run("-q", *store, "ingest", kind, str(SAMPLE_DATA / f"{kind}.ndjson"))[0] == 0
    model = tmp_path / "m.txt"
    code, out, err = run(
        *store, "train", *SAMPLE_WINDOW, "--num-boost-round", "5", "--model", str(model), "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["empty_feature_groups"] == ["assessment", "cross"]
    assert summary["feature_coverage"]["cross"]["coverage"] == 0.0
    assert summary["feature_coverage"]["recommendation"]["coverage"] > 0.9
    flat_err = " ".join(err.split())
    assert "Warning: all 13 assessment features are missing in every row" in flat_err
    assert "Warning: all 9 cross features are missing in every row" in flat_err
    assert "Feature coverage: recommendation 98%, assessment 0%, cross 0%, list 93%" in flat_err
    meta = json.loads((tmp_path / "m.meta.json").read_text())
    assert meta["empty_feature_groups"] == ["assessment", "cross"]
    assert meta["feature_coverage"] == summary["feature_coverage"]
    code, out, err = run(*store, "export", *SAMPLE_WINDOW, "--out", str(tmp_path / "set"), "--json")
    assert code == 0 and json.loads(out)["empty_feature_groups"] == ["assessment", "cross"]
    assert "Warning: all 13 assessment features" in " ".join(err.split())
    manifest = json.loads((tmp_path / "set" / "manifest.json").read_text())
    assert manifest["feature_coverage"] == summary["feature_coverage"]  # export and train agree


def test_evaluate_counts_the_groups_the_model_learned_from_and_can_leave_them_out(
    sample_store: Path, tmp_path: Path
) -> None:
    store = ["--store", str(sample_store)]
    model = tmp_path / "m.txt"
    trained_window = ["--since", "2025-09-01", "--until", "2025-10-01"]
    later_window = ["--since", "2025-10-15", "--until", "2025-11-01"]
    code, out, err = run(
        *store, "train", *trained_window, "--num-boost-round", "20", "--model", str(model), "--json"
    )
    assert code == 0, err
    trained = json.loads(out)
    recorded = json.loads((tmp_path / "m.meta.json").read_text())["training_groups"]
    assert recorded["train"] + recorded["valid"] == trained["groups"]
    assert recorded["fingerprint"].startswith("sha256:")
    assert "2025-09-01" <= recorded["event_time"]["first"] <= recorded["event_time"]["last"] < "2025-10-01"
    evaluate = [*store, "evaluate", "--model", str(model), "--resamples", "10", "--json"]
    # on its own window every group overlaps, split as in training
    code, out, err = run(*evaluate, *trained_window)
    assert code == 0, err
    same = json.loads(out)["training_overlap"]
    assert same == {
        "groups": trained["groups"],
        "train": recorded["train"],
        "valid": recorded["valid"],
        "left_out": False,
    }
    # a later window still holds assessments it learned from: counted, and said on stderr
    code, out, err = run(*evaluate, *later_window)
    later = json.loads(out)
    overlap = later["training_overlap"]
    assert code == 0 and 0 < overlap["groups"] < later["groups"]
    assert overlap["groups"] == overlap["train"] + overlap["valid"] and not overlap["left_out"]
    assert f"Warning: {overlap['groups']} of these {later['groups']} groups overlap" in " ".join(err.split())
    code, out, err = run(*evaluate, *later_window, "--holdout-only")
    held_out = json.loads(out)
    assert code == 0, err
    assert held_out["groups"] == later["groups"] - overlap["groups"]
    assert held_out["training_overlap"] == {**overlap, "left_out": True}
    assert held_out["model"]["ndcg@10"] != later["model"]["ndcg@10"]
    code, out, err = run(*evaluate, *trained_window, "--holdout-only")
    assert code == 3 and json.loads(out)["status"] == "insufficient_data"
    assert "nothing is left to evaluate" in err
    # a model whose meta does not list its groups (an older recctl): unknown, and no --holdout-only
    from recctl.model import load_bundle, save_bundle

    bundle = load_bundle(model)
    old = tmp_path / "old.txt"
    save_bundle(bundle.model_text, {k: v for k, v in bundle.meta.items() if k != "training_groups"}, old)
    code, out, err = run(
        *store, "evaluate", "--model", str(old), "--resamples", "10", "--json", *later_window
    )
    assert code == 0 and json.loads(out)["training_overlap"] is None and "unknown" in err
    code, _, err = run(*store, "evaluate", "--model", str(old), "--holdout-only", *later_window)
    assert code == 1 and "does not list the groups it was trained on" in err


def test_excluded_features_by_name_and_group_leave_the_model_and_rank_computes_the_rest(
    sample_store: Path, tmp_path: Path
) -> None:
    from recctl.features import FEATURE_GROUPS, FEATURE_NAMES
    from recctl.model import load_bundle
    from recctl.native import load as native_model

    model = tmp_path / "m.txt"
    code, out, err = run(
        "--store",
        str(sample_store),
        "train",
        *SAMPLE_WINDOW,
        "--model",
        str(model),
        "--num-boost-round",
        "20",
        "--exclude-features",
        "confidence_score,confidence_rank",
        "--exclude-features",
        "assessment",
        "--json",
    )
    assert code == 0, err
    left_out = {"confidence_score", "confidence_rank"} | {
        n for n, g in FEATURE_GROUPS.items() if g == "assessment"
    }
    kept = [name for name in FEATURE_NAMES if name not in left_out]
    summary = json.loads(out)
    assert summary["excluded_features"] == [name for name in FEATURE_NAMES if name in left_out]
    bundle = load_bundle(model)
    assert bundle.feature_names == kept and bundle.meta["excluded_features"] == summary["excluded_features"]
    assert bundle.meta["debias"]["method"] == summary["debias"]["method"]

    # rank scores with exactly the model's features: its ml_score is LightGBM's on those columns.
    batch = json.loads((SAMPLE_DATA / "rank_batch.json").read_text())
    code, out, err = run(
        "rank", "--model", str(model), "--require-model", "--lambda", "1", input=json.dumps(batch)
    )
    assert code == 0, err
    ranked = json.loads(out)
    assert ranked["summary"]["ml_ranking_applied"] is True

    import polars as pl

    from recctl.features import candidates, compute_features, feature_matrix
    from recctl.records import validate_objects

    recommendations = validate_objects("recommendations", batch["recommendations"]).records
    assessments = validate_objects("assessments", [batch["assessment"]]).records
    features = compute_features(candidates(recommendations, assessments))
    matrix = feature_matrix(features, kept).to_numpy()
    scorer = native_model(bundle.model_text) or bundle.booster()
    expected = dict(zip(features["recommendation_id"], scorer.predict(matrix).tolist(), strict=True))
    for item in ranked["recommendations"]:
        assert item["ml_score"] == pytest.approx(expected[item["recommendation_id"]], rel=1e-12)
    assert pl.Series(list(expected.values())).n_unique() > 1


def test_unknown_excluded_features_are_a_usage_error_before_any_work(tmp_path: Path) -> None:
    code, _, err = run(
        "--store", str(tmp_path / "no-store"), "train", "--exclude-features", "confidense_score"
    )
    assert code == 2
    assert "did you mean 'confidence_score'?" in flat(err)
    assert not (tmp_path / "no-store").exists()


def test_debias_options_are_checked_before_any_work(tmp_path: Path) -> None:
    store = str(tmp_path / "no-store")
    code, _, err = run("train", "--data", str(tmp_path / "set.parquet"), "--debias", "ips")
    assert code == 2 and "--debias ips on --data needs --bias PATH" in flat(err)
    code, _, err = run("--store", store, "train", "--debias", "ips", "--bias", str(tmp_path / "none.json"))
    assert code == 2 and "cannot read" in flat(err)
    assert run("--store", store, "train", "--ips-clip", "0.5")[0] == 2


def test_the_report_and_json_say_which_correction_ran(sample_store: Path, tmp_path: Path) -> None:
    curve = tmp_path / "bias.json"
    curve.write_text(
        json.dumps(
            {
                "method": "direct",
                "positions": [{"position": p, "examination": (1 + p) ** -0.6} for p in range(12)],
            }
        )
    )

    def train(store: Path) -> tuple[dict[str, Any], str]:
        code, out, err = run(
            "--store",
            str(store),
            "train",
            *SAMPLE_WINDOW,
            "--model",
            str(tmp_path / "m.txt"),
            "--num-boost-round",
            "10",
            "--bias",
            str(curve),
            "--json",
        )
        assert code == 0, err
        debias: dict[str, Any] = json.loads(out)["debias"]
        assert debias["requested"] == "auto" and debias["early_stopping_on"] == "ips-ndcg@10"
        assert [p["position"] for p in debias["curve"]["positions"]] == list(range(12))
        report = flat(err)
        named = f"examination by position (direct, {curve}): 0: 1.000, 1: 0.660"
        assert "".join(named.split()) in "".join(report.split())  # (a long path may be wrapped)
        return debias, report

    # The sample's served lists give every row a position: auto lets LightGBM learn a bias per slot.
    debias, report = train(sample_store)
    assert debias["method"] == "position" and "ips_clip" not in debias
    assert "Debiasing: position (every row has a position (impression lists))" in report
    # Without them, positions come with the interactions only: auto weights the relevant rows.
    clicks_only = tmp_path / "clicks-only"
    for kind in ("assessments", "recommendations", "interactions"):
        assert (
            run("-q", "--store", str(clicks_only), "ingest", kind, str(SAMPLE_DATA / f"{kind}.ndjson"))[0]
            == 0
        )
    debias, report = train(clicks_only)
    assert debias["method"] == "ips" and debias["ips_clip"] == 10.0
    assert "Debiasing: ips (only the relevant rows have a position)" in report
