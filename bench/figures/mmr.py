"""Figure 8: ``recctl.diversity.mmr`` choosing 10 of 1,000 candidates (traits built beforehand, as
rank builds them once per batch), against a brute-force MMR in numpy: the full 1,000 x 1,000
similarity matrix, then per step the max similarity over the chosen columns. Both must pick the
same items, in the same order."""

from __future__ import annotations

import json
import time
from itertools import islice
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.context import Context
from bench.measure import Result, log, median

NAME = "MMR top-10 of 1,000 candidates"
CANDIDATES = 1_000
TOP_K = 10
LAMBDA = 0.7
REPEATS = 200


def brute_force_mmr(relevance: npt.NDArray[np.float64], traits: Any, lambda_: float, top_k: int) -> list[int]:
    from recctl.diversity import EXACT_FIELDS, SET_FIELDS, WEIGHTS

    similarity = np.zeros((len(relevance), len(relevance)))
    for name in EXACT_FIELDS:
        codes = traits.codes[name]
        similarity += WEIGHTS[name] * ((codes[:, None] == codes[None, :]) & (codes[:, None] >= 0))
    for name in SET_FIELDS:
        members, sizes = traits.members[name], traits.sizes[name]
        overlap = members @ members.T
        union = sizes[:, None] + sizes[None, :] - overlap
        similarity += WEIGHTS[name] * np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)
    chosen: list[int] = []
    for _ in range(top_k):
        redundancy = similarity[:, chosen].max(axis=1) if chosen else np.zeros(len(relevance))
        objective = lambda_ * relevance - (1 - lambda_) * redundancy
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
    from recctl.diversity import EXACT_FIELDS, SET_FIELDS, ItemTraits, mmr

    with open(context.workspace.sample_file("recommendations"), "rb") as handle:
        items = [json.loads(line) for line in islice(handle, CANDIDATES)]

    def build() -> ItemTraits:
        return ItemTraits.from_values(
            {name: [item.get(name) for item in items] for name in EXACT_FIELDS},
            {name: [item.get(name) for item in items] for name in SET_FIELDS},
        )

    traits = build()
    relevance = np.random.default_rng(7).random(CANDIDATES)
    picked = mmr(relevance, traits, lambda_=LAMBDA, top_k=TOP_K)
    expected = brute_force_mmr(relevance, traits, LAMBDA, TOP_K)
    if picked != expected:
        raise RuntimeError(f"mmr picked {picked}, brute force {expected}")
    result = Result(NAME, "ms", 5.0, "value_max", baseline_name="brute-force numpy MMR")
    result.samples = [
        s * 1000 for s in _timed(lambda: mmr(relevance, traits, lambda_=LAMBDA, top_k=TOP_K), REPEATS)
    ]
    result.baseline_samples = [
        s * 1000 for s in _timed(lambda: brute_force_mmr(relevance, traits, LAMBDA, TOP_K), REPEATS)
    ]
    build_ms = median(_timed(build, 20)) * 1000
    result.details = {"repeats": REPEATS, "item_traits_build_ms": build_ms, "same_picks": True}
    result.note = f"ItemTraits for 1,000 items: {build_ms:.1f} ms more"
    log(f"  mmr {result.value:.2f} ms, brute force {result.baseline:.2f} ms, traits {build_ms:.1f} ms")
    return result
