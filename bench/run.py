"""Run the figures, print the table (stdout) and write the JSON results; progress goes to stderr."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.data import Workspace
from bench.figures import FIGURES
from bench.measure import Result, log, machine_info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="recctl's performance figures against their baselines."
    )
    parser.add_argument("--work-dir", type=Path, default=Path("bench-data"), help="data and scratch space")
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"), help="the JSON results")
    parser.add_argument("--assessments", type=int, default=50_000, help="sample size (~21 interactions each)")
    parser.add_argument("--seed", type=int, default=0, help="sample seed")
    parser.add_argument("--runs", type=int, default=3, help="repeats of each big figure (median reported)")
    parser.add_argument("--cold-runs", type=int, default=9, help="repeats of each side of the cold start")
    parser.add_argument("--train-rounds", type=int, default=200, help="boosting rounds of the train figure")
    parser.add_argument("--rank-lines", type=int, default=5_000, help="batches through one rank --ndjson")
    parser.add_argument(
        "--only", default="", help=f"comma-separated figures to run (default all): {', '.join(FIGURES)}"
    )
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in args.only if name not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    # Children write their bytecode caches, as they do on any machine without this variable; the
    # cold-start figure would otherwise compile recctl's modules on every run.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    machine = machine_info()
    load = machine["load_average_at_start"]
    log(f"{machine['cpu_count']} CPUs, Python {machine['python']}, load average {load}")
    workspace = Workspace(args.work_dir.resolve(), args.assessments, args.seed)
    shutil.rmtree(workspace.run_dir, ignore_errors=True)
    workspace.run_dir.mkdir(parents=True)
    sample = workspace.ensure_sample()
    data_seconds = time.perf_counter() - started
    workspace.warm_page_cache()
    context = Context(
        workspace,
        runs=args.runs,
        cold_runs=args.cold_runs,
        train_rounds=args.train_rounds,
        rank_lines=args.rank_lines,
    )
    results: list[Result] = []
    failed = False
    for key, module in FIGURES.items():
        if args.only and key not in args.only:
            continue
        log(f"{key}: {module.NAME}")
        figure_started = time.perf_counter()
        load_before = os.getloadavg()[0]
        try:
            result = module.run(context)
        except Exception as exc:  # one broken figure must not hide the others
            failed = True
            traceback.print_exc()
            result = Result(module.NAME, "", 0.0, "value_max", available=False, note=f"error: {exc}"[:200])
        result.details["figure_seconds"] = round(time.perf_counter() - figure_started, 1)
        # Other work on the machine shows here: a 1-minute load above the CPU count means contention.
        result.details["load_1min_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        results.append(result)
    total = time.perf_counter() - started
    render(results, total, machine)
    report = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine, "load_average_at_end": os.getloadavg()},
        "sample": {**workspace.params, **sample},
        "settings": {
            "runs": args.runs,
            "cold_runs": args.cold_runs,
            "train_rounds": args.train_rounds,
            "rank_lines": args.rank_lines,
        },
        "data_seconds": round(data_seconds, 1),
        "total_seconds": round(total, 1),
        "figures": [result.as_json() for result in results],
    }
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    log(f"done in {total:.0f} s; results in {args.out}")
    if failed:
        sys.exit(1)


def _amount(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f} s" if value < 1 else f"{value:.1f} s"
    if unit == "ms":
        return f"{value:.2f} ms"
    return f"{value:,.0f} {unit}"


def _rss(result: Result) -> str:
    if result.peak_rss_mb is None:
        return "-"
    text = f"{result.peak_rss_mb:,.0f}"
    if result.baseline_peak_rss_mb is not None:
        text += f" / {result.baseline_peak_rss_mb:,.0f}"
    return text


def render(results: list[Result], total: float, machine: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"recctl benchmarks ({machine['cpu_count']} CPUs, Python {machine['python']}; "
        f"medians; total {total:.0f} s)",
    )
    for header in ("figure", "value", "baseline", "ratio", "target", "met", "runs", "peak RSS MB"):
        table.add_column(header, justify="left" if header == "figure" else "right", overflow="fold")
    for result in results:
        if not result.available:
            table.add_row(
                result.figure, result.note or "not available", "", "", result.target_text, "-", "", ""
            )
            continue
        met = {True: "[green]pass[/]", False: "[red]MISS[/]", None: "-"}[result.met]
        ratio = f"{result.ratio:.2f}x" if result.ratio is not None else "-"
        baseline = _amount(result.baseline, result.unit)
        if result.baseline_name and result.baseline is not None:
            baseline = f"{baseline} ({result.baseline_name})"
        table.add_row(
            result.figure,
            _amount(result.value, result.unit),
            baseline,
            ratio,
            result.target_text,
            met,
            str(len(result.samples)),
            _rss(result),
        )
    Console(width=max(Console().width, 150)).print(table)
    for result in results:
        if result.note and result.available:
            print(f"  {result.figure}: {result.note}")
