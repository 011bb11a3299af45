"""The simulator under any policy (recctl/sample.py): the world does not depend on the policy, the
lists go through recctl's ranker, and ``.rewards.json`` holds each policy's true expected reward."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recctl import sample
from recctl.sample import generate_sample, truth_examination_path, truth_rewards_path

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"
FILES = ("assessments", "recommendations", "interactions", "impressions")
WORLD = ("assessments", "recommendations", "truth")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _rewards(truth: Path) -> dict:
    return json.loads(truth_rewards_path(truth).read_text())


def _served_items(out: Path) -> pl.DataFrame:
    """One row per served item: its list, slot and the item's hidden utility (from the truth)."""
    lists = pl.read_ndjson(out / "impressions.ndjson", infer_schema_length=None)
    items = lists.select("request_id", "user_id", "variant", "items").explode("items").unnest("items")
    truth = pl.read_ndjson(out / "truth.ndjson")
    return items.join(truth.select("recommendation_id", "utility"), on="recommendation_id", how="left")


def _events(out: Path, kind: str) -> pl.DataFrame:
    rows = pl.read_ndjson(out / "interactions.ndjson", infer_schema_length=None)
    return rows.filter(pl.col("interaction_type").str.strip_chars().str.to_lowercase() == kind)


def test_committed_sample_data_is_reproduced_byte_for_byte(tmp_path: Path) -> None:
    """Without a ranker policy the four files (and the truth) are those the committed sample has."""
    truth = tmp_path / "truth.ndjson"
    generate_sample(tmp_path, assessments=300, seed=0, explore="plackett-luce", truth=truth)
    for name in (*FILES, "truth"):
        assert (tmp_path / f"{name}.ndjson").read_bytes() == (SAMPLE_DATA / f"{name}.ndjson").read_bytes(), (
            name
        )
    examination = truth_examination_path(truth)
    assert examination.read_bytes() == (SAMPLE_DATA / examination.name).read_bytes()
    assert truth_rewards_path(truth) == tmp_path / "truth.rewards.json"
    rewards = _rewards(truth)
    assert rewards["depth"] == 14 and list(rewards["policies"]) == ["all"]
    assert rewards["policies"]["all"]["policy"] == "plackett-luce"
    assert rewards["policies"]["all"]["lists"] == 741


def test_deterministic_truth_is_the_closed_form(tmp_path: Path) -> None:
    """Confidence-ordered lists: expected clicks = sum over served items of examination(slot) *
    P(click | u), recomputed here from the written files (utilities are rounded to 4 decimals)."""
    examination = np.array([0.9, 0.6, 0.3])
    truth = tmp_path / "truth.ndjson"
    summary = generate_sample(
        tmp_path,
        assessments=60,
        seed=5,
        examination=list(examination),
        truth=truth,
        recommendations_per_assessment=(2, 6),
    )
    items = _served_items(tmp_path)
    seen = examination[np.minimum(items["position"].to_numpy(), 2)]
    u = items["utility"].to_numpy()
    click = seen * _sigmoid(-1.2 + 2.0 * u)
    implement = click * _sigmoid(-2.3 + 2.2 * u)
    lists = summary.impressions
    got = _rewards(truth)
    assert got["depth"] == 6
    policy = got["policies"]["all"]
    assert policy["policy"] == "deterministic" and policy["lists"] == lists
    assert policy["users"] == summary.users and policy["items"] == items.height
    assert policy["clicks_per_list"] == pytest.approx(click.sum() / lists, rel=3e-4)
    assert policy["implementations_per_list"] == pytest.approx(implement.sum() / lists, rel=3e-4)
    assert policy["ctr"] == pytest.approx(click.sum() / items.height, rel=3e-4)
    assert policy["implementation_rate"] == pytest.approx(implement.sum() / items.height, rel=3e-4)
    position = items["position"].to_numpy()
    by_depth = [click[position < d].sum() / lists for d in range(1, 7)]
    assert policy["clicks_per_list_by_depth"] == pytest.approx(by_depth, rel=3e-4)
    assert policy["clicks_per_list_by_depth"][-1] == pytest.approx(policy["clicks_per_list"])
    impl_by_depth = [implement[position < d].sum() / lists for d in range(1, 7)]
    assert policy["implementations_per_list_by_depth"] == pytest.approx(impl_by_depth, rel=3e-4)
    # The log keeps one implementation per item: the expected count of items implemented at least once.
    sessions = (
        items.with_columns(q=pl.Series(implement))
        .group_by("recommendation_id")
        .agg(kept=1 - (1 - pl.col("q")).product())
    )
    assert policy["logged_implementations_per_list"] == pytest.approx(
        sessions["kept"].sum() / lists, rel=3e-4
    )
    assert policy["logged_implementations_per_list"] < policy["implementations_per_list"]
    assert policy["method"] == "exact"


def test_simulator_plackett_luce_truth_matches_enumeration(tmp_path: Path) -> None:
    """The simulator's own Plackett-Luce: expected clicks over every permutation of each list,
    weighted by its Plackett-Luce probability, equal the written truth."""
    truth = tmp_path / "truth.ndjson"
    temperature = 0.3
    generate_sample(
        tmp_path,
        assessments=30,
        seed=2,
        explore="plackett-luce",
        temperature=temperature,
        truth=truth,
        recommendations_per_assessment=(2, 4),
        examination="steep",
    )
    recs = pl.read_ndjson(tmp_path / "recommendations.ndjson").join(
        pl.read_ndjson(truth).select("recommendation_id", "utility"), on="recommendation_id"
    )
    lists = pl.read_ndjson(tmp_path / "impressions.ndjson", infer_schema_length=None)
    per_assessment = {}
    for (assessment_id,), group in recs.group_by("assessment_id"):
        weight = np.exp(group["confidence_score"].to_numpy() / temperature)
        click = _sigmoid(-1.2 + 2.0 * group["utility"].to_numpy())
        total = 0.0
        for order in itertools.permutations(range(len(weight))):
            remaining = weight[list(order)][::-1].cumsum()[::-1]
            probability = np.prod(weight[list(order)] / remaining)
            seen = (1.0 + np.arange(len(order))) ** -1.2
            total += probability * float(np.sum(seen * click[list(order)]))
        per_assessment[assessment_id] = total
    expected = sum(per_assessment[a] for a in lists["assessment_id"]) / lists.height
    assert _rewards(truth)["policies"]["all"]["clicks_per_list"] == pytest.approx(expected, rel=1e-4)


def _mean_clicks_within_error(out: Path, truth: Path, name: str = "all") -> None:
    """The mean clicks per list of the log is the truth's, within 4 standard errors of that mean."""
    lists = pl.read_ndjson(out / "impressions.ndjson", infer_schema_length=None).select("session_id")
    clicks = _events(out, "click").group_by(pl.col("context").struct.field("session_id")).len()
    per_list = lists.join(clicks, on="session_id", how="left")["len"].fill_null(0).to_numpy()
    error = per_list.std() / np.sqrt(len(per_list))
    expected = _rewards(truth)["policies"][name]["clicks_per_list"]
    assert abs(per_list.mean() - expected) < 4 * error, (per_list.mean(), expected, error)
    assert error < 0.015 * expected  # many lists: the check has teeth


@pytest.mark.parametrize("explore", [None, "plackett-luce"])
def test_expected_clicks_match_the_simulated_clicks(tmp_path: Path, explore: str | None) -> None:
    """Over thousands of simulated lists, the mean clicks per list is the truth within sampling error."""
    truth = tmp_path / "truth.ndjson"
    generate_sample(
        tmp_path, assessments=1000, seed=9, explore=explore, truth=truth, sessions_per_assessment=(4, 4)
    )
    _mean_clicks_within_error(tmp_path, truth)


def test_the_world_does_not_depend_on_the_policy(tmp_path: Path) -> None:
    """Same seed: the same assessments, recommendations, utilities and sessions whatever is served."""
    runs = {}
    for name, explore in (("confidence", None), ("plackett-luce", "plackett-luce")):
        generate_sample(
            tmp_path / name, assessments=50, seed=4, explore=explore, truth=tmp_path / name / "truth.ndjson"
        )
        runs[name] = tmp_path / name
    for kind in WORLD:
        assert (runs["confidence"] / f"{kind}.ndjson").read_bytes() == (
            runs["plackett-luce"] / f"{kind}.ndjson"
        ).read_bytes()
    sessions = [
        pl.read_ndjson(out / "impressions.ndjson", infer_schema_length=None).select(
            "request_id", "timestamp", "user_id", "session_id", pl.col("items").list.len()
        )
        for out in runs.values()
    ]
    assert sessions[0].equals(sessions[1])


def test_users_split_by_a_seeded_hash() -> None:
    """90/10 shares give about 90/10 of the users; the same seed the same split, another seed another."""
    users = np.arange(20_000)
    shares = np.cumsum([0.9, 0.1])
    variant = sample._user_variants(7, users, shares)
    assert set(np.unique(variant)) == {0, 1}
    assert np.mean(variant == 1) == pytest.approx(0.1, abs=0.01)
    assert np.array_equal(variant, sample._user_variants(7, users, shares))
    assert np.array_equal(variant[:50], sample._user_variants(7, users[:50], shares))  # per user, not per run
    assert np.mean(variant != sample._user_variants(8, users, shares)) > 0.1
    three = sample._user_variants(7, users, np.cumsum([1 / 3, 1 / 3, 1 / 3]))
    assert np.bincount(three) / len(users) == pytest.approx([1 / 3] * 3, abs=0.015)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--policy", "confidence", "--ab", "A=confidence,B=confidence"], "--ab"),
        (["--ab", "A=confidence,B=x.txt", "--interleave", "A=confidence,B=x.txt"], "--interleave"),
        (["--ab-split", "50,50"], "--ab-split"),
        (["--epsilon", "0.1"], "--epsilon"),
        (["--lambda", "0.5"], "--lambda"),
        (["--no-diversity"], "--no-diversity"),
        (["--top-k", "3"], "--top-k"),
        (["--explore", "epsilon-greedy"], "--explore epsilon-greedy"),
        (["--propensities", "marginal"], "--propensities"),
        (["--policy", "confidence", "--propensities", "marginal"], "--propensities"),
        (["--policy", "confidence", "--explore", "plackett-luce", "--epsilon", "0.1"], "--epsilon"),
        (["--policy", "confidence", "--temperature", "0.5"], "--temperature"),
        (["--interleave", "A=confidence,B=confidence", "--explore", "plackett-luce"], "--interleave"),
        (["--interleave", "confidence"], "--interleave"),
        (["--ab", "A=confidence"], "--ab"),
        (["--ab", "A=confidence,A=confidence"], "--ab"),
        (["--ab", "A=confidence,Bconfidence"], "--ab"),
        (["--ab", "A=confidence,B=confidence", "--ab-split", "90"], "--ab-split"),
        (["--ab", "A=confidence,B=confidence", "--ab-split", "90,0"], "--ab-split"),
        (["--ab", "A=confidence,B=confidence", "--ab-split", "a,b"], "--ab-split"),
    ],
)
def test_serving_options_that_do_not_fit_are_usage_errors(tmp_path: Path, args: list[str], flag: str) -> None:
    from builders import run

    code, out, err = run("sample", "--out", str(tmp_path / "out"), "--assessments", "3", *args)
    assert code == 2, err
    assert flag in err and out == ""
    assert not (tmp_path / "out").exists()


def test_a_missing_model_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    from builders import run

    code, _, err = run("sample", "--out", str(tmp_path / "out"), "--assessments", "3", "--policy", "nope.txt")
    assert code == 1 and "nope.txt" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# --- serving through recctl's ranker -------------------------------------------------------------


def _ranker(*policies: tuple[str, str | Path], **options: object) -> sample.RankerServing:
    from recctl.exploration import Exploration
    from recctl.ranking import RankOptions

    explore = options.pop("explore", None)
    split = options.pop("split", None)
    interleave = bool(options.pop("interleave", False))
    rank_options = RankOptions(
        explore=Exploration(str(explore), marginals=bool(options.pop("marginals", False)))
        if explore
        else None,
        **options,  # type: ignore[arg-type]
    )
    return sample.RankerServing(tuple(policies), split=split, interleave=interleave, options=rank_options)  # type: ignore[arg-type]


def test_ranker_confidence_order_is_the_simulators_own(tmp_path: Path) -> None:
    """rank without a model and without MMR serves the simulator's confidence order: the same
    impressions byte for byte and the same truth, so the ranker saw exactly the simulated catalog."""
    own, ranked = tmp_path / "own", tmp_path / "ranked"
    generate_sample(own, assessments=200, seed=3, truth=own / "truth.ndjson")
    generate_sample(
        ranked,
        assessments=200,
        seed=3,
        truth=ranked / "truth.ndjson",
        serve=_ranker(("control", "confidence"), diversity=False),
    )
    for name in ("assessments", "recommendations", "impressions", "truth"):
        assert (own / f"{name}.ndjson").read_bytes() == (ranked / f"{name}.ndjson").read_bytes(), name
    assert _rewards(own / "truth.ndjson") == _rewards(ranked / "truth.ndjson")


def test_model_with_exploration_logs_and_its_truth(tmp_path: Path, sample_model: Path) -> None:
    """A model exploring with Plackett-Luce: the world is the default one, the impressions carry the
    model, policy and propensities, and the mean simulated clicks per list is the truth's."""
    default, served = tmp_path / "default", tmp_path / "served"
    world = {
        "assessments": 900,
        "seed": 11,
        "sessions_per_assessment": (4, 4),
        "recommendations_per_assessment": (4, 10),
    }
    generate_sample(default, **world)  # type: ignore[arg-type]
    truth = served / "truth.ndjson"
    summary = generate_sample(
        served,
        **world,
        truth=truth,
        serve=_ranker(("control", sample_model), explore="plackett-luce", marginals=True),  # type: ignore[arg-type]
    )
    assert summary.policy == "plackett-luce"
    for name in ("assessments", "recommendations"):
        assert (default / f"{name}.ndjson").read_bytes() == (served / f"{name}.ndjson").read_bytes()
    lists = pl.read_ndjson(served / "impressions.ndjson", infer_schema_length=None)
    base = pl.read_ndjson(default / "impressions.ndjson", infer_schema_length=None)
    assert lists["request_id"].to_list() == base["request_id"].to_list()
    assert set(lists["policy"]) == {"plackett-luce"} and set(lists["variant"]) == {"control"}
    assert lists["model_version"].n_unique() == 1 and lists["model_version"][0] != sample.MODEL_VERSION
    items = lists["items"].explode().struct.unnest()
    assert items["propensity"].is_between(0, 1, closed="right").all()
    assert items["prefix_propensity"].is_between(0, 1, closed="right").all()
    # Sessions of one assessment share candidates, so each item's marginal at a slot is one number.
    first = items.filter(pl.col("position") == 0)
    assert (first["propensity"] >= first["prefix_propensity"] - 1e-6).all()
    rewards = _rewards(truth)["policies"]["all"]
    assert rewards["policy"] == "plackett-luce" and rewards["method"] == "exact"
    _mean_clicks_within_error(served, truth)


def test_ab_split_users_and_interleaving(tmp_path: Path, sample_model: Path) -> None:
    """--ab: a user's lists all have one variant, each variant's model version; the truth of each
    variant is that policy served to everyone, as a single-policy run of the same world says."""
    world = {"assessments": 300, "seed": 6}
    alone = tmp_path / "alone"
    generate_sample(alone, **world, truth=alone / "truth.ndjson", serve=_ranker(("control", sample_model)))  # type: ignore[arg-type]
    ab = tmp_path / "ab"
    generate_sample(
        ab,
        **world,
        truth=ab / "truth.ndjson",  # type: ignore[arg-type]
        serve=_ranker(("A", "confidence"), ("B", sample_model), split=(70, 30)),
    )
    lists = pl.read_ndjson(ab / "impressions.ndjson", infer_schema_length=None)
    per_user = lists.group_by("user_id").agg(pl.col("variant").n_unique())
    assert (per_user["variant"] == 1).all()
    users = lists.unique("user_id")["variant"].value_counts().sort("variant")
    assert users["variant"].to_list() == ["A", "B"]
    assert users["count"][1] / users["count"].sum() == pytest.approx(0.3, abs=0.08)
    versions = lists.group_by("variant").agg(pl.col("model_version").unique())
    assert (
        dict(zip(versions["variant"], versions["model_version"].list.first(), strict=True))["A"]
        == sample.MODEL_VERSION
    )
    clicks = _events(ab, "click")
    assert set(clicks["context"].struct.field("variant")) == {"A", "B"}
    rewards = _rewards(ab / "truth.ndjson")["policies"]
    assert rewards["B"]["clicks_per_list"] == pytest.approx(
        _rewards(alone / "truth.ndjson")["policies"]["all"]["clicks_per_list"]
    )
    assert rewards["A"]["lists"] == rewards["B"]["lists"] == lists.height
    assert rewards["A"]["assigned"]["lists"] + rewards["B"]["assigned"]["lists"] == lists.height
    assert rewards["B"]["assigned"]["users"] == users["count"][1]

    interleaved = tmp_path / "interleaved"
    summary = generate_sample(
        interleaved,
        **world,
        truth=interleaved / "truth.ndjson",  # type: ignore[arg-type]
        serve=_ranker(("A", "confidence"), ("B", sample_model), interleave=True),
    )
    assert summary.policy == "team-draft"
    lists = pl.read_ndjson(interleaved / "impressions.ndjson", infer_schema_length=None)
    teams = lists["items"].explode().struct.field("team")
    assert set(teams) == {"A", "B"} and set(lists["policy"]) == {"team-draft"}
    assert _rewards(interleaved / "truth.ndjson")["policies"] == {
        name: {key: value for key, value in entry.items() if key != "assigned"}
        for name, entry in rewards.items()
    }
