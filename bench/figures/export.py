"""Figure 3: ``recctl export`` of the whole sample (explicit window) to a training set; absolute."""

from __future__ import annotations

import json

from bench.context import Context
from bench.data import recctl
from bench.measure import Result, log, run_child

NAME = "export 1M interactions -> training set"


def run(context: Context) -> Result:
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
    result.details = {key: manifest[key] for key in ("rows", "groups", "interactions") if key in manifest}
    return result
