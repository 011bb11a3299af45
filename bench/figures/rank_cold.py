"""Figure 6: one ``recctl rank`` process ranking one batch of 20 with a trained model, against
``python -c pass`` (the interpreter's own start). Interleaved, after one untimed run of each (so
both find their bytecode caches written)."""

from __future__ import annotations

import json
import sys

from bench.context import Context
from bench.data import rank_batches, recctl
from bench.measure import Result, log, median, run_child

NAME = "recctl rank cold start, 20 recs, trained model"


def run(context: Context) -> Result:
    workspace = context.workspace
    model = workspace.ensure_model(context.train_rounds)
    batch = workspace.run_dir / "rank-batch.json"
    batch.write_text(rank_batches(workspace, 1, context.batch_size)[0] + "\n")
    rank = recctl("rank", "--model", model, batch)
    bare = [sys.executable, "-c", "pass"]
    checked = run_child(rank, capture=True)  # untimed: writes bytecode caches, checks the output
    if json.loads(checked.stdout)["summary"]["ml_ranking_applied"] is not True:
        raise RuntimeError(f"rank did not use the model: {checked.stdout[:300]!r}")
    run_child(bare)
    result = Result(NAME, "s", 12.0, "ratio_max", baseline_name="python -c pass")
    for _ in range(context.cold_runs):
        mine = run_child(rank)
        theirs = run_child(bare)
        result.add(mine, theirs)
    mine_ms, bare_ms = median(result.samples) * 1000, median(result.baseline_samples) * 1000
    log(f"  median: rank {mine_ms:.0f} ms, python -c pass {bare_ms:.0f} ms")
    context.shared["rank_cold_start_s"] = median(result.samples)
    result.details = {"trees": context.train_rounds}
    return result
