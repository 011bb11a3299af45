"""What debiasing buys, measured against the simulator's truth: ``make check-debias``.

For each kind of log (the old confidence order, and Plackett-Luce randomised lists around it),
on a simulated world of its own seed (one no test or default uses):

1. ``recctl sample --truth`` simulates the world and writes the users' hidden grades;
2. everything is ingested into a fresh store;
3. ``recctl train`` learns on the first 40 days, once naively (``--debias none``) and once
   with ``--debias auto``; ``recctl bias`` estimates the examination curve;
4. ``recctl evaluate --grades truth.ndjson --holdout-only`` scores both models on the lists of
   the later assessments, which neither model saw in training or validation, against the truth.

It prints one table row per log and model (NDCG@10 against the truth, with the confidence order
and the bias curve's error at slots 0-9) and, with ``--json``, the figures as JSON. It uses only
the command line, as a user would. Not part of ``make test``: it takes a few minutes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SEED = 8675309
TRAIN_WINDOW = ("--since", "2025-09-01", "--until", "2025-10-11")
HELDOUT_WINDOW = ("--since", "2025-10-11", "--until", "2025-11-01")
LOGS = {"confidence order": (), "plackett-luce": ("--explore", "plackett-luce")}


def recctl(store: Path, *args: str) -> dict[str, Any]:
    """``recctl --store STORE ARGS --json``: its JSON summary (stops the check on failure)."""
    done = subprocess.run(
        [sys.executable, "-m", "recctl", "--store", str(store), *args, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"recctl {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return dict(json.loads(done.stdout))


def one_world(work: Path, name: str, explore: tuple[str, ...], seed: int, assessments: int) -> dict[str, Any]:
    data, store = work / f"{name}-sample", work / f"{name}-store"
    truth = data / "truth.ndjson"
    recctl(
        store,
        "sample",
        "--out",
        str(data),
        "--assessments",
        str(assessments),
        "--seed",
        str(seed),
        "--truth",
        str(truth),
        *explore,
    )
    for kind in ("assessments", "recommendations", "impressions", "interactions"):
        recctl(store, "ingest", kind, str(data / f"{kind}.ndjson"))
    true_curve = json.loads((data / "truth.examination.json").read_text())["positions"]
    figures: dict[str, Any] = {"log": name, "seed": seed, "assessments": assessments}
    bias = subprocess.run(
        [sys.executable, "-m", "recctl", "--store", str(store), "bias", *TRAIN_WINDOW, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if bias.returncode == 0:
        estimate = json.loads(bias.stdout)
        errors = [
            abs(row["examination"] - truth_row["relative"])
            for row, truth_row in zip(estimate["positions"][:10], true_curve[:10], strict=False)
        ]
        figures["bias"] = {"method": estimate["method"], "max_error_0_9": max(errors)}
    else:
        figures["bias"] = {"exit": bias.returncode, "message": bias.stderr.strip().splitlines()[-1]}
    for debias in ("none", "auto"):
        model = work / f"{name}-{debias}.txt"
        trained = recctl(
            store, "train", *TRAIN_WINDOW, "--debias", debias, "--model", str(model), "--seed", "1"
        )
        judged = recctl(
            store,
            "evaluate",
            *HELDOUT_WINDOW,
            "--model",
            str(model),
            "--holdout-only",
            "--grades",
            str(truth),
        )
        figures[debias] = {
            "method": trained.get("debias", {}).get("method"),
            "true_ndcg@10": judged["model"]["ndcg@10"],
            "groups": judged["groups"],
        }
        figures["confidence"] = {"true_ndcg@10": judged["baseline"]["ndcg@10"]}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assessments", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="recctl-debias-") as temporary:
        results = [
            one_world(
                Path(temporary),
                name.replace(" ", "-"),
                explore,
                arguments.seed + offset,
                arguments.assessments,
            )
            for offset, (name, explore) in enumerate(LOGS.items())
        ]
    if arguments.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"{'log':<18} {'naive':>7} {'auto':>7} {'(method)':<10} {'confidence':>10} {'groups':>7}  bias curve"
    )
    for row in results:
        bias = row["bias"]
        curve = (
            f"{bias['method']}: max error {bias['max_error_0_9']:.3f} at slots 0-9"
            if "method" in bias
            else f"refused (exit {bias['exit']})"
        )
        print(
            f"{row['log']:<18} {row['none']['true_ndcg@10']:>7.3f} {row['auto']['true_ndcg@10']:>7.3f} "
            f"{'(' + str(row['auto']['method']) + ')':<10} {row['confidence']['true_ndcg@10']:>10.3f} "
            f"{row['auto']['groups']:>7}  {curve}"
        )


if __name__ == "__main__":
    main()
