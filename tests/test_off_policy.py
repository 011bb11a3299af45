"""Exact tests of the off-policy estimators on lists small enough to enumerate.

Three items, or four, are served by a Plackett-Luce logging policy; a known click model says how
likely each click pattern is given the list. Every logged outcome (the list and its click pattern)
enters the log once, with its probability as a frequency weight, so an estimator's value on that log
is its exact expectation over one logged list: for the estimators that are linear in the lists
(ips, iips, rips, dr) that is the expectation of the estimate from any number of lists, and for the
self-normalised forms it is the limit they converge to as the lists grow. The target's true value is
computed separately, by summing over the target's own lists.

Everything about the policies is computed here by brute force over permutations, independently of
recctl's Plackett-Luce code.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recctl.off_policy import (
    ASSUMPTIONS,
    ESTIMATORS,
    RewardModelTerms,
    SlateLog,
    TargetProbabilities,
    deterministic_conflicts,
    estimate,
    needed_propensity,
)

Order = tuple[int, ...]
ClickModel = Callable[[Order], list[tuple[tuple[int, ...], float]]]
"""A list -> every click pattern (1 = clicked, per slot) with its probability."""

ATTRACTION = np.array([0.7, 0.35, 0.5, 0.2])  # P(click | examined), per item
EXAMINATION = np.array([1.0, 0.6, 0.4, 0.3])  # P(examined), per slot (position-based model)
CONTINUE = 0.8  # cascade: P(reading on after a slot without a click)


def position_based(order: Order) -> list[tuple[tuple[int, ...], float]]:
    """Position-based model: slot k is clicked with probability examination(k) * attraction(item),
    independently of the other slots. The item-position assumption holds (and so does cascade's)."""
    chance = [EXAMINATION[k] * ATTRACTION[item] for k, item in enumerate(order)]
    return _independent(chance)


def cascade(order: Order) -> list[tuple[tuple[int, ...], float]]:
    """Cascade model: the user reads down the list, clicks an item with its attraction and stops
    after the first click (or, after a slot without one, leaves with probability 1 - CONTINUE).
    A slot's reward depends on every item above it: item-position fails."""
    patterns = []
    reach = 1.0
    for k, item in enumerate(order):
        pattern = tuple(1 if slot == k else 0 for slot in range(len(order)))
        patterns.append((pattern, reach * ATTRACTION[item]))
        reach *= (1.0 - ATTRACTION[item]) * CONTINUE
    patterns.append((tuple(0 for _ in order), 1.0 - sum(p for _, p in patterns)))
    return patterns


def look_ahead(order: Order) -> list[tuple[tuple[int, ...], float]]:
    """Users glance at the next item before clicking: a slot is clicked less when a more attractive
    item follows it. A slot's reward depends on an item *below* it: cascade fails too."""
    chance = []
    for k, item in enumerate(order):
        below = ATTRACTION[order[k + 1]] if k + 1 < len(order) else 0.0
        chance.append(EXAMINATION[k] * ATTRACTION[item] * (1.0 - 0.8 * below))
    return _independent(chance)


def _independent(chance: list[float]) -> list[tuple[tuple[int, ...], float]]:
    patterns = []
    for pattern in itertools.product((0, 1), repeat=len(chance)):
        probability = float(np.prod([c if hit else 1.0 - c for hit, c in zip(pattern, chance, strict=True)]))
        patterns.append((pattern, probability))
    return patterns


def expected_clicks(model: ClickModel, order: Order) -> np.ndarray:
    return np.sum([np.array(pattern) * p for pattern, p in model(order)], axis=0)


def plackett_luce(logits: list[float]) -> dict[Order, float]:
    """P(list) for every list of the items, by the product formula."""
    weights = np.exp(np.array(logits))
    probabilities = {}
    for order in itertools.permutations(range(len(logits))):
        left = list(range(len(logits)))
        p = 1.0
        for item in order:
            p *= weights[item] / weights[left].sum()
            left.remove(item)
        probabilities[order] = p
    return probabilities


def deterministic(order: Order) -> dict[Order, float]:
    return {other: float(other == order) for other in itertools.permutations(range(len(order)))}


def prefix_probability(policy: dict[Order, float], prefix: Order) -> float:
    return sum(p for order, p in policy.items() if order[: len(prefix)] == prefix)


def marginal(policy: dict[Order, float], item: int, slot: int) -> float:
    return sum(p for order, p in policy.items() if order[slot] == item)


def true_value(policy: dict[Order, float], model: ClickModel) -> float:
    return float(sum(p * expected_clicks(model, order).sum() for order, p in policy.items()))


@dataclass
class Enumerated:
    log: SlateLog
    target: TargetProbabilities
    orders: list[Order]
    marginals: np.ndarray  # (items, slots): the target's P(item at slot)

    def reward_model(self, rhat: np.ndarray) -> RewardModelTerms:
        """DR's terms for a fixed reward model ``rhat[item, slot]``."""
        direct = np.tile((self.marginals * rhat).sum(axis=0), (len(self.orders), 1))
        logged = np.array([[rhat[item, k] for k, item in enumerate(order)] for order in self.orders])
        return RewardModelTerms(direct=direct, logged=logged)


def enumerate_log(
    logger: dict[Order, float],
    target: dict[Order, float],
    model: ClickModel,
    *,
    logged_marginal: Callable[[int, int], float] | None = None,
) -> Enumerated:
    """Every (list, click pattern) the logger can produce, weighted by its probability."""
    items = len(next(iter(logger)))
    rewards, prefix, propensity, orders, frequency = [], [], [], [], []
    target_prefix, target_marginal = [], []
    for order, p_list in logger.items():
        if p_list == 0:
            continue
        for pattern, p_clicks in model(order):
            rewards.append(pattern)
            frequency.append(p_list * p_clicks)
            orders.append(order)
            prefix.append([prefix_probability(logger, order[: k + 1]) for k in range(items)])
            logged = logged_marginal or (lambda i, k: marginal(logger, i, k))
            propensity.append([logged(item, k) for k, item in enumerate(order)])
            target_prefix.append([prefix_probability(target, order[: k + 1]) for k in range(items)])
            target_marginal.append([marginal(target, item, k) for k, item in enumerate(order)])
    n = len(rewards)
    log = SlateLog(
        rewards=np.array(rewards, dtype=float),
        mask=np.ones((n, items), dtype=bool),
        groups=np.arange(n),
        prefix_propensity=np.array(prefix),
        propensity=np.array(propensity),
        frequency=np.array(frequency),
    )
    probabilities = TargetProbabilities(
        occupancy=np.ones((n, items)), prefix=np.array(target_prefix), marginal=np.array(target_marginal)
    )
    marginals = np.array([[marginal(target, i, k) for k in range(items)] for i in range(items)])
    return Enumerated(log, probabilities, orders, marginals)


LOGGER = plackett_luce([0.3, -0.2, 0.1, -0.6])
TARGETS = {
    "plackett-luce": plackett_luce([-0.5, 0.9, 0.0, 0.4]),
    "deterministic": deterministic((1, 3, 0, 2)),
}
RHAT = np.array(  # a deliberately wrong fixed reward model, item x slot
    [[0.2, 0.1, 0.3, 0.1], [0.6, 0.5, 0.1, 0.2], [0.1, 0.4, 0.2, 0.3], [0.3, 0.2, 0.1, 0.05]]
)


def expectation(name: str, case: Enumerated, reward_model: RewardModelTerms | None = None) -> float:
    return estimate(case.log, case.target, [name], reward_model=reward_model, resamples=0)[name].value


# -- each estimator is unbiased under its assumption ---------------------------------------------


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("model", [position_based, cascade, look_ahead], ids=lambda m: m.__name__)
def test_ips_is_unbiased_whatever_the_click_model(target: str, model: ClickModel) -> None:
    """IPS assumes nothing of the rewards: exact even when a click depends on the item below."""
    case = enumerate_log(LOGGER, TARGETS[target], model)
    assert expectation("ips", case) == pytest.approx(true_value(TARGETS[target], model), abs=1e-12)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_iips_and_dr_are_unbiased_under_the_position_based_model(target: str) -> None:
    """Item-position assumption: the reward at a slot depends only on the item and the slot.
    DR is exact with a wrong fixed reward model: the weighted residuals correct it."""
    case = enumerate_log(LOGGER, TARGETS[target], position_based)
    truth = true_value(TARGETS[target], position_based)
    assert expectation("iips", case) == pytest.approx(truth, abs=1e-12)
    assert expectation("dr", case, case.reward_model(RHAT)) == pytest.approx(truth, abs=1e-12)


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("model", [position_based, cascade], ids=lambda m: m.__name__)
def test_rips_is_unbiased_when_a_slot_depends_only_on_the_slots_above(target: str, model: ClickModel) -> None:
    """Cascade assumption: the reward at slot k depends only on slots 0..k (true of both models)."""
    case = enumerate_log(LOGGER, TARGETS[target], model)
    assert expectation("rips", case) == pytest.approx(true_value(TARGETS[target], model), abs=1e-12)


def test_dr_is_unbiased_with_the_true_reward_model_even_with_wrong_propensities() -> None:
    """The other half of double robustness: the logged marginals are wrong (uniform), which biases
    IIPS, but DR with the true expected reward per (item, slot) stays exact."""
    target = TARGETS["plackett-luce"]
    case = enumerate_log(LOGGER, target, position_based, logged_marginal=lambda _item, _slot: 0.25)
    truth = true_value(target, position_based)
    true_model = np.outer(ATTRACTION, EXAMINATION)
    assert abs(expectation("iips", case) - truth) > 0.05
    assert expectation("dr", case, case.reward_model(true_model)) == pytest.approx(truth, abs=1e-12)


# -- and biased when it fails ---------------------------------------------------------------------


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_iips_and_dr_are_biased_under_a_cascade(target: str) -> None:
    """A click at slot k means no click above it: the reward depends on the items above, and IIPS
    (and DR with a reward model that is not right) miss the target's value by a clear margin."""
    case = enumerate_log(LOGGER, TARGETS[target], cascade)
    truth = true_value(TARGETS[target], cascade)
    assert abs(expectation("iips", case) - truth) > 0.02
    assert abs(expectation("dr", case, case.reward_model(RHAT)) - truth) > 0.02
    assert expectation("rips", case) == pytest.approx(truth, abs=1e-12)  # the assumption that holds


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_rips_is_biased_when_a_click_depends_on_the_item_below(target: str) -> None:
    case = enumerate_log(LOGGER, TARGETS[target], look_ahead)
    truth = true_value(TARGETS[target], look_ahead)
    assert abs(expectation("rips", case) - truth) > 0.01
    assert abs(expectation("iips", case) - truth) > 0.01


# -- self-normalised forms: consistent, biased in small samples ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "model"),
    [("snips", look_ahead), ("sniips", position_based), ("snrips", cascade)],
    ids=["snips", "sniips", "snrips"],
)
def test_self_normalised_forms_converge_to_the_truth_under_their_assumption(
    name: str, model: ClickModel
) -> None:
    """With every outcome at its probability (the limit of many lists), the ratio of the weighted
    rewards to the weights is the target's value: the self-normalised forms are consistent."""
    for target in TARGETS.values():
        case = enumerate_log(LOGGER, target, model)
        assert expectation(name, case) == pytest.approx(true_value(target, model), abs=1e-12)


def test_self_normalised_ips_is_biased_on_two_lists_while_ips_is_not() -> None:
    """The exact expectation over every log of two lists (three items): IPS's equals the truth,
    SNIPS's does not (a ratio of means is biased in small samples)."""
    logger = plackett_luce([0.4, -0.3, 0.0])
    target = plackett_luce([-0.6, 0.8, 0.2])
    single = enumerate_log(logger, target, position_based)
    truth = true_value(target, position_based)
    outcomes = range(single.log.lists)
    expected = {"ips": 0.0, "snips": 0.0}
    for first, second in itertools.product(outcomes, repeat=2):
        rows = [first, second]
        pair_log = SlateLog(
            rewards=single.log.rewards[rows],
            mask=single.log.mask[rows],
            groups=np.array([0, 1]),
            prefix_propensity=single.log.prefix_propensity[rows],  # type: ignore[index]
            propensity=single.log.propensity[rows],  # type: ignore[index]
        )
        pair_target = TargetProbabilities(
            occupancy=single.target.occupancy[rows],
            prefix=single.target.prefix[rows],  # type: ignore[index]
            marginal=single.target.marginal[rows],  # type: ignore[index]
        )
        chance = single.log.frequency[first] * single.log.frequency[second]  # type: ignore[index]
        for name, result in estimate(pair_log, pair_target, ["ips", "snips"], resamples=0).items():
            expected[name] += chance * result.value
    assert expected["ips"] == pytest.approx(truth, abs=1e-12)
    assert abs(expected["snips"] - truth) > 1e-3


# -- weights, effective sample size, support, intervals ------------------------------------------------------


def test_target_equal_to_logger_gives_the_logged_mean_and_full_sample_size() -> None:
    rng = np.random.default_rng(1)
    n, slots = 50, 4
    prefix = np.cumprod(rng.uniform(0.2, 0.9, size=(n, slots)), axis=1)
    marginals = rng.uniform(0.1, 0.9, size=(n, slots))
    rewards = (rng.random((n, slots)) < 0.3).astype(float)
    log = SlateLog(rewards, np.ones((n, slots), bool), rng.integers(0, 20, n), prefix, marginals)
    target = TargetProbabilities(np.ones((n, slots)), prefix, marginals)
    names = [name for name in ESTIMATORS if name != "dr"]
    for name, result in estimate(log, target, names, resamples=200).items():
        assert result.value == pytest.approx(rewards.sum(axis=1).mean(), abs=1e-12), name
        assert result.ess == pytest.approx(n), name
        assert result.low <= result.value <= result.high, name


def test_effective_sample_size_is_kish_over_the_list_weights() -> None:
    log = SlateLog(
        rewards=np.zeros((3, 1)),
        mask=np.ones((3, 1), bool),
        groups=np.arange(3),
        prefix_propensity=np.full((3, 1), 0.5),
    )
    target = TargetProbabilities(np.ones((3, 1)), prefix=np.array([[0.5], [1.0], [0.0]]))
    # weights 1, 2, 0: (1 + 2)^2 / (1 + 4)
    assert estimate(log, target, ["ips"], resamples=0)["ips"].ess == pytest.approx(9 / 5)


def test_slots_the_target_leaves_empty_count_nothing_in_the_self_normalised_forms() -> None:
    """A target with top_k = 1 fills slot 0 only: its value is slot 0's, not the whole list's."""
    case = enumerate_log(LOGGER, TARGETS["plackett-luce"], position_based)
    occupancy = np.zeros_like(case.target.occupancy)
    occupancy[:, 0] = 1.0
    marginal_top = case.target.marginal * occupancy  # type: ignore[operator]
    prefix_top = np.where(occupancy > 0, case.target.prefix, 0.0)
    top_one = TargetProbabilities(occupancy, prefix=prefix_top, marginal=marginal_top)
    truth = sum(p * EXAMINATION[0] * ATTRACTION[order[0]] for order, p in TARGETS["plackett-luce"].items())
    for name in ("iips", "sniips", "rips", "snrips"):
        value = estimate(case.log, top_one, [name], resamples=0)[name].value
        assert value == pytest.approx(truth, abs=1e-12), name


def test_deterministic_conflicts_count_lists_the_target_orders_otherwise() -> None:
    logged = np.array([[1.0, 1.0], [1.0, 1.0], [0.4, 0.1]])
    target = np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    mask = np.array([[True, True], [True, True], [True, True]])
    assert deterministic_conflicts(logged, target, mask) == 1  # list 2 is randomised: weights handle it
    assert deterministic_conflicts(logged, target, mask & np.array([True, False])) == 0  # depth 1


def test_missing_inputs_are_errors_and_every_estimator_names_its_propensity() -> None:
    log = SlateLog(np.zeros((1, 1)), np.ones((1, 1), bool), np.zeros(1, dtype=np.int64), np.ones((1, 1)))
    target = TargetProbabilities(np.ones((1, 1)), prefix=np.ones((1, 1)))
    with pytest.raises(ValueError, match="no propensity"):
        estimate(log, target, ["iips"], resamples=0)
    with pytest.raises(ValueError, match="reward model"):
        estimate(log, TargetProbabilities(np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1))), ["dr"])
    with pytest.raises(ValueError, match="unknown estimator"):
        estimate(log, target, ["ipw"], resamples=0)
    assert {needed_propensity(name) for name in ESTIMATORS} == {"prefix_propensity", "propensity"}
    assert set(ASSUMPTIONS) == set(ESTIMATORS)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 30),
    st.integers(1, 4),
    st.integers(0, 2**31 - 1),
)
def test_estimates_of_any_reweighted_log_are_finite_with_ordered_intervals(
    n: int, slots: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    mask = np.arange(slots)[None, :] < rng.integers(1, slots + 1, n)[:, None]
    prefix = np.cumprod(rng.uniform(0.05, 1.0, size=(n, slots)), axis=1)
    marginals = rng.uniform(0.05, 1.0, size=(n, slots))
    rewards = (rng.random((n, slots)) < 0.4).astype(float)
    log = SlateLog(rewards, mask, rng.integers(0, max(1, n // 3), n), prefix, marginals)
    target = TargetProbabilities(
        np.ones((n, slots)), prefix * rng.uniform(0, 1, (n, slots)), marginals * rng.uniform(0, 2, (n, slots))
    )
    results = estimate(log, target, [name for name in ESTIMATORS if name != "dr"], resamples=50, seed=seed)
    for name, result in results.items():
        assert np.isfinite([result.value, result.low, result.high, result.ess]).all(), name
        assert 0 <= result.ess <= n + 1e-9, name
        assert result.low <= result.high, name
    for name in ("snips", "sniips", "snrips"):  # self-normalised: within the per-list reward range
        assert -1e-12 <= results[name].value <= slots + 1e-12, name
