"""Figure 4b: ``recctl train --data --dask local:2`` against the same ``recctl train`` on one
machine, on the exported set (1M interactions), same args and rounds (no validation split, no
early stopping). Two workers on two cores are not expected to be faster: the figure shows that
training past one machine runs, at what cost in time, and lands on the same NDCG."""

from __future__ import annotations

import json

from bench.context import Context
from bench.data import recctl, train_args
from bench.measure import Result, log, run_child

NAME = "train --dask local:2 (sample, 1M interactions)"


def run(context: Context) -> Result:
    workspace = context.workspace
    data = workspace.ensure_training_set()
    rounds = context.train_rounds
    result = Result(NAME, "s", 3.0, "ratio_max", baseline_name="recctl train, one machine")
    ndcg = {}
    for attempt in range(context.runs):
        folder = workspace.scratch("train-dask")
        common = (*train_args(data, rounds), "--json")
        dask = run_child(
            recctl("-q", "train", *common, "--dask", "local:2", "--model", folder / "dask.txt"), capture=True
        )
        single = run_child(recctl("-q", "train", *common, "--model", folder / "single.txt"), capture=True)
        result.add(dask, single)
        ndcg = {
            name: json.loads(done.stdout)["metrics"]["train"]["ndcg@10"]
            for name, done in (("dask", dask), ("single", single))
        }
        log(
            f"  run {attempt + 1}: dask {dask.seconds:.1f} s, one machine {single.seconds:.1f} s, NDCG@10 {ndcg}"
        )
    result.details = {"num_boost_round": rounds, "train_ndcg@10": ndcg}
    result.note = (
        f"{rounds} rounds; training NDCG@10 {ndcg.get('dask', 0):.4f} on Dask, {ndcg.get('single', 0):.4f} on one "
        "machine (the target is a sanity bound: two workers on two cores are not expected to be faster)"
    )
    return result
