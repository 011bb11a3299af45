"""Exploring policies: exact propensities on enumerable lists, their sampling, and team-draft."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recctl.diversity import list_traits_of, mmr_many
from recctl.exploration import (
    EXACT_UP_TO,
    Exploration,
    ListPolicy,
    PolicyLists,
    _State,
    list_seed,
    team_draft,
)

POLICIES = [
    Exploration("plackett-luce", temperature=0.3),
    Exploration("epsilon-greedy", epsilon=0.3),
]


def traits_frame(n: int, seed: int = 0) -> pl.DataFrame:
    """``n`` recommendations with similarity traits that overlap (so MMR matters)."""
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "category": rng.choice(["network", "storage", "iam"], n).tolist(),
            "cloud_provider": rng.choice(["aws", "gcp"], n).tolist(),
            "priority": rng.choice(["high", "low"], n).tolist(),
            "implementation_effort": rng.choice(["low", "medium"], n).tolist(),
            "services": [rng.choice(["s1", "s2", "s3"], 2).tolist() for _ in range(n)],
            "tags": [rng.choice(["t1", "t2", "t3"], 1).tolist() for _ in range(n)],
        }
    )


def policy_of(
    sizes: list[int], exploration: Exploration | None, *, seed: int = 0, repeat: int = 1, **options: object
) -> ListPolicy:
    """A policy over lists of ``sizes`` (each list's items and scores drawn from ``seed``),
    the whole set repeated ``repeat`` times."""
    frames = [traits_frame(n, seed + i) for i, n in enumerate(sizes)]
    scores = np.concatenate(
        [np.random.default_rng(seed + 100 + i).normal(size=n) for i, n in enumerate(sizes)]
    )
    frame = pl.concat(frames * repeat) if frames else traits_frame(0)
    return ListPolicy(
        np.tile(scores, repeat),
        list_traits_of(frame, sizes * repeat),
        exploration=exploration,
        **options,  # type: ignore[arg-type]
    )


def enumerated(policy: ListPolicy, n: int) -> tuple[float, np.ndarray]:
    """Over all n! orders of a one-list policy: the sum of the whole-list probabilities and the
    marginals that sum implies."""
    permutations = [np.array(order) for order in itertools.permutations(range(n))]
    probabilities = np.array([policy.prefix_probabilities([order])[0][-1] for order in permutations])
    implied = np.zeros((n, n))
    for order, probability in zip(permutations, probabilities, strict=True):
        implied[order, np.arange(n)] += probability
    return float(probabilities.sum()), implied


@pytest.mark.parametrize("exploration", POLICIES, ids=lambda e: e.policy)
@pytest.mark.parametrize("n", [3, 4])
def test_propensities_of_all_lists_sum_to_one_and_give_the_exact_marginals(
    exploration: Exploration, n: int
) -> None:
    policy = policy_of([n], exploration, lambda_=0.5)
    total, implied = enumerated(policy, n)
    exact = policy.marginals([1])[0]
    assert total == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(exact, implied, atol=1e-12)
    np.testing.assert_allclose(exact.sum(axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose(exact.sum(axis=1), 1.0, atol=1e-12)
    assert (exact > 0).all()


@pytest.mark.parametrize("exploration", POLICIES, ids=lambda e: e.policy)
def test_served_lists_follow_their_propensities(exploration: Exploration) -> None:
    """20,000 draws of one 4-item list: the frequencies of the served lists are their logged
    whole-list propensities, and each item's slot frequencies its exact marginals."""
    draws, n = 20_000, 4
    policy = policy_of([n], exploration, lambda_=0.5, repeat=draws)
    served = policy.serve([list_seed(3, request) for request in range(draws)])
    assert served.prefix_propensity is not None
    counts: dict[tuple[int, ...], int] = {}
    logged: dict[tuple[int, ...], float] = {}
    for order, prefix in zip(served.orders, served.prefix_propensity, strict=True):
        key = tuple(order.tolist())
        counts[key] = counts.get(key, 0) + 1
        logged.setdefault(key, float(prefix[-1]))
        assert logged[key] == float(prefix[-1])  # the same list always logs the same propensity
    for key, count in counts.items():
        p = logged[key]
        assert abs(count / draws - p) <= 4.5 * np.sqrt(p * (1 - p) / draws) + 1e-9, key
    frequencies = np.zeros((n, n))
    for order in served.orders:
        frequencies[order, np.arange(n)] += 1
    exact = policy_of([n], exploration, lambda_=0.5).marginals([0])[0]
    assert np.abs(frequencies / draws - exact).max() <= 4.5 * np.sqrt(0.25 / draws)


@pytest.mark.parametrize("exploration", POLICIES, ids=lambda e: e.policy)
def test_prefix_propensity_is_the_product_of_the_choice_probabilities(exploration: Exploration) -> None:
    policy = policy_of([6, 9, 1, 14], exploration, lambda_=0.6)
    served = policy.serve([list_seed(5, request) for request in range(4)])
    assert served.prefix_propensity is not None
    again = policy.prefix_probabilities(served.orders)
    for order, prefix, recomputed in zip(served.orders, served.prefix_propensity, again, strict=True):
        np.testing.assert_allclose(prefix, recomputed, rtol=1e-12)
        # the choice at slot j: P(prefix to j) / P(prefix to j - 1), each a probability in (0, 1]
        choices = prefix / np.concatenate([[1.0], prefix[:-1]])
        assert ((choices > 0) & (choices <= 1 + 1e-12)).all() and len(prefix) == len(order)


@pytest.mark.parametrize("exploration", POLICIES, ids=lambda e: e.policy)
def test_a_list_is_served_the_same_whatever_it_is_ranked_with(exploration: Exploration) -> None:
    """Seeded by its own stream: alone or among others of other sizes, a list gets the same order
    and the same propensities, bit for bit."""
    sizes = [5, 13, 2, 30, 7]
    marginal = Exploration(exploration.policy, exploration.temperature, exploration.epsilon, marginals=True)
    together = policy_of(sizes, marginal).serve([list_seed(9, r) for r in range(len(sizes))])
    for number, size in enumerate(sizes):
        alone = ListPolicy(
            policy_of(sizes, marginal).scores[sum(sizes[:number]) : sum(sizes[: number + 1])],
            list_traits_of(traits_frame(size, number), [size]),
            exploration=marginal,
        ).serve([list_seed(9, number)])
        assert together.orders[number].tolist() == alone.orders[0].tolist()
        assert together.prefix_propensity is not None and alone.prefix_propensity is not None
        assert together.prefix_propensity[number].tolist() == alone.prefix_propensity[0].tolist()
        assert together.propensity is not None and alone.propensity is not None
        assert together.propensity[number].tolist() == alone.propensity[0].tolist()
        assert together.diversity[number] == alone.diversity[0]


def test_epsilon_zero_is_the_deterministic_order() -> None:
    sizes = [8, 3, 20]
    greedy = policy_of(sizes, Exploration("epsilon-greedy", epsilon=0.0), lambda_=0.6)
    served = greedy.serve([1, 2, 3])
    ranked = mmr_many(greedy.scores, greedy.traits, lambda_=0.6)
    assert [order.tolist() for order in served.orders] == ranked.orders
    assert served.diversity == ranked.diversity
    assert served.diversity_discounted == ranked.diversity_discounted
    assert served.prefix_propensity is not None
    assert all((prefix == 1.0).all() for prefix in served.prefix_propensity)
    deterministic = policy_of(sizes, None, lambda_=0.6)
    probabilities = deterministic.prefix_probabilities(served.orders)
    assert all((p == 1.0).all() for p in probabilities)
    swapped = [order[[1, 0, *range(2, len(order))]] for order in served.orders]
    assert all(p.tolist() == [0.0] * len(p) for p in deterministic.prefix_probabilities(swapped))


@pytest.mark.parametrize("exploration", POLICIES, ids=lambda e: e.policy)
def test_monte_carlo_marginals_agree_with_the_exact_ones(exploration: Exploration) -> None:
    """Above the exact cap the marginals are estimated; on a 13-item list the estimate (2,000
    draws) is within a few hundredths of the exact dynamic programme, and every column sums to 1."""
    policy = policy_of([EXACT_UP_TO + 1], exploration, lambda_=0.5)
    estimate = policy.marginals([11])[0]
    state = _State(policy, np.array([0]))
    exact = np.empty_like(estimate)
    exact[state.bucket.by_score[0]] = state.exact_marginals()[0]
    np.testing.assert_allclose(estimate.sum(axis=0), 1.0, atol=1e-9)
    np.testing.assert_allclose(exact.sum(axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose(exact.sum(axis=1), 1.0, atol=1e-12)
    assert np.abs(estimate - exact).max() < 0.03
    served = policy.serve([11])
    assert served.propensity is None  # only with marginals=True


@pytest.mark.parametrize("exploration", POLICIES, ids=lambda e: e.policy)
def test_cut_lists_have_marginals_for_their_slots(exploration: Exploration) -> None:
    policy = policy_of([6, 16], exploration, top_k=3)
    for marginal in policy.marginals([1, 2]):
        assert marginal.shape[1] == 3
        np.testing.assert_allclose(marginal.sum(axis=0), 1.0, atol=1e-9)
        assert (marginal.sum(axis=1) <= 1 + 1e-9).all()
    served = policy.serve([1, 2])
    assert [len(order) for order in served.orders] == [3, 3]
    longer = [
        np.concatenate([order, np.setdiff1d(np.arange(size), order)])
        for order, size in zip(served.orders, [6, 16], strict=True)
    ]
    beyond = policy.prefix_probabilities(longer)
    assert all(p[3:].tolist() == [0.0] * (len(p) - 3) and (p[:3] > 0).all() for p in beyond)


def test_diversity_depth_leaves_the_tail_by_score() -> None:
    """Only the first ``depth`` slots are drawn; the rest follow by score with probability 1."""
    policy = policy_of([7], Exploration("plackett-luce", temperature=1.0), depth=3)
    served = policy.serve([4])
    assert served.prefix_propensity is not None
    prefix = served.prefix_propensity[0]
    assert (prefix[3:] == prefix[2]).all()
    tail = served.orders[0][3:]
    scores = policy.scores[tail]
    assert (np.diff(scores) <= 0).all()
    marginal = policy.marginals([4])[0]
    np.testing.assert_allclose(marginal.sum(axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose(marginal.sum(axis=1), 1.0, atol=1e-12)


def test_list_seed_depends_on_seed_and_request() -> None:
    assert list_seed(1, "a") == list_seed(1, "a")
    assert list_seed(1, 7) == list_seed(1, "7")
    assert len({list_seed(1, "a"), list_seed(2, "a"), list_seed(1, "b"), list_seed(None, "a")}) == 4
    assert 0 <= list_seed(3, "x") < 2**64


@pytest.mark.parametrize(
    "arguments",
    [("softmax",), ("plackett-luce", 0.0), ("plackett-luce", float("nan")), ("epsilon-greedy", 0.1, 1.5)],
)
def test_exploration_rejects_bad_settings(arguments: tuple[object, ...]) -> None:
    with pytest.raises(ValueError):
        Exploration(*arguments)  # type: ignore[arg-type]


def _lists(orders: list[list[int]]) -> PolicyLists:
    return PolicyLists(
        [np.array(o, dtype=np.int64) for o in orders],
        None,
        None,
        [None] * len(orders),
        None,
        [0.0] * len(orders),
        [0.0] * len(orders),
    )


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 9).flatmap(
        lambda n: st.tuples(st.permutations(range(n)), st.permutations(range(n)), st.integers(0, 2**63))
    )
)
def test_team_draft_takes_each_teams_best_remaining_item(case: tuple[list[int], list[int], int]) -> None:
    first, second, seed = case
    merged = team_draft(_lists([first]), _lists([second]), [seed])
    order, teams = merged.orders[0].tolist(), merged.teams[0] if merged.teams else []
    assert sorted(order) == sorted(first) and len(teams) == len(order)
    for slot, (item, team) in enumerate(zip(order, teams, strict=True)):
        preference = first if team == "A" else second
        best = next(candidate for candidate in preference if candidate not in order[:slot])
        assert item == best
    for pair in range(len(order) // 2):  # each pair of slots: one pick per team
        assert sorted(teams[2 * pair : 2 * pair + 2]) == ["A", "B"]


def test_team_draft_coins_are_fair_and_seeded() -> None:
    lists = 4000
    first = _lists([[0, 1, 2]] * lists)
    second = _lists([[1, 0, 2]] * lists)
    seeds = [list_seed(1, r) for r in range(lists)]
    merged = team_draft(first, second, seeds)
    assert merged.teams is not None
    a_first = np.mean([teams[0] == "A" for teams in merged.teams])
    assert abs(a_first - 0.5) < 0.04
    assert merged.orders[0].tolist() == team_draft(first, second, seeds).orders[0].tolist()
    assert {tuple(o.tolist()) for o in merged.orders} == {(0, 1, 2), (1, 0, 2)}
