"""Figure 4: ``recctl train --data`` on the exported set against bare ``lightgbm.train`` on the same
matrix with the same params (read from the meta recctl wrote) and rounds. No validation split on
either side and no early stopping, so both grow exactly the same number of trees. Both sides are
processes of their own that read the same Parquet file."""

from __future__ import annotations

import json
import sys

from bench.context import Context
from bench.data import recctl, train_args
from bench.measure import Result, log, run_child

NAME = "train overhead (sample, 1M interactions)"


def run(context: Context) -> Result:
    workspace = context.workspace
    data = workspace.ensure_training_set()
    rounds = context.train_rounds
    result = Result(NAME, "s", 1.15, "ratio_max", baseline_name="bare lightgbm.train")
    inner = []
    for attempt in range(context.runs):
        model = workspace.scratch("train") / "ranker.txt"
        mine = run_child(recctl("-q", "train", *train_args(data, rounds), "--model", model))
        meta = model.with_name("ranker.meta.json")
        theirs = run_child(
            [sys.executable, "-m", "bench.baselines", "lightgbm-train", data, meta, str(rounds)], capture=True
        )
        inner.append(json.loads(theirs.stdout))
        result.add(mine, theirs)
        log(f"  run {attempt + 1}: recctl {mine.seconds:.1f} s, lightgbm {theirs.seconds:.1f} s")
        workspace.adopt(model.parent, workspace.model.parent)
    params = json.loads(workspace.model.with_name("ranker.meta.json").read_text())["params"]
    result.details = {
        "num_boost_round": rounds,
        "overhead_s": (result.value or 0.0) - (result.baseline or 0.0),
        "params": params,
        "baseline_inner": inner[-1],
        "baseline_train_only_s": sorted(run["train_s"] for run in inner)[len(inner) // 2],
    }
    overhead, train_only = result.details["overhead_s"], result.details["baseline_train_only_s"]
    result.note = (
        f"{rounds} rounds; recctl takes {overhead:.1f} s more than bare LightGBM "
        f"(which spends {train_only:.1f} s of its {result.baseline or 0:.1f} s in lightgbm.train)"
    )
    return result
