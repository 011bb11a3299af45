"""Figure: ``recctl evaluate --off-policy`` of a trained model on about 100k randomised served lists
(about 1M shown items) and their interactions, from a file store; target an absolute time (<= 60 s).

The lists are the bias figure's (``recctl sample --explore plackett-luce``, 40k assessments, exact
logged propensities), made and ingested before the clock starts; the target is the model the rank
figures use (trained on another simulated world), served with rank's defaults (MMR, lambda 0.7).
The figure is the command's own time with every estimator the logs support (dr included: its
cross-fitted reward model is fitted and predicted inside the clock) and 1,000 bootstrap resamples.
"""

from __future__ import annotations

import json

from bench.context import Context
from bench.data import recctl
from bench.figures.bias import explored_store
from bench.measure import Result, log, run_child

NAME = "evaluate --off-policy on ~100k randomised lists (~1M items), file store"


def run(context: Context) -> Result:
    store, counts = explored_store(context.workspace.root)
    model = context.workspace.ensure_model(context.train_rounds)
    result = Result(NAME, "s", 60.0, "value_max")
    report: dict[str, object] = {}
    command = recctl(
        "--store",
        store,
        "-q",
        "evaluate",
        "--off-policy",
        *context.workspace.window,
        "--model",
        model,
        "--json",
    )
    for attempt in range(context.runs):
        mine = run_child(command, capture=True)
        report = json.loads(mine.stdout)
        result.add(mine)
        log(f"  run {attempt + 1}: evaluate --off-policy {mine.seconds:.1f} s ({mine.peak_rss_mb:.0f} MB)")
    estimators = report.get("estimators", {})
    assert isinstance(estimators, dict)
    result.details = {
        **counts,
        "estimators": sorted(estimators),
        "skipped": report.get("skipped"),
        "values": {name: values["value"] for name, values in estimators.items()},
    }
    result.note = f"{counts['lists']:,} lists, {len(estimators)} estimators"
    return result
