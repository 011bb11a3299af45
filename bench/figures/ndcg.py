"""Figure 9: ``recctl.metrics.ndcg`` at 10 over 100,000 query groups of 5 to 15 items; absolute."""

from __future__ import annotations

import time

import numpy as np

from bench.context import Context
from bench.measure import Result, log

NAME = "evaluate NDCG@10 over 100k groups"
GROUPS = 100_000
REPEATS = 7


def run(context: Context) -> Result:
    from recctl.metrics import ndcg

    rng = np.random.default_rng(11)
    sizes = rng.integers(5, 16, size=GROUPS)
    rows = int(sizes.sum())
    grades = rng.choice(5, size=rows, p=[0.6, 0.2, 0.1, 0.06, 0.04]).astype(np.int32)
    scores = rng.random(rows)
    ndcg(grades, scores, sizes, 10)  # warm-up
    result = Result(NAME, "s", 1.0, "value_max")
    for _ in range(REPEATS):
        start = time.perf_counter()
        report = ndcg(grades, scores, sizes, 10)
        result.samples.append(time.perf_counter() - start)
    result.details = {"groups": GROUPS, "rows": rows, "ndcg@10": report.mean}
    log(f"  {(result.value or 0) * 1000:.0f} ms for {rows:,} rows")
    return result
