"""Randomised rankings whose probabilities are known: the lists a ranker can learn from.

A deterministic ranker shows every user the same order, so no log of it can say what users would
have done with another one. An exploring policy draws the order, slot by slot, and knows the
probability of what it drew:

* **Plackett-Luce** (``plackett-luce``) draws slot ``t`` from the items not yet placed with
  probability ``softmax(objective / temperature)``, where the objective is MMR's value at that step,
  ``lambda * relevance - (1 - lambda) * max similarity to the items already placed`` (relevance =
  the score min-max scaled to 0..1 within the list; without diversity, relevance alone). So
  ``lambda = 1`` is plain Plackett-Luce over the scaled scores, and a low temperature is MMR's order.
* **epsilon-greedy** (``epsilon-greedy``) fills each slot with MMR's choice, except that with
  probability ``epsilon`` it takes a uniformly drawn remaining item instead (which may be MMR's).

Both fill the slots MMR fills (the first ``top_k``, else the first ``depth``); the rest of a longer
list follows by score, as in the deterministic order. For each served list they give

* ``prefix_propensity[t]``: the exact probability that the policy serves this list down to slot ``t``
  (the product of the choice probabilities of slots ``0..t``; cheap, always given);
* ``propensity[t]`` (on request): the marginal probability that the policy puts this item at slot
  ``t``, over every list it can serve. The objective of an item depends only on the *set* placed
  before it, so the marginals are a dynamic programme over the subsets of placed items, exact for
  lists of up to :data:`EXACT_UP_TO` items; longer lists are estimated from
  :data:`MONTE_CARLO_DRAWS` simulated lists, vectorised over the draws, averaging each step's choice
  probabilities over the drawn histories (a Rao-Blackwellised estimate: unbiased, with less noise
  than counting placements, and positive for every item that could be placed at the slot).
  The exact programme is in float64 (it agrees with enumerating every order to about 1e-14); the
  simulation keeps its weights in float32 (at temperatures from 0.05; float64 below) and draws with
  23-bit uniforms, errors far below the simulation's own (about 0.01 at 2,000 draws).

Randomness: every list has its own stream, seeded by :func:`list_seed` from the run's seed and the
list's request id, and the uniforms of that stream are a counter-based hash (splitmix64) of the list seed,
the draw and the slot (the Monte Carlo draws take theirs from counters of their own, two float32
uniforms per hash value). A list therefore gets the same order whatever other lists it is ranked with,
however a stream is chunked or threaded, and the same request always gets the same list.

Team-draft interleaving (:func:`team_draft`, Radlinski et al. 2008; Chapelle et al. 2012) merges two
policies' lists: per pair of slots a seeded coin decides which team picks first, and each team adds
its highest-ranked item not yet in the list; every item records the team that added it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from recctl.defaults import (
    DEFAULT_EPSILON,
    DEFAULT_LAMBDA,
    DEFAULT_TEMPERATURE,
    DIVERSIFY_DEPTH,
    MIN_TEMPERATURE,
)
from recctl.diversity import DISCOUNTED_DEPTH, ListTraits, _Bucket, _by_size, _Candidates, _row_sums, mmr_many

__all__ = [
    "EXACT_UP_TO",
    "MIN_TEMPERATURE",
    "MONTE_CARLO_DRAWS",
    "POLICIES",
    "Exploration",
    "ListPolicy",
    "PolicyLists",
    "list_seed",
    "team_draft",
]

POLICIES = ("plackett-luce", "epsilon-greedy")
"""The exploring policies, by the names impressions log them under."""
EXACT_UP_TO = 12
"""Lists of up to this many items get exact marginal propensities (``2 ** n`` subset states)."""
MONTE_CARLO_DRAWS = 2000
"""Simulated lists per list behind the marginal propensities of a list longer than :data:`EXACT_UP_TO`."""
#: Largest number of (list, subset, item) cells the exact marginals hold at once (2 MB of float64).
_CELLS_PER_CHUNK = 1 << 18
#: Largest number of (list, draw, item) cells the Monte Carlo marginals hold at once.
_DRAW_CELLS_PER_CHUNK = 1 << 17
#: Counters of a list's stream: the served list uses 0.., Monte Carlo draws start here, coins here.
_MONTE_CARLO_COUNTER = 1 << 40
_TEAM_COUNTER = 1 << 60

Values = npt.NDArray[np.float64]
Indices = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Exploration:
    """How a ranker explores: the ``policy`` (one of :data:`POLICIES`), the Plackett-Luce
    ``temperature`` (on MMR's objective, whose relevance part is scaled to 0..1), the epsilon-greedy
    ``epsilon`` (the chance of a uniformly drawn item per slot), and ``marginals``: also give each
    served item its marginal ``propensity``.

    Raises
    ------
    ValueError
        For an unknown policy, a temperature that is not a finite number >= :data:`MIN_TEMPERATURE`,
        or an epsilon outside 0..1.
    """

    policy: str
    temperature: float = DEFAULT_TEMPERATURE
    epsilon: float = DEFAULT_EPSILON
    marginals: bool = False

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown exploration policy {self.policy!r} (choose {' or '.join(POLICIES)})")
        if not (np.isfinite(self.temperature) and self.temperature >= MIN_TEMPERATURE):
            raise ValueError(f"temperature must be a number >= {MIN_TEMPERATURE}, got {self.temperature}")
        if not (np.isfinite(self.epsilon) and 0.0 <= self.epsilon <= 1.0):
            raise ValueError(f"epsilon must be between 0 and 1, got {self.epsilon}")


def list_seed(seed: int | None, request_id: str | int) -> int:
    """The seed of one list's random stream: a 64-bit hash of the run's ``seed`` and the list's
    ``request_id`` (an integer id and its decimal string are the same request).

    Without a seed the stream still depends on the request id alone, so the same request gets the
    same list; requests without an id get a random one, hence a random list.

    Examples
    --------
    >>> list_seed(7, "r-1") == list_seed(7, "r-1") != list_seed(8, "r-1")
    True
    """
    text = f"recctl list {'-' if seed is None else int(seed)} {request_id}"
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _splitmix(seeds: npt.NDArray[np.uint64], counters: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """``(len(seeds), len(counters))`` 64-bit values: splitmix64 of each seed at each counter."""
    with np.errstate(over="ignore"):
        z = seeds[:, None] + (counters[None, :] + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z


def _uniforms(seeds: npt.NDArray[np.uint64], counters: npt.NDArray[np.uint64]) -> Values:
    """``(len(seeds), len(counters))`` uniforms in [0, 1): splitmix64 of each seed at each counter."""
    return (_splitmix(seeds, counters) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _seed_array(seeds: Sequence[int]) -> npt.NDArray[np.uint64]:
    return np.array([int(seed) & 0xFFFFFFFFFFFFFFFF for seed in seeds], dtype=np.uint64)


@dataclass(frozen=True)
class PolicyLists:
    """The lists a policy served: per list, the ``orders`` (item indices within the list, in slot
    order, cut to the served length), and per slot ``prefix_propensity`` (None for a deterministic
    policy or team-draft), ``propensity`` (marginal; None unless asked for) and ``teams``
    (team-draft only: "A" or "B"); per list ``propensity_method`` ("exact", "monte-carlo", or None
    without marginals) and the two diversity figures of :mod:`recctl.diversity`."""

    orders: list[npt.NDArray[np.int64]]
    prefix_propensity: list[Values] | None
    propensity: list[Values] | None
    propensity_method: list[str | None]
    teams: list[list[str]] | None
    diversity: list[float]
    diversity_discounted: list[float]


class ListPolicy:
    """A policy over many lists at once: their scores, similarity traits and the rank options.

    Rows of ``scores`` and ``traits`` are items; each list is a contiguous run of rows
    (``traits.sizes``). ``scores`` are finite (a missing score sorts last: give it the lowest value).
    ``exploration`` None is the deterministic order of :func:`recctl.diversity.mmr_many`.
    Item indices in and out are positions within each list (0..n-1, input order).
    """

    def __init__(
        self,
        scores: Values,
        traits: ListTraits,
        *,
        lambda_: float = DEFAULT_LAMBDA,
        top_k: int | None = None,
        diversity: bool = True,
        depth: int = DIVERSIFY_DEPTH,
        exploration: Exploration | None = None,
    ) -> None:
        self.scores = np.asarray(scores, dtype=np.float64)
        if len(self.scores) != int(traits.sizes.sum()):
            raise ValueError(f"{len(self.scores)} scores for lists of {int(traits.sizes.sum())} items")
        self.traits = traits
        self.lambda_ = lambda_
        self.top_k = top_k
        self.diversity = diversity
        self.depth = depth
        self.exploration = exploration

    @property
    def name(self) -> str:
        """``deterministic``, or the exploring policy's name."""
        return "deterministic" if self.exploration is None else self.exploration.policy

    @property
    def sizes(self) -> Indices:
        return self.traits.sizes

    # -- serving ----------------------------------------------------------------------------------
    def serve(self, seeds: Sequence[int]) -> PolicyLists:
        """One list per list of the policy, each drawn from its own stream (``seeds``, one per
        list: :func:`list_seed`); with :attr:`Exploration.marginals`, also their marginals."""
        self._check_count(seeds, "seeds")
        if self.exploration is None:
            ranked = mmr_many(
                self.scores,
                self.traits,
                lambda_=self.lambda_,
                top_k=self.top_k,
                diversity=self.diversity,
                depth=self.depth,
            )
            return PolicyLists(
                [np.asarray(order, dtype=np.int64) for order in ranked.orders],
                None,
                None,
                [None] * len(self.sizes),
                None,
                ranked.diversity,
                ranked.diversity_discounted,
            )
        lists = len(self.sizes)
        orders: list[Indices] = [np.zeros(0, dtype=np.int64)] * lists
        prefix: list[Values] = [np.zeros(0)] * lists
        seed_values = _seed_array(seeds)
        for members in _by_size(self.sizes):
            state = _State(self, members)
            picks, choices = state.draw(
                _uniforms(seed_values[members], np.arange(state.steps, dtype=np.uint64))
            )
            state.bucket.place(picks)
            bucket_orders = np.take_along_axis(state.bucket.by_score, state.bucket.ranked, axis=1)
            # Slots after the drawn ones follow by score: each such choice has probability 1.
            running = np.cumprod(choices, axis=1) if state.steps else np.ones((len(members), 0))
            for row, number in enumerate(members.tolist()):
                count = int(state.returned[row])
                orders[number] = bucket_orders[row, :count].copy()
                tail = running[row, -1] if state.steps else 1.0
                prefix[number] = np.concatenate(
                    [running[row, : min(count, state.steps)], np.full(max(count - state.steps, 0), tail)]
                )
        diversity, discounted = self.diversities(orders)
        propensity = None
        methods: list[str | None] = [None] * lists
        if self.exploration.marginals:
            marginals = self.marginals(seeds)
            propensity = [
                marginal[order, np.arange(len(order))]
                for marginal, order in zip(marginals, orders, strict=True)
            ]
            methods = [_method(int(size)) for size in self.sizes]
        return PolicyLists(orders, prefix, propensity, methods, None, diversity, discounted)

    def diversities(self, orders: Sequence[npt.NDArray[np.int64]]) -> tuple[list[float], list[float]]:
        """``diversity`` and ``diversity_discounted`` of each list served in ``orders`` (item indices
        within the list, in slot order), as :func:`recctl.diversity.mmr_many` defines them."""
        return _diversities(self.traits, orders, self.depth)

    # -- probabilities ----------------------------------------------------------------------------
    def marginals(self, seeds: Sequence[int]) -> list[Values]:
        """Per list an ``(n, slots)`` array: the probability that the policy puts item ``i`` at slot
        ``j`` (slots = the served length). Exact for lists of up to :data:`EXACT_UP_TO` items,
        otherwise a Monte Carlo estimate from :data:`MONTE_CARLO_DRAWS` draws of the list's own
        stream (``seeds``); 0/1 for the deterministic policy. Every column sums to 1, and so does
        every row when the whole list is served (up to the Monte Carlo error)."""
        self._check_count(seeds, "seeds")
        lists = len(self.sizes)
        out: list[Values] = [np.zeros((0, 0))] * lists
        if self.exploration is None:
            for number, order in enumerate(self.serve(seeds).orders):
                one_hot = np.zeros((int(self.sizes[number]), len(order)))
                one_hot[order, np.arange(len(order))] = 1.0
                out[number] = one_hot
            return out
        seed_values = _seed_array(seeds)
        for size in np.unique(self.sizes).tolist():
            members = np.flatnonzero(self.sizes == size)
            if size == 0:
                for number in members.tolist():
                    out[number] = np.zeros((0, 0))
                continue
            state = _State(self, members)
            if size <= EXACT_UP_TO:
                per_column = state.exact_marginals()
            else:
                per_column = state.monte_carlo_marginals(seed_values[members])
            for row, number in enumerate(members.tolist()):
                marginal = np.empty_like(per_column[row])
                marginal[state.bucket.by_score[row]] = per_column[row]  # columns back to input order
                out[number] = marginal
        return out

    def prefix_probabilities(self, orders: Sequence[npt.NDArray[np.int64]]) -> list[Values]:
        """Per list, per slot ``j < len(orders[l])``: the probability that the policy serves
        ``orders[l][:j + 1]`` (items by index within the list). 0/1 for the deterministic policy;
        0 from the first slot past the policy's served length.

        Raises
        ------
        ValueError
            If an order names an item outside its list or names one twice.
        """
        self._check_count(orders, "orders")
        lists = len(self.sizes)
        out: list[Values] = [np.zeros(0)] * lists
        for members in _by_size(self.sizes):
            state = _State(self, members)
            width = state.width
            longest = max((len(orders[number]) for number in members.tolist()), default=0)
            columns = np.full((len(members), longest), -1, dtype=np.int64)
            column_of = np.empty((len(members), width), dtype=np.int64)
            column_of[np.arange(len(members))[:, None], state.bucket.by_score] = np.arange(width)
            for row, number in enumerate(members.tolist()):
                order = np.asarray(orders[number], dtype=np.int64)
                size = int(self.sizes[number])
                if len(order) and (
                    order.min() < 0 or order.max() >= size or len(np.unique(order)) < len(order)
                ):
                    raise ValueError(f"list {number}: an order must name distinct items of 0..{size - 1}")
                columns[row, : len(order)] = column_of[row, order]
            choices = state.choice_probabilities(columns)
            running = np.cumprod(choices, axis=1)
            for row, number in enumerate(members.tolist()):
                out[number] = running[row, : len(orders[number])].copy()
        for number in range(lists):
            if len(orders[number]) == 0:
                out[number] = np.zeros(0)
        return out

    def _check_count(self, values: Sequence[object], what: str) -> None:
        if len(values) != len(self.sizes):
            raise ValueError(f"{len(values)} {what} for {len(self.sizes)} lists")


def _method(size: int) -> str:
    return "exact" if size <= EXACT_UP_TO else "monte-carlo"


class _State:
    """One bucket of a policy's lists, in columns sorted by score (descending, stable), with what
    every step needs: relevance, availability and each item's largest similarity to those placed."""

    def __init__(self, policy: ListPolicy, members: Indices) -> None:
        self.policy = policy
        self.bucket = _Bucket(policy.scores, policy.traits, members)
        self.sizes = self.bucket.sizes
        self.width = self.bucket.valid.shape[1]
        top_k, depth = policy.top_k, policy.depth
        self.returned = np.minimum(self.sizes, top_k) if top_k is not None else self.sizes.copy()
        self.bucket.returned = self.returned
        # Slots chosen step by step (MMR's, or the explorer's); the rest follow by score.
        self.steps = min(self.width, top_k if top_k is not None else depth)
        if policy.exploration is None and not policy.diversity:
            self.steps = 0
        self.diversified = policy.diversity and policy.lambda_ < 1.0
        self.lambda_ = policy.lambda_ if policy.diversity else 1.0
        self.relevance = self.bucket.relevance()
        exploration = policy.exploration
        self.policy_name = policy.name
        self.temperature = exploration.temperature if exploration else DEFAULT_TEMPERATURE
        self.epsilon = exploration.epsilon if exploration else 0.0
        self._candidates: _Candidates | None = None

    @property
    def candidates(self) -> _Candidates:
        if self._candidates is None:
            self._candidates = _Candidates(self.policy.traits, self.bucket.rows)
        return self._candidates

    def objective(self, nearest: Values, available: npt.NDArray[np.bool_]) -> Values:
        """MMR's objective (as :func:`recctl.diversity.mmr_many` computes it), -inf where taken."""
        lambda_ = self.lambda_
        return np.where(available, lambda_ * self.relevance - (1.0 - lambda_) * nearest, -np.inf)

    def step_probabilities(
        self, objective: Values, available: npt.NDArray[np.bool_]
    ) -> tuple[Values, Indices]:
        """Each available item's probability of being chosen next (rows sum to 1, 0 where taken;
        all 0 for a list with nothing left), and MMR's choice (the first best column)."""
        greedy = np.argmax(objective, axis=-1)
        remaining = available.sum(axis=-1)
        if self.policy_name == "plackett-luce":
            best = np.max(objective, axis=-1, keepdims=True)
            shifted = np.where(available, (objective - np.where(np.isfinite(best), best, 0.0)), -np.inf)
            weights = np.exp(shifted / self.temperature)
            total = weights.sum(axis=-1, keepdims=True)
            return weights / np.where(total > 0, total, 1.0), greedy
        uniform = np.where(available, self.epsilon / np.maximum(remaining, 1)[..., None], 0.0)
        greedy_hot = np.zeros_like(uniform)
        np.put_along_axis(
            greedy_hot,
            greedy[..., None],
            np.where(remaining > 0, 1.0 - self.epsilon, 0.0)[..., None],
            axis=-1,
        )
        return uniform + greedy_hot, greedy

    def _pick(
        self, probabilities: Values, greedy: Indices, available: npt.NDArray[np.bool_], uniforms: Values
    ) -> Indices:
        """The column each row's uniform draws: by the inverse CDF of ``probabilities``
        (Plackett-Luce); MMR's ``greedy`` column unless ``u < epsilon``, then the
        ``floor(u / epsilon * remaining)``-th remaining one (given ``u < epsilon``, ``u / epsilon``
        is uniform on [0, 1))."""
        if self.policy_name == "plackett-luce":
            return _inverse_cdf(probabilities, available, uniforms)
        explore = uniforms < self.epsilon
        uniform = uniforms / max(self.epsilon, 1e-300)
        return np.where(explore, _kth_available(available, np.where(explore, uniform, 0.0)), greedy)

    def _similarity_row(self, columns: Indices, active: npt.NDArray[np.bool_]) -> Values:
        lists = np.arange(len(self.sizes))
        return self.candidates.similarity_to(np.where(active, self.bucket.rows[lists, columns], -1))

    def draw(self, uniforms: Values) -> tuple[Indices, Values]:
        """The drawn column of each step (-1 past a list's end) and its choice probability."""
        count = len(self.sizes)
        lists = np.arange(count)
        picks = np.full((count, self.steps), -1, dtype=np.int64)
        choices = np.ones((count, self.steps))
        available = self.bucket.valid.copy()
        nearest = np.zeros(available.shape)
        for step in range(self.steps):
            active = self.sizes > step
            probabilities, greedy = self.step_probabilities(self.objective(nearest, available), available)
            pick = self._pick(probabilities, greedy, available, uniforms[:, step])
            pick = np.where(active, pick, 0)
            choices[:, step] = np.where(active, probabilities[lists, pick], 1.0)
            picks[:, step] = np.where(active, pick, -1)
            available[lists, pick] &= ~active
            if self.diversified and step + 1 < self.steps:
                np.maximum(nearest, self._similarity_row(pick, active), out=nearest)
        return picks, choices

    def choice_probabilities(self, columns: Indices) -> Values:
        """The probability of each given column at its slot, given the columns before it (1 past
        the end of a given order, 0 past the served length)."""
        count, longest = columns.shape
        lists = np.arange(count)
        out = np.ones((count, longest))
        available = self.bucket.valid.copy()
        nearest = np.zeros(available.shape)
        for slot in range(longest):
            column = columns[:, slot]
            given = column >= 0
            safe = np.where(given, column, 0)
            if slot < self.steps:
                probabilities, greedy = self.step_probabilities(self.objective(nearest, available), available)
                if self.policy.exploration is None:
                    probability = (safe == greedy).astype(np.float64)
                else:
                    probability = probabilities[lists, safe]
            else:  # by score: the first column still available
                probability = (safe == np.argmax(available, axis=1)).astype(np.float64)
            probability = np.where(slot < self.returned, probability, 0.0)
            out[:, slot] = np.where(given, probability, 1.0)
            available[lists, safe] &= ~given
            if self.diversified and slot + 1 < min(self.steps, longest):
                np.maximum(nearest, self._similarity_row(safe, given), out=nearest)
        return out

    # -- marginals (the lists of this state all have the same size) --------------------------------
    def similarity_matrix(self) -> Values:
        """``(lists, width, width)``: similarity of column ``a``'s item (as placed) to column ``b``'s."""
        active = np.ones(len(self.sizes), dtype=bool)
        if not self.diversified:
            return np.zeros((len(self.sizes), self.width, self.width))
        return np.stack(
            [self._similarity_row(np.full(len(self.sizes), column), active) for column in range(self.width)],
            axis=1,
        )

    def exact_marginals(self) -> Values:
        """Dynamic programming over the subsets of placed columns: ``reach[S]`` is the probability
        that the first ``|S|`` slots hold exactly ``S``; the choice probabilities at ``S`` depend
        only on ``S`` (through each item's largest similarity to it).

        Per chunk of lists: each subset's choice probabilities, built subset by subset from the
        one without its highest column (a minimum with that column's row of the table of
        :meth:`monte_carlo_marginals`), in the order of :func:`_subset_layers` (by size), so
        that a slot's subsets are one contiguous block; then, slot by slot, the slot's marginals
        are ``reach @ probabilities`` over its block and the next block's reach a gather of the
        flows into each subset (a subset of ``k + 1`` columns is reached from ``k + 1`` others).
        """
        n = self.width
        served = int(self.returned[0])
        steps = min(self.steps, served)
        layers = _subset_layers(n)
        similarity = self.similarity_matrix()
        out = np.zeros((len(self.sizes), n, served))
        chunk = max(1, _CELLS_PER_CHUNK // ((1 << n) * n))
        for first in range(0, len(self.sizes), chunk):
            part = slice(first, first + chunk)
            m = len(self.sizes[part])
            probabilities = self._subset_probabilities(similarity[part], self.relevance[part], layers)
            flat = probabilities.reshape(m, -1)
            reach = np.zeros((m, 1 << n))
            reach[:, 0] = 1.0
            offsets = layers.offsets
            for k in range(steps):
                block = slice(offsets[k], offsets[k + 1])
                out[part, :, k] = np.matmul(reach[:, None, block], probabilities[:, block])[:, 0]
                if k + 1 < steps or steps < served:
                    source, into = layers.flows[k]  # (|layer k+1|, k+1): flat cells, source subsets
                    flows = np.take(flat, source, axis=1)
                    flows *= np.take(reach, into, axis=1)
                    reach[:, offsets[k + 1] : offsets[k + 2]] = flows @ np.ones(k + 1)
            if steps < served:  # the rest by score: the remaining columns in order
                block = slice(offsets[steps], offsets[steps + 1])
                remaining = ~layers.bits[block]  # (|layer|, n)
                slot = steps + np.cumsum(remaining, axis=1) - 1
                hot = (remaining[:, :, None] & (slot[:, :, None] == np.arange(served))).astype(np.float64)
                out[part] += np.einsum("ms,sir->mir", reach[:, block], hot)
        return out

    def _subset_probabilities(self, similarity: Values, relevance: Values, layers: _Layers) -> Values:
        """``(lists, 2 ** n, n)``: each subset's (rows in the order of ``layers``) choice
        probabilities of the columns, 0 for those in the subset (and for the full set)."""
        m, n = relevance.shape
        lambda_ = self.lambda_
        diagonal = np.arange(n)
        if self.policy_name == "plackett-luce":
            # weights exp((objective - lambda) / temperature): a minimum over the placed columns
            base = np.exp(lambda_ * (relevance - 1.0) / self.temperature)
            start = base
            table = base[:, None, :] * np.exp(-(1.0 - lambda_) * similarity / self.temperature)
            table[:, diagonal, diagonal] = 0.0
        else:  # MMR's objective itself (-inf once placed), for its choice
            start = lambda_ * relevance
            table = lambda_ * relevance[:, None, :] - (1.0 - lambda_) * similarity
            table[:, diagonal, diagonal] = -np.inf
        values = np.empty((m, 1 << n, n))
        values[:, 0] = start
        for bit in range(n):  # a subset with highest column `bit`: the rest's values and its row
            low = 1 << bit
            np.minimum(values[:, :low], table[:, bit][:, None, :], out=values[:, low : 2 * low])
        values = np.take(values, layers.masks, axis=1)  # by size: each slot's subsets in one block
        if self.policy_name == "plackett-luce":
            total = values @ np.ones(n)
            total[:, -1] = 1.0  # the full set (all weights 0)
            values /= total[:, :, None]
            return values
        # epsilon-greedy: epsilon / remaining on each remaining column, the rest on MMR's choice
        remaining = (n - layers.sizes)[:, None]
        out = np.where(layers.bits, 0.0, self.epsilon / np.maximum(remaining, 1))
        out = np.broadcast_to(out, values.shape).copy()
        greedy = np.argmax(values[:, :-1], axis=2)  # the full set (last row) has no choice
        rows = np.arange((1 << n) - 1)
        out[np.arange(m)[:, None], rows[None, :], greedy] += 1.0 - self.epsilon
        return out

    def monte_carlo_marginals(self, seeds: npt.NDArray[np.uint64]) -> Values:
        """The average over :data:`MONTE_CARLO_DRAWS` simulated lists of each step's choice
        probabilities given the drawn history, vectorised over lists and draws.

        Each step keeps one number per (item, draw) and updates it with one column of a table
        that depends only on the item just placed, because MMR's objective is a minimum over the
        placed items: ``lambda * rel_i - (1 - lambda) * max_j sim(j, i) = min_j (lambda * rel_i -
        (1 - lambda) * sim(j, i))``. Plackett-Luce keeps the weight ``exp((objective - lambda) /
        temperature)`` the same way (``exp`` is monotone), so no step evaluates ``exp``; an item's
        own table entry (0 weight, -inf objective) takes it out of the draw.
        """
        if self.policy_name == "plackett-luce":
            return self._plackett_luce_monte_carlo(seeds)
        return self._epsilon_greedy_monte_carlo(seeds)

    def _plackett_luce_monte_carlo(self, seeds: npt.NDArray[np.uint64]) -> Values:
        """Plackett-Luce's Monte Carlo marginals, laid out (list, item, draw) so that every step
        is a few passes over contiguous rows of draws and two small matrix products per list.

        A step: the running sums of the weights over the items, in order (so they never decrease);
        the choice probabilities ``weight / total`` averaged over the draws (the estimate); the
        drawn item, the first whose running sum exceeds ``u * total`` (kept below the total, so it
        always has a positive weight), as a one-hot column per draw; and the weights' update, the
        minimum with the table's column of the drawn item, taken as ``table @ one_hot`` (a product
        with one 1 per column, so the gathered values are exact).
        """
        n = self.width
        draws = MONTE_CARLO_DRAWS
        served = int(self.returned[0])
        steps = min(self.steps, served)
        drawn_steps = steps - 1 if steps == served else steps  # the last step has no draw to make
        similarity = self.similarity_matrix()
        out = np.zeros((len(self.sizes), n, served))
        # float32 halves the memory traffic; at these temperatures no weight gets near underflow
        # (every weight is at least exp(-1 / temperature) of the largest)
        single = self.temperature >= 0.05
        dtype = np.float32 if single else np.float64
        chunk = max(1, _DRAW_CELLS_PER_CHUNK // (draws * n))
        lambda_ = self.lambda_
        diagonal = np.arange(n)
        for first in range(0, len(self.sizes), chunk):
            part = slice(first, first + chunk)
            m = len(self.sizes[part])
            uniforms = _draw_uniforms(seeds[part], drawn_steps, draws, single)
            base = np.exp(lambda_ * (self.relevance[part] - 1.0) / self.temperature)  # (m, n)
            # table[l, i, j]: item i's weight once item j is placed (0 for j itself)
            factor = np.exp(-(1.0 - lambda_) * similarity[part] / self.temperature)  # [l, j, i]
            table = np.ascontiguousarray((base[:, None, :] * factor).transpose(0, 2, 1), dtype=dtype)
            table[:, diagonal, diagonal] = 0.0
            state = np.empty((m, n, draws), dtype=dtype)
            state[...] = base.astype(dtype)[:, :, None]
            running = np.empty_like(state)
            below = np.empty(state.shape, dtype=bool)
            drawn = np.empty(state.shape, dtype=bool)
            hot = np.empty_like(state)
            averaged = np.empty((m, n, 1), dtype=dtype)
            threshold = np.empty((m, draws), dtype=dtype)
            for step in range(steps):
                np.copyto(running[:, 0], state[:, 0])
                for item in range(1, n):
                    np.add(running[:, item - 1], state[:, item], out=running[:, item])
                total = running[:, -1]
                np.matmul(state, (1.0 / total)[:, :, None], out=averaged)
                out[part, :, step] = averaged[:, :, 0] / draws
                if step >= drawn_steps:
                    break
                np.multiply(uniforms[:, step], total, out=threshold)  # < total (see _draw_uniforms)
                np.less_equal(running, threshold[:, None, :], out=below)
                np.logical_not(below[:, 0], out=drawn[:, 0])  # the drawn item: where `below` ends
                np.greater(below[:, :-1], below[:, 1:], out=drawn[:, 1:])
                np.copyto(hot, drawn.view(np.uint8), casting="unsafe")
                np.minimum(state, np.matmul(table, hot, out=running), out=state)
            if steps < served:  # the rest follow by score: the remaining columns in order
                self._by_score_tail(out, part, state > 0, steps, served, axis=1)
        return out

    def _by_score_tail(
        self, out: Values, part: slice, available: npt.NDArray[np.bool_], steps: int, served: int, axis: int
    ) -> None:
        """Add the slots after the drawn ones to ``out[part]``: each draw's ``available`` columns
        (``(list, item, draw)`` with ``axis`` 1, ``(list, draw, item)`` with ``axis`` 2) fill them
        in column order."""
        m = available.shape[0]
        n = available.shape[axis]
        draws = available.shape[3 - axis]
        slot = steps + np.cumsum(available, axis=axis) - 1
        keep = available & (slot < served)
        shape = [1, 1, 1]
        shape[axis] = n
        list_no = np.broadcast_to(np.arange(m)[:, None, None], available.shape)
        item = np.broadcast_to(np.arange(n).reshape(shape), available.shape)
        flat = ((list_no * n + item) * served + slot)[keep]
        out[part] += np.bincount(flat, minlength=m * n * served).reshape(m, n, served) / draws

    def _epsilon_greedy_monte_carlo(self, seeds: npt.NDArray[np.uint64]) -> Values:
        """Epsilon-greedy's Monte Carlo marginals, laid out (list, item, draw) as Plackett-Luce's:
        per step, MMR's choice of each draw (its best objective, the first column among equals)
        gets ``1 - epsilon`` and every item not placed ``epsilon / remaining``.

        The objectives are replaced by keys that order them the same way and break ties by
        column: ``rank * n + (n - 1 - column)``, the rank among all the list's objective values
        (equal values, equal ranks). The keys are small integers, exact in float32, and every
        draw's best key is unique, so MMR's choice is where the key equals the draws' maximum.
        """
        n = self.width
        draws = MONTE_CARLO_DRAWS
        served = int(self.returned[0])
        steps = min(self.steps, served)
        drawn_steps = steps - 1 if steps == served else steps
        similarity = self.similarity_matrix()
        out = np.zeros((len(self.sizes), n, served))
        chunk = max(1, _DRAW_CELLS_PER_CHUNK // (draws * n))
        lambda_ = self.lambda_
        diagonal = np.arange(n)
        dtype = np.float32 if (n + 1) * n * n < 1 << 24 else np.float64
        placed_key = -1.0
        for first in range(0, len(self.sizes), chunk):
            part = slice(first, first + chunk)
            m = len(self.sizes[part])
            uniforms = _draw_uniforms(seeds[part], drawn_steps, draws, True)
            relevance = self.relevance[part]
            # values[l, 0, i]: item i's objective with nothing placed; values[l, 1 + j, i]: once j is
            values = np.concatenate(
                [
                    (lambda_ * relevance)[:, None, :],
                    lambda_ * relevance[:, None, :] - (1.0 - lambda_) * similarity[part],
                ],
                axis=1,
            ).reshape(m, -1)
            order = np.argsort(values, axis=1, kind="stable")
            ordered = np.take_along_axis(values, order, axis=1)
            dense = np.concatenate(
                [np.zeros((m, 1), dtype=np.int64), np.cumsum(ordered[:, 1:] != ordered[:, :-1], axis=1)],
                axis=1,
            )
            rank = np.empty_like(dense)
            np.put_along_axis(rank, order, dense, axis=1)
            keys = (rank.reshape(m, n + 1, n) * n + (n - 1 - diagonal)).astype(dtype)
            table = np.ascontiguousarray(keys[:, 1:].transpose(0, 2, 1))  # [l, i, j]: item i once j is placed
            table[:, diagonal, diagonal] = placed_key
            state = np.empty((m, n, draws), dtype=dtype)
            state[...] = keys[:, 0, :, None]
            greedy = np.empty(state.shape, dtype=bool)
            hot = np.empty_like(state)
            update = np.empty_like(state)
            placed = np.zeros((m, n))  # in how many draws each item is placed
            ones = np.ones(draws, dtype=dtype)
            upper = np.triu(np.ones((n, n), dtype=np.float32))  # running counts as a product
            for step in range(steps):
                np.equal(state, state.max(axis=1, keepdims=True), out=greedy)
                np.copyto(hot, greedy.view(np.uint8), casting="unsafe")
                remaining = n - step
                out[part, :, step] = (
                    self.epsilon / remaining * (1.0 - placed / draws)
                    + (1.0 - self.epsilon) * (hot @ ones) / draws
                )
                if step >= drawn_steps:
                    break
                u = uniforms[:, step]
                lists, draw = np.nonzero(u < self.epsilon)
                if len(lists):  # these draws take the k-th remaining item, k uniform
                    open_items = (state[lists, :, draw] >= 0).astype(np.float32)
                    share = u[lists, draw].astype(np.float64) / self.epsilon
                    k = np.minimum(np.floor(share * remaining), remaining - 1)
                    kth = np.argmax(open_items @ upper > k[:, None], axis=1)
                    hot[lists, :, draw] = 0.0
                    hot[lists, kth, draw] = 1.0
                placed += hot @ ones
                np.minimum(state, np.matmul(table, hot, out=update), out=state)
            if steps < served:  # the rest follow by score: the remaining columns in order
                self._by_score_tail(out, part, state >= 0, steps, served, axis=1)
        return out


def _draw_uniforms(
    seeds: npt.NDArray[np.uint64], steps: int, draws: int, single: bool
) -> npt.NDArray[np.float32] | Values:
    """``(len(seeds), steps, draws)`` uniforms for the Monte Carlo draws, from the lists' streams
    past :data:`_MONTE_CARLO_COUNTER`: multiples of ``2 ** -23`` below 1, two from each 64-bit
    value (``single``: float32), else multiples of ``2 ** -52`` (float64). One bit short of the
    type's precision, so that ``u * total`` rounds to less than ``total`` (the draw then always
    falls on an item of positive weight)."""
    cells = steps * draws
    if not single:
        z = _splitmix(seeds, _MONTE_CARLO_COUNTER + np.arange(cells, dtype=np.uint64))
        return ((z >> np.uint64(12)).astype(np.float64) * (1.0 / (1 << 52))).reshape(len(seeds), steps, draws)
    pairs = (cells + 1) // 2
    z = _splitmix(seeds, _MONTE_CARLO_COUNTER + np.arange(pairs, dtype=np.uint64))
    out = np.empty((len(seeds), 2 * pairs), dtype=np.float32)
    np.copyto(out[:, :pairs], z >> np.uint64(41), casting="unsafe")
    np.copyto(out[:, pairs:], (z >> np.uint64(9)) & np.uint64((1 << 23) - 1), casting="unsafe")
    out *= np.float32(1.0 / (1 << 23))
    return out[:, :cells].reshape(len(seeds), steps, draws)


def _inverse_cdf(probabilities: Values, available: npt.NDArray[np.bool_], uniforms: Values) -> Indices:
    """The column where each row's cumulative probability first exceeds its uniform (never a
    column of probability 0: a rounding shortfall goes to the last available column)."""
    cumulative = np.cumsum(probabilities, axis=1)
    pick = (cumulative <= (uniforms * cumulative[:, -1])[:, None]).sum(axis=1)
    width = available.shape[1]
    last = width - 1 - np.argmax((probabilities > 0)[:, ::-1], axis=1)
    return np.minimum(pick, last).astype(np.int64)


def _kth_available(available: npt.NDArray[np.bool_], uniforms: Values) -> Indices:
    """The ``floor(u * remaining)``-th available column of each row: a uniform remaining item."""
    remaining = available.sum(axis=1)
    k = np.minimum(np.floor(uniforms * remaining), np.maximum(remaining - 1, 0)).astype(np.int64)
    return np.argmax(np.cumsum(available, axis=1) > k[:, None], axis=1).astype(np.int64)


@dataclass(frozen=True)
class _Layers:
    """The subsets of ``n`` columns ordered by size (then by bit mask): ``masks`` (the bit mask of
    each row), ``sizes``, ``bits`` (``(2 ** n, n)`` membership), ``offsets`` (size ``k``'s rows
    are ``offsets[k]:offsets[k + 1]``), and per size ``k < n`` the ``flows`` into size ``k + 1``:
    for each of its subsets and each of its ``k + 1`` columns ``c``, the flat cell
    ``row(S - c) * n + c`` of a ``(2 ** n, n)`` table and the row ``row(S - c)``."""

    masks: Indices
    sizes: Indices
    bits: npt.NDArray[np.bool_]
    offsets: list[int]
    flows: list[tuple[Indices, Indices]]


@lru_cache(maxsize=16)
def _subset_layers(n: int) -> _Layers:
    """The subset tables of lists of ``n`` columns (cached: they depend on ``n`` only)."""
    masks = np.arange(1 << n, dtype=np.int64)
    sizes = np.bitwise_count(masks.astype(np.uint64)).astype(np.int64)
    order = np.argsort(sizes, kind="stable")
    masks, sizes = masks[order], sizes[order]
    row_of = np.empty(1 << n, dtype=np.int64)
    row_of[masks] = np.arange(1 << n)
    bits = ((masks[:, None] >> np.arange(n)) & 1).astype(bool)
    offsets = np.searchsorted(sizes, np.arange(n + 2)).tolist()
    flows = []
    for k in range(n):
        block = slice(offsets[k + 1], offsets[k + 2])
        columns = np.nonzero(bits[block])[1].reshape(-1, k + 1)  # each subset's columns, ascending
        into = row_of[masks[block][:, None] & ~(np.int64(1) << columns)]
        flows.append((into * n + columns, into))
    return _Layers(masks, sizes, bits, offsets, flows)


def _diversities(
    traits: ListTraits, orders: Sequence[npt.NDArray[np.int64]], depth: int
) -> tuple[list[float], list[float]]:
    """``diversity`` over the first ``depth`` slots and ``diversity_discounted`` over the first
    :data:`recctl.diversity.DISCOUNTED_DEPTH` of lists served in the given orders."""
    lists = len(orders)
    spread = np.zeros(lists)
    discounted = np.zeros(lists)
    lengths = np.array([len(order) for order in orders], dtype=np.int64)
    covered_all = np.minimum(lengths, depth)
    counted_all = np.maximum(covered_all, np.minimum(lengths, DISCOUNTED_DEPTH))
    for members in _by_size(np.maximum(counted_all, 1)):
        counted = int(counted_all[members].max())
        if counted < 2:
            continue
        starts = traits.starts[members]
        prefix = np.full((len(members), counted), -1, dtype=np.int64)
        for row, number in enumerate(members.tolist()):
            order = orders[number][:counted]
            prefix[row, : len(order)] = starts[row] + order
        candidates = _Candidates(traits, prefix)
        covered = covered_all[members]
        in_discount = np.minimum(lengths[members], DISCOUNTED_DEPTH)
        discount = 1.0 / np.log2(np.arange(counted) + 2.0)
        pairs = np.zeros(len(members))
        weighted = np.zeros(len(members))
        weights = np.zeros(len(members))
        for slot in range(1, counted):
            present = lengths[members] > slot
            row_similarity = candidates.similarity_to(np.where(present, prefix[:, slot], -1))[:, :slot]
            dissimilar = 1.0 - row_similarity
            pairs += np.where(slot < covered, _row_sums(dissimilar), 0.0)
            in_range = slot < in_discount
            weighted += np.where(in_range, discount[slot] * _row_sums(dissimilar * discount[:slot]), 0.0)
            weights += np.where(in_range, discount[slot] * _row_sums(discount[None, :slot])[0], 0.0)
        pair_count = covered * (covered - 1) / 2
        spread[members] = np.where(pair_count > 0, pairs / np.where(pair_count > 0, pair_count, 1.0), 0.0)
        discounted[members] = np.where(weights > 0, weighted / np.where(weights > 0, weights, 1.0), 0.0)
    return spread.tolist(), discounted.tolist()


def team_draft(
    first: PolicyLists,
    second: PolicyLists,
    seeds: Sequence[int],
    *,
    traits: ListTraits | None = None,
    depth: int = DIVERSIFY_DEPTH,
) -> PolicyLists:
    """Team-draft interleaving of two policies' lists of the same items (Radlinski et al. 2008,
    Chapelle et al. 2012): per pair of slots a coin from the list's stream (``seeds``) decides
    which team picks first, and each team adds its highest-ranked item not yet in the list; team
    "A" is ``first``. A team with nothing left to add lets the other pick; the list is as long as
    the shorter of the two. With ``traits`` (the lists' items), the diversities are computed, else
    they are NaN. Propensities are not given (the list is a function of the coins, several coin
    sequences can give the same list).
    """
    lists = len(first.orders)
    if len(second.orders) != lists or len(seeds) != lists:
        raise ValueError(f"team_draft: {lists} and {len(second.orders)} lists, {len(seeds)} seeds")
    length = np.array([min(len(a), len(b)) for a, b in zip(first.orders, second.orders, strict=True)])
    longest = int(length.max()) if lists else 0
    universe = max(
        (int(order.max()) + 1 for order in [*first.orders, *second.orders] if len(order)), default=1
    )

    def padded(orders: list[Indices]) -> tuple[Indices, Indices]:
        table = np.full((lists, max(longest, 1)), -1, dtype=np.int64)
        for number, order in enumerate(orders):
            table[number, : min(len(order), longest)] = order[:longest]
        return table, np.array([min(len(order), longest) for order in orders], dtype=np.int64)

    table_a, length_a = padded(first.orders)
    table_b, length_b = padded(second.orders)
    coins = (
        _uniforms(_seed_array(seeds), _TEAM_COUNTER + np.arange((longest + 1) // 2, dtype=np.uint64)) < 0.5
    )
    taken = np.zeros((lists, universe + 1), dtype=bool)  # the last column: padding (-1)
    taken[:, universe] = True
    rows = np.arange(lists)
    pointer_a = np.zeros(lists, dtype=np.int64)
    pointer_b = np.zeros(lists, dtype=np.int64)
    served = np.full((lists, max(longest, 1)), -1, dtype=np.int64)
    team_a = np.zeros((lists, max(longest, 1)), dtype=bool)
    for slot in range(longest):
        for table, length_of, pointer in ((table_a, length_a, pointer_a), (table_b, length_b, pointer_b)):
            while True:  # skip what the other team took: each list's pointer only moves forward
                at = np.minimum(pointer, table.shape[1] - 1)
                stuck = (pointer < length_of) & taken[rows, table[rows, at]]
                if not stuck.any():
                    break
                pointer += stuck
        has_a = pointer_a < length_a
        has_b = pointer_b < length_b
        a_turn = coins[:, slot // 2] == (slot % 2 == 0)
        use_a = has_a & (a_turn | ~has_b)
        use_b = ~use_a & has_b
        active = slot < length
        item = np.where(
            use_a,
            table_a[rows, np.minimum(pointer_a, table_a.shape[1] - 1)],
            table_b[rows, np.minimum(pointer_b, table_b.shape[1] - 1)],
        )
        item = np.where(active & (use_a | use_b), item, -1)
        served[:, slot] = item
        team_a[:, slot] = use_a
        taken[rows, np.where(item >= 0, item, universe)] = True
        pointer_a += use_a & active
        pointer_b += use_b & active
    orders = [served[number, : int(length[number])].copy() for number in range(lists)]
    teams = [
        ["A" if a else "B" for a in team_a[number, : int(length[number])].tolist()] for number in range(lists)
    ]
    if traits is not None:
        diversity, discounted = _diversities(traits, orders, depth)
    else:
        diversity, discounted = [float("nan")] * lists, [float("nan")] * lists
    return PolicyLists(orders, None, None, [None] * lists, teams, diversity, discounted)
