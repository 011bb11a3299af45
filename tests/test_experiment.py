"""The experiment analyses: exact figures on hand-built logs, and the calibration of the intervals
and p-values on simulated A/B and A/A logs with a known truth."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from recctl.diversity import EXACT_FIELDS, SET_FIELDS, WEIGHTS, diversity_in_order, list_traits_of, mmr_many
from recctl.errors import InputError, InsufficientDataError
from recctl.experiment import (
    METRICS,
    SplitMismatchError,
    UnknownControlError,
    analyse_ab,
    analyse_interleaving,
    list_outcomes,
    percentile_interval,
    percentile_p_value,
    poisson_bootstrap,
    sample_ratio_check,
    served_items,
)
from recctl.records.schema import UTC_MS

START = datetime(2025, 6, 1)


# -- building blocks --------------------------------------------------------------------------------
def _impressions(lists: list[dict]) -> pl.DataFrame:
    """Impression rows: each list dict has request_id, items [(recommendation_id, team?)], and
    optional user_id / variant."""
    rows = []
    for number, served in enumerate(lists):
        for slot, item in enumerate(served["items"]):
            recommendation, team = item if isinstance(item, tuple) else (item, None)
            rows.append(
                {
                    "request_id": served["request_id"],
                    "timestamp": START + timedelta(minutes=number),
                    "assessment_id": "asm-1",
                    "user_id": served.get("user_id"),
                    "variant": served.get("variant"),
                    "policy": "deterministic",
                    "recommendation_id": recommendation,
                    "position": slot,
                    "team": team,
                }
            )
    return pl.DataFrame(rows, schema_overrides={"timestamp": UTC_MS})


def _linked(events: list[tuple]) -> pl.DataFrame:
    """Linked interactions: (request_id, recommendation_id, type[, value[, variant[, user]]])."""
    rows = []
    for event in events:
        request, recommendation, kind, *rest = event
        value, variant, user = (*rest, None, None, None)[:3]
        rows.append(
            {
                "request_id": request,
                "recommendation_id": recommendation,
                "interaction_type": kind,
                "interaction_value": value,
                "variant": variant,
                "user_id": user or "someone",
                "timestamp": START,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "request_id": pl.String,
            "recommendation_id": pl.String,
            "interaction_type": pl.String,
            "interaction_value": pl.Float64,
            "variant": pl.String,
            "user_id": pl.String,
            "timestamp": UTC_MS,
        },
    )


def _catalog(ids: list[str], categories: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "recommendation_id": ids,
            "category": categories,
            "cloud_provider": ["aws"] * len(ids),
            "priority": [None] * len(ids),
            "implementation_effort": [None] * len(ids),
            "services": [[] for _ in ids],
            "tags": [[] for _ in ids],
        },
        schema_overrides={"priority": pl.String, "implementation_effort": pl.String},
    )


def similarity(first: dict, second: dict) -> float:
    """The pairwise similarity by its definition (the weighted matches of the diversity module)."""
    total = sum(WEIGHTS[f] for f in EXACT_FIELDS if first[f] is not None and first[f] == second[f])
    for name in SET_FIELDS:
        one, two = set(first[name]), set(second[name])
        total += WEIGHTS[name] * (len(one & two) / len(one | two) if one | two else 0.0)
    return total


def simulated_lists(
    seed: int, *, users: int = 300, lift: float = 1.0, lists_per_user: float = 2.0, items: int = 5
) -> tuple[pl.DataFrame, float]:
    """A simulated A/B log as :func:`list_outcomes` frames, and the true CTR difference B - A.

    Users are split A/B by a fair coin; each has a click probability drawn from Beta(2, 10)
    (mean 1/6; users differ a lot, so their lists are correlated), times ``lift`` in B, and
    1 + Poisson(lists_per_user) lists of ``items`` items. The true CTR of a variant (expected clicks
    over expected items) is then 1/6 (A) and lift/6 (B).
    """
    rng = np.random.default_rng(seed)
    variant = rng.integers(0, 2, size=users)
    propensity = rng.beta(2.0, 10.0, size=users) * np.where(variant == 1, lift, 1.0)
    lists = 1 + rng.poisson(lists_per_user, size=users)
    owner = np.repeat(np.arange(users), lists)
    clicks = rng.binomial(items, propensity[owner])
    frame = pl.DataFrame(
        {
            "request_id": [f"q{i}" for i in range(owner.size)],
            "variant": np.array(["A", "B"])[variant[owner]],
            "unit": [f"u{u}" for u in owner],
            "items": np.full(owner.size, items),
            "clicks": clicks,
            "implementations": rng.binomial(clicks, 0.3),
            "label_sum": 0.4 * clicks,
            "diversity_discounted": rng.uniform(0.5, 0.9, size=owner.size),
        }
    )
    return frame, (lift - 1.0) / 6.0


def _comparison(report, metric: str = "ctr"):
    return next(c for c in report.comparisons if c.metric == metric)


# -- served items: what counts as a click, an implementation, a label ------------------------------
def test_served_items_credits_each_shown_item_from_its_linked_interactions() -> None:
    impressions = _impressions(
        [
            {"request_id": "q1", "user_id": "u1", "variant": "A", "items": ["r1", "r2", "r3"]},
            {"request_id": "q2", "items": ["r3", "r1"]},  # no user, no variant in the impression
        ]
    )
    linked = _linked(
        [
            ("q1", "r1", "view", 30.0),
            ("q1", "r2", "click"),
            ("q1", "r2", "implement"),
            ("q1", "r3", "dismiss"),
            ("q2", "r3", "save", None, "B", "u9"),
            ("q2", "r1", "view", None, "B", "u9"),
            (None, "r1", "click"),  # unlinked: counts nowhere
        ]
    )
    items = served_items(impressions, linked)
    assert items["request_id"].to_list() == ["q1", "q1", "q1", "q2", "q2"]
    assert items["recommendation_id"].to_list() == ["r1", "r2", "r3", "r3", "r1"]
    assert items["clicked"].to_list() == [False, True, False, True, False]  # a view is not a click
    assert items["implemented"].to_list() == [False, True, False, False, False]
    # default labels: view 0.1 + 0.3 * 30/60, implement 1.0, dismiss 0, save 0.8, view 0.1
    np.testing.assert_allclose(items["label"].to_numpy(), [0.25, 1.0, 0.0, 0.8, 0.1])
    # the second list takes its variant and user from its interactions
    assert items["variant"].to_list() == ["A", "A", "A", "B", "B"]
    assert items["unit"].to_list() == ["u1", "u1", "u1", "u9", "u9"]


def test_a_list_with_no_user_anywhere_is_its_own_cluster() -> None:
    items = served_items(_impressions([{"request_id": "q7", "items": ["r1"]}]), _linked([]))
    assert items["unit"].to_list() == ["list:q7"]
    assert items["variant"].to_list() == [None]
    assert items["label"].to_list() == [0.0]


def test_list_outcomes_sum_items_and_take_the_served_orders_diversity() -> None:
    impressions = _impressions(
        [
            {"request_id": "q1", "user_id": "u1", "variant": "A", "items": ["r1", "r2", "r3"]},
            {"request_id": "q2", "user_id": "u2", "variant": "B", "items": ["r3", "r2", "r1"]},
        ]
    )
    linked = _linked([("q1", "r2", "click"), ("q1", "r3", "implement"), ("q2", "r3", "click")])
    catalog = _catalog(["r1", "r2", "r3"], ["security", "security", "cost_optimization"])
    lists = list_outcomes(served_items(impressions, linked), catalog)
    assert lists["items"].to_list() == [3, 3]
    assert lists["clicks"].to_list() == [2, 1]  # an implement needs a click: it counts as one
    assert lists["implementations"].to_list() == [1, 0]
    # EILD by hand: d(k) = 1/log2(k + 2); r1, r2 share category and provider (sim 0.5), r3 only
    # the provider (0.15)
    d = 1.0 / np.log2(np.arange(3) + 2.0)
    dissimilar = {(0, 1): 0.5, (0, 2): 0.85, (1, 2): 0.85}
    first = sum(d[i] * d[j] * v for (i, j), v in dissimilar.items()) / sum(d[i] * d[j] for i, j in dissimilar)
    reverse = {(0, 1): 0.85, (0, 2): 0.85, (1, 2): 0.5}  # r3 first
    second = sum(d[i] * d[j] * v for (i, j), v in reverse.items()) / sum(d[i] * d[j] for i, j in reverse)
    np.testing.assert_allclose(lists["diversity_discounted"].to_numpy(), [first, second])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 14), min_size=1, max_size=5), st.integers(0, 1000))
def test_diversity_in_order_is_what_mmr_reports_for_that_order(sizes: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = sum(sizes)
    frame = pl.DataFrame(
        {
            "category": rng.choice(["a", "b", "c"], size=rows).tolist(),
            "cloud_provider": rng.choice(["aws", "gcp", None], size=rows).tolist(),
            "priority": rng.choice(["high", "low"], size=rows).tolist(),
            "implementation_effort": rng.choice(["low", None], size=rows).tolist(),
            "services": [
                rng.choice(["s1", "s2", "s3"], size=int(rng.integers(0, 3))).tolist() for _ in range(rows)
            ],
            "tags": [rng.choice(["t1", "t2"], size=int(rng.integers(0, 2))).tolist() for _ in range(rows)],
        },
        schema_overrides={"services": pl.List(pl.String), "tags": pl.List(pl.String)},
    )
    traits = list_traits_of(frame, sizes)
    spread, discounted = diversity_in_order(traits)
    # the given order is the score order: mmr_many without diversity keeps it
    scores = -np.concatenate([np.arange(size, dtype=float) for size in sizes])
    ranked = mmr_many(scores, traits, diversity=False)
    assert ranked.orders == [list(range(size)) for size in sizes]
    np.testing.assert_array_equal(discounted, ranked.diversity_discounted)
    np.testing.assert_array_equal(spread, ranked.diversity)
    # and against the definition, for the first list
    size = sizes[0]
    depth = min(size, 10)
    if depth > 1:
        row = [frame.row(i, named=True) for i in range(depth)]
        sims = np.array([[similarity(row[i], row[j]) for j in range(depth)] for i in range(depth)])
        d = 1.0 / np.log2(np.arange(depth) + 2.0)
        i, j = np.triu_indices(depth, 1)
        expected = np.sum(d[i] * d[j] * (1 - sims[i, j])) / np.sum(d[i] * d[j])
        assert discounted[0] == pytest.approx(expected)
    else:
        assert discounted[0] == 0.0


# -- the bootstrap and its p-value ------------------------------------------------------------------
def test_poisson_bootstrap_weighs_whole_rows() -> None:
    totals = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    boot = poisson_bootstrap(totals, resamples=500, seed=3)
    np.testing.assert_allclose(boot[:, 1], 10 * boot[:, 0])  # a row's values move together
    assert boot[:, 0].mean() == pytest.approx(6.0, rel=0.1)  # E[Poisson(1)] = 1
    np.testing.assert_array_equal(boot, poisson_bootstrap(totals, resamples=500, seed=3))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-3, 3, allow_nan=False), min_size=100, max_size=300),
    st.floats(0.02, 0.5),
    st.integers(0, 3),
)
def test_the_interval_excludes_zero_exactly_when_p_is_below_alpha(
    samples: list[float], alpha: float, zeros: int
) -> None:
    values = np.array(samples)
    values[: zeros * 10] = 0.0  # ties at the null
    low, high = percentile_interval(values, 1.0 - alpha)  # type: ignore[misc]
    p_value = percentile_p_value(values)
    assert p_value is not None and 1.0 / values.size <= p_value <= 1.0
    assert (low > 0 or high < 0) == (p_value < alpha)


def test_p_value_edge_cases() -> None:
    assert percentile_p_value([0.0, 0.0, 0.0]) == 1.0
    assert percentile_p_value(np.arange(1.0, 101.0)) == 0.01  # all above: the floor 1/n
    assert percentile_p_value([np.nan]) is None
    assert percentile_p_value([-1.0, 1.0]) == 1.0  # 0 is the median


# -- A/B: exact figures, calibration, coverage ------------------------------------------------------
def test_ab_figures_on_a_small_log_are_the_ratios_of_sums() -> None:
    lists = pl.DataFrame(
        {
            "request_id": ["q1", "q2", "q3", "q4", "q5"],
            "variant": ["control", "control", "B", "B", None],
            "unit": ["u1", "u1", "u2", "u3", "u4"],
            "items": [4, 6, 5, 5, 3],
            "clicks": [1, 2, 3, 1, 3],
            "implementations": [0, 1, 1, 0, 1],
            "label_sum": [0.4, 1.8, 2.0, 0.4, 2.0],
            "diversity_discounted": [0.5, 0.7, 0.8, 0.6, 0.1],
        }
    )
    report = analyse_ab(lists, resamples=200)
    assert report.control == "control" and report.lists_without_variant == 1
    control, b = report.variants["control"], report.variants["B"]
    assert (control.lists, control.users, control.items, control.clicks) == (2, 1, 10, 3)
    assert (b.lists, b.users, b.items, b.clicks, b.implementations) == (2, 2, 10, 4, 1)
    assert control.metrics["ctr"].value == pytest.approx(0.3)
    assert b.metrics["implementation_rate"].value == pytest.approx(0.1)
    assert b.metrics["mean_label"].value == pytest.approx(0.24)
    assert b.metrics["diversity_discounted"].value == pytest.approx(0.7)
    ctr = _comparison(report)
    assert ctr.difference.value == pytest.approx(0.1)
    assert ctr.relative_lift.value == pytest.approx(0.4 / 0.3 - 1)
    assert [(c.variant, c.metric) for c in report.comparisons] == [("B", m) for m in METRICS]
    document = report.as_json()
    assert set(document["variants"]["B"]) >= {"lists", "users", *METRICS}
    assert set(document["variants"]["B"]["ctr"]) == {"value", "low", "high"}
    assert set(document["comparisons"][0]) >= {
        "variant", "control", "metric", "difference", "low", "high", "relative_lift", "p_value"
    }  # fmt: skip
    assert set(document["srm"]) >= {"p_value", "flag"}


def test_ab_refusals() -> None:
    lists, _ = simulated_lists(0, users=20)
    with pytest.raises(UnknownControlError, match="'C' is not a variant"):
        analyse_ab(lists, control="C", resamples=100)
    with pytest.raises(SplitMismatchError, match="B of the lists"):
        analyse_ab(lists, expected_split={"A": 1.0, "Z": 1.0}, resamples=100)
    with pytest.raises(InsufficientDataError, match="all belong to variant 'A'"):
        analyse_ab(lists.filter(pl.col("variant") == "A"), resamples=100)
    with pytest.raises(InsufficientDataError, match="names a variant"):
        analyse_ab(lists.with_columns(pl.lit(None, dtype=pl.String).alias("variant")), resamples=100)


def test_the_interval_covers_a_known_ctr_difference() -> None:
    """A true 30% CTR lift on clustered users: the 95% interval of the difference covers it in
    about 95% of 150 logs (so does the relative lift's of 30%), and the test finds it (p < 0.05)
    in most of them. An interval that treated lists as independent would cover far less often
    (users differ a lot here)."""
    covered = lift_covered = found = 0
    runs = 150
    for seed in range(runs):
        lists, truth = simulated_lists(seed, users=300, lift=1.3)
        ctr = _comparison(analyse_ab(lists, control="A", resamples=200, seed=seed))
        assert ctr.difference.low is not None and ctr.difference.high is not None
        covered += ctr.difference.low <= truth <= ctr.difference.high
        lift_covered += ctr.relative_lift.low <= 0.3 <= ctr.relative_lift.high
        found += ctr.p_value < 0.05
    assert 0.89 <= covered / runs <= 0.99
    assert 0.89 <= lift_covered / runs <= 0.99
    assert found / runs >= 0.6


def test_a_a_logs_reject_about_five_percent_and_p_agrees_with_the_interval() -> None:
    rejected = 0
    runs = 150
    for seed in range(runs):
        lists, _ = simulated_lists(1000 + seed, users=200)
        report = analyse_ab(lists, control="A", resamples=200, seed=seed)
        for comparison in report.comparisons:
            excludes = comparison.difference.low > 0 or comparison.difference.high < 0
            assert excludes == (comparison.p_value < 0.05)
        rejected += _comparison(report).p_value < 0.05
        assert not report.srm.flag  # a fair coin: no mismatch at 0.001 in these 150 logs
    assert 0.01 <= rejected / runs <= 0.10


def test_sample_ratio_mismatch() -> None:
    assert sample_ratio_check({"A": 900, "B": 100}, {"A": 0.5, "B": 0.5}).flag
    assert not sample_ratio_check({"A": 900, "B": 100}, {"A": 0.9, "B": 0.1}).flag
    assert not sample_ratio_check({"A": 510, "B": 490}, {"A": 0.5, "B": 0.5}).flag
    # a declared variant that got no user is the worst mismatch
    assert sample_ratio_check({"A": 100, "B": 100}, {"A": 1 / 3, "B": 1 / 3, "C": 1 / 3}).flag
    lists, _ = simulated_lists(5, users=400)
    skewed = lists.filter((pl.col("variant") == "A") | (pl.col("unit").str.slice(1).cast(pl.Int64) % 8 == 0))
    assert analyse_ab(skewed, resamples=100).srm.flag
    assert not analyse_ab(lists, resamples=100).srm.flag
    assert analyse_ab(lists, resamples=100, expected_split={"A": 50, "B": 50}).srm.users == {
        "A": int(lists.filter(pl.col("variant") == "A")["unit"].n_unique()),
        "B": int(lists.filter(pl.col("variant") == "B")["unit"].n_unique()),
    }


# -- interleaving -----------------------------------------------------------------------------------
def _teamed(outcomes: list[tuple[str, int, int]]) -> pl.DataFrame:
    """Interleaved lists of four items (A, B, A, B): (user, clicks on A's items, clicks on B's)."""
    lists, events = [], []
    for number, (user, a_clicks, b_clicks) in enumerate(outcomes):
        request = f"q{number}"
        lists.append({"request_id": request, "user_id": user,
                      "items": [("a1", "A"), ("b1", "B"), ("a2", "A"), ("b2", "B")]})  # fmt: skip
        events += [(request, f"a{i + 1}", "click") for i in range(a_clicks)]
        events += [(request, f"b{i + 1}", "click") for i in range(b_clicks)]
    return served_items(_impressions(lists), _linked(events))


def test_interleaving_counts_wins_losses_ties_and_tests_them() -> None:
    outcomes = [("u1", 1, 0), ("u1", 2, 1), ("u2", 0, 1), ("u2", 1, 1), ("u3", 0, 0), ("u3", 2, 0)]
    report = analyse_interleaving(_teamed(outcomes), resamples=200)
    assert report.teams == ("A", "B")
    assert (report.lists, report.users) == (6, 3)
    assert (report.wins, report.losses, report.ties, report.no_clicks) == (3, 1, 1, 1)
    assert report.clicks == {"A": 6, "B": 3}
    assert report.preference.value == pytest.approx((3 + 0.5) / 5 - 0.5)
    assert report.sign_test_p_value == pytest.approx(binomtest(3, 4, 0.5).pvalue)
    assert report.preference.low <= report.preference.value <= report.preference.high


def test_interleaving_finds_the_better_team() -> None:
    rng = np.random.default_rng(4)
    # A's items are clicked with probability 0.3, B's with 0.15
    outcomes = [(f"u{i % 60}", int(rng.binomial(2, 0.3)), int(rng.binomial(2, 0.15))) for i in range(400)]
    report = analyse_interleaving(_teamed(outcomes), resamples=300)
    assert report.winner == "A" and report.preference.low > 0 and report.sign_test_p_value < 0.001
    swapped = analyse_interleaving(_teamed([(u, b, a) for u, a, b in outcomes]), resamples=300)
    assert swapped.winner == "B" and swapped.preference.value == pytest.approx(-report.preference.value)


def test_interleaving_refusals() -> None:
    with pytest.raises(InsufficientDataError, match="interleaved"):
        analyse_interleaving(served_items(_impressions([{"request_id": "q", "items": ["r"]}]), _linked([])))
    with pytest.raises(InsufficientDataError, match="has a click"):
        analyse_interleaving(_teamed([("u1", 0, 0)]))
    three = _impressions([{"request_id": "q", "items": [("r1", "A"), ("r2", "B"), ("r3", "C")]}])
    with pytest.raises(InputError, match="3 team"):
        analyse_interleaving(served_items(three, _linked([("q", "r1", "click")])))
