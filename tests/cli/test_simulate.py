"""``recctl simulate``: the loop improves on the old order against the truth, is deterministic,
streams its rounds to disk, and never writes simulated records into a store it was not given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import run, stored_count

from recctl.stores import open_store


def simulate(*args: str) -> dict[str, Any]:
    code, out, err = run("simulate", *args, "--json")
    assert code == 0, err
    return dict(json.loads(out))


def test_with_debiasing_and_exploration_the_last_round_beats_round_0(tmp_path: Path) -> None:
    summary = simulate(
        "--rounds", "2", "--assessments-per-round", "400", "--seed", "4242",
        "--explore", "plackett-luce", "--num-boost-round", "100", "--out", str(tmp_path / "loop"),
    )  # fmt: skip
    first, last = summary["rounds"][0], summary["rounds"][-1]
    assert first["model_version"] is None and last["model_version"] is not None
    assert [row["training"]["debias"] for row in summary["rounds"][:-1]] == ["position", "position"]
    assert last["true_ndcg@10"] > first["true_ndcg@10"]
    assert last["ctr"] > first["ctr"]


def test_the_same_seed_gives_the_same_rounds_and_each_round_is_on_disk_as_it_ends(tmp_path: Path) -> None:
    args = ("--rounds", "1", "--assessments-per-round", "120", "--seed", "7", "--min-interactions", "10")
    args += ("--num-boost-round", "40")
    one = simulate(*args, "--out", str(tmp_path / "one"))
    two = simulate(*args, "--out", str(tmp_path / "two"))

    def figures(summary: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {key: value for key, value in row.items() if key not in ("seconds", "training")}
            | {"trained": (row["training"] or {}).get("model_version")}
            for row in summary["rounds"]
        ]

    assert figures(one) == figures(two)
    assert [row["round"] for row in one["rounds"]] == [0, 1]
    assert one["options"] == two["options"]
    assert one["options"]["rounds"] == 1 and one["options"]["min_interactions"] == 10
    assert one["options"]["num_boost_round"] == 40 and one["options"]["explore"] is None
    streamed = [json.loads(line) for line in (tmp_path / "one" / "rounds.ndjson").read_text().splitlines()]
    assert [row["true_ndcg@10"] for row in streamed] == [row["true_ndcg@10"] for row in one["rounds"]]
    assert (tmp_path / "one" / "models" / "round-0.txt").is_file()
    assert not (tmp_path / "one" / "models" / "round-1.txt").exists()  # the last round trains nothing
    assert set(one["expected"]) == {"true_ndcg@10", "ctr", "implementation_rate", "diversity_discounted"}


def test_rounds_share_users_but_never_an_assessment(tmp_path: Path) -> None:
    import polars as pl

    simulate("--rounds", "1", "--assessments-per-round", "150", "--out", str(tmp_path / "sim"))
    frames = [pl.read_ndjson(tmp_path / "sim" / f"round-{n}" / "assessments.ndjson") for n in (0, 1)]
    assert set(frames[0]["assessment_id"]).isdisjoint(frames[1]["assessment_id"])
    assert set(frames[0]["user_id"]) & set(frames[1]["user_id"])  # users come back
    store = open_store(str(tmp_path / "sim" / "store"))
    assert stored_count(store, "assessments") == 300
    assert stored_count(store, "impressions") > 300


def test_the_default_store_is_never_written_and_a_given_store_is(tmp_path: Path) -> None:
    args = ("--rounds", "0", "--assessments-per-round", "30")
    simulate(*args, "--out", str(tmp_path / "a"))
    assert not Path("recctl-data").exists()
    assert (tmp_path / "a" / "store").is_dir()
    code, _, err = run("--store", str(tmp_path / "mine"), "simulate", *args, "--out", str(tmp_path / "b"))
    assert code == 0, err
    assert stored_count(open_store(str(tmp_path / "mine")), "assessments") == 30
    assert not (tmp_path / "b" / "store").exists()


def test_a_used_out_needs_force_which_replaces_the_earlier_run(tmp_path: Path) -> None:
    args = ("--rounds", "0", "--assessments-per-round", "25", "--out", str(tmp_path / "sim"))
    simulate(*args)
    code, _, err = run("simulate", *args)
    assert code == 1 and "not empty" in err and "--force" in err and err.count("\n") == 1
    (tmp_path / "sim" / "notes.txt").write_text("mine")
    simulate(*args, "--force")
    assert stored_count(open_store(str(tmp_path / "sim" / "store")), "assessments") == 25  # not 50
    assert (tmp_path / "sim" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--rounds", "-1"), "--rounds"),
        (("--examination", "sideways"), "--examination"),
        (("--param", "num_leafs=3"), "num_leaves"),
        (("--temperature", "0"), "--temperature"),
        (("--temperature", "0.5"), "--temperature needs --explore plackett-luce"),
        (("--explore", "plackett-luce", "--epsilon", "0.2"), "--epsilon needs --explore epsilon-greedy"),
        (("--no-diversity", "--lambda", "0.5"), "--lambda sets MMR diversity"),
    ],
)
def test_bad_arguments_are_usage_errors_before_any_work(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    code, _, err = run("simulate", "--out", str(tmp_path / "sim"), *args)
    assert code == 2 and message in err
    assert not (tmp_path / "sim").exists()


def test_force_never_deletes_what_no_simulation_wrote(tmp_path: Path) -> None:
    out = tmp_path / "project"
    (out / "models").mkdir(parents=True)
    (out / "models" / "recommendation_ranker.txt").write_text("precious")
    (out / "round-trip").mkdir()
    code, _, err = run(
        "simulate", "--rounds", "0", "--assessments-per-round", "20", "--out", str(out), "--force"
    )
    assert code == 1 and "no simulation wrote" in err and err.count("\n") == 1
    assert (out / "models" / "recommendation_ranker.txt").read_text() == "precious"
    assert (out / "round-trip").is_dir()


def test_a_store_that_holds_records_is_refused(tmp_path: Path, sample_store: Path) -> None:
    import shutil

    store = tmp_path / "real"
    shutil.copytree(sample_store, store)
    code, _, err = run("--store", str(store), "simulate", "--rounds", "0", "--assessments-per-round", "20",
                       "--out", str(tmp_path / "sim"))  # fmt: skip
    assert code == 1 and "already holds" in err
    assert stored_count(open_store(str(store)), "assessments") == stored_count(
        open_store(str(sample_store)), "assessments"
    )


def test_true_ndcg_of_a_cut_list_is_judged_against_all_its_candidates() -> None:
    import math

    import polars as pl

    from recctl.simulation import true_ndcg_at_10

    truth = pl.DataFrame(
        {"recommendation_id": ["a", "b", "c", "d"], "assessment_id": ["x"] * 3 + ["y"], "grade": [0, 2, 1, 0]}
    )
    items = pl.DataFrame({"request_id": ["r1", "r2", "r2"], "recommendation_id": ["a", "b", "c"]})
    # r1 shows only a (grade 0) of x's three candidates: 0; r2 shows b then c: the ideal order, 1.
    assert true_ndcg_at_10(items, truth) == pytest.approx(0.5)
    items = pl.DataFrame({"request_id": ["r1", "r2"], "recommendation_id": ["c", "d"]})
    ideal = 3.0 + 1.0 / math.log2(3)
    # r1 shows c (grade 1) at slot 0 against x's ideal b, c; r2: nothing relevant to show, 1
    assert true_ndcg_at_10(items, truth) == pytest.approx((1.0 / ideal + 1.0) / 2)
