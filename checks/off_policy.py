"""How close off-policy estimates come to the truth: ``make check-off-policy``.

For each of ten seeds (seeds no test, default or tuning uses), on a simulated world of that seed:

1. ``recctl sample --explore plackett-luce`` logs about 20,000 randomised served lists and the
   users' reactions, with the lists' propensities;
2. ``recctl sample --policy TARGET --truth`` on the same seed serves the same world's sessions
   with the target instead and writes the target's true expected clicks per list (from the
   simulator's hidden click probabilities, never observed by recctl);
3. ``recctl evaluate --off-policy`` estimates the target's clicks per list from the first log.

Two targets: the confidence order (``--policy confidence --no-diversity``), and a LambdaRank
model trained on a different world's log (its own seed) and ranked with MMR, as ``rank`` would.
It prints, per target and estimator, the mean relative error against the truth, the share of
seeds whose 95% interval covers the truth, and the mean effective sample size; and checks that
a deterministic log is refused (exit 3). It uses only the command line, as a user would. Not
part of ``make test``: it takes about ten minutes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SEEDS = tuple(range(4242001, 4242011))
MODEL_SEED = 4242999
ASSESSMENTS = 8000  # about 20,000 served lists
WINDOW = ("--since", "2025-08-31", "--until", "2025-11-02")
KINDS = ("assessments", "recommendations", "impressions", "interactions")
ESTIMATORS = ("ips", "snips", "iips", "sniips", "rips", "snrips", "dr")
GATED = ("sniips", "dr")
MAX_MEAN_RELATIVE_ERROR = 0.05
MIN_COVERAGE = 0.8


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "recctl", *args], capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        sys.exit(f"recctl {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done


def sample(out: Path, seed: int, *args: str) -> Path:
    truth = out / "truth.ndjson"
    run(
        "sample",
        "--out",
        str(out),
        "--assessments",
        str(ASSESSMENTS),
        "--seed",
        str(seed),
        "--force",
        "--truth",
        str(truth),
        *args,
    )
    return out / "truth.rewards.json"


def ingest(store: Path, data: Path) -> None:
    for kind in KINDS:
        run("--store", str(store), "--quiet", "ingest", kind, str(data / f"{kind}.ndjson"))


def true_clicks(rewards: Path) -> float:
    policies = json.loads(rewards.read_text())["policies"]
    return float(policies["all"]["clicks_per_list"])


def train_model(work: Path) -> Path:
    data, store, model = work / "model-sample", work / "model-store", work / "model.txt"
    sample(data, MODEL_SEED, "--explore", "plackett-luce")
    ingest(store, data)
    run("--store", str(store), "--quiet", "train", *WINDOW, "--model", str(model), "--json")
    return model


def estimate(store: Path, target: tuple[str, ...]) -> dict[str, Any]:
    done = run(
        "--store", str(store), "evaluate", "--off-policy", *WINDOW, *target, "--reward", "click", "--json"
    )
    return dict(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="how many of the ten seeds to run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="recctl-check-ope-") as scratch:
        work = Path(scratch)
        model = train_model(work)
        targets = {
            "confidence order": ("--policy", "confidence", "--no-diversity"),
            "model (other log)": ("--model", str(model)),
        }
        rows: list[dict[str, Any]] = []
        for seed in SEEDS[: args.seeds]:
            log, store = work / f"log-{seed}", work / f"store-{seed}"
            sample(log, seed, "--explore", "plackett-luce")
            ingest(store, log)
            for name, target in targets.items():
                truth = true_clicks(sample(work / f"truth-{seed}", seed, *target_as_policy(target)))
                result = estimate(store, target)
                row = {
                    "seed": seed,
                    "target": name,
                    "truth": truth,
                    "lists": result["lists"],
                    "logged": result["logged"]["value"],
                    "estimators": result["estimators"],
                }
                rows.append(row)
                print(
                    f"seed {seed} {name}: truth {truth:.4f}, "
                    + ", ".join(
                        f"{key} {value['value']:.4f} [{value['low']:.4f}, {value['high']:.4f}]"
                        for key, value in result["estimators"].items()
                    ),
                    file=sys.stderr,
                )
        deterministic = work / "deterministic"
        sample(deterministic, SEEDS[0])
        refused_store = work / "store-deterministic"
        ingest(refused_store, deterministic)
        refused = run(
            "--store",
            str(refused_store),
            "evaluate",
            "--off-policy",
            *WINDOW,
            "--model",
            str(model),
            check=False,
        )
    summary = summarise(rows)
    summary["deterministic_log"] = {"exit_code": refused.returncode, "message": refused.stderr.strip()}
    report(summary)
    if args.json:
        print(json.dumps({"rows": rows, **summary}, indent=2))
    failed = [
        f"{t}/{e}"
        for t, per in summary["targets"].items()
        for e in GATED
        if per[e]["mean_relative_error"] > MAX_MEAN_RELATIVE_ERROR or per[e]["coverage"] < MIN_COVERAGE
    ]
    if refused.returncode != 3:
        failed.append(f"deterministic log: exit {refused.returncode}, expected 3")
    if failed:
        sys.exit("off-policy check failed: " + ", ".join(failed))


def target_as_policy(target: tuple[str, ...]) -> tuple[str, ...]:
    """evaluate's target options as sample's: ``--model PATH`` serves as ``--policy PATH``."""
    if target[0] == "--model":
        return ("--policy", *target[1:])
    return target


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    targets: dict[str, Any] = {}
    for name in dict.fromkeys(row["target"] for row in rows):
        mine = [row for row in rows if row["target"] == name]
        per: dict[str, Any] = {
            "truth_mean": statistics.fmean(row["truth"] for row in mine),
            "logged_mean": statistics.fmean(row["logged"] for row in mine),
        }
        for key in ESTIMATORS:
            found = [row for row in mine if key in row["estimators"]]
            if not found:
                continue
            errors = [abs(row["estimators"][key]["value"] - row["truth"]) / row["truth"] for row in found]
            covered = [
                row["estimators"][key]["low"] <= row["truth"] <= row["estimators"][key]["high"]
                for row in found
            ]
            per[key] = {
                "mean_relative_error": statistics.fmean(errors),
                "coverage": sum(covered) / len(covered),
                "mean_estimate": statistics.fmean(row["estimators"][key]["value"] for row in found),
                "mean_ess": statistics.fmean(row["estimators"][key]["ess"] for row in found),
                "seeds": len(found),
            }
        targets[name] = per
    return {"targets": targets, "lists_mean": statistics.fmean(row["lists"] for row in rows)}


def report(summary: dict[str, Any]) -> None:
    print(f"lists per log: {summary['lists_mean']:,.0f} (mean over seeds)")
    for name, per in summary["targets"].items():
        print(
            f"\n{name}: true clicks per list {per['truth_mean']:.4f} (logged policy {per['logged_mean']:.4f})"
        )
        print(
            f"  {'estimator':<9} {'mean est.':>10} {'mean rel. error':>16} "
            f"{'95% coverage':>13} {'mean ESS':>10}"
        )
        for key in ESTIMATORS:
            if key in per:
                row = per[key]
                print(
                    f"  {key:<9} {row['mean_estimate']:>10.4f} {row['mean_relative_error']:>15.1%} "
                    f"{row['coverage']:>12.0%} {row['mean_ess']:>10,.0f}"
                )
    refused = summary["deterministic_log"]
    print(f"\ndeterministic log: exit {refused['exit_code']}: {refused['message']}")


if __name__ == "__main__":
    main()
