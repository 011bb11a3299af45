"""Plackett-Luce lists and their propensities (recctl/propensities.py), against brute-force enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from recctl import propensities


def enumerate_lists(logits: np.ndarray) -> dict[tuple[int, ...], float]:
    """Every permutation of one list's items with its Plackett-Luce probability, slot by slot."""
    weights = np.exp(logits - logits.max())
    probabilities = {}
    for order in itertools.permutations(range(len(logits))):
        probability, remaining = 1.0, weights.sum()
        for item in order:
            probability *= weights[item] / remaining
            remaining -= weights[item]
        probabilities[order] = probability
    return probabilities


def brute_force_marginals(logits: np.ndarray) -> np.ndarray:
    n = len(logits)
    marginals = np.zeros((n, n))
    for order, probability in enumerate_lists(logits).items():
        marginals[list(order), np.arange(n)] += probability
    return marginals


def brute_force_prefix(logits: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """P(the list starts with order[:j + 1]) for each j, summed over every permutation."""
    lists = enumerate_lists(logits)
    return np.array(
        [sum(p for other, p in lists.items() if other[: j + 1] == order[: j + 1]) for j in range(len(order))]
    )


logit_rows = st.integers(1, 5).flatmap(
    lambda n: hnp.arrays(np.float64, (3, n), elements=st.floats(-4.0, 4.0, allow_nan=False))
)


@settings(max_examples=60, deadline=None)
@given(logits=logit_rows)
def test_exact_marginals_equal_enumeration_of_all_permutations(logits: np.ndarray) -> None:
    marginals = propensities.marginal_propensities(logits)
    assert marginals.shape == (3, logits.shape[1], logits.shape[1])
    for row, matrix in zip(logits, marginals, strict=True):
        np.testing.assert_allclose(matrix, brute_force_marginals(row), rtol=1e-10, atol=1e-14)


@settings(max_examples=60, deadline=None)
@given(logits=logit_rows, seed=st.integers(0, 2**32 - 1))
def test_prefix_propensity_is_the_probability_of_the_list_down_to_each_slot(
    logits: np.ndarray, seed: int
) -> None:
    lists = propensities.plackett_luce_lists(np.random.default_rng(seed), logits)
    prefix = propensities.prefix_propensities(logits, lists)
    for row, order, expected in zip(logits, lists, prefix, strict=True):
        np.testing.assert_allclose(expected, brute_force_prefix(row, tuple(order)), rtol=1e-10)
        whole = enumerate_lists(row)[tuple(order)]
        assert expected[-1] == pytest.approx(whole, rel=1e-10)
    assert (np.diff(prefix, axis=1) <= 1e-15).all()  # never grows down the list
    slots = propensities.slot_probabilities(logits, lists)
    np.testing.assert_allclose(np.cumprod(slots, axis=1), prefix, rtol=1e-10)
    np.testing.assert_allclose(slots[:, -1], 1.0)


@settings(max_examples=40, deadline=None)
@given(
    logits=st.integers(1, 12).flatmap(
        lambda n: hnp.arrays(np.float64, (4, n), elements=st.floats(-30.0, 30.0, allow_nan=False))
    )
)
def test_every_row_and_column_of_the_marginals_sums_to_one(logits: np.ndarray) -> None:
    marginals = propensities.marginal_propensities(logits)
    np.testing.assert_allclose(marginals.sum(axis=1), 1.0, atol=1e-9)  # each position holds one item
    np.testing.assert_allclose(marginals.sum(axis=2), 1.0, atol=1e-9)  # each item is somewhere
    assert (marginals >= 0).all() and (marginals <= 1 + 1e-12).all()


def test_sampled_lists_are_permutations_with_the_plackett_luce_frequencies() -> None:
    logits = np.log(np.array([[4.0, 2.0, 1.0, 1.0]]))
    draws = 40_000
    lists = propensities.plackett_luce_lists(np.random.default_rng(3), np.repeat(logits, draws, axis=0))
    assert (np.sort(lists, axis=1) == np.arange(4)).all()
    observed = np.zeros((4, 4))
    np.add.at(observed, (lists, np.arange(4)), 1.0)
    exact = brute_force_marginals(logits[0])
    # Binomial standard error at 40k draws is at most 0.0025: five of them.
    np.testing.assert_allclose(observed / draws, exact, atol=0.0125)
    # The first slot by hand: 4 / 8.
    assert exact[0, 0] == pytest.approx(0.5)


def test_a_hand_computed_list_of_three() -> None:
    logits = np.log(np.array([[3.0, 2.0, 1.0]]))
    prefix = propensities.prefix_propensities(logits, np.array([[1, 2, 0]]))
    np.testing.assert_allclose(prefix, [[2 / 6, 2 / 6 * 1 / 4, 2 / 6 * 1 / 4]])
    marginals = propensities.marginal_propensities(logits)[0]
    # Item 0 first: 3/6; second: P(1 first) 3/4 + P(2 first) 3/5.
    assert marginals[0, 0] == pytest.approx(0.5)
    assert marginals[0, 1] == pytest.approx(2 / 6 * 3 / 4 + 1 / 6 * 3 / 5)


def test_equal_logits_give_uniform_marginals_and_large_logits_do_not_overflow() -> None:
    np.testing.assert_allclose(propensities.marginal_propensities(np.zeros((2, 6))), 1 / 6)
    shifted = np.array([[1000.0, 999.0, 998.0]])
    np.testing.assert_allclose(
        propensities.marginal_propensities(shifted),
        propensities.marginal_propensities(shifted - 1000.0),
        rtol=1e-12,
    )
    prefix = propensities.prefix_propensities(shifted, np.array([[0, 1, 2]]))
    assert np.isfinite(prefix).all() and (prefix > 0).all()


def test_exact_marginals_chunk_many_lists_without_changing_them(monkeypatch: pytest.MonkeyPatch) -> None:
    logits = np.random.default_rng(1).normal(size=(50, 7))
    whole = propensities.marginal_propensities(logits)
    monkeypatch.setattr(propensities, "_STATES_PER_CHUNK", 3 * 2**7)  # chunks of three lists
    np.testing.assert_array_equal(propensities.marginal_propensities(logits), whole)


def test_above_the_cap_marginals_are_monte_carlo_estimates() -> None:
    logits = np.random.default_rng(2).normal(size=(3, 6))
    exact = propensities.marginal_propensities(logits)
    assert propensities.marginal_method(6) == "exact"
    assert propensities.marginal_method(6, exact_up_to=5) == "monte-carlo"
    estimate = propensities.marginal_propensities(
        logits, exact_up_to=5, draws=20_000, rng=np.random.default_rng(0)
    )
    np.testing.assert_allclose(estimate.sum(axis=1), 1.0)
    np.testing.assert_allclose(estimate.sum(axis=2), 1.0)
    np.testing.assert_allclose(estimate, exact, atol=0.02)
    with pytest.raises(ValueError, match="pass rng"):
        propensities.marginal_propensities(logits, exact_up_to=5)
    with pytest.raises(ValueError, match="draws must be >= 2000"):
        propensities.marginal_propensities(logits, exact_up_to=5, draws=100, rng=np.random.default_rng(0))


def test_temperature_scales_the_scores_and_must_be_positive() -> None:
    np.testing.assert_allclose(propensities.temperature_logits(np.array([0.5, 0.2]), 0.1), [5.0, 2.0])
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature"):
            propensities.temperature_logits(np.array([0.5]), bad)
    with pytest.raises(ValueError, match=r"\(m, n\)"):
        propensities.marginal_propensities(np.zeros(3))
