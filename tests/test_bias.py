"""Position-bias estimation: exact small cases, recovery of known curves from simulated logs,
and the refusal on logs where position and relevance cannot be told apart."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recctl.bias import LOG_COLUMNS, BiasCurve, click_log, estimate_bias, is_randomised
from recctl.errors import InputError, InsufficientDataError

Curve = Callable[[np.ndarray], np.ndarray]
CURVES: dict[str, Curve] = {
    "power 0.6": lambda p: (1.0 + p) ** -0.6,
    "power 1.2": lambda p: (1.0 + p) ** -1.2,
    "cliff after slot 3": lambda p: np.where(p <= 3, 1.0, 0.2),
}
LOG_SCHEMA = {
    "request_id": pl.String,
    "assessment_id": pl.String,
    "user_id": pl.String,
    "recommendation_id": pl.String,
    "position": pl.Int64,
    "propensity": pl.Float64,
    "prefix_propensity": pl.Float64,
    "policy": pl.String,
    "clicked": pl.Boolean,
}


# -- simulated logs ---------------------------------------------------------------------------------
def plackett_luce_marginals(weights: np.ndarray) -> np.ndarray:
    """``m[d, k]``: the probability that Plackett-Luce with ``weights`` puts item ``d`` at slot ``k``,
    by dynamic programming over the sets of items already placed."""
    n = weights.size
    masks = np.arange(1 << n)
    bits = (masks[:, None] >> np.arange(n)) & 1
    placed_weight = bits @ weights
    placed = bits.sum(axis=1)
    reach = np.zeros(1 << n)
    reach[0] = 1.0
    marginal = np.zeros((n, n))
    for slot in range(n):
        layer = masks[placed == slot]
        free = bits[layer] == 0
        step = reach[layer, None] * weights[None, :] / (weights.sum() - placed_weight[layer])[:, None] * free
        marginal[:, slot] = step.sum(axis=0)
        np.add.at(reach, (layer[:, None] | (1 << np.arange(n))[None, :])[free], step[free])
    return marginal


def enumerated_marginals(weights: np.ndarray) -> np.ndarray:
    """The same by enumerating every order (small ``n`` only)."""
    marginal = np.zeros((weights.size, weights.size))
    for order in itertools.permutations(range(weights.size)):
        probability, left = 1.0, weights.sum()
        for item in order:
            probability *= weights[item] / left
            left -= weights[item]
        marginal[list(order), np.arange(weights.size)] += probability
    return marginal


def simulated_log(
    curve: Curve,
    *,
    assessments: int = 300,
    lists_per_assessment: int = 15,
    sizes: tuple[int, int] = (8, 12),
    temperature: float = 1.5,
    seed: int = 0,
    order: str = "plackett-luce",
) -> pl.DataFrame:
    """A click log under the PBM: each assessment has 8-12 recommendations with a relevance
    correlated with the logging policy's score; each list orders them by Plackett-Luce over
    score / temperature (``order="plackett-luce"``), by the score alone (``"deterministic"``),
    or by the score with one random recommendation left out of each list (``"dropout"``: a
    deterministic policy whose items move for reasons unrelated to relevance); clicks are
    Bernoulli(curve(slot) * relevance)."""
    rng = np.random.default_rng(seed)
    columns: dict[str, list[object]] = {name: [] for name in LOG_SCHEMA}
    for assessment in range(assessments):
        size = int(rng.integers(sizes[0], sizes[1] + 1))
        score = rng.normal(size=size)
        relevance = 1.0 / (1.0 + np.exp(-(1.5 * score + rng.normal(scale=0.7, size=size) - 0.5)))
        logits = score / temperature
        marginal = plackett_luce_marginals(np.exp(logits - logits.max()))
        for number in range(lists_per_assessment):
            if order == "plackett-luce":
                ranked = np.argsort(-(logits + rng.gumbel(size=size)))
            else:
                ranked = np.argsort(-score)
                if order == "dropout":
                    ranked = np.delete(ranked, rng.integers(size))
            slots = np.arange(ranked.size)
            clicked = rng.random(ranked.size) < curve(slots) * relevance[ranked]
            randomised = order == "plackett-luce"
            columns["request_id"] += [f"r{assessment}-{number}"] * ranked.size
            columns["assessment_id"] += [f"a{assessment}"] * ranked.size
            columns["user_id"] += [None] * ranked.size
            columns["recommendation_id"] += [f"a{assessment}-d{item}" for item in ranked]
            columns["position"] += slots.tolist()
            columns["propensity"] += marginal[ranked, slots].tolist() if randomised else [None] * ranked.size
            columns["prefix_propensity"] += [None] * ranked.size
            columns["policy"] += ["plackett-luce" if randomised else "deterministic"] * ranked.size
            columns["clicked"] += clicked.tolist()
    return pl.DataFrame(columns, schema=LOG_SCHEMA)


def hand_log(rows: list[tuple[str, str, int, bool]], *, policy: str = "plackett-luce") -> pl.DataFrame:
    """A log from (request_id, recommendation_id, position, clicked) rows of one assessment."""
    return pl.DataFrame(
        {
            "request_id": [row[0] for row in rows],
            "assessment_id": ["a"] * len(rows),
            "user_id": [None] * len(rows),
            "recommendation_id": [row[1] for row in rows],
            "position": [row[2] for row in rows],
            "propensity": [0.5] * len(rows),
            "prefix_propensity": [None] * len(rows),
            "policy": [policy] * len(rows),
            "clicked": [row[3] for row in rows],
        },
        schema=LOG_SCHEMA,
    )


def exact_pbm_log(theta: tuple[float, float], gamma: tuple[float, float], shows: int = 100) -> pl.DataFrame:
    """Two recommendations swapped between two slots, ``shows`` times each way, with click counts
    exactly ``shows * theta_k * gamma_d``: data the PBM fits perfectly."""
    rows = []
    for number in range(2 * shows):
        top, bottom = ("x", "y") if number < shows else ("y", "x")
        for slot, item in enumerate((top, bottom)):
            rate = theta[slot] * gamma[0 if item == "x" else 1]
            seen = number % shows
            rows.append((f"r{number}", item, slot, seen < round(rate * shows)))
    return hand_log(rows)


def test_plackett_luce_marginals_match_enumeration() -> None:
    weights = np.array([3.0, 1.0, 0.5, 0.2, 2.0])
    marginal = plackett_luce_marginals(weights)
    np.testing.assert_allclose(marginal, enumerated_marginals(weights), atol=1e-12)
    np.testing.assert_allclose(marginal.sum(axis=0), 1.0)  # every slot holds one item
    np.testing.assert_allclose(marginal.sum(axis=1), 1.0)  # every item is somewhere


# -- the click log ----------------------------------------------------------------------------------
def _impressions() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "request_id": ["q1", "q1", "q1", "q2", "q2"],
            "assessment_id": ["a"] * 5,
            "user_id": ["u"] * 5,
            "recommendation_id": ["x", "y", "z", "x", "y"],
            "position": [0, 1, 2, 1, 0],
            "propensity": [0.6, 0.3, 0.1, 0.4, 0.6],
            "prefix_propensity": [0.6, 0.2, 0.2, 0.4, 0.3],
            "policy": ["plackett-luce"] * 3 + [None] * 2,
        }
    )


def test_click_log_marks_items_with_a_linked_click_strength_interaction() -> None:
    interactions = pl.DataFrame(
        {
            "request_id": ["q1", "q1", "q1", "q2", None, "q2"],
            "recommendation_id": ["x", "y", "z", "y", "x", "x"],
            "interaction_type": ["view", "SAVE", "dismiss", "rate", "click", " click "],
        }
    )
    log = click_log(_impressions(), interactions)
    assert tuple(log.columns) == LOG_COLUMNS
    assert log.select("request_id", "recommendation_id", "clicked").rows() == [
        ("q1", "x", False),  # a view is not a click; the click on x was not linked to q1
        ("q1", "y", True),
        ("q1", "z", False),  # a dismissal is not a click
        ("q2", "x", True),
        ("q2", "y", True),
    ]
    assert log["policy"].to_list() == ["plackett-luce"] * 3 + ["deterministic"] * 2


def test_click_log_with_no_interactions_has_no_clicks() -> None:
    none = pl.DataFrame(
        schema={"request_id": pl.String, "recommendation_id": pl.String, "interaction_type": pl.String}
    )
    log = click_log(_impressions(), none)
    assert log.height == 5 and not log["clicked"].any()


def test_click_log_needs_the_impression_columns() -> None:
    with pytest.raises(InputError, match="position"):
        click_log(_impressions().drop("position"), _impressions())


# -- exact cases ------------------------------------------------------------------------------------
def test_direct_estimate_by_hand() -> None:
    # Four lists, served 30 times each (so that every slot rests on 30 clicks or more):
    # x at slot 0 twice (2 clicks), at slot 1 twice (1 click); y at slot 0 twice (1 click), at
    # slot 1 twice (0 clicks), every propensity 0.5.
    # Inverse propensity: slot 1 clicks / slot 0 clicks = (1 / 0.5) / (3 / 0.5) = 1/3.
    # Matched rates: x 1 and 0.5, y 0.5 and 0, weights alike: (0.5 + 0) / (1 + 0.5) = 1/3.
    lists = [
        [("x", 0, True), ("y", 1, False)],
        [("x", 0, True), ("y", 1, False)],
        [("y", 0, True), ("x", 1, True)],
        [("y", 0, False), ("x", 1, False)],
    ]
    log = hand_log(
        [
            (f"q{copy}-{number}", *item)
            for copy in range(30)
            for number, items in enumerate(lists)
            for item in items
        ]
    )
    curve = estimate_bias(log, method="direct", resamples=50)
    assert curve.method == "direct"
    np.testing.assert_allclose(curve.examination, [1.0, 1.0 / 3.0])
    # one assessment: every resample is the data itself, so the interval is the estimate
    np.testing.assert_allclose(curve.low, curve.examination)
    np.testing.assert_allclose(curve.high, curve.examination)
    assert curve.impressions.tolist() == [120, 120]
    assert (curve.lists, curve.clicks, curve.confounded) == (120, 120, False)


def test_the_direct_curve_stops_where_too_few_clicks_remain() -> None:
    rows = [(f"q{n}", "x" if n % 2 else "y", 0, n % 3 > 0) for n in range(90)]
    rows += [(f"q{n}", "y" if n % 2 else "x", 1, n % 9 == 0) for n in range(90)]  # 10 clicks
    curve = estimate_bias(hand_log(rows), method="direct", resamples=20)
    assert curve.positions.tolist() == [0]
    assert curve.note is not None and "fewer than 30 clicks to compare at slot 1" in curve.note


@pytest.mark.parametrize("method", ["direct", "regression-em"])
def test_data_the_model_fits_exactly_give_the_true_ratio(method: str) -> None:
    log = exact_pbm_log(theta=(0.5, 0.25), gamma=(0.8, 0.4))
    curve = estimate_bias(log, method=method, resamples=5)  # type: ignore[arg-type]
    np.testing.assert_allclose(curve.examination, [1.0, 0.5], atol=2e-3)


# -- recovery of known curves -----------------------------------------------------------------------
@pytest.mark.parametrize("name", CURVES)
def test_direct_estimate_recovers_the_curve_from_randomised_lists(name: str) -> None:
    curve = CURVES[name]
    log = simulated_log(curve, seed=1)
    estimate = estimate_bias(log, resamples=200, seed=3)
    truth = curve(np.arange(10))
    assert estimate.method == "direct" and not estimate.confounded
    assert np.abs(estimate.examination[:10] - truth).max() <= 0.05
    assert np.all(estimate.low <= estimate.examination) and np.all(estimate.examination <= estimate.high)
    covered = (estimate.low[:10] <= truth + 1e-9) & (truth - 1e-9 <= estimate.high[:10])
    assert covered.sum() >= 8


def test_randomised_lists_without_propensities_use_the_matched_rates_alone() -> None:
    curve = CURVES["power 0.6"]
    log = simulated_log(curve, seed=1).with_columns(propensity=pl.lit(None, dtype=pl.Float64))
    estimate = estimate_bias(log, resamples=100)
    assert estimate.method == "direct" and set(estimate.extra["ipw_weight"]) == {0.0}
    assert estimate.extra["lists_without_propensities"] == estimate.lists
    assert np.abs(estimate.examination[:10] - curve(np.arange(10))).max() <= 0.05


@pytest.mark.parametrize("name", CURVES)
def test_regression_em_recovers_the_curve_from_randomised_lists(name: str) -> None:
    curve = CURVES[name]
    log = simulated_log(curve, assessments=200, seed=2)
    estimate = estimate_bias(log, method="regression-em", resamples=10)
    assert estimate.method == "regression-em"
    assert np.abs(estimate.examination[:10] - curve(np.arange(10))).max() <= 0.05


def test_regression_em_with_features_recovers_the_curve() -> None:
    # relevance is exactly logistic in one feature: the regression shares it across items
    rng = np.random.default_rng(5)
    curve = CURVES["power 0.6"]
    log = simulated_log(curve, assessments=200, seed=5)
    items = log.select("recommendation_id").unique(maintain_order=True)
    items = items.with_columns(quality=pl.Series(rng.normal(size=items.height)))
    log = log.join(items, on="recommendation_id", maintain_order="left")
    relevance = 1.0 / (1.0 + np.exp(-(1.2 * log["quality"].to_numpy() - 0.3)))
    clicked = rng.random(log.height) < curve(log["position"].to_numpy()) * relevance
    log = log.with_columns(clicked=pl.Series(clicked))
    estimate = estimate_bias(log, method="regression-em", features=["quality"], resamples=5)
    assert np.abs(estimate.examination[:10] - curve(np.arange(10))).max() <= 0.05


# -- logs where position is confounded with relevance -----------------------------------------------
def test_one_deterministic_order_is_refused_as_confounded() -> None:
    log = simulated_log(CURVES["power 0.6"], assessments=50, order="deterministic")
    assert not is_randomised(log)
    for method in ("auto", "regression-em"):
        with pytest.raises(InsufficientDataError, match=r"confounded with relevance.*randomised lists"):
            estimate_bias(log, method=method, resamples=5)  # type: ignore[arg-type]
    with pytest.raises(InsufficientDataError, match="randomised policy"):
        estimate_bias(log, method="direct", resamples=5)


def test_a_deterministic_log_whose_items_moved_is_estimated_and_marked_confounded() -> None:
    curve = CURVES["power 0.6"]
    # each list leaves one recommendation out, so those below it move up one slot: the curve is
    # identified through those moves, from few shows each; the intervals must still cover it
    log = simulated_log(curve, assessments=200, lists_per_assessment=30, order="dropout", seed=4)
    estimate = estimate_bias(log, resamples=30)
    truth = curve(np.arange(10))
    assert estimate.method == "regression-em" and estimate.confounded
    assert estimate.note is not None and "not randomised" in estimate.note
    assert np.abs(estimate.examination[:10] - truth).max() <= 0.1
    assert ((estimate.low[:10] <= truth) & (truth <= estimate.high[:10])).sum() >= 9


def test_slots_no_moved_recommendation_links_to_the_first_are_left_out() -> None:
    # x and y swap between slots 0 and 1; z is always at slot 2: slot 2 is not identified
    rows = []
    for number in range(20):
        top, second = ("x", "y") if number % 2 else ("y", "x")
        rows += [(f"r{number}", top, 0, number % 3 == 0), (f"r{number}", second, 1, number % 4 == 0)]
        rows.append((f"r{number}", "z", 2, number % 5 == 0))
    curve = estimate_bias(hand_log(rows, policy="deterministic"), resamples=5)
    assert curve.positions.tolist() == [0, 1]
    assert curve.note is not None and "slot 2 is not linked to slot 0" in curve.note


# -- refusals and options ---------------------------------------------------------------------------
def test_too_little_data_is_insufficient() -> None:
    log = simulated_log(CURVES["power 0.6"], assessments=3, lists_per_assessment=2)
    with pytest.raises(InsufficientDataError, match="no shown items"):
        estimate_bias(log.clear())
    with pytest.raises(InsufficientDataError, match="none of the"):
        estimate_bias(log.with_columns(clicked=pl.lit(False)))
    with pytest.raises(InsufficientDataError, match="one slot"):
        estimate_bias(log.filter(pl.col("position") == 0))


def test_bad_arguments_are_input_errors() -> None:
    log = exact_pbm_log(theta=(0.5, 0.25), gamma=(0.8, 0.4))
    with pytest.raises(InputError, match="unknown bias method"):
        estimate_bias(log, method="magic")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="resamples"):
        estimate_bias(log, resamples=0)
    with pytest.raises(InputError, match="max_position"):
        estimate_bias(log, max_position=0)
    with pytest.raises(InputError, match="lacks column"):
        estimate_bias(log.drop("clicked"))
    with pytest.raises(InputError, match="lacks column"):
        estimate_bias(log, method="regression-em", features=["nope"])


def test_max_position_cuts_the_curve_and_the_seed_repeats_it() -> None:
    log = simulated_log(CURVES["power 1.2"], assessments=60, seed=7)
    curve = estimate_bias(log, max_position=4, resamples=100, seed=1)
    assert curve.positions.tolist() == [0, 1, 2, 3, 4]
    again = estimate_bias(log, max_position=4, resamples=100, seed=1)
    np.testing.assert_array_equal(curve.low, again.low)
    other = estimate_bias(log, max_position=4, resamples=100, seed=2)
    assert not np.array_equal(curve.low, other.low)
    # the direct estimate's mix of its two estimates comes from the resamples: nearly the same
    np.testing.assert_allclose(curve.examination, other.examination, atol=0.01)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), copies=st.integers(2, 3))
def test_direct_estimate_ignores_row_order_and_names_and_grows_with_repeated_logs(
    seed: int, copies: int
) -> None:
    log = simulated_log(CURVES["power 0.6"], assessments=20, lists_per_assessment=10, seed=seed)
    try:
        curve = estimate_bias(log, method="direct", resamples=5)
    except InsufficientDataError:
        return
    renamed = log.with_columns(
        pl.col("request_id") + "-renamed", pl.col("recommendation_id") + "-renamed"
    ).sample(fraction=1.0, shuffle=True, seed=seed)
    again = estimate_bias(renamed, method="direct", resamples=5)
    np.testing.assert_allclose(again.examination, curve.examination, rtol=1e-9)
    np.testing.assert_allclose(again.low, curve.low, rtol=1e-9)
    # the same lists served again: more clicks at every slot, so at least as long a curve
    repeated = pl.concat([log.with_columns(pl.col("request_id") + f"-{copy}") for copy in range(copies)])
    longer = estimate_bias(repeated, method="direct", resamples=5)
    assert longer.positions.size >= curve.positions.size
    assert longer.impressions[: curve.positions.size].tolist() == (curve.impressions * copies).tolist()


# -- the curve as a document ------------------------------------------------------------------------
def test_curve_round_trips_through_its_json(tmp_path: Path) -> None:
    curve = estimate_bias(exact_pbm_log(theta=(0.5, 0.25), gamma=(0.8, 0.4)), method="direct", resamples=5)
    document = curve.as_json()
    assert document["method"] == "direct"
    assert [row["position"] for row in document["positions"]] == [0, 1]
    assert set(document["positions"][0]) == {"position", "examination", "low", "high", "impressions"}
    assert {"lists", "clicks", "confounded", "note"} <= set(document)
    path = tmp_path / "bias.json"
    curve.save(path)
    loaded = BiasCurve.load(path)
    np.testing.assert_allclose(loaded.examination, curve.examination)
    assert loaded.as_json() == json.loads(json.dumps(document))


def test_examination_beyond_the_curve_takes_the_last_value() -> None:
    curve = BiasCurve(
        method="direct", positions=[0, 1, 2], examination=[1.0, 0.6, 0.4], low=[1, 0.5, 0.3],
        high=[1, 0.7, 0.5], impressions=[10, 10, 10],
    )  # fmt: skip
    np.testing.assert_allclose(curve.examination_at(np.array([0, 2, 1, 7])), [1.0, 0.4, 0.6, 0.4])
    with pytest.raises(ValueError):
        curve.examination_at(np.array([-1]))


def test_loading_something_else_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        BiasCurve.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="not JSON"):
        BiasCurve.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"positions": [{"position": 0}]}')
    with pytest.raises(InputError, match="not a bias curve"):
        BiasCurve.load(tmp_path / "other.json")


def test_the_direct_mix_leans_on_the_steadier_estimate() -> None:
    from recctl.bias import _combination_weights

    rng = np.random.default_rng(0)
    steady, noisy = rng.normal(0.5, 0.01, size=(400, 3)), rng.normal(0.5, 0.1, size=(400, 3))
    weights = _combination_weights(steady, noisy)
    # independent errors: w = v2 / (v1 + v2) = 0.01 / 0.0101, about 0.99
    np.testing.assert_allclose(weights, 0.99, atol=0.01)
    noisy[:, 1] = np.nan  # the second cannot estimate slot 1: the first alone
    steady[:, 2] = np.inf  # the first cannot estimate slot 2: the second alone
    assert _combination_weights(steady, noisy)[1:].tolist() == [1.0, 0.0]
