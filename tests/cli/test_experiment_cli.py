"""``recctl experiment`` on logs ingested the normal way, on both stores: the JSON, CSV and table
outputs, the sample-ratio check, interleaving, and the refusals with their exit codes."""

from __future__ import annotations

import csv
import io
import json
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import impression, interaction, recommendation, run, write_ndjson

from recctl.ingestion import ingest
from recctl.stores import open_store

START = datetime(2025, 6, 1)
WINDOW = ("--since", "2025-06-01", "--until", "2025-07-01")
CATEGORIES = ("security", "cost_optimization", "performance", "security")


def _time(minutes: float) -> str:
    return (START + timedelta(minutes=minutes)).isoformat() + "Z"


def ab_log(
    users: dict[str, int], *, lists_per_user: int = 2
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Lists of four items (rec-0 .. rec-3 of one assessment) for ``users[variant]`` users per
    variant. In list k of user u, the item at slot (u + k) % 4 is clicked, and in variant B also
    the one after it; every item is viewed. Half of B's lists name their variant only in the
    interactions' context, and half of the clicks carry no request_id (linked by time)."""
    impressions, interactions = [], []
    number = 0
    for variant, count in users.items():
        for user in range(count):
            for k in range(lists_per_user):
                request, shown = f"{variant}-{user}-{k}", number * 10.0
                number += 1
                in_context = variant == "B" and k == 0
                impressions.append(
                    impression(
                        request_id=request,
                        timestamp=_time(shown),
                        assessment_id="asm-1",
                        user_id=f"{variant}-user-{user}",
                        variant=None if in_context else variant,
                        policy=None,
                        items=[{"recommendation_id": f"rec-{i}", "position": i} for i in range(4)],
                    )
                )
                clicked = {(user + k) % 4} | ({(user + k + 1) % 4} if variant == "B" else set())
                for slot in range(4):
                    for kind in ("view", "click") if slot in clicked else ("view",):
                        context: dict[str, Any] = {"position": slot}
                        if kind == "view" or slot % 2 == 0:
                            context["request_id"] = request
                        if in_context:
                            context["variant"] = variant
                        interactions.append(
                            interaction(
                                event_id=f"{request}-{slot}-{kind}",
                                recommendation_id=f"rec-{slot}",
                                user_id=f"{variant}-user-{user}",
                                assessment_id="asm-1",
                                interaction_type=kind,
                                timestamp=_time(shown + 1),
                                context=context,
                            )
                        )
    return impressions, interactions


def make_store(
    location: str, folder: Path, impressions: list[dict[str, Any]], interactions: list[dict[str, Any]]
) -> str:
    catalog = [
        recommendation(recommendation_id=f"rec-{i}", category=category, services=[], tags=[])
        for i, category in enumerate(CATEGORIES)
    ]
    with closing(open_store(location, create=True)) as store:
        for kind, rows in (
            ("recommendations", catalog),
            ("impressions", impressions),
            ("interactions", interactions),
        ):
            if rows:
                summary = ingest(store, kind, [str(write_ndjson(folder / f"{kind}.ndjson", rows))])  # type: ignore[arg-type]
                assert summary.rejected == 0, kind
    return location


@pytest.fixture(scope="module")
def ab_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("ab")
    return make_store(str(folder / "store"), folder, *ab_log({"A": 20, "B": 20}))


def test_ab_on_both_stores(store_location: str, tmp_path: Path) -> None:
    make_store(store_location, tmp_path, *ab_log({"A": 20, "B": 20}))
    code, out, err = run(
        "--store", store_location, "experiment", *WINDOW, "--format", "json", "--resamples", "200"
    )
    assert code == 0, err
    document = json.loads(out)
    assert document["control"] == "A"  # no variant named "control": the first by name
    a, b = document["variants"]["A"], document["variants"]["B"]
    assert (a["lists"], a["users"], a["items"], a["clicks"]) == (40, 20, 160, 40)
    assert (b["lists"], b["users"], b["items"], b["clicks"]) == (40, 20, 160, 80)  # half via context.variant
    assert a["ctr"]["value"] == pytest.approx(0.25) and b["ctr"]["value"] == pytest.approx(0.5)
    assert a["ctr"]["low"] <= 0.25 <= a["ctr"]["high"]
    assert a["implementation_rate"]["value"] == 0.0
    assert a["mean_label"]["value"] == pytest.approx(0.25 * 0.4 + 0.75 * 0.1)
    assert set(a) >= {"ctr", "implementation_rate", "mean_label", "diversity_discounted"}
    ctr = next(c for c in document["comparisons"] if c["metric"] == "ctr")
    assert (ctr["variant"], ctr["control"]) == ("B", "A")
    assert ctr["difference"] == pytest.approx(0.25) and ctr["relative_lift"] == pytest.approx(1.0)
    assert ctr["low"] > 0 and ctr["p_value"] < 0.05
    # every list shows the same four items in the same order
    diversity = next(c for c in document["comparisons"] if c["metric"] == "diversity_discounted")
    assert diversity["difference"] == pytest.approx(0.0, abs=1e-12) and diversity["p_value"] == 1.0
    assert document["srm"]["flag"] is False and document["srm"]["p_value"] == pytest.approx(1.0)
    assert (document["lists_without_variant"], document["unlinked_interactions"]) == (0, 0)


def test_csv_and_table(ab_store: str) -> None:
    code, out, err = run("--store", ab_store, "experiment", *WINDOW, "--format", "csv", "--resamples", "100")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["row"] for row in rows] == ["variant"] * 8 + ["comparison"] * 4 + ["srm"]
    assert rows[0]["variant"] == "A" and rows[0]["metric"] == "ctr" and float(rows[0]["value"]) == 0.25
    assert rows[8]["control"] == "A" and float(rows[8]["relative_lift"]) == pytest.approx(1.0)
    assert rows[-1]["flag"] == "false"
    code, out, err = run("--store", ab_store, "experiment", *WINDOW, "--resamples", "100", "--control", "B")
    assert code == 0, err
    assert "B (control)" in out and "Against B" in out and "no mismatch" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_a_90_10_split_declared_50_50_raises_the_flag(tmp_path: Path) -> None:
    location = make_store(str(tmp_path / "store"), tmp_path, *ab_log({"A": 36, "B": 4}, lists_per_user=1))
    code, out, err = run("--store", location, "experiment", *WINDOW, "--format", "json", "--resamples", "100")
    assert code == 0, err
    srm = json.loads(out)["srm"]
    assert srm["flag"] is True and srm["p_value"] < 0.001 and srm["users"] == {"A": 36, "B": 4}
    code, out, _ = run("--store", location, "experiment", *WINDOW, "--resamples", "100")
    assert "MISMATCH" in out
    code, out, _ = run(
        "--store", location, "experiment", *WINDOW, "--format", "json", "--resamples", "100",
        "--expected-split", "A=90,B=10",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["srm"]["flag"] is False


def _interleaved_log(lists: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Team-draft lists A, B, A, B; A's first item is clicked in every list, B's in every third."""
    impressions, interactions = [], []
    for number in range(lists):
        request = f"il-{number}"
        impressions.append(
            impression(
                request_id=request,
                timestamp=_time(number * 10.0),
                user_id=f"user-{number % 7}",
                policy="team-draft",
                items=[
                    {"recommendation_id": f"rec-{i}", "position": i, "team": "AB"[i % 2]} for i in range(4)
                ],
            )
        )
        for slot in (0, 1) if number % 3 == 0 else (0,):
            interactions.append(
                interaction(
                    event_id=f"{request}-{slot}",
                    recommendation_id=f"rec-{slot}",
                    user_id=f"user-{number % 7}",
                    interaction_type="click",
                    timestamp=_time(number * 10.0 + 1),
                    context={"request_id": request, "position": slot},
                )
            )
    return impressions, interactions


def test_interleaving_on_both_stores(store_location: str, tmp_path: Path) -> None:
    make_store(store_location, tmp_path, *_interleaved_log(30))
    code, out, err = run(
        "--store", store_location, "experiment", *WINDOW,
        "--interleaving", "--format", "json", "--resamples", "200",
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    assert (document["lists"], document["users"]) == (30, 7)
    assert (document["wins"], document["losses"], document["ties"], document["no_clicks"]) == (20, 0, 10, 0)
    assert document["clicks"] == {"A": 30, "B": 10}
    assert document["preference"]["value"] == pytest.approx(25 / 30 - 0.5)
    assert document["sign_test"]["p_value"] == pytest.approx(2 * 0.5**20)
    assert document["winner"] == "A" and document["teams"] == ["A", "B"]
    if not store_location.startswith("mongodb"):
        code, out, _ = run("--store", store_location, "experiment", "--interleaving", "--resamples", "100")
        assert code == 0 and "A wins 20, loses 0, ties 10" in out and "winner: A" in out
        code, out, _ = run("--store", store_location, "experiment", "--interleaving", "--format", "csv")
        assert code == 0 and out.splitlines()[1].startswith("A,B,30,7,20,0,10,0,")
        code, _, err = run("--store", store_location, "experiment")  # no list names a variant
        assert code == 3 and "names a variant" in err


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (("--control", "C"), 1, "--control 'C' is not a variant of the lists in the window (A, B)"),
        (
            ("--expected-split", "A=50,C=50"),
            1,
            "variant(s) B of the lists in the window are not in --expected-split",
        ),
        (("--expected-split", "A=50"), 2, "two or more"),
        (("--expected-split", "A=x,B=1"), 2, "NAME=WEIGHT"),
        (("--expected-split", "A=1,A=2"), 2, "named twice"),
        (("--resamples", "10"), 2, "--resamples"),
        (("--format", "ndjson"), 2, "--format"),
        (("--interleaving", "--control", "A"), 2, "--interleaving"),
        (("--interleaving",), 3, "no served list in the window is interleaved"),
        (("--since", "2024-01-01", "--until", "2024-02-01"), 3, "no served lists"),
        (("--since", "2025-07-01", "--until", "2025-06-01"), 2, "empty"),
    ],
)
def test_refusals(ab_store: str, arguments: tuple[str, ...], code: int, message: str) -> None:
    ran = run("--store", ab_store, "experiment", "--resamples", "100", *arguments)
    assert ran.exit_code == code and message in ran.stderr, ran.stderr
    if code != 2:
        assert len(ran.stderr.strip().splitlines()) == 1 and ran.stdout == ""


def test_one_variant_and_a_missing_store(tmp_path: Path) -> None:
    location = make_store(str(tmp_path / "store"), tmp_path, *ab_log({"control": 3}))
    code, _, err = run("--store", location, "experiment")
    assert code == 3 and "all belong to variant 'control'" in err
    code, _, err = run("--store", str(tmp_path / "nowhere"), "experiment")
    assert code == 1 and err.startswith("Error:")
