"""``recctl rank --explore / --propensities / --interleave``: drawn lists, their propensities, logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import run

from cli.test_rank import sample_batches
from recctl.exploration import EXACT_UP_TO, Exploration, list_seed


def ranked_lines(lines: list[dict[str, Any]], *options: str) -> list[dict[str, Any]]:
    stream = "\n".join(json.dumps(line) for line in lines) + "\n"
    code, out, err = run("rank", "--ndjson", *options, input=stream)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def with_ids(batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**batch, "request_id": f"req-{number}"} for number, batch in enumerate(batches)]


@pytest.mark.parametrize("policy", ["plackett-luce", "epsilon-greedy"])
def test_explored_lists_carry_exact_prefix_propensities(sample_model: Path, policy: str) -> None:
    batches = with_ids(sample_batches(6))
    epsilon = ("--epsilon", "0.5") if policy == "epsilon-greedy" else ()
    options = ("--model", str(sample_model), "--explore", policy, *epsilon, "--seed", "4")
    answers = ranked_lines(batches, *options)
    for answer, batch in zip(answers, batches, strict=True):
        assert answer["summary"]["policy"] == policy and answer["summary"]["propensity_method"] is None
        items = answer["recommendations"]
        assert sorted(r["recommendation_id"] for r in items) == sorted(
            r["recommendation_id"] for r in batch["recommendations"]
        )
        prefix = [r["prefix_propensity"] for r in items]
        assert all(0 < p <= 1 for p in prefix) and prefix == sorted(prefix, reverse=True)
        assert all("propensity" not in r and "team" not in r for r in items)
    # the same requests, one per process: the same lists (seeded by --seed and the request id)
    for batch, answer in zip(batches[:2], answers[:2], strict=True):
        (alone,) = ranked_lines([batch], *options)
        assert alone["recommendations"] == answer["recommendations"]
    other_seed = ranked_lines(batches, *options[:-2], "--seed", "5")
    orders = [[r["recommendation_id"] for r in a["recommendations"]] for a in (*answers, *other_seed)]
    assert orders[: len(batches)] != orders[len(batches) :]


def test_marginal_propensities_and_their_method(sample_model: Path) -> None:
    batches = with_ids(sample_batches(4))
    long_batch = {**batches[0], "request_id": "long"}
    long_batch["recommendations"] = [dict(r) for b in batches for r in b["recommendations"]][
        : EXACT_UP_TO + 3
    ]
    short_batch = {**batches[1], "request_id": "short", "recommendations": batches[1]["recommendations"][:5]}
    answers = ranked_lines(
        [long_batch, short_batch],
        *("--model", str(sample_model), "--explore", "plackett-luce", "--propensities", "marginal"),
        *("--temperature", "0.3"),
    )
    assert [a["summary"]["propensity_method"] for a in answers] == ["monte-carlo", "exact"]
    for answer in answers:
        items = answer["recommendations"]
        assert all(0 < r["propensity"] <= 1 for r in items)
        # slot 0's marginal is the first choice's probability: the prefix propensity of slot 0
        assert items[0]["propensity"] == pytest.approx(items[0]["prefix_propensity"], rel=1e-5)


def test_interleaving_gives_each_item_a_team_and_the_log_keeps_it(
    sample_model: Path, tmp_path: Path, store_location: str
) -> None:
    batches = with_ids(sample_batches(5))
    log = tmp_path / "served.ndjson"
    answers = ranked_lines(
        batches,
        *("--model", str(sample_model), "--interleave", str(sample_model), "--seed", "1", "--log", str(log)),
    )
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    for answer, record in zip(answers, logged, strict=True):
        assert answer["summary"]["policy"] == "team-draft" == record["policy"]
        teams = [r["team"] for r in answer["recommendations"]]
        assert set(teams) <= {"A", "B"} and abs(teams.count("A") - teams.count("B")) <= 1
        assert [item["team"] for item in record["items"]] == teams
    explored = tmp_path / "explored.ndjson"
    ranked_lines(
        batches,
        *("--model", str(sample_model), "--explore", "plackett-luce", "--propensities", "marginal"),
        *("--log", str(explored)),
    )
    for record in (json.loads(line) for line in explored.read_text().splitlines()):
        assert record["policy"] == "plackett-luce"
        assert all(
            0 < item["propensity"] <= 1 and 0 < item["prefix_propensity"] <= 1 for item in record["items"]
        )
    for path in (log, explored):
        code, out, err = run("--store", store_location, "ingest", "impressions", str(path), "--json")
        assert code == 0, err
        assert json.loads(out)["rejected"] == 0


@pytest.mark.parametrize(
    "options",
    [
        ("--propensities", "marginal"),
        ("--explore", "plackett-luce", "--interleave", "other.txt"),
        ("--explore", "plackett-luce", "--temperature", "0"),
        ("--explore", "epsilon-greedy", "--epsilon", "1.5"),
        ("--explore", "softmax"),
    ],
)
def test_bad_exploration_options_are_usage_errors(sample_model: Path, options: tuple[str, ...]) -> None:
    code, _, err = run("rank", "--model", str(sample_model), *options, input=json.dumps(sample_batches(1)[0]))
    assert code == 2 and "Error" in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--epsilon", "0.2"), "--epsilon needs --explore epsilon-greedy"),
        (
            ("--explore", "epsilon-greedy", "--temperature", "0.5"),
            "--temperature needs --explore plackett-luce",
        ),
        (("--no-diversity", "--lambda", "0.3"), "--lambda sets MMR diversity"),
        (("--no-diversity", "--diversify-depth", "5"), "--diversify-depth sets MMR diversity"),
    ],
)
def test_options_that_would_be_ignored_are_usage_errors(
    sample_model: Path, options: tuple[str, ...], message: str
) -> None:
    code, out, err = run(
        "rank", "--model", str(sample_model), *options, input=json.dumps(sample_batches(1)[0])
    )
    assert code == 2 and message in " ".join(err.split()) and out == ""


def test_an_unusable_interleaving_model_fails_before_ranking(sample_model: Path, tmp_path: Path) -> None:
    code, out, err = run(
        "rank", "--model", str(sample_model), "--interleave", str(tmp_path / "none.txt"), input="[]"
    )
    assert code == 1 and out == "" and "none.txt" in err


def test_the_policy_api_serves_what_rank_serves(sample_model: Path) -> None:
    """``Ranker.policy(...).serve(list seeds)`` is rank's own path: the same orders and propensities."""
    import polars as pl

    from recctl.features import candidates, compute_features
    from recctl.ranking import Ranker, RankOptions

    batches = with_ids(sample_batches(3))
    exploration = Exploration("plackett-luce", marginals=True)
    options = RankOptions(seed=2, explore=exploration)
    for ranker in (Ranker(sample_model), Ranker.without_model()):
        answers = ranker.rank(json.loads(json.dumps(batches)), options)
        recommendations = pl.DataFrame(
            [{**r, "assessment_id": f"b{n}"} for n, b in enumerate(batches) for r in b["recommendations"]]
        )
        assessments = pl.DataFrame(
            [{**b["assessment"], "assessment_id": f"b{n}"} for n, b in enumerate(batches)]
        )
        from recctl.records import validate_objects

        featured = compute_features(
            candidates(
                validate_objects("recommendations", recommendations.to_dicts(), keep_extra=False).records,
                validate_objects("assessments", assessments.to_dicts(), keep_extra=False).records,
            )
        )
        sizes = [len(b["recommendations"]) for b in batches]
        served = ranker.policy(featured, sizes, options).serve(
            [list_seed(2, b["request_id"]) for b in batches]
        )
        assert served.prefix_propensity is not None and served.propensity is not None
        for number, (answer, batch) in enumerate(zip(answers, batches, strict=True)):
            assert isinstance(answer, dict)
            ids = [batch["recommendations"][i]["recommendation_id"] for i in served.orders[number]]
            assert ids == [r["recommendation_id"] for r in answer["recommendations"]]
            np.testing.assert_array_equal(
                served.prefix_propensity[number], [r["prefix_propensity"] for r in answer["recommendations"]]
            )
            np.testing.assert_array_equal(
                served.propensity[number], [r["propensity"] for r in answer["recommendations"]]
            )
