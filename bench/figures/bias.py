"""Figure: ``recctl bias`` on about 100k randomised served lists (about 1M shown items) and their
interactions, from a file store; its target is an absolute time (<= 60 s), as no other tool does it.

The lists are simulated here (``recctl sample --explore plackett-luce``, 40k assessments: about
2.5 lists each, with exact logged propensities) and ingested before the clock starts; the figure
is the command's own time: reading both logs, linking interactions to lists, the estimate and its
bootstrap intervals.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.context import Context
from bench.data import SAMPLE_DAYS, SAMPLE_START, recctl
from bench.measure import Result, log, run_child

NAME = "recctl bias on ~100k randomised lists (~1M items), file store"
ASSESSMENTS = 40_000
SEED = 15
KINDS = ("assessments", "recommendations", "impressions", "interactions")


def explored_store(root: Path) -> tuple[Path, dict[str, int]]:
    """The explored sample's store (simulated and ingested unless an earlier run made it)."""
    from recctl.sample import generate_sample

    sample_dir, store = (
        root / f"explored-s{SEED}-{ASSESSMENTS}",
        root / f"explored-store-s{SEED}-{ASSESSMENTS}",
    )
    marker = store / "bench-summary.json"
    if marker.exists():
        log(f"reusing the explored store {store}")
        return store, json.loads(marker.read_text())
    log(f"simulating {ASSESSMENTS:,} assessments with randomised lists in {sample_dir}")
    summary = generate_sample(
        sample_dir,
        assessments=ASSESSMENTS,
        seed=SEED,
        start=SAMPLE_START,
        days=SAMPLE_DAYS,
        explore="plackett-luce",
    )
    for kind in KINDS:
        log(f"ingesting the explored {kind}")
        run_child(recctl("--store", store, "-q", "ingest", kind, sample_dir / f"{kind}.ndjson"))
    counts = {"lists": summary.impressions, "interactions": summary.interactions}
    marker.write_text(json.dumps(counts) + "\n")
    return store, counts


def run(context: Context) -> Result:
    store, counts = explored_store(context.workspace.root)
    result = Result(NAME, "s", 60.0, "value_max")
    estimate: dict[str, object] = {}
    for attempt in range(context.runs):
        mine = run_child(
            recctl("--store", store, "-q", "bias", *context.workspace.window, "--json"), capture=True
        )
        estimate = json.loads(mine.stdout)
        result.add(mine)
        log(f"  run {attempt + 1}: recctl bias {mine.seconds:.1f} s ({mine.peak_rss_mb:.0f} MB)")
    result.details = {**counts, "method": estimate.get("method")}
    result.note = f"{counts['lists']:,} lists, method {estimate.get('method')}"
    return result
