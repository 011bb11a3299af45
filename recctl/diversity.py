"""Similarity of recommendations, MMR re-ranking and the diversity of a ranked list.

Similarity of two recommendations, in 0..1, is a weighted sum of

=====================  ======  =================================================
part                   weight  counts when
=====================  ======  =================================================
category               0.35    both have it and it is the same
cloud_provider         0.15    both have it and it is the same
priority               0.10    both have it and it is the same
implementation_effort  0.10    both have it and it is the same
services               0.15    Jaccard overlap of the two sets (0 if both empty)
tags                   0.15    Jaccard overlap of the two sets (0 if both empty)
=====================  ======  =================================================

A missing value never counts as a match.

MMR (Carbonell & Goldstein, 1998) fills the first slots of a list one at a time with the candidate
maximising ``lambda * relevance - (1 - lambda) * max similarity to those already placed``, where
relevance is the score min-max scaled within the list (all 1.0 when every score is equal). It fills
``top_k`` slots, or the first ``depth`` slots when no top-k is asked for; the rest of the list follows
by score. Ties go to the candidate with the higher score, then to the earlier one in the input, so
``lambda = 1`` is the plain score order.

Cost: every step compares each candidate with the newest pick only (its largest similarity to the
placed set is kept), so filling k slots of an n-item list takes O(k * n) time and O(n) memory; no
n x n matrix is ever built. Many lists are ranked at once (``recctl rank --ndjson`` hands over every
line that has arrived): they are grouped by size, so a list is only ever padded to at most twice its
own length, and one long list never makes the short ones of its chunk cost its size.

Two diversity figures describe the ranked list:

- ``diversity`` (intra-list diversity): the mean of ``1 - similarity`` over all pairs of the returned
  list, or of its first ``depth`` items when it is longer; 0.0 for fewer than two items. It does not
  depend on the order of those items.
- ``diversity_discounted`` (rank-discounted intra-list diversity, after EILD in Vargas & Castells,
  2011): over the first ``D = min(n, 10)`` slots,
  ``sum_{i<j} d(i) d(j) (1 - sim(i, j)) / sum_{i<j} d(i) d(j)`` with ``d(k) = 1 / log2(k + 2)`` for
  the 0-based slot ``k``; 0.0 for one item. Dissimilar items near the top count most, so it rewards an
  order, not only a choice of items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from recctl.defaults import DEFAULT_LAMBDA, DIVERSIFY_DEPTH

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
SET_FIELDS = ("services", "tags")
DISCOUNTED_DEPTH = 10
"""Slots ``diversity_discounted`` covers."""

Rows = npt.NDArray[np.int64]
Values = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RowSets:
    """One set-valued trait (services or tags) of every row, as sorted runs of integer members.

    Row ``r`` holds ``members[offsets[r]:offsets[r + 1]]``, without repeats. A member numbers a
    (list, value) pair, so equal values in different lists never match: the rows of one list are
    only ever compared with each other.
    """

    offsets: Rows
    members: Rows
    counts: Values
    universe: int

    def entries(self, rows: Rows) -> tuple[Rows, Rows]:
        """The members of ``rows`` (a flat array) and, for each, the position in ``rows`` it belongs to."""
        starts = self.offsets[rows]
        lengths = self.offsets[rows + 1] - starts
        owner = np.repeat(np.arange(len(rows)), lengths)
        # entry i of its row: its index in the concatenation minus where its row's run begins there
        within = np.arange(len(owner)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return self.members[np.repeat(starts, lengths) + within], owner


@dataclass(frozen=True)
class ListTraits:
    """The similarity traits of many lists' items at once.

    Rows are items; each list is a contiguous run of rows (``sizes``, in order). Exact fields are
    integer codes (-1 = missing); set fields are :class:`RowSets`.
    """

    codes: dict[str, Rows]
    sets: dict[str, RowSets]
    sizes: Rows

    @property
    def starts(self) -> Rows:
        return np.cumsum(self.sizes) - self.sizes


def list_traits_of(frame: pl.DataFrame, sizes: Sequence[int]) -> ListTraits:
    """:class:`ListTraits` of a frame holding the trait columns, whose lists have ``sizes`` rows each.

    Codes are the values' categorical codes (any consistent numbering works: only equality matters;
    a numbering that leaves gaps costs nothing, see :func:`_row_sets`).
    """
    import polars as pl

    code_matrix = frame.select(
        pl.col(name).cast(pl.Categorical).to_physical().cast(pl.Int64).fill_null(-1) for name in EXACT_FIELDS
    ).to_numpy()
    list_sizes = np.asarray(sizes, dtype=np.int64)
    list_of_row = np.repeat(np.arange(len(list_sizes), dtype=np.int64), list_sizes)
    exploded = (
        frame.lazy()
        .select(pl.int_range(pl.len(), dtype=pl.Int64).alias("row"), *(pl.col(name) for name in SET_FIELDS))
        .collect()
    )
    sets = {}
    for name in SET_FIELDS:
        items = (
            exploded.lazy()
            .select("row", name)
            .explode(name)
            .drop_nulls(name)
            .select("row", pl.col(name).cast(pl.Categorical).to_physical().cast(pl.Int64))
            .collect()
        )
        sets[name] = _row_sets(items["row"].to_numpy(), items[name].to_numpy(), list_of_row)
    return ListTraits(
        {name: code_matrix[:, i] for i, name in enumerate(EXACT_FIELDS)}, sets, list_sizes.copy()
    )


def _row_sets(rows: Rows, values: Rows, list_of_row: Rows) -> RowSets:
    """:class:`RowSets` from (row, value code) pairs sorted by row."""
    width = int(values.max()) + 1 if len(values) else 1
    # One entry per distinct (row, value), sorted by row: the runs of RowSets.
    keys = np.sort(rows * width + values)
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys
    rows, values = keys // width, keys % width
    members = list_of_row[rows] * width + values
    universe = (int(list_of_row[-1]) + 1) * width if len(list_of_row) else 1
    if universe > max(8 * len(members), 1 << 16):  # renumber densely: the marks stay small
        pairs, members = np.unique(members, return_inverse=True)
        universe = len(pairs)
    offsets = np.searchsorted(rows, np.arange(len(list_of_row) + 1)).astype(np.int64)
    return RowSets(
        offsets, members.astype(np.int64).reshape(-1), np.diff(offsets).astype(np.float64), universe
    )


class _Candidates:
    """Rows (lists x m) prepared for comparing, step after step, with one target row per list."""

    def __init__(self, traits: ListTraits, rows: Rows) -> None:
        self.traits = traits
        safe = np.maximum(rows, 0)
        self.shape = rows.shape
        self.codes = {name: traits.codes[name][safe] for name in EXACT_FIELDS}
        self.members = {}
        for name in SET_FIELDS:
            sets = traits.sets[name]
            members, owner = sets.entries(safe.reshape(-1))
            self.members[name] = (members, owner, sets.counts[safe])

    def similarity_to(self, targets: Rows) -> Values:
        real = targets >= 0
        target = np.maximum(targets, 0)
        total = np.zeros(self.shape, dtype=np.float64)
        for name in EXACT_FIELDS:
            own = np.where(real, self.traits.codes[name][target], -1)[:, None]
            total += WEIGHTS[name] * ((self.codes[name] == own) & (own >= 0))
        for name in SET_FIELDS:
            sets = self.traits.sets[name]
            members, owner, counts = self.members[name]
            marked = np.zeros(sets.universe, dtype=bool)
            marked[sets.entries(target[real])[0]] = True  # members number (list, value) pairs
            overlap = np.bincount(owner[marked[members]], minlength=total.size).reshape(self.shape)
            union = counts + np.where(real, sets.counts[target], 0.0)[:, None] - overlap
            total += WEIGHTS[name] * np.divide(overlap, union, out=np.zeros(self.shape), where=union > 0)
        return total


@dataclass(frozen=True)
class RankedLists:
    """Per list: the chosen items (indices within the list, in rank order) and its two diversities."""

    orders: list[list[int]]
    diversity: list[float]
    diversity_discounted: list[float]


def mmr_many(
    scores: Values,
    traits: ListTraits,
    *,
    lambda_: float = DEFAULT_LAMBDA,
    top_k: int | None = None,
    diversity: bool = True,
    depth: int = DIVERSIFY_DEPTH,
) -> RankedLists:
    """Order every list of ``traits``: MMR for the first slots (see the module docstring), then score.

    ``scores`` has one finite value per row. With ``diversity`` off the order is by score only.
    ``top_k`` cuts each list; ``depth`` is how many slots MMR fills without ``top_k`` and how many
    items ``diversity`` covers at most. A list of no items gets an empty order and diversities 0.0.
    """
    lists = len(traits.sizes)
    orders: list[list[int]] = [[] for _ in range(lists)]
    spread = np.zeros(lists)
    discounted = np.zeros(lists)
    for members in _by_size(traits.sizes):
        bucket = _Bucket(scores, traits, members)
        _fill(bucket, traits, lambda_=lambda_, top_k=top_k, diversity=diversity, depth=depth)
        bucket_orders = bucket.orders()
        for row, number in enumerate(members.tolist()):
            orders[number] = bucket_orders[row]
        spread[members], discounted[members] = bucket.diversity()
    return RankedLists(orders, spread.tolist(), discounted.tolist())


def _by_size(sizes: Rows) -> list[Rows]:
    """The lists (indices) grouped so that each group's longest is at most twice its shortest."""
    size_class = np.ceil(np.log2(np.maximum(sizes, 1))).astype(np.int64)
    size_class[sizes == 0] = -1
    order = np.argsort(size_class, kind="stable")
    cuts = np.flatnonzero(np.diff(size_class[order])) + 1
    return [group for group in np.split(order, cuts) if len(group)]


class _Bucket:
    """Lists of similar size, padded to one width, each sorted by score (descending, stable).

    Columns are slots of that sorted order; ``rows`` maps them to rows of the traits (-1 = padding).
    """

    def __init__(self, scores: Values, traits: ListTraits, members: Rows) -> None:
        self.sizes = traits.sizes[members]
        width = int(self.sizes.max())
        column = np.arange(width)
        self.valid = column[None, :] < self.sizes[:, None]
        rows = np.where(self.valid, traits.starts[members][:, None] + column, 0)
        own_scores = np.where(self.valid, scores[rows], -np.inf)
        # Stable sort of -score: ties keep the input order.
        self.by_score = np.argsort(np.where(self.valid, -own_scores, np.inf), axis=1, kind="stable")
        self.rows = np.where(self.valid, np.take_along_axis(rows, self.by_score, axis=1), -1)
        self.scores = np.take_along_axis(own_scores, self.by_score, axis=1)
        self.returned = self.sizes.copy()
        self.covered = self.sizes.copy()
        self.ranked = np.broadcast_to(column, self.valid.shape)  # columns in rank order: by score
        self.pairs = np.zeros(len(members))  # diversity: summed dissimilarity of the covered pairs
        self.weighted = np.zeros(len(members))  # diversity_discounted: numerator, denominator
        self.weights = np.zeros(len(members))

    def relevance(self) -> Values:
        low = np.min(np.where(self.valid, self.scores, np.inf), axis=1, keepdims=True)
        high = np.max(np.where(self.valid, self.scores, -np.inf), axis=1, keepdims=True)
        spread = high - low
        filled = np.where(self.valid, self.scores, low)
        return np.where(spread > 0, (filled - low) / np.where(spread > 0, spread, 1.0), 1.0)

    def place(self, picks: Rows) -> None:
        """The order: the columns ``picks`` (lists x steps, -1 = none) first, then the rest by score."""
        placed = picks.shape[1]
        key = np.where(self.valid, placed + np.arange(self.valid.shape[1])[None, :], np.iinfo(np.int64).max)
        lists, steps = np.nonzero(picks >= 0)
        key[lists, picks[lists, steps]] = steps
        self.ranked = np.argsort(key, axis=1, kind="stable")

    def count(self, slot: int, earlier_similarity: Values, discount: Values) -> None:
        """Add slot ``slot`` to the diversity sums; ``earlier_similarity`` is its item's similarity to
        the items of slots 0..slot-1 (lists x slot)."""
        dissimilar = 1.0 - earlier_similarity
        self.pairs += np.where(slot < self.covered, _row_sums(dissimilar), 0.0)
        in_range = slot < np.minimum(self.returned, DISCOUNTED_DEPTH)
        self.weighted += np.where(in_range, discount[slot] * _row_sums(dissimilar * discount[:slot]), 0.0)
        self.weights += np.where(in_range, discount[slot] * _row_sums(discount[None, :slot])[0], 0.0)

    def orders(self) -> list[list[int]]:
        """Per list, the input indices in rank order, cut to the returned length."""
        ranked = np.take_along_axis(self.by_score, self.ranked, axis=1)
        return [ranked[i, :count].tolist() for i, count in enumerate(self.returned.tolist())]

    def diversity(self) -> tuple[Values, Values]:
        pairs = self.covered * (self.covered - 1) / 2
        spread = np.where(pairs > 0, self.pairs / np.where(pairs > 0, pairs, 1.0), 0.0)
        weights = np.where(self.weights > 0, self.weights, 1.0)
        return spread, np.where(self.weights > 0, self.weighted / weights, 0.0)


def _row_sums(values: Values) -> Values:
    """Sums along rows, added left to right: a list gets the same bits whatever else is in its
    bucket (a matrix product or a pairwise sum may group the additions by the array's shape)."""
    return np.cumsum(values, axis=1)[:, -1]


def _fill(
    bucket: _Bucket, traits: ListTraits, *, lambda_: float, top_k: int | None, diversity: bool, depth: int
) -> None:
    """MMR for the first slots of every list of the bucket at once, then the diversity figures."""
    width = bucket.valid.shape[1]
    if top_k is not None:
        bucket.returned = np.minimum(bucket.sizes, top_k)
    bucket.covered = np.minimum(bucket.returned, depth)
    mmr_steps = min(width, top_k if top_k is not None else depth) if diversity else 0
    counted = min(width, max(int(bucket.covered.max()), min(int(bucket.returned.max()), DISCOUNTED_DEPTH)))
    discount = 1.0 / np.log2(np.arange(max(counted, 1)) + 2.0)
    lists = np.arange(len(bucket.sizes))
    if mmr_steps:
        picks = np.full((len(lists), mmr_steps), -1, dtype=np.int64)
        available = bucket.valid.copy()
        relevance = bucket.relevance()
        nearest = np.zeros(bucket.rows.shape)  # each candidate's largest similarity to the placed ones
        candidates = _Candidates(traits, bucket.rows)
        for step in range(mmr_steps):
            active = bucket.sizes > step
            objective = np.where(available, lambda_ * relevance - (1.0 - lambda_) * nearest, -np.inf)
            pick = np.where(active, np.argmax(objective, axis=1), 0)  # first maximum: better score
            available[lists, pick] &= ~active
            picks[:, step] = np.where(active, pick, -1)
            if step + 1 < mmr_steps or step < counted:
                row = candidates.similarity_to(np.where(active, bucket.rows[lists, pick], -1))
                np.maximum(nearest, row, out=nearest)
                if 0 < step < counted:
                    bucket.count(step, np.take_along_axis(row, picks[:, :step], axis=1), discount)
        bucket.place(picks)
    # Slots after MMR's: compared with every earlier slot, among the first `counted` only.
    first = min(mmr_steps, counted)
    if first < counted:
        prefix = np.take_along_axis(bucket.rows, bucket.ranked[:, :counted], axis=1)
        prefix_candidates = _Candidates(traits, prefix)
        for slot in range(max(first, 1), counted):
            row = prefix_candidates.similarity_to(np.where(bucket.sizes > slot, prefix[:, slot], -1))
            bucket.count(slot, row[:, :slot], discount)


def diversity_in_order(traits: ListTraits, *, depth: int = DIVERSIFY_DEPTH) -> tuple[Values, Values]:
    """``diversity`` and ``diversity_discounted`` of every list of ``traits`` in the order its rows
    are given (row 0 of a list is slot 0): the figures of lists already served, whatever ranked them.

    The same figures :func:`mmr_many` reports (see the module docstring), computed by the same code:
    each list is taken in its given order (scores falling along it, no MMR). ``depth`` bounds the
    items ``diversity`` covers, as there. A list of one item gets 0.0 for both.
    """
    rows = int(traits.sizes.sum())
    slot = np.arange(rows, dtype=np.float64) - np.repeat(traits.starts, traits.sizes)
    ranked = mmr_many(-slot, traits, diversity=False, depth=depth)
    return np.asarray(ranked.diversity), np.asarray(ranked.diversity_discounted)
