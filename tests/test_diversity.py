"""MMR and similarity: hand-checked values and a brute-force reference on random inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recctl.diversity import ItemTraits, intra_list_diversity, mmr, scaled_relevance

CATEGORIES = ["security", "cost_optimization", "performance", None]
PROVIDERS = ["aws", "azure", None]
WORDS = ["ec2", "s3", "iam", "rds", "vpc"]


def traits_of(items: list[dict]) -> ItemTraits:
    return ItemTraits.from_values(
        {
            name: [item.get(name) for item in items]
            for name in ("category", "cloud_provider", "priority", "implementation_effort")
        },
        {name: [item.get(name) for item in items] for name in ("services", "tags")},
    )


def test_similarity_hand_checked() -> None:
    traits = traits_of(
        [
            {
                "category": "security",
                "cloud_provider": "aws",
                "priority": "high",
                "implementation_effort": "low",
                "services": ["iam", "kms"],
                "tags": ["a"],
            },
            {
                "category": "security",
                "cloud_provider": "aws",
                "priority": "low",
                "implementation_effort": None,
                "services": ["iam"],
                "tags": [],
            },
            {
                "category": None,
                "cloud_provider": None,
                "priority": None,
                "implementation_effort": None,
                "services": None,
                "tags": None,
            },
        ]
    )
    matrix = traits.similarity_matrix()
    assert matrix[0, 1] == pytest.approx(0.35 + 0.15 + 0.15 * 0.5)  # category, provider, services 1/2
    assert matrix[0, 0] == pytest.approx(1.0)
    assert matrix[2, 2] == 0.0 and matrix[0, 2] == 0.0  # missing never matches
    assert np.allclose(matrix, matrix.T)
    assert intra_list_diversity(traits, [0, 1]) == pytest.approx(1 - matrix[0, 1])
    assert intra_list_diversity(traits, [0]) == 0.0


def brute_force_mmr(relevance: np.ndarray, similarity: np.ndarray, lambda_: float, k: int) -> list[int]:
    chosen: list[int] = []
    for _ in range(min(k, len(relevance))):
        best, best_value = -1, -np.inf
        for candidate in range(len(relevance)):
            if candidate in chosen:
                continue
            penalty = max((similarity[candidate, c] for c in chosen), default=0.0)
            value = lambda_ * relevance[candidate] - (1 - lambda_) * penalty
            if value > best_value:
                best, best_value = candidate, value
        chosen.append(best)
    return chosen


item_strategy = st.fixed_dictionaries(
    {
        "category": st.sampled_from(CATEGORIES),
        "cloud_provider": st.sampled_from(PROVIDERS),
        "priority": st.sampled_from(["high", "low", None]),
        "implementation_effort": st.sampled_from(["low", "high", None]),
        "services": st.one_of(st.none(), st.lists(st.sampled_from(WORDS), max_size=4)),
        "tags": st.one_of(st.none(), st.lists(st.sampled_from(WORDS), max_size=3)),
    }
)


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(item_strategy, min_size=1, max_size=25),
    scores=st.lists(st.integers(0, 6), min_size=25, max_size=25),
    lambda_=st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]),
    k=st.integers(1, 30),
)
def test_mmr_matches_brute_force(items: list[dict], scores: list[int], lambda_: float, k: int) -> None:
    traits = traits_of(items)
    relevance = scaled_relevance(np.array(scores[: len(items)], dtype=np.float64))
    chosen = mmr(relevance, traits, lambda_=lambda_, top_k=k)
    assert chosen == brute_force_mmr(relevance, traits.similarity_matrix(), lambda_, k)
    assert len(set(chosen)) == len(chosen) == min(k, len(items))
    assert 0.0 <= intra_list_diversity(traits, chosen) <= 1.0 + 1e-12


def test_lambda_one_is_the_score_order() -> None:
    traits = traits_of([{"category": "security"}] * 5)
    relevance = scaled_relevance(np.array([0.2, 0.9, 0.9, 0.1, 0.5]))
    assert mmr(relevance, traits, lambda_=1.0) == [1, 2, 4, 0, 3]  # ties keep input order


def test_scaled_relevance_constant_scores() -> None:
    assert scaled_relevance(np.array([3.0, 3.0])).tolist() == [1.0, 1.0]
    assert scaled_relevance(np.array([1.0, 3.0, 2.0])).tolist() == [0.0, 1.0, 0.5]


@settings(max_examples=100, deadline=None)
@given(
    lists=st.lists(st.lists(item_strategy, min_size=1, max_size=12), min_size=1, max_size=5),
    seed=st.integers(0, 10_000),
    lambda_=st.sampled_from([0.0, 0.4, 0.7, 1.0]),
    k=st.one_of(st.none(), st.integers(1, 15)),
    diversity=st.booleans(),
)
def test_mmr_many_matches_one_list_at_a_time(
    lists: list[list[dict]], seed: int, lambda_: float, k: int | None, diversity: bool
) -> None:
    import polars as pl

    from recctl.diversity import list_traits_of, mmr_many

    items = [item for items in lists for item in items]
    scores = np.random.default_rng(seed).integers(0, 4, len(items)).astype(np.float64)
    schema = {name: pl.String for name in ("category", "cloud_provider", "priority", "implementation_effort")}
    frame = pl.DataFrame(items, schema={**schema, "services": pl.List(pl.String), "tags": pl.List(pl.String)})
    traits = list_traits_of(frame, [len(items) for items in lists])
    chosen, diversity_scores = mmr_many(scores, traits, lambda_=lambda_, top_k=k, diversity=diversity)
    start = 0
    for items_of_list, picks, diversity_score in zip(lists, chosen, diversity_scores, strict=True):
        own = scores[start : start + len(items_of_list)]
        by_score = sorted(range(len(own)), key=lambda i: -own[i])
        one = traits_of([items_of_list[i] for i in by_score])
        limit = len(own) if k is None else min(k, len(own))
        if diversity:
            expected = [
                by_score[i]
                for i in brute_force_mmr(
                    scaled_relevance(own[by_score]), one.similarity_matrix(), lambda_, limit
                )
            ]
        else:
            expected = by_score[:limit]
        assert picks == expected
        assert diversity_score == pytest.approx(
            intra_list_diversity(traits_of(items_of_list), expected), abs=1e-12
        )
        start += len(items_of_list)
