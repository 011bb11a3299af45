"""Figure: ``recctl ingest impressions`` of 100k served lists (about 1M items) into a file store,
against polars ``read_ndjson`` + ``write_parquet`` of the same file, and its peak RSS at a quarter
of the input (it should not grow with the input: lists are read and written a chunk at a time).

The input is made here, deterministically (a seeded generator): lists of 5 to 15 items (10 on
average) over 60 days, logged by a randomised policy, with propensities on every item."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from bench.context import Context
from bench.data import SAMPLE_DAYS, SAMPLE_START, recctl
from bench.measure import Result, log, run_child

NAME = "ingest 100k impressions (about 1M items) -> file store"
LISTS = 100_000
SMALL_LISTS = 25_000
SEED = 14


def served_lists(path: Path, lists: int, seed: int = SEED) -> Path:
    """``lists`` impression records as NDJSON at ``path`` (made once per size and seed)."""
    import numpy as np
    import polars as pl

    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    sizes = rng.integers(5, 16, size=lists)
    list_of_item = np.repeat(np.arange(lists), sizes)
    starts = np.cumsum(sizes) - sizes
    position = np.arange(len(list_of_item)) - np.repeat(starts, sizes)
    assessment = rng.integers(0, lists // 5, size=lists)
    seconds = rng.integers(0, SAMPLE_DAYS * 86_400, size=lists)
    propensity = rng.uniform(0.01, 1.0, size=len(list_of_item))
    items = pl.DataFrame(
        {
            "list": list_of_item,
            "recommendation_id": pl.Series(np.repeat(assessment, sizes) * 20 + position).cast(pl.String),
            "position": position,
            "propensity": propensity.round(6),
            "prefix_propensity": (propensity * 0.9).round(6),
        }
    ).with_columns(pl.format("rec-{}", "recommendation_id").alias("recommendation_id"))
    nested = items.group_by("list", maintain_order=True).agg(
        pl.struct("recommendation_id", "position", "propensity", "prefix_propensity").alias("items")
    )
    moments = pl.Series([SAMPLE_START.replace(tzinfo=None)] * lists) + pl.Series(
        seconds * 1000, dtype=pl.Duration("ms")
    )
    frame = pl.DataFrame(
        {
            "request_id": [f"q-{i:07d}" for i in range(lists)],
            "timestamp": moments.dt.strftime("%Y-%m-%dT%H:%M:%S.%3fZ"),
            "assessment_id": pl.Series(assessment).cast(pl.String).str.pad_start(6, "0"),
            "user_id": pl.Series(assessment % 7919).cast(pl.String),
            "model_version": ["m-2026-11"] * lists,
            "policy": ["plackett-luce"] * lists,
        }
    ).with_columns(pl.format("a-{}", "assessment_id").alias("assessment_id"), nested["items"])
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    frame.write_ndjson(temporary)
    temporary.rename(path)
    return path


def run(context: Context) -> Result:
    workspace = context.workspace
    inputs = workspace.root / f"impressions-s{SEED}"
    source = served_lists(inputs / f"impressions-{LISTS}.ndjson", LISTS)
    small = served_lists(inputs / f"impressions-{SMALL_LISTS}.ndjson", SMALL_LISTS)
    result = Result(NAME, "s", 2.0, "ratio_max", baseline_name="polars read_ndjson + write_parquet")
    summary: dict[str, int] = {}
    for attempt in range(context.runs):
        scratch = workspace.scratch("ingest-impressions")
        mine = run_child(
            recctl("--store", scratch / "store", "-q", "ingest", "impressions", source, "--json"),
            capture=True,
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
    scratch = workspace.scratch("ingest-impressions")
    smaller = run_child(recctl("--store", scratch / "store", "-q", "ingest", "impressions", small))
    shutil.rmtree(scratch)
    result.details = {
        "lists_read": summary.get("read"),
        "lists_inserted": summary.get("inserted"),
        "input_mb": round(source.stat().st_size / 1e6, 1),
        f"recctl_peak_rss_mb_{SMALL_LISTS // 1000}k_lists": round(smaller.peak_rss_mb),
        f"recctl_seconds_{SMALL_LISTS // 1000}k_lists": round(smaller.seconds, 2),
    }
    result.note = (
        f"peak RSS {result.peak_rss_mb:.0f} MB for {LISTS // 1000}k lists vs {smaller.peak_rss_mb:.0f} MB "
        f"for {SMALL_LISTS // 1000}k"
    )
    return result
