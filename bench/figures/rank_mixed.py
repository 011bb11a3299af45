"""``recctl rank --ndjson`` on a mixed stream: 300 batches of 11 with one batch of 5,000 in the
middle. Every line must be answered, and the stream's peak RSS stays within 1.3x of ranking the
5,000-batch alone (one large line must not drag the small ones of its chunk to its size)."""

from __future__ import annotations

from bench.context import Context
from bench.data import rank_batches, recctl
from bench.measure import Result, log, median, run_child

NAME = "recctl rank --ndjson, 300 batches of 11 + one of 5,000: peak RSS"
SMALL, SMALL_SIZE, LARGE_SIZE = 300, 11, 5_000


def run(context: Context) -> Result:
    workspace = context.workspace
    model = workspace.ensure_model(context.train_rounds)
    small = rank_batches(workspace, SMALL, SMALL_SIZE)
    large = rank_batches(workspace, 1, LARGE_SIZE)[0]
    mixed = workspace.run_dir / "rank-mixed.ndjson"
    alone = workspace.run_dir / "rank-large.ndjson"
    mixed.write_text("\n".join([*small[: SMALL // 2], large, *small[SMALL // 2 :]]) + "\n")
    alone.write_text(large + "\n")
    command = recctl("rank", "--ndjson", "--model", model)
    answered = run_child(command, stdin=mixed, capture=True).stdout.count(b"\n")
    if answered != SMALL + 1:
        raise RuntimeError(f"rank --ndjson answered {answered} of {SMALL + 1} lines")
    result = Result(NAME, "MB", 1.3, "ratio_max", baseline_name="the 5,000 batch alone")
    seconds, alone_seconds = [], []
    for _ in range(context.runs):
        mine, theirs = run_child(command, stdin=mixed), run_child(command, stdin=alone)
        result.samples.append(mine.peak_rss_mb)
        result.baseline_samples.append(theirs.peak_rss_mb)
        seconds.append(mine.seconds)
        alone_seconds.append(theirs.seconds)
    result.details = {"answered": answered, "seconds": seconds, "alone_seconds": alone_seconds}
    took, took_alone = median(seconds), median(alone_seconds)
    result.note = f"every line answered; {took:.2f} s, the large batch alone {took_alone:.2f} s"
    log(f"  mixed {result.value:,.0f} MB, large alone {result.baseline:,.0f} MB")
    return result
