"""Plackett-Luce lists and their propensities: the probabilities a randomised ranker logs.

A Plackett-Luce policy fills slot 0, 1, ... in turn, drawing each from the items not yet placed
with probability proportional to ``exp(logit)`` (``logit = score / temperature``). For a list
``pi`` of ``n`` items with weights ``w = exp(logit)``:

* the probability of the choice at slot ``j`` is ``w[pi_j] / sum_{k >= j} w[pi_k]``;
* the **prefix propensity** of slot ``j`` is the product of those choice probabilities for slots
  ``0..j``: the probability that the policy serves exactly this list down to slot ``j``;
* the **marginal propensity** of item ``i`` at position ``j`` is ``P(pi_j = i)``, summed over every
  list the policy can serve. It is computed exactly by dynamic programming over the subsets of
  items already placed (``2 ** n`` states, so up to a size cap), and estimated by Monte Carlo
  above it.

Every function works on many lists of the same size at once: ``logits`` is an ``(m, n)`` array
(``m`` lists of ``n`` items each); callers with lists of several sizes group them by size.
Sampling uses the Gumbel trick: sorting ``logit + Gumbel noise`` in decreasing order draws an
exact Plackett-Luce list.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = [
    "DEFAULT_EXACT_UP_TO",
    "MONTE_CARLO_DRAWS",
    "marginal_method",
    "marginal_propensities",
    "plackett_luce_lists",
    "prefix_propensities",
    "slot_probabilities",
    "temperature_logits",
]

DEFAULT_EXACT_UP_TO = 12
"""Lists up to this many items get exact marginals (``2 ** n`` subset states); longer ones Monte Carlo."""
MONTE_CARLO_DRAWS = 2000
"""Lists drawn per list to estimate the marginals of a list longer than the exact cap."""
#: Largest number of subset states (lists x 2 ** n) held at once by the exact marginals: 32 MB of float64.
_STATES_PER_CHUNK = 1 << 22
#: Largest number of drawn items (lists x draws x n) held at once by the Monte Carlo marginals.
_DRAWS_PER_CHUNK = 1 << 22


def temperature_logits(scores: np.ndarray, temperature: float) -> np.ndarray:
    """``scores / temperature``: the logits of softmax(scores / temperature).

    Raises
    ------
    ValueError
        If ``temperature`` is not a finite number > 0.
    """
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
    return np.asarray(scores, dtype=np.float64) / temperature


def plackett_luce_lists(rng: np.random.Generator, logits: np.ndarray) -> np.ndarray:
    """Draw one Plackett-Luce list per row of ``logits``.

    Parameters
    ----------
    rng : numpy.random.Generator
        The random stream.
    logits : numpy.ndarray
        ``(m, n)``: row ``r`` holds the logits of list ``r``'s ``n`` items.

    Returns
    -------
    numpy.ndarray
        ``(m, n)`` int64: ``lists[r, j]`` is the item (column of ``logits``) served at slot ``j``.
        Ties in the perturbed logits (probability zero) go to the lower item index.

    Examples
    --------
    >>> lists = plackett_luce_lists(np.random.default_rng(0), np.array([[5.0, 0.0, -5.0]] * 4))
    >>> sorted(lists[0].tolist())
    [0, 1, 2]
    """
    logits = _as_lists(logits)
    perturbed = logits + rng.gumbel(size=logits.shape)
    return np.argsort(-perturbed, axis=1, kind="stable")


def slot_probabilities(logits: np.ndarray, lists: np.ndarray) -> np.ndarray:
    """The probability of each slot's choice given the slots before it.

    ``out[r, j] = w[lists[r, j]] / sum_{k >= j} w[lists[r, k]]`` with ``w = exp(logits[r])``,
    computed in log space (a reversed cumulative log-sum-exp), so large logits do not overflow.
    The last slot's choice is always 1.
    """
    logits = _as_lists(logits)
    ordered = np.take_along_axis(logits, np.asarray(lists, dtype=np.int64), axis=1)
    remaining = np.logaddexp.accumulate(ordered[:, ::-1], axis=1)[:, ::-1]
    return np.exp(ordered - remaining)


def prefix_propensities(logits: np.ndarray, lists: np.ndarray) -> np.ndarray:
    """The exact probability of each list down to each slot: the running product of the choices.

    ``out[r, j] = prod_{k <= j} slot_probabilities(logits, lists)[r, k]``; non-increasing along a
    row, and ``out[r, n - 1]`` is the probability of the whole list.

    Examples
    --------
    >>> prefix_propensities(np.zeros((1, 3)), np.array([[2, 0, 1]])).round(4).tolist()
    [[0.3333, 0.1667, 0.1667]]
    """
    logits = _as_lists(logits)
    ordered = np.take_along_axis(logits, np.asarray(lists, dtype=np.int64), axis=1)
    remaining = np.logaddexp.accumulate(ordered[:, ::-1], axis=1)[:, ::-1]
    return np.exp(np.cumsum(ordered - remaining, axis=1))


def marginal_method(size: int, exact_up_to: int = DEFAULT_EXACT_UP_TO) -> str:
    """How :func:`marginal_propensities` computes the marginals of lists of ``size`` items:
    ``"exact"`` or ``"monte-carlo"``."""
    return "exact" if size <= exact_up_to else "monte-carlo"


def marginal_propensities(
    logits: np.ndarray,
    *,
    exact_up_to: int = DEFAULT_EXACT_UP_TO,
    draws: int = MONTE_CARLO_DRAWS,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """The probability that the Plackett-Luce policy serves each item at each position.

    Parameters
    ----------
    logits : numpy.ndarray
        ``(m, n)``: the logits of ``m`` lists of ``n`` items.
    exact_up_to : int
        Lists of at most this many items are solved exactly (dynamic programming over the
        ``2 ** n`` subsets of placed items, in chunks of lists that bound memory to about 32 MB);
        longer lists are estimated from ``draws`` Plackett-Luce lists each.
    draws : int
        Monte Carlo draws per list, >= 2000 (only used above ``exact_up_to``).
    rng : numpy.random.Generator, optional
        The random stream for Monte Carlo; required when it is used.

    Returns
    -------
    numpy.ndarray
        ``(m, n, n)``: ``out[r, i, j] = P(item i at position j)`` for list ``r``. Every row and
        every column of ``out[r]`` sums to 1. Exact marginals of finite logits are > 0; a Monte
        Carlo estimate is 0 for a placement none of the draws made.

    Raises
    ------
    ValueError
        If ``draws < 2000``, or Monte Carlo is needed and no ``rng`` is given.

    Examples
    --------
    >>> marginal_propensities(np.log([[2.0, 1.0]])).round(4).tolist()
    [[[0.6667, 0.3333], [0.3333, 0.6667]]]
    """
    logits = _as_lists(logits)
    n = logits.shape[1]
    if n <= exact_up_to:
        return _exact_marginals(logits)
    if draws < MONTE_CARLO_DRAWS:
        raise ValueError(f"draws must be >= {MONTE_CARLO_DRAWS}, got {draws}")
    if rng is None:
        raise ValueError(f"lists of {n} items need Monte Carlo marginals (above {exact_up_to}): pass rng")
    return _monte_carlo_marginals(rng, logits, draws)


def _as_lists(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must be an (m, n) array of m lists, got shape {logits.shape}")
    return logits


@lru_cache(maxsize=32)
def _subset_layers(n: int) -> tuple[np.ndarray, list[list[tuple[np.ndarray, np.ndarray]]]]:
    """The bits of every subset of ``n`` items, and per size ``k < n`` and item ``i``: the subsets
    of size ``k`` without ``i`` and the same subsets with ``i`` added."""
    masks = np.arange(1 << n, dtype=np.int64)
    bits = ((masks[:, None] >> np.arange(n)) & 1).astype(bool)  # (2^n, n)
    size = bits.sum(axis=1)
    layers = []
    for k in range(n):
        of_size = masks[size == k]
        per_item = []
        for item in range(n):
            without = of_size[~bits[of_size, item]]
            per_item.append((without, without | (1 << item)))
        layers.append(per_item)
    return bits, layers


def _exact_marginals(logits: np.ndarray) -> np.ndarray:
    """Dynamic programming over subsets: ``reach[S]`` is the probability that the first ``|S|``
    slots hold exactly the items of ``S``; placing item ``i`` next has probability
    ``w_i / w(not S)``, which adds to ``reach[S + i]`` and to ``P(i at position |S|)``."""
    m, n = logits.shape
    marginals = np.zeros((m, n, n))
    if m == 0 or n == 0:
        return marginals
    bits, layers = _subset_layers(n)
    chunk = max(1, _STATES_PER_CHUNK >> n)
    for first in range(0, m, chunk):
        part = logits[first : first + chunk]
        weights = np.exp(part - part.max(axis=1, keepdims=True))  # (c, n), max weight 1
        # The weight not yet placed, summed directly over each subset's complement (no cancellation).
        unplaced = (~bits).astype(np.float64) @ weights.T  # (2^n, c)
        reach = np.zeros((1 << n, len(part)))
        reach[0] = 1.0
        for k, per_item in enumerate(layers):
            for item, (without, with_item) in enumerate(per_item):
                step = reach[without] * (weights[:, item] / unplaced[without])
                marginals[first : first + chunk, item, k] = step.sum(axis=0)
                reach[with_item] += step
    return marginals


def _monte_carlo_marginals(rng: np.random.Generator, logits: np.ndarray, draws: int) -> np.ndarray:
    m, n = logits.shape
    counts = np.zeros((m, n, n))
    chunk = max(1, _DRAWS_PER_CHUNK // (draws * n))
    for first in range(0, m, chunk):
        part = logits[first : first + chunk]
        c = len(part)
        lists = plackett_luce_lists(rng, np.repeat(part, draws, axis=0))  # (c * draws, n)
        list_no = np.repeat(np.arange(c), draws)[:, None]
        flat = (list_no * n + lists) * n + np.arange(n)  # index of (list, item, position)
        counts[first : first + c] = np.bincount(flat.ravel(), minlength=c * n * n).reshape(c, n, n)
    return counts / draws
