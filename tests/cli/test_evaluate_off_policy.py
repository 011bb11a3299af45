"""``recctl evaluate --off-policy``: estimates from the served lists of a store, and its refusals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from builders import RECORD_KINDS, SAMPLE_WINDOW, run, write_ndjson

from recctl.sample import generate_sample

ESTIMATORS = {"ips", "snips", "iips", "sniips", "rips", "snrips", "dr"}


def _ingest(folder: Path, store: Path) -> None:
    for kind in RECORD_KINDS:
        code, _, err = run("--store", str(store), "-q", "ingest", kind, str(folder / f"{kind}.ndjson"))
        assert code == 0, err


@pytest.fixture(scope="module")
def deterministic_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated log served in the confidence order (propensity 1.0 throughout)."""
    folder = tmp_path_factory.mktemp("deterministic")
    generate_sample(folder / "data", assessments=40, seed=5)
    _ingest(folder / "data", folder / "store")
    return folder / "store"


def _off_policy(store: Path, *args: str) -> tuple[int, dict, str]:
    code, out, err = run("--store", str(store), "evaluate", "--off-policy", *SAMPLE_WINDOW, *args)
    return code, (json.loads(out) if out.strip() else {}), err


def test_the_logged_policy_as_target_gives_every_estimator_the_logged_value(sample_store: Path) -> None:
    code, report, err = _off_policy(sample_store, "--policy", "logged", "--json", "--resamples", "50")
    assert code == 0, err
    assert report["target"] == "logged" and report["reward"] == "click" and report["lists"] == 741
    logged = report["logged"]["value"]
    assert 0 < logged < 14
    assert set(report["estimators"]) == ESTIMATORS - {"dr"}  # unshown items' probabilities are not logged
    assert "dr" in report["skipped"]
    for name, result in report["estimators"].items():
        assert result["value"] == pytest.approx(logged), name
        assert result["ess"] == pytest.approx(report["lists"]), name
        assert result["low"] <= result["value"] <= result["high"], name
    assert "skipped dr" in err


def test_a_model_is_evaluated_by_every_estimator_with_intervals_and_sample_sizes(
    sample_store: Path, sample_model: Path
) -> None:
    code, report, err = _off_policy(
        sample_store, "--model", str(sample_model), "--reward", "implement", "--depth", "5", "--json"
    )
    assert code == 0, err
    assert report["depth"] == 5 and report["policy"] == "deterministic"
    # No logged top-5 is the model's own: whole-list weights are all 0, so ips/snips are skipped,
    # never reported as a confident 0.
    assert set(report["estimators"]) == ESTIMATORS - {"ips", "snips"}
    assert "effective sample size 0" in report["skipped"]["ips"]
    assert report["reward_model"]["folds"] == 2
    for name, result in report["estimators"].items():
        assert all(math.isfinite(result[key]) for key in ("value", "low", "high", "ess")), name
        assert result["low"] <= result["high"], name
        assert 0 < result["ess"] < report["lists"], name  # a deterministic target reweights the log
        assert result["assumption"], name
    # Implementations over 5 slots: a handful per hundred lists, never more than the slots.
    assert 0 <= report["estimators"]["sniips"]["value"] <= 5
    assert "unbiased if" in err
    code, _, err = _off_policy(
        sample_store, "--model", str(sample_model), "--depth", "5", "--estimator", "ips"
    )
    assert code == 3
    assert "ips cannot be estimated" in err


def test_a_target_that_reorders_deterministic_logs_is_refused_in_one_line(deterministic_store: Path) -> None:
    code, _, err = _off_policy(deterministic_store, "--policy", "confidence")  # MMR reorders the lists
    assert code == 3
    assert "served for certain (propensity 1.0" in err
    assert len(err.strip().splitlines()) == 1


def test_deterministic_logs_support_the_target_that_served_them(deterministic_store: Path) -> None:
    code, report, err = _off_policy(deterministic_store, "--policy", "confidence", "--no-diversity", "--json")
    assert code == 0, err
    for name, result in report["estimators"].items():
        if name != "dr":
            assert result["value"] == pytest.approx(report["logged"]["value"]), name


def test_estimators_whose_propensity_is_missing_are_skipped_or_refused(tmp_path: Path) -> None:
    source = Path(__file__).parents[2] / "sample_data"
    data = tmp_path / "data"
    data.mkdir()
    for kind in RECORD_KINDS:
        text = (source / f"{kind}.ndjson").read_text()
        if kind == "impressions":  # the marginal propensities were not logged
            lists = [json.loads(line) for line in text.splitlines()]
            for served in lists:
                for item in served["items"]:
                    item.pop("propensity", None)
            write_ndjson(data / f"{kind}.ndjson", lists)
        else:
            (data / f"{kind}.ndjson").write_text(text)
    _ingest(data, tmp_path / "store")
    code, report, err = _off_policy(
        tmp_path / "store", "--policy", "confidence", "--json", "--resamples", "20"
    )
    assert code == 0, err
    assert set(report["estimators"]) == {"ips", "snips", "rips", "snrips"}
    assert set(report["skipped"]) == {"iips", "sniips", "dr"}
    assert "log no propensity" in report["skipped"]["iips"]
    code, _, err = _off_policy(tmp_path / "store", "--policy", "confidence", "--estimator", "iips")
    assert code == 3
    assert "iips cannot be estimated from these logs" in err


def test_an_empty_window_is_not_enough_data(sample_store: Path) -> None:
    code, _, err = run(
        "--store", str(sample_store), "evaluate", "--off-policy", "--policy", "logged",
        "--since", "2020-01-01", "--until", "2020-02-01",
    )  # fmt: skip
    assert code == 3
    assert "no served lists" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--explore", "plackett-luce"], "--explore is an --off-policy option"),
        (
            ["--off-policy", "--policy", "logged", "--lambda", "0.5"],
            "--lambda does not apply to --policy logged",
        ),
        (["--off-policy", "--policy", "confidence", "--estimator", "ipw"], "unknown ipw"),
        (["--off-policy", "--policy", "confidence", "--temperature", "0.3"], "--temperature needs --explore"),
        (["--off-policy", "--policy", "confidence", "--model", "m.txt"], "not both"),
        (["--off-policy", "--policy", "confidence", "--k", "5"], "--k does not apply"),
    ],
)
def test_option_mistakes_are_usage_errors(sample_store: Path, args: list[str], message: str) -> None:
    code, _, err = run("--store", str(sample_store), "evaluate", *args)
    assert code == 2
    assert message in " ".join(err.split())
