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
