"""MMR choosing 10 of 1,000 candidates with the MMR that ``recctl rank`` calls
(``recctl.diversity.mmr_many``, traits built beforehand as rank builds them once per chunk),
against a brute-force MMR in numpy: the full 1,000 x 1,000 similarity matrix, then per step the
max similarity over the chosen columns. Both must pick the same items, in the same order."""

from __future__ import annotations

import json
import time
from itertools import islice
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.context import Context
from bench.measure import Result, log, median
from recctl.defaults import DEFAULT_LAMBDA

NAME = "MMR top-10 of 1,000 candidates (rank's mmr_many)"
CANDIDATES = 1_000
TOP_K = 10
LAMBDA = DEFAULT_LAMBDA
REPEATS = 200
EXACT = {"category": 0.35, "cloud_provider": 0.15, "priority": 0.10, "implementation_effort": 0.10}
SETS = {"services": 0.15, "tags": 0.15}


def prepare(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Per field: integer codes (exact fields, -1 missing) or a 0/1 membership matrix (sets),
    written from the definition (none of recctl's code)."""
    prepared: dict[str, Any] = {}
    for name in EXACT:
        lookup: dict[str, int] = {}
        prepared[name] = np.array(
            [-1 if item.get(name) is None else lookup.setdefault(item[name], len(lookup)) for item in items]
        )
    for name in SETS:
        sets = [set(item.get(name) or []) for item in items]
        vocabulary = {value: i for i, value in enumerate(sorted(set().union(*sets)))}
        members = np.zeros((len(items), max(len(vocabulary), 1)))
        for row, values in enumerate(sets):
            members[row, [vocabulary[v] for v in values]] = 1.0
        prepared[name] = members
    return prepared


def brute_force_mmr(scores: npt.NDArray[np.float64], prepared: dict[str, Any]) -> list[int]:
    """The whole n x n similarity, then greedy MMR over it."""
    similarity = np.zeros((len(scores), len(scores)))
    for name, weight in EXACT.items():
        codes = prepared[name]
        similarity += weight * ((codes[:, None] == codes[None, :]) & (codes[:, None] >= 0))
    for name, weight in SETS.items():
        members = prepared[name]
        overlap = members @ members.T
        sizes = members.sum(axis=1)
        union = sizes[:, None] + sizes[None, :] - overlap
        similarity += weight * np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)
    relevance = (scores - scores.min()) / (scores.max() - scores.min())
    chosen: list[int] = []
    for _ in range(TOP_K):
        redundancy = similarity[:, chosen].max(axis=1) if chosen else np.zeros(len(scores))
        objective = LAMBDA * relevance - (1 - LAMBDA) * redundancy
        objective[chosen] = -np.inf
        chosen.append(int(np.argmax(objective)))
    return chosen


def _timed(function: Any, repeats: int) -> list[float]:
    function()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return samples


def run(context: Context) -> Result:
    import polars as pl

    from recctl.diversity import EXACT_FIELDS, SET_FIELDS, list_traits_of, mmr_many

    with open(context.workspace.sample_file("recommendations"), "rb") as handle:
        items = [json.loads(line) for line in islice(handle, CANDIDATES)]
    schema = {name: pl.String for name in EXACT_FIELDS} | {name: pl.List(pl.String) for name in SET_FIELDS}
    frame = pl.DataFrame([{name: item.get(name) for name in schema} for item in items], schema=schema)
    scores = np.random.default_rng(7).random(CANDIDATES)

    def build() -> Any:
        return list_traits_of(frame, [CANDIDATES])

    def shipped() -> list[int]:
        return mmr_many(scores, traits, lambda_=LAMBDA, top_k=TOP_K).orders[0]

    traits = build()
    prepared = prepare(items)
    picked, expected = shipped(), brute_force_mmr(scores, prepared)
    if picked != expected:
        raise RuntimeError(f"mmr_many picked {picked}, brute force {expected}")
    result = Result(NAME, "ms", 5.0, "value_max", baseline_name="brute-force numpy MMR")
    result.samples = [s * 1000 for s in _timed(shipped, REPEATS)]
    result.baseline_samples = [s * 1000 for s in _timed(lambda: brute_force_mmr(scores, prepared), REPEATS)]
    build_ms = median(_timed(build, 20)) * 1000
    result.details = {"repeats": REPEATS, "list_traits_build_ms": build_ms, "same_picks": True}
    result.note = f"list_traits_of for 1,000 items: {build_ms:.1f} ms more"
    log(f"  mmr_many {result.value:.2f} ms, brute force {result.baseline:.2f} ms, traits {build_ms:.1f} ms")
    return result
