"""Figure 1: ``recctl ingest interactions`` of the whole sample into a file store, against polars
``read_ndjson`` + ``write_parquet`` of the same file. Both are processes of their own; fresh output
every run; the two sides alternate so that machine noise falls on both."""

from __future__ import annotations

import json
import shutil
import sys

from bench.context import Context
from bench.data import recctl
from bench.measure import Result, log, run_child

NAME = "ingest 1M interactions (NDJSON) -> file store"
#: A smaller prefix ingested once: peak RSS should depend on the write batch, not the file.
SMALL_LINES = 250_000


def run(context: Context) -> Result:
    workspace = context.workspace
    source = workspace.sample_file("interactions")
    result = Result(NAME, "s", 2.0, "ratio_max", baseline_name="polars read_ndjson + write_parquet")
    for attempt in range(context.runs):
        scratch = workspace.scratch("ingest")
        store = scratch / "store"
        mine = run_child(
            recctl("--store", store, "-q", "ingest", "interactions", source, "--json"), capture=True
        )
        summary = json.loads(mine.stdout)
        theirs = run_child(
            [sys.executable, "-m", "bench.baselines", "polars-ingest", source, scratch / "baseline.parquet"]
        )
        result.add(mine, theirs)
        log(
            f"  run {attempt + 1}: recctl {mine.seconds:.1f} s ({mine.peak_rss_mb:.0f} MB), "
            f"polars {theirs.seconds:.1f} s ({theirs.peak_rss_mb:.0f} MB)"
        )
        workspace.adopt(store, workspace.store)  # the first run's store serves export and stats
    small = workspace.interactions_prefix(SMALL_LINES)
    scratch = workspace.scratch("ingest")
    smaller = run_child(recctl("--store", scratch / "store", "-q", "ingest", "interactions", small))
    shutil.rmtree(scratch)
    result.details = {
        "rows_read": summary.get("read"),
        "rows_inserted": summary.get("inserted"),
        "input_mb": round(source.stat().st_size / 1e6, 1),
        f"recctl_peak_rss_mb_{SMALL_LINES // 1000}k_rows": round(smaller.peak_rss_mb),
        f"recctl_seconds_{SMALL_LINES // 1000}k_rows": round(smaller.seconds, 2),
    }
    result.note = (
        f"peak RSS {result.peak_rss_mb:.0f} MB for 1M rows vs {smaller.peak_rss_mb:.0f} MB for "
        f"{SMALL_LINES // 1000}k rows"
    )
    return result
