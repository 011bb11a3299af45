"""``recctl train`` / ``recctl evaluate`` as CI runs them: figures, exit codes, bundles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recctl.cli import app

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data"
WINDOW = ["--since", "2025-09-01", "--until", "2025-11-01"]
TRAIN_CONF = [  # tests/data/lightgbm_lambdarank/train.conf
    "learning_rate=0.1",
    "num_leaves=31",
    "min_data_in_leaf=50",
    "min_sum_hessian_in_leaf=5.0",
    "bagging_fraction=0.9",
    "bagging_freq=1",
    "feature_fraction=1.0",
    "max_bin=255",
]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("train") / "store"
    for kind in ("assessments", "recommendations", "interactions"):
        assert run("-q", "--store", str(store), "ingest", kind, str(SAMPLE / f"{kind}.ndjson"))[0] == 0
    return store


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


def test_sample_model_beats_the_confidence_order(sample_store: Path, tmp_path: Path) -> None:
    model = tmp_path / "models" / "ranker.txt"
    code, out, err = run("--store", str(sample_store), "train", *WINDOW, "--model", str(model), "--json", "-")
    assert code == 0, err
    summary = json.loads(out)
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
    assert valid["ndcg@10"] > baseline["ndcg@10"] + 0.03  # a clear margin on held-out (newest) groups
    assert valid["ndcg@5"] > baseline["ndcg@5"] + 0.03
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
        *WINDOW,
        "--model",
        str(model),
        "--evaluate-only",
        "--json",
        "-",
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
            *WINDOW,
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
        "-",
    )
    assert code == 3
    assert "interactions in the window" in err and "at least 100 are needed" in err
    assert not (tmp_path / "m.txt").exists()
    summary = json.loads(out)  # CI gets the status in the JSON too
    assert summary["status"] == "insufficient_data" and "at least 100" in summary["message"]


def test_failed_gate_exits_4_and_keeps_the_old_model(sample_store: Path, tmp_path: Path) -> None:
    model = tmp_path / "ranker.txt"
    assert run("-q", "--store", str(sample_store), "train", *WINDOW, "--model", str(model))[0] == 0
    before = model.read_bytes(), (tmp_path / "ranker.meta.json").read_bytes()
    code, out, err = run(
        "--store",
        str(sample_store),
        "train",
        *WINDOW,
        "--model",
        str(model),
        "--num-boost-round",
        "5",
        "--min-ndcg",
        "0.999",
        "--json",
        "-",
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
    code, _, err = run("--store", str(sample_store), "evaluate", *WINDOW, "--model", str(model))
    assert code == 1
    assert err.startswith("Error: model") and "trained on other features" in err
    assert err.count("\n") == 1


def test_usage_errors(tmp_path: Path) -> None:
    assert run("train", "--param", "nonsense", "--model", str(tmp_path / "m.txt"))[0] == 2
    assert run("train", "--validation-split", "0", "--min-ndcg", "0.5")[0] == 2
    assert run("evaluate", "--k", "a,b", "--model", str(tmp_path / "m.txt"))[0] == 2
