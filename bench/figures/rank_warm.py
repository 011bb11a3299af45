"""Figure 7: ``recctl rank --ndjson`` throughput once started, batches of 20.

Measured as a difference, in the same run: the wall time of one process ranking N lines, minus the
wall time of one process ranking 1 line (start-up, model load and the first batch), interleaved;
throughput = (N - 1) / (T_N - T_1). The input is a file on stdin (a fast producer: rank takes every
line already there, up to 8 MB at a time, two such chunks in flight); the output goes to /dev/null.
"""

from __future__ import annotations

from bench.context import Context
from bench.data import rank_batches, recctl
from bench.measure import Result, log, median, run_child

NAME = "recctl rank --ndjson warm throughput, batches of 20"


def run(context: Context) -> Result:
    return throughput(context, NAME, 2000.0)


def throughput(
    context: Context, name: str, target: float, options: tuple[str, ...] = (), lines: int | None = None
) -> Result:
    """Batches per second of ``recctl rank --ndjson --model M *options`` over ``lines`` batches
    (default: the context's), by the difference of a long and a one-line run (module docstring)."""
    workspace = context.workspace
    model = workspace.ensure_model(context.train_rounds)
    lines = lines or context.rank_lines
    batches = rank_batches(workspace, lines, context.batch_size)
    many = workspace.run_dir / f"rank-{lines}.ndjson"
    one = workspace.run_dir / "rank-1.ndjson"
    many.write_text("\n".join(batches) + "\n")
    one.write_text(batches[0] + "\n")
    command = recctl("rank", "--ndjson", "--model", model, *options)
    checked = run_child(command, stdin=many, capture=True)
    written = checked.stdout.count(b"\n")
    if written != lines:
        raise RuntimeError(f"rank --ndjson wrote {written} lines for {lines}")
    result = Result(name, "batches/s", target, "value_min")
    long_runs, short_runs = [], []
    for attempt in range(context.runs):
        long_runs.append(run_child(command, stdin=many).seconds)
        short_runs.append(run_child(command, stdin=one).seconds)
        log(f"  run {attempt + 1}: {lines} lines {long_runs[-1]:.2f} s, 1 line {short_runs[-1]:.2f} s")
    # One sample per pair keeps the spread visible; the headline is from the two medians.
    result.samples = [
        (lines - 1) / max(long - short, 1e-9) for long, short in zip(long_runs, short_runs, strict=True)
    ]
    headline = (lines - 1) / max(median(long_runs) - median(short_runs), 1e-9)
    result.details = {
        "lines": lines,
        "options": list(options),
        "input_mb": round(many.stat().st_size / 1e6, 1),
        "wall_s_n_lines": long_runs,
        "wall_s_1_line": short_runs,
        "batches_per_s_from_medians": headline,
        "batches_per_s_including_start": lines / median(long_runs),
    }
    result.note = (
        f"({lines:,} - 1) / (T({lines:,} lines) - T(1 line)) = {headline:,.0f}/s; "
        f"{lines / median(long_runs):,.0f}/s counting the start-up"
    )
    cold = context.shared.get("rank_cold_start_s")
    if cold is not None:
        result.details["batches_per_s_minus_figure_6_cold_start"] = lines / max(
            median(long_runs) - cold, 1e-9
        )
    return result
