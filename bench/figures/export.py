"""Figure 3: ``recctl export`` of the whole sample (explicit window) to a training set; absolute.
Then its peak memory against an export of five times as many interactions (the sample five times
over, under other ids): a bounded-memory export does not grow with the window."""

from __future__ import annotations

import json
from pathlib import Path

from bench.context import Context
from bench.data import recctl
from bench.measure import Result, log, median, run_child

NAME = "export 1M interactions -> training set"
SCALE_NAME = "export 5M interactions: peak RSS against 1M"
COPIES = 5


def run(context: Context) -> list[Result]:
    workspace = context.workspace
    store = workspace.ensure_store()
    result = Result(NAME, "s", 10.0, "value_max")
    for attempt in range(context.runs):
        out = workspace.scratch("export") / "training-set"
        mine = run_child(recctl("--store", store, "-q", "export", *workspace.window, "--out", out))
        result.add(mine)
        log(f"  run {attempt + 1}: {mine.seconds:.1f} s ({mine.peak_rss_mb:.0f} MB)")
        workspace.adopt(out, workspace.training_set)
    manifest = json.loads((workspace.training_set / "manifest.json").read_text())
    result.details = {
        key: manifest[key] for key in ("rows", "groups", "interactions", "buckets") if key in manifest
    }

    bigger = _copies_of(store, workspace.run_dir / "store-x5")
    scale = Result(SCALE_NAME, "MB", 1.2, "ratio_max", baseline_name="export 1M: peak RSS")
    seconds = []
    for attempt in range(max(1, context.runs - 1)):
        out = workspace.scratch("export-x5") / "training-set"
        big = run_child(recctl("--store", bigger, "-q", "export", *workspace.window, "--out", out))
        seconds.append(big.seconds)
        scale.samples.append(big.peak_rss_mb)
        log(f"  5M run {attempt + 1}: {big.seconds:.1f} s ({big.peak_rss_mb:.0f} MB)")
    scale.baseline_samples.append(result.peak_rss_mb or 0.0)
    scale.peak_rss_mb, scale.baseline_peak_rss_mb = max(scale.samples), result.peak_rss_mb
    big_manifest = json.loads((out / "manifest.json").read_text())
    scale.details = {
        "seconds_5m": median(seconds),
        "seconds_1m": result.value,
        "rows_5m": big_manifest["rows"],
        "interactions_5m": big_manifest["interactions"],
        "buckets_5m": big_manifest["buckets"],
        "buckets_1m": manifest.get("buckets"),
    }
    return [result, scale]


def _copies_of(store: Path, target: Path) -> Path:
    """A file store holding ``COPIES`` copies of ``store``'s records, each under its own ids (every
    id gets ``-x<n>``), written through recctl's own store writes; made once per run."""
    if (target / "interactions").exists():
        return target
    import polars as pl

    from recctl.stores import open_store

    log(f"writing {COPIES} renamed copies of the sample into {target}")
    ids = ("event_id", "recommendation_id", "assessment_id", "user_id", "request_id", "session_id")
    source, copy = open_store(str(store)), open_store(str(target), create=True)
    try:
        for kind in ("assessments", "recommendations", "interactions"):
            frame = source.read(kind)
            for number in range(COPIES):
                renamed = frame.with_columns(
                    pl.col(name) + f"-x{number}" for name in ids if name in frame.columns
                )
                copy.write(kind, renamed)
    finally:
        source.close()
        copy.close()
    return target
