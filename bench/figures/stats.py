"""Figure 5: ``recctl stats`` (the default table) over the whole file store, against one polars
group-by with the same counts over the same Parquet parts, sorted the same way (both processes)."""

from __future__ import annotations

import subprocess
import sys

from bench.context import Context
from bench.data import recctl
from bench.measure import Result, log, run_child

NAME = "stats over 1M interactions, file store"


def available() -> bool:
    probe = subprocess.run([*map(str, recctl("stats", "--help"))], capture_output=True, check=False)
    return probe.returncode == 0


def run(context: Context) -> Result:
    result = Result(NAME, "s", 1.5, "ratio_max", baseline_name="polars scan_parquet group_by")
    if not available():
        result.available = False
        result.note = "not available: this recctl has no stats command"
        return result
    store = context.workspace.ensure_store()
    for attempt in range(max(context.runs, 5)):
        mine = run_child(recctl("--store", store, "-q", "stats"))
        theirs = run_child([sys.executable, "-m", "bench.baselines", "polars-stats", store])
        result.add(mine, theirs)
        log(f"  run {attempt + 1}: recctl {mine.seconds:.2f} s, polars {theirs.seconds:.2f} s")
    return result
