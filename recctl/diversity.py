"""Similarity of recommendations, MMR re-ranking and the diversity of a ranked list.

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
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import polars as pl

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


@dataclass(frozen=True)
class ListTraits:
    """Traits of many short lists at once, for :func:`mmr_many`.

    Rows are items, lists are contiguous runs of rows (``sizes``). Exact fields are integer codes
    (-1 = missing); set fields are bitsets (uint64 words), so Jaccard is a popcount.
    """

    codes: dict[str, npt.NDArray[np.int64]]
    bits: dict[str, npt.NDArray[np.uint64]]
    sizes: npt.NDArray[np.int64]


def list_traits_of(frame: pl.DataFrame, sizes: Sequence[int]) -> ListTraits:
    """:class:`ListTraits` from a frame with the trait columns (vectorised with polars).

    Codes are the values' categorical codes (any consistent numbering works: only equality
    matters); set items are numbered densely so that the bitsets stay short.
    """
    import polars as pl

    code_matrix = frame.select(
        pl.col(name).cast(pl.Categorical).to_physical().cast(pl.Int64).fill_null(-1) for name in EXACT_FIELDS
    ).to_numpy()
    codes = {name: code_matrix[:, i] for i, name in enumerate(EXACT_FIELDS)}
    bits = {}
    for name in SET_FIELDS:
        items = (
            frame.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("row"), pl.col(name))
            .explode(name)
            .drop_nulls(name)
            .select("row", pl.col(name).rank("dense").cast(pl.Int64) - 1)
        )
        item_codes = items[name].to_numpy()
        words = max(1, -(-(int(item_codes.max()) + 1) // 64)) if len(item_codes) else 1
        matrix = np.zeros((frame.height, words), dtype=np.uint64)
        shifts = np.left_shift(np.uint64(1), (item_codes % 64).astype(np.uint64))
        np.bitwise_or.at(matrix, (items["row"].to_numpy(), item_codes // 64), shifts)
        bits[name] = matrix
    return ListTraits(codes, bits, np.asarray(sizes, dtype=np.int64))


def _padded_similarity(traits: ListTraits, index: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """(lists, n, n) similarity of the items at ``index`` (lists x n, -1 = padding)."""
    safe = np.maximum(index, 0)
    total = np.zeros((*index.shape, index.shape[1]), dtype=np.float64)
    for name in EXACT_FIELDS:
        code = traits.codes[name][safe]
        total += WEIGHTS[name] * ((code[:, :, None] == code[:, None, :]) & (code[:, :, None] >= 0))
    for name in SET_FIELDS:
        bits = traits.bits[name][safe]  # lists x n x words
        overlap = np.bitwise_count(bits[:, :, None, :] & bits[:, None, :, :]).sum(axis=-1).astype(np.float64)
        count = np.bitwise_count(bits).sum(axis=-1).astype(np.float64)
        union = count[:, :, None] + count[:, None, :] - overlap
        total += WEIGHTS[name] * np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)
    return total


def mmr_many(
    scores: npt.NDArray[np.float64],
    traits: ListTraits,
    *,
    lambda_: float = 0.7,
    top_k: int | None = None,
    diversity: bool = True,
) -> tuple[list[list[int]], list[float]]:
    """MMR (or plain score order when ``diversity`` is off) for every list at once.

    ``scores`` has one value per row. Returns, per list, the chosen rows (indices within the list,
    in rank order) and the intra-list diversity of that choice. Same rule and tie-breaking as
    :func:`mmr` applied to each list sorted by score (stable), but every step runs over all lists.
    """
    lists = len(traits.sizes)
    width = int(traits.sizes.max()) if lists else 0
    starts = np.concatenate([[0], np.cumsum(traits.sizes)[:-1]]).astype(np.int64)
    position = np.arange(width)
    valid = position[None, :] < traits.sizes[:, None]
    padded_scores = np.where(valid, scores[np.minimum(starts[:, None] + position, len(scores) - 1)], -np.inf)
    # Within each list: by score, descending, ties in input order (a stable sort of -score).
    order = np.argsort(np.where(valid, -padded_scores, np.inf), axis=1, kind="stable")
    index = np.where(valid, starts[:, None] + order, -1)
    sorted_scores = np.take_along_axis(padded_scores, order, axis=1)
    k = width if top_k is None else min(top_k, width)
    similarity = _padded_similarity(traits, index)
    if diversity:
        low = np.min(np.where(valid, sorted_scores, np.inf), axis=1, keepdims=True)
        high = np.max(np.where(valid, sorted_scores, -np.inf), axis=1, keepdims=True)
        spread = high - low
        filled = np.where(index >= 0, sorted_scores, low)  # padding: any finite value, it is never picked
        relevance = np.where(spread > 0, (filled - low) / np.where(spread > 0, spread, 1.0), 1.0)
        available = valid.copy()
        max_similarity = np.zeros((lists, width))
        picks = np.zeros((lists, k), dtype=np.int64)
        rows = np.arange(lists)
        for step in range(k):
            objective = np.where(available, lambda_ * relevance - (1.0 - lambda_) * max_similarity, -np.inf)
            pick = np.argmax(objective, axis=1)
            picks[:, step] = pick
            available[rows, pick] = False
            np.maximum(max_similarity, similarity[rows, pick], out=max_similarity)
    else:
        picks = np.broadcast_to(np.arange(k), (lists, k)).copy()
    counts = np.minimum(traits.sizes, k)
    chosen_similarity = np.take_along_axis(
        np.take_along_axis(similarity, picks[:, :, None], axis=1), picks[:, None, :], axis=2
    )
    in_list = np.arange(k)[None, :] < counts[:, None]
    pair_mask = np.triu(np.ones((k, k), dtype=bool), 1)[None] & in_list[:, :, None] & in_list[:, None, :]
    pairs = counts * (counts - 1) / 2
    dissimilarity = np.where(pair_mask, 1.0 - chosen_similarity, 0.0).sum(axis=(1, 2))
    diversity_scores = np.where(pairs > 0, dissimilarity / np.where(pairs > 0, pairs, 1), 0.0)
    original = np.take_along_axis(order, picks, axis=1)
    return [original[i, : counts[i]].tolist() for i in range(lists)], diversity_scores.tolist()
