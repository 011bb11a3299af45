"""MMR and diversity: hand-checked values, and a plain-Python reference on random lists."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recctl.diversity import (
    DISCOUNTED_DEPTH,
    EXACT_FIELDS,
    SET_FIELDS,
    WEIGHTS,
    _Candidates,
    list_traits_of,
    mmr_many,
)

CATEGORIES = ["security", "cost_optimization", "performance", None]
PROVIDERS = ["aws", "azure", None]
WORDS = ["ec2", "s3", "iam", "rds", "vpc"]
SCHEMA = {
    **{name: pl.String for name in EXACT_FIELDS},
    **{name: pl.List(pl.String) for name in SET_FIELDS},
}


def frame_of(items: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame([{name: item.get(name) for name in SCHEMA} for item in items], schema=SCHEMA)


def reference_similarity(a: dict[str, Any], b: dict[str, Any]) -> float:
    """The similarity of the module docstring, written out for two items."""
    total = 0.0
    for name in EXACT_FIELDS:
        if a.get(name) is not None and a.get(name) == b.get(name):
            total += WEIGHTS[name]
    for name in SET_FIELDS:
        left, right = set(a.get(name) or []), set(b.get(name) or [])
        if left | right:
            total += WEIGHTS[name] * len(left & right) / len(left | right)
    return total


def reference_rank(
    items: list[dict[str, Any]],
    scores: list[float],
    lambda_: float,
    top_k: int | None,
    diversity: bool,
    depth: int,
) -> tuple[list[int], float, float]:
    """One list, the slow way: the order, its diversity and its discounted diversity."""
    by_score = sorted(range(len(items)), key=lambda i: -scores[i])  # stable: ties keep input order
    low, high = min(scores), max(scores)
    relevance = [(s - low) / (high - low) if high > low else 1.0 for s in scores]
    returned = len(items) if top_k is None else min(top_k, len(items))
    mmr_slots = (returned if top_k is not None else min(depth, len(items))) if diversity else 0
    chosen: list[int] = []
    for _ in range(mmr_slots):
        best, best_value = -1, -math.inf
        for candidate in by_score:
            if candidate in chosen:
                continue
            penalty = max((reference_similarity(items[candidate], items[c]) for c in chosen), default=0.0)
            value = lambda_ * relevance[candidate] - (1 - lambda_) * penalty
            if value > best_value:
                best, best_value = candidate, value
        chosen.append(best)
    order = (chosen + [i for i in by_score if i not in chosen])[:returned]
    covered = order[:depth]
    pairs = [(i, j) for i in range(len(covered)) for j in range(i + 1, len(covered))]
    spread = (
        sum(1 - reference_similarity(items[covered[i]], items[covered[j]]) for i, j in pairs) / len(pairs)
        if pairs
        else 0.0
    )
    return order, spread, reference_discounted([items[i] for i in order])


def reference_discounted(ranked: list[dict[str, Any]]) -> float:
    top = ranked[:DISCOUNTED_DEPTH]
    weight = [1 / math.log2(k + 2) for k in range(len(top))]
    pairs = [(i, j) for i in range(len(top)) for j in range(i + 1, len(top))]
    if not pairs:
        return 0.0
    numerator = sum(weight[i] * weight[j] * (1 - reference_similarity(top[i], top[j])) for i, j in pairs)
    return numerator / sum(weight[i] * weight[j] for i, j in pairs)


def test_similarity_hand_checked() -> None:
    items = [
        {
            "category": "security",
            "cloud_provider": "aws",
            "priority": "high",
            "implementation_effort": "low",
            "services": ["iam", "kms", "iam"],
            "tags": ["a"],
        },
        {"category": "security", "cloud_provider": "aws", "priority": "low", "services": ["iam"], "tags": []},
        {},
    ]
    traits = list_traits_of(frame_of(items), [3])
    rows = np.array([[0, 1, 2]])
    to_first = _Candidates(traits, rows).similarity_to(np.array([0]))[0]
    assert to_first[0] == pytest.approx(1.0)  # a repeated service counts once
    assert to_first[1] == pytest.approx(0.35 + 0.15 + 0.15 * 0.5)  # category, provider, services 1/2
    assert to_first[2] == 0.0  # missing never matches
    assert _Candidates(traits, rows).similarity_to(np.array([2]))[0].tolist() == [0.0, 0.0, 0.0]


def test_equal_values_in_different_lists_do_not_meet() -> None:
    items = [{"services": ["iam"]}, {"services": ["iam"]}, {"services": ["iam"]}, {"services": ["kms"]}]
    traits = list_traits_of(frame_of(items), [2, 2])
    # Each list compares with one of its own rows at once: list 0's "iam" must not meet list 1's.
    compared = _Candidates(traits, np.array([[0, 1], [2, 3]])).similarity_to(np.array([0, 3]))
    assert compared.tolist() == [[0.15, 0.15], [0.0, 0.15]]


def test_diversity_discounted_three_items_by_hand() -> None:
    items = [
        {"category": "security", "services": ["iam"]},
        {"category": "security", "services": ["iam", "kms"]},
        {"category": "performance"},
    ]
    # similarities: (0,1) = 0.35 + 0.15/2 = 0.425, (0,2) = 0, (1,2) = 0
    d = [1 / math.log2(2), 1 / math.log2(3), 1 / math.log2(4)]
    expected = (d[0] * d[1] * 0.575 + d[0] * d[2] * 1 + d[1] * d[2] * 1) / (
        d[0] * d[1] + d[0] * d[2] + d[1] * d[2]
    )
    traits = list_traits_of(frame_of(items), [3])
    ranked = mmr_many(np.array([3.0, 2.0, 1.0]), traits, diversity=False)
    assert ranked.orders == [[0, 1, 2]]
    assert ranked.diversity_discounted[0] == pytest.approx(expected, abs=1e-15)
    assert ranked.diversity[0] == pytest.approx((0.575 + 1 + 1) / 3, abs=1e-15)
    # The same three items, the dissimilar one first: the discounted figure rises, the plain one not.
    reordered = mmr_many(np.array([2.0, 1.0, 3.0]), traits, diversity=False)
    assert reordered.orders == [[2, 0, 1]]
    assert reordered.diversity[0] == pytest.approx(ranked.diversity[0], abs=1e-15)
    assert reordered.diversity_discounted[0] > ranked.diversity_discounted[0]


def test_lambda_one_is_the_score_order() -> None:
    traits = list_traits_of(frame_of([{"category": "security"}] * 5), [5])
    ranked = mmr_many(np.array([0.2, 0.9, 0.9, 0.1, 0.5]), traits, lambda_=1.0)
    assert ranked.orders == [[1, 2, 4, 0, 3]]  # ties keep input order


def test_empty_and_single_lists() -> None:
    traits = list_traits_of(frame_of([{"category": "security"}]), [0, 1, 0])
    ranked = mmr_many(np.array([1.0]), traits)
    assert ranked.orders == [[], [0], []]
    assert ranked.diversity == [0.0, 0.0, 0.0]
    assert ranked.diversity_discounted == [0.0, 0.0, 0.0]


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
    lists=st.lists(st.lists(item_strategy, min_size=0, max_size=40), min_size=1, max_size=6),
    seed=st.integers(0, 10_000),
    lambda_=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
    top_k=st.one_of(st.none(), st.integers(1, 45)),
    diversity=st.booleans(),
    depth=st.sampled_from([1, 3, 12, 100]),
)
def test_many_lists_match_the_reference_one_at_a_time(
    lists: list[list[dict[str, Any]]],
    seed: int,
    lambda_: float,
    top_k: int | None,
    diversity: bool,
    depth: int,
) -> None:
    """Lists of mixed sizes (so several size groups) ranked at once equal the reference per list."""
    items = [item for items in lists for item in items]
    scores = np.random.default_rng(seed).integers(0, 4, len(items)).astype(np.float64)
    traits = list_traits_of(frame_of(items), [len(items) for items in lists])
    ranked = mmr_many(scores, traits, lambda_=lambda_, top_k=top_k, diversity=diversity, depth=depth)
    start = 0
    for number, own_items in enumerate(lists):
        own_scores = scores[start : start + len(own_items)].tolist()
        start += len(own_items)
        if not own_items:
            assert ranked.orders[number] == [] and ranked.diversity[number] == 0.0
            continue
        order, spread, discounted = reference_rank(own_items, own_scores, lambda_, top_k, diversity, depth)
        assert ranked.orders[number] == order
        assert ranked.diversity[number] == pytest.approx(spread, abs=1e-12)
        assert ranked.diversity_discounted[number] == pytest.approx(discounted, abs=1e-12)
        assert 0.0 <= ranked.diversity[number] <= 1.0 + 1e-12
        assert 0.0 <= ranked.diversity_discounted[number] <= 1.0 + 1e-12
