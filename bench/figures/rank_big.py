"""One ``recctl rank`` batch of 50,000 recommendations (a 36 MB JSON document), with a trained
model: with ``--top-k 10`` (time and peak RSS) and without a top-k (the whole list comes back,
MMR fills the first 100 slots; peak RSS). Memory must grow linearly with the batch."""

from __future__ import annotations

import json

from bench.context import Context
from bench.data import rank_batches, recctl
from bench.measure import Result, log, median, run_child

NAME = "recctl rank, one batch of 50,000 recommendations"
SIZE = 50_000


def run(context: Context) -> list[Result]:
    workspace = context.workspace
    model = workspace.ensure_model(context.train_rounds)
    batch = workspace.run_dir / "rank-50000.json"
    batch.write_text(rank_batches(workspace, 1, SIZE)[0] + "\n")
    timed = Result(f"{NAME}, --top-k 10", "s", 10.0, "value_max")
    memory = Result(f"{NAME}: peak RSS, --top-k 10 and whole list", "MB", 1500.0, "value_max")
    for options, count in ((["--top-k", "10"], 10), ([], SIZE)):
        command = recctl("rank", "--model", model, *options, batch)
        checked = run_child(command, capture=True)
        summary = json.loads(checked.stdout)["summary"]
        if summary["count"] != count or summary["ml_ranking_applied"] is not True:
            raise RuntimeError(f"rank {options} answered {summary}")
        runs = [checked, *(run_child(command) for _ in range(context.runs - 1))]
        if options:
            for one in runs:
                timed.add(one)
        memory.samples.append(max(one.peak_rss_mb for one in runs))
        memory.details[" ".join(options) or "whole list"] = {
            "seconds": [one.seconds for one in runs],
            "peak_rss_mb": [one.peak_rss_mb for one in runs],
        }
        log(
            f"  rank {options or 'whole list'}: {median([one.seconds for one in runs]):.2f} s, "
            f"{max(one.peak_rss_mb for one in runs):,.0f} MB"
        )
    memory.samples = [max(memory.samples)]  # the target holds for both: report the larger
    memory.note = "the larger of the two peaks"
    timed.details = {"input_mb": round(batch.stat().st_size / 1e6, 1)}
    return [timed, memory]
