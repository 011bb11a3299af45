"""Figures 7b and 7c: ``recctl rank --ndjson`` warm throughput while exploring, batches of 20.

Measured as figure 7 (the difference of a long and a one-line run), with ``--explore plackett-luce``
(every item gets its exact prefix propensity) and with ``--propensities marginal`` added (lists of
20 are above the exact cap, so each list's marginals come from 2,000 simulated lists).
"""

from __future__ import annotations

from bench.context import Context
from bench.figures.rank_warm import throughput
from bench.measure import Result

NAME = "recctl rank --ndjson --explore plackett-luce, batches of 20"
MARGINAL_NAME = "rank --ndjson --explore plackett-luce --propensities marginal, batches of 20"
MARGINAL_LINES = 1_000
"""Fewer lines than figure 7: each takes about 2,000 simulated lists."""


def run(context: Context) -> list[Result]:
    explore = ("--explore", "plackett-luce", "--seed", "1")
    return [
        throughput(context, NAME, 1500.0, explore),
        throughput(
            context,
            MARGINAL_NAME,
            200.0,
            (*explore, "--propensities", "marginal"),
            lines=min(MARGINAL_LINES, context.rank_lines),
        ),
    ]
