"""Marginal propensities: the subset programme against every order of a 7-item list (whole, cut
by top_k, and with a by-score tail), independent of chunking, and MMR's choice among tied
objectives (the first column), exact or simulated."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from test_exploration import policy_of, traits_frame

import recctl.exploration as exploration_module
from recctl.diversity import list_traits_of, mmr_many
from recctl.exploration import EXACT_UP_TO, Exploration, ListPolicy

POLICIES = [
    Exploration("plackett-luce", temperature=0.2),
    Exploration("epsilon-greedy", epsilon=0.25),
]


def enumerated_marginals(policy: ListPolicy, n: int, slots: int) -> np.ndarray:
    """``(n, slots)``: over every ordered choice of ``slots`` of the list's ``n`` items, the
    probability of that prefix (from :meth:`ListPolicy.prefix_probabilities`) added to each of
    its items at its slot. All prefixes are scored at once, on ``len(prefixes)`` copies of the list."""
    prefixes = np.array(list(itertools.permutations(range(n), slots)), dtype=np.int64)
    frame = pl.concat([traits_frame(n, 0)] * len(prefixes))
    copies = ListPolicy(
        np.tile(policy.scores, len(prefixes)),
        list_traits_of(frame, [n] * len(prefixes)),
        lambda_=policy.lambda_,
        top_k=policy.top_k,
        depth=policy.depth,
        exploration=policy.exploration,
    )
    probability = np.array([p[-1] for p in copies.prefix_probabilities(list(prefixes))])
    implied = np.zeros((n, slots))
    np.add.at(implied, (prefixes, np.arange(slots)), probability[:, None])
    return implied


@pytest.mark.parametrize("exploration", POLICIES, ids=lambda e: e.policy)
@pytest.mark.parametrize(("options", "slots"), [({}, 7), ({"top_k": 3}, 3), ({"depth": 3}, 7)])
def test_exact_marginals_are_the_sum_over_every_order(
    exploration: Exploration, options: dict[str, int], slots: int
) -> None:
    n = 7
    policy = policy_of([n], exploration, lambda_=0.5, **options)  # type: ignore[arg-type]
    exact = policy.marginals([3])[0]
    assert exact.shape == (n, slots)
    np.testing.assert_allclose(exact, enumerated_marginals(policy, n, slots), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(exact.sum(axis=0), 1.0, rtol=1e-12)


@pytest.mark.parametrize("exploration", POLICIES, ids=lambda e: e.policy)
def test_marginals_do_not_depend_on_chunking(
    exploration: Exploration, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many lists of one size at once, in chunks of any size: each list's marginals (exact and
    simulated) are those it gets alone, bit for bit up to the float32 rounding."""
    sizes = [9, 9, 9, 14, 14, 14, 9]
    whole = policy_of(sizes, Exploration(exploration.policy, 0.2, exploration.epsilon), lambda_=0.6)
    seeds = list(range(len(sizes)))
    together = whole.marginals(seeds)
    monkeypatch.setattr(exploration_module, "_CELLS_PER_CHUNK", 1)
    monkeypatch.setattr(exploration_module, "_DRAW_CELLS_PER_CHUNK", 1)
    one_by_one = whole.marginals(seeds)
    for number, size in enumerate(sizes):
        np.testing.assert_allclose(together[number], one_by_one[number], rtol=1e-6, atol=1e-9)
        assert together[number].shape == (size, size)


@pytest.mark.parametrize("n", [8, EXACT_UP_TO + 2])
def test_epsilon_zero_marginals_follow_mmr_among_ties(n: int) -> None:
    """Scores with many ties (and traits that make MMR's objectives tie too): with epsilon 0,
    the marginals, exact or simulated, are 0/1 on MMR's own order, which takes the first of
    equal columns."""
    scores = np.repeat([2.0, 1.0, 0.0], -(-n // 3))[:n]
    frame = pl.concat([traits_frame(2, 5)] * (-(-n // 2)))[:n]
    traits = list_traits_of(frame, [n])
    greedy = ListPolicy(scores, traits, lambda_=0.6, exploration=Exploration("epsilon-greedy", epsilon=0.0))
    order = mmr_many(scores, traits, lambda_=0.6).orders[0]
    expected = np.zeros((n, n))
    expected[order, np.arange(n)] = 1.0
    np.testing.assert_array_equal(greedy.marginals([4])[0], expected)
