"""``recctl bias`` from a store: the curve as JSON and a file, the refusals and their exit codes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import impression, interaction, run, write_ndjson

from recctl.bias import BiasCurve
from recctl.ingestion import ingest
from recctl.stores import open_store

START = datetime(2025, 6, 1)
WINDOW = ("--since", "2025-06-01", "--until", "2025-07-01")


def _curve(slot: np.ndarray) -> np.ndarray:
    return (1.0 + slot) ** -1.0


def served_log(
    *,
    assessments: int = 100,
    lists_per_assessment: int = 20,
    size: int = 4,
    shuffled: bool = True,
    seed: int = 0,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Impressions and interactions of lists of ``size`` recommendations per assessment, in a
    uniformly random order (``shuffled``: every placement has propensity 1/size) or always in the
    same order; each shown item is viewed, and clicked with probability curve(slot) x relevance."""
    rng = np.random.default_rng(seed)
    impressions: list[dict[str, Any]] = []
    interactions: list[dict[str, Any]] = []
    for assessment in range(assessments):
        relevance = rng.uniform(0.2, 0.9, size=size)
        for number in range(lists_per_assessment):
            request = f"q-{assessment}-{number}"
            shown = START + timedelta(minutes=assessment * lists_per_assessment + number)
            order = rng.permutation(size) if shuffled else np.arange(size)
            items = [
                {"recommendation_id": f"rec-{assessment}-{item}", "position": slot}
                | ({"propensity": 1.0 / size} if shuffled else {})
                for slot, item in enumerate(order)
            ]
            impressions.append(
                impression(
                    request_id=request,
                    timestamp=shown.isoformat() + "Z",
                    assessment_id=f"asm-{assessment}",
                    user_id=f"user-{assessment}",
                    policy="plackett-luce" if shuffled else None,
                    items=items,
                )
            )
            clicked = rng.random(size) < _curve(np.arange(size)) * relevance[order]
            for slot, item in enumerate(order):
                for kind in ("view", "click") if clicked[slot] else ("view",):
                    interactions.append(
                        interaction(
                            event_id=f"{request}-{slot}-{kind}",
                            recommendation_id=f"rec-{assessment}-{item}",
                            user_id=f"user-{assessment}",
                            assessment_id=f"asm-{assessment}",
                            interaction_type=kind,
                            timestamp=(shown + timedelta(seconds=30)).isoformat() + "Z",
                            context={"request_id": request, "position": slot},
                        )
                    )
    return impressions, interactions


def make_store(tmp_path: Path, impressions: list[dict[str, Any]], interactions: list[dict[str, Any]]) -> str:
    location = str(tmp_path / "store")
    store = open_store(location, create=True)
    try:
        for kind, rows in (("impressions", impressions), ("interactions", interactions)):
            if rows:
                summary = ingest(store, kind, [str(write_ndjson(tmp_path / f"{kind}.ndjson", rows))])  # type: ignore[arg-type]
                assert summary.rejected == 0
    finally:
        store.close()
    return location


@pytest.fixture(scope="module")
def randomised_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_store(tmp_path_factory.mktemp("randomised"), *served_log())


def test_bias_estimates_the_curve_of_randomised_lists(randomised_store: str, tmp_path: Path) -> None:
    out = tmp_path / "curves" / "bias.json"
    code, stdout, stderr = run(
        "--store", randomised_store, "bias", *WINDOW, "--json", "--out", str(out), "--resamples", "200"
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["status"] == "estimated" and summary["method"] == "direct"
    assert [row["position"] for row in summary["positions"]] == [0, 1, 2, 3]
    estimate = np.array([row["examination"] for row in summary["positions"]])
    assert np.abs(estimate - _curve(np.arange(4))).max() <= 0.06
    assert all(row["low"] <= row["examination"] <= row["high"] for row in summary["positions"])
    assert [row["impressions"] for row in summary["positions"]] == [2000] * 4
    assert (summary["lists"], summary["confounded"], summary["unlinked_interactions"]) == (2000, False, 0)
    assert summary["clicks"] == sum(row["interaction_type"] == "click" for row in served_log()[1])
    assert summary["out"] == str(out)
    saved = BiasCurve.load(out)
    np.testing.assert_allclose(saved.examination, estimate)
    assert "Examination by slot" in stderr and "95% interval" in stderr


def test_views_are_not_clicks_and_the_method_can_be_chosen(randomised_store: str) -> None:
    code, stdout, stderr = run(
        "--store", randomised_store, "bias", *WINDOW, "--json",
        "--method", "regression-em", "--resamples", "10", "--max-position", "2",
    )  # fmt: skip
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["method"] == "regression-em"
    assert len(summary["positions"]) == 3
    # 8,000 items were viewed; only the clicked ones count
    assert 0 < summary["clicks"] < 6000


def test_one_deterministic_order_exits_3_and_says_why(tmp_path: Path) -> None:
    location = make_store(tmp_path, *served_log(assessments=20, lists_per_assessment=5, shuffled=False))
    code, stdout, stderr = run("--store", location, "bias", *WINDOW)
    assert code == 3
    assert stderr.startswith("Error: position is confounded with relevance")
    assert "randomised lists" in stderr and len(stderr.strip().splitlines()) == 1
    code, stdout, _ = run("--store", location, "bias", *WINDOW, "--json")
    assert code == 3 and json.loads(stdout)["status"] == "insufficient_data"


def test_no_lists_in_the_window_exits_3(randomised_store: str) -> None:
    code, _, stderr = run(
        "--store", randomised_store, "bias", "--since", "2024-01-01", "--until", "2024-02-01"
    )
    assert code == 3 and "no shown items" in stderr


def test_interactions_without_a_request_id_link_by_time_and_the_rest_are_counted(tmp_path: Path) -> None:
    impressions, interactions = served_log(assessments=30, lists_per_assessment=10)
    for row in interactions:
        row["context"] = {"position": row["context"]["position"]}  # no request_id: linked by time
    clicks = sum(row["interaction_type"] == "click" for row in interactions)
    interactions.append(
        interaction(event_id="never-shown", recommendation_id="rec-unknown", timestamp="2025-06-01T00:00:00Z")
    )
    location = make_store(tmp_path, impressions, interactions)
    code, stdout, stderr = run("--store", location, "bias", *WINDOW, "--json", "--resamples", "20")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["unlinked_interactions"] == 1
    assert summary["interactions"] == len(interactions)
    assert summary["clicks"] == clicks  # the click on a recommendation never shown links to nothing


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--method", "magic"), "--method"),
        (("--max-position", "0"), "--max-position"),
        (("--resamples", "0"), "--resamples"),
        (("--attribution-hours", "-1"), "--attribution-hours"),
        (("--since", "2025-07-01", "--until", "2025-06-01"), "empty"),
    ],
)
def test_bad_options_are_usage_errors(
    randomised_store: str, arguments: tuple[str, ...], message: str
) -> None:
    code, _, stderr = run("--store", randomised_store, "bias", *arguments)
    assert code == 2 and message in stderr


def test_an_unwritable_out_fails_before_the_work(randomised_store: str, tmp_path: Path) -> None:
    code, stdout, stderr = run("--store", randomised_store, "bias", *WINDOW, "--out", str(tmp_path), "--json")
    assert code == 2 and "is a directory" in stderr and stdout == ""
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, stderr = run("--store", randomised_store, "bias", *WINDOW, "--out", str(blocker / "bias.json"))
    assert code == 2 and "is a file, not a directory" in stderr


def test_a_missing_store_is_an_error(tmp_path: Path) -> None:
    code, _, stderr = run("--store", str(tmp_path / "nowhere"), "bias", *WINDOW)
    assert code == 1 and stderr.startswith("Error:")
