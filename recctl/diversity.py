"""Similarity of recommendations and MMR re-ranking (DESIGN §8).

Similarity of two recommendations, in 0..1, is a weighted sum of

=====================  ======  =================================================
part                   weight  counts when
=====================  ======  =================================================
category               0.35    both have it and it is the same
cloud_provider         0.15    both have it and it is the same
priority               0.10    both have it and it is the same
implementation_effort  0.10    both have it and it is the same
services               0.15    Jaccard overlap of the two lists (0 if both empty)
tags                   0.15    Jaccard overlap of the two lists (0 if both empty)
=====================  ======  =================================================

A missing value never counts as a match. MMR (Carbonell & Goldstein, 1998) picks, one at a time,
the candidate maximising ``lambda * relevance - (1 - lambda) * max similarity to those picked``,
with relevance = score min-max scaled within the list (all 1.0 when every score is equal). Each
candidate's largest similarity to the chosen set is kept and updated with the newest pick only,
so choosing k of n costs O(k * n). Ties go to the earlier candidate in the input order, so
``lambda = 1`` gives the plain score order (stable).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

WEIGHTS = {
    "category": 0.35,
    "cloud_provider": 0.15,
    "priority": 0.10,
    "implementation_effort": 0.10,
    "services": 0.15,
    "tags": 0.15,
}
EXACT_FIELDS = ("category", "cloud_provider", "priority", "implementation_effort")
SMALL_LIST = 128
SET_FIELDS = ("services", "tags")


@dataclass(frozen=True)
class ItemTraits:
    """Integer codes for the exact-match fields (-1 = missing) and 0/1 membership matrices for sets."""

    codes: dict[str, npt.NDArray[np.int64]]
    members: dict[str, npt.NDArray[np.float64]]
    sizes: dict[str, npt.NDArray[np.float64]]

    @classmethod
    def from_values(
        cls,
        exact: dict[str, Sequence[str | None]],
        sets: dict[str, Sequence[Sequence[str] | None]],
    ) -> ItemTraits:
        codes = {}
        for name in EXACT_FIELDS:
            values = exact[name]
            lookup: dict[str, int] = {}
            codes[name] = np.array(
                [-1 if v is None else lookup.setdefault(v, len(lookup)) for v in values], dtype=np.int64
            )
        members, sizes = {}, {}
        for name in SET_FIELDS:
            lists = [list(dict.fromkeys(v)) if v else [] for v in sets[name]]
            vocabulary: dict[str, int] = {}
            for items in lists:
                for item in items:
                    vocabulary.setdefault(item, len(vocabulary))
            matrix = np.zeros((len(lists), max(len(vocabulary), 1)), dtype=np.float64)
            for row, items in enumerate(lists):
                matrix[row, [vocabulary[item] for item in items]] = 1.0
            members[name] = matrix
            sizes[name] = matrix.sum(axis=1)
        return cls(codes, members, sizes)

    def __len__(self) -> int:
        return len(self.codes["category"])

    def similarity_to(self, index: int) -> npt.NDArray[np.float64]:
        """Similarity of every item to item ``index`` (a row of the similarity matrix)."""
        total = np.zeros(len(self), dtype=np.float64)
        for name in EXACT_FIELDS:
            code = self.codes[name]
            if code[index] >= 0:
                total += WEIGHTS[name] * (code == code[index])
        for name in SET_FIELDS:
            overlap = self.members[name] @ self.members[name][index]
            union = self.sizes[name] + self.sizes[name][index] - overlap
            total += WEIGHTS[name] * np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)
        return total

    def similarity_matrix(self) -> npt.NDArray[np.float64]:
        """The full n x n similarity matrix in a few array operations (for short lists)."""
        total = np.zeros((len(self), len(self)), dtype=np.float64)
        for name in EXACT_FIELDS:
            code = self.codes[name]
            total += WEIGHTS[name] * ((code[:, None] == code[None, :]) & (code[:, None] >= 0))
        for name in SET_FIELDS:
            members = self.members[name]
            overlap = members @ members.T
            union = self.sizes[name][:, None] + self.sizes[name][None, :] - overlap
            total += WEIGHTS[name] * np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)
        return total


def scaled_relevance(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Scores min-max scaled to 0..1 within the list; all 1.0 when they are all equal."""
    low, high = float(np.min(scores)), float(np.max(scores))
    if high <= low:
        return np.ones_like(scores, dtype=np.float64)
    return (scores - low) / (high - low)


def mmr(
    relevance: npt.NDArray[np.float64], traits: ItemTraits, *, lambda_: float = 0.7, top_k: int | None = None
) -> list[int]:
    """Indices of the chosen items, in the order chosen (greedy MMR, O(k * n))."""
    count = len(relevance)
    k = count if top_k is None else min(top_k, count)
    chosen: list[int] = []
    if k <= 0:
        return chosen
    # Short lists: one n x n matrix is cheaper than k rows computed one by one.
    matrix = traits.similarity_matrix() if count <= SMALL_LIST else None
    available = np.ones(count, dtype=bool)
    max_similarity = np.zeros(count, dtype=np.float64)
    for _ in range(k):
        objective = lambda_ * relevance - (1.0 - lambda_) * max_similarity
        objective[~available] = -np.inf
        pick = int(np.argmax(objective))  # first maximum: ties go to the earlier candidate
        chosen.append(pick)
        available[pick] = False
        newest = matrix[pick] if matrix is not None else traits.similarity_to(pick)
        np.maximum(max_similarity, newest, out=max_similarity)
    return chosen


def intra_list_diversity(traits: ItemTraits, order: Sequence[int]) -> float:
    """Mean pairwise dissimilarity (1 - similarity) of the items in ``order``; 0.0 for fewer than two."""
    if len(order) < 2:
        return 0.0
    index = np.asarray(order)
    if len(traits) <= SMALL_LIST:
        chosen = traits.similarity_matrix()[np.ix_(index, index)]
    else:
        chosen = np.stack([traits.similarity_to(int(item))[index] for item in index])
    pairs = len(index) * (len(index) - 1) / 2
    return float(np.sum(np.triu(1.0 - chosen, k=1)) / pairs)
