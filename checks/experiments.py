"""Whether ``recctl experiment`` is honest, on simulated logs: ``python checks/experiments.py``.

1. **A/A calibration**: ``--logs`` (100) small simulated logs whose users are split between two
   variants served the same way (``sample --ab A=confidence,B=confidence``; on a recctl whose
   ``sample`` has no ``--ab``, the users of a normal log split by a hash of the user id, which is
   the same thing: a true A/A). The CTR difference's 95% interval should exclude 0 in about 5% of
   them (2-9% passes).
2. **A/B with a known difference** (needs ``sample --ab``): variant A serves the confidence order,
   B a model trained on another simulated world; ``sample --truth`` gives each variant's true
   expected CTR on the lists it served. Over ``--ab-seeds`` worlds, the interval of the CTR
   difference and of the relative lift should cover the truth (about 95% of the time).
3. **Sample-ratio mismatch**: users split 90/10 and analysed as the default 50/50: the flag must
   be raised; declared ``--expected-split A=90,B=10``, it must not.
4. **Interleaving against A/B** (needs ``sample --interleave``): on worlds of growing size, the
   smallest log at which team-draft interleaving (sign test and clustered interval) and the A/B
   test (CTR difference) each tell the two policies apart at 95%, with their list counts.

Every step runs recctl's own commands (in this process, through the command line's entry point,
to save interpreter start-ups): ``sample``, ``ingest``, ``train``, ``experiment``. Not part of
``make test``: the whole check takes several minutes. Exit status 1 when a criterion fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from recctl.cli import app

SEED = 20260115
KINDS = ("recommendations", "impressions", "interactions")


def recctl(*args: str) -> str:
    """``recctl ARGS`` in this process: its stdout (stops the check on a failure)."""
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    if result.exit_code != 0:
        sys.exit(f"recctl {' '.join(args)} exited {result.exit_code}: {result.stderr.strip()[-2000:]}")
    return result.stdout


def has_option(command: str, option: str) -> bool:
    return option in CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).stdout


def _variant_by_hash(user: str, shares: tuple[float, float]) -> str:
    point = int(hashlib.sha256(user.encode()).hexdigest()[:12], 16) / 16**12
    return "A" if point < shares[0] / sum(shares) else "B"


def simulate(
    work: Path,
    name: str,
    *,
    seed: int,
    assessments: int,
    serving: tuple[str, ...] = (),
    split: tuple[float, float] | None = None,
    truth: bool = False,
) -> tuple[Path, dict[str, Any] | None]:
    """A simulated log ingested into a fresh store: the store, and the truth's rewards (``truth``).

    ``serving`` are sample's serving options (``--ab ...``); without them and with ``split``, the
    users of a normal log are split between A and B by a hash of the user id (``split`` shares).
    """
    data, store = work / f"{name}-data", work / f"{name}-store"
    args = ["sample", "--out", str(data), "--assessments", str(assessments), "--seed", str(seed), *serving]
    if truth:
        args += ["--truth", str(data / "truth.ndjson")]
    recctl(*args)
    if not serving and split is not None:
        impressions = data / "impressions.ndjson"
        rows = [json.loads(line) for line in impressions.read_text().splitlines() if line.strip()]
        for row in rows:
            row["variant"] = _variant_by_hash(str(row.get("user_id")), split)
        impressions.write_text("".join(json.dumps(row) + "\n" for row in rows))
    for kind in KINDS:
        recctl("--store", str(store), "--quiet", "ingest", kind, str(data / f"{kind}.ndjson"))
    rewards = data / "truth.rewards.json"
    return store, json.loads(rewards.read_text()) if truth and rewards.exists() else None


def experiment(store: Path, *args: str) -> dict[str, Any]:
    return dict(json.loads(recctl("--store", str(store), "experiment", "--format", "json", *args)))


def experiment_or_none(store: Path, *args: str) -> dict[str, Any] | None:
    """:func:`experiment`, or None when the log is too small to analyse (exit 3: e.g. every user
    fell into one variant, or no interleaved list was clicked): on a ladder, a miss."""
    result = CliRunner().invoke(
        app, ["--store", str(store), "experiment", "--format", "json", *args], catch_exceptions=False
    )
    if result.exit_code == 3:
        return None
    if result.exit_code != 0:
        sys.exit(
            f"recctl experiment {' '.join(args)} exited {result.exit_code}: {result.stderr.strip()[-2000:]}"
        )
    return dict(json.loads(result.stdout))


def ctr_comparison(report: dict[str, Any]) -> dict[str, Any]:
    return next(row for row in report["comparisons"] if row["metric"] == "ctr")


def a_a(work: Path, logs: int, assessments: int, use_ab: bool) -> dict[str, Any]:
    excluded = 0
    for number in range(logs):
        serving = ("--ab", "A=confidence,B=confidence") if use_ab else ()
        store, _ = simulate(
            work, f"aa-{number}", seed=SEED + number, assessments=assessments, serving=serving, split=(1, 1)
        )
        ctr = ctr_comparison(experiment(store, "--control", "A", "--seed", str(number)))
        excluded += ctr["low"] > 0 or ctr["high"] < 0
    share = excluded / logs
    return {"logs": logs, "excluded_zero": excluded, "share": share, "pass": 0.02 <= share <= 0.09}


def a_b(work: Path, seeds: int, assessments: int, model: Path) -> dict[str, Any]:
    rows = []
    for number in range(seeds):
        store, rewards = simulate(
            work, f"ab-{number}", seed=SEED + 1000 + number, assessments=assessments,
            serving=("--ab", f"A=confidence,B={model}"), truth=True,
        )  # fmt: skip
        if rewards is None:
            sys.exit("sample --truth wrote no .rewards.json: the A/B check needs each policy's true CTR")
        truth = {name: policy["ctr"] for name, policy in rewards["policies"].items()}
        difference, lift = truth["B"] - truth["A"], truth["B"] / truth["A"] - 1.0
        ctr = ctr_comparison(experiment(store, "--control", "A", "--seed", str(number)))
        rows.append(
            {
                "true_difference": difference,
                "estimate": ctr["difference"],
                "low": ctr["low"],
                "high": ctr["high"],
                "covers_difference": ctr["low"] <= difference <= ctr["high"],
                "true_lift": lift,
                "covers_lift": ctr["relative_low"] <= lift <= ctr["relative_high"],
                "p_value": ctr["p_value"],
            }
        )
    covered = sum(row["covers_difference"] for row in rows)
    return {"worlds": rows, "covered": covered, "pass": covered >= max(1, round(0.8 * seeds))}


def srm(work: Path, assessments: int, use_ab: bool) -> dict[str, Any]:
    serving = ("--ab", "A=confidence,B=confidence", "--ab-split", "90,10") if use_ab else ()
    store, _ = simulate(work, "srm", seed=SEED + 2000, assessments=assessments, serving=serving, split=(9, 1))
    declared_equal = experiment(store)["srm"]
    declared_right = experiment(store, "--expected-split", "A=90,B=10")["srm"]
    return {
        "users": declared_equal["users"],
        "flag_50_50": declared_equal["flag"],
        "p_50_50": declared_equal["p_value"],
        "flag_90_10": declared_right["flag"],
        "pass": declared_equal["flag"] and not declared_right["flag"],
    }


def interleaving(work: Path, model: Path, sizes: list[int], replicates: int, better: str) -> dict[str, Any]:
    """The smallest log at which each method tells the model (A) and the confidence order (B)
    apart, the right way round, in at least 80% of ``replicates`` independent logs (its power).

    Interleaving: team-draft lists of both (``sample --interleave``), judged by the sign test at
    p < 0.05 with the right winner; A/B: users split between the two (``sample --ab``), judged by
    the CTR difference's 95% interval excluding 0 on the right side. ``better`` is the truly
    better team by the simulator's truth (A = the model).
    """
    ladder: list[dict[str, Any]] = []
    found: dict[str, Any] = {"interleaving": None, "ab": None, "truly_better": better, "ladder": ladder}
    sign = 1.0 if better == "A" else -1.0
    for size in sizes:
        step: dict[str, Any] = {"assessments": size}
        if found["interleaving"] is None:
            hits, lists = 0, 0
            for replicate in range(replicates):
                store, _ = simulate(
                    work,
                    f"il-{size}-{replicate}",
                    seed=SEED + 3000 + 100 * size + replicate,
                    assessments=size,
                    serving=("--interleave", f"A={model},B=confidence"),
                )
                report = experiment_or_none(store, "--interleaving")
                if report is not None:
                    hits += report["winner"] == better and report["sign_test"]["p_value"] < 0.05
                    lists += report["lists"]
            step["interleaving"] = {"power": hits / replicates, "lists": lists / replicates}
            if hits >= 0.8 * replicates:
                found["interleaving"] = {"assessments": size, **step["interleaving"]}
        if found["ab"] is None:
            hits, lists = 0, 0
            for replicate in range(replicates):
                store, _ = simulate(
                    work,
                    f"abn-{size}-{replicate}",
                    seed=SEED + 4000 + 100 * size + replicate,
                    assessments=size,
                    serving=("--ab", f"A={model},B=confidence"),
                )
                report = experiment_or_none(store, "--control", "B")
                if report is not None:
                    ctr = ctr_comparison(report)
                    hits += (ctr["low"] > 0) if sign > 0 else (ctr["high"] < 0)
                    lists += sum(variant["lists"] for variant in report["variants"].values())
            step["ab"] = {"power": hits / replicates, "lists": lists / replicates}
            if hits >= 0.8 * replicates:
                found["ab"] = {"assessments": size, **step["ab"]}
        ladder.append(step)
        print(f"interleaving ladder: {step}", file=sys.stderr)
        if found["interleaving"] is not None and found["ab"] is not None:
            break
    interleaved, ab = found["interleaving"], found["ab"]
    found["pass"] = interleaved is not None and (ab is None or interleaved["lists"] < ab["lists"])
    return found


def train_other_world(work: Path, assessments: int) -> Path:
    """A model trained on a simulated world of its own seed: a policy other than the confidence order."""
    store, _ = simulate(work, "train", seed=SEED + 5000, assessments=assessments)
    recctl(
        "--store",
        str(store),
        "--quiet",
        "ingest",
        "assessments",
        str(work / "train-data" / "assessments.ndjson"),
    )
    model = work / "other-world.txt"
    recctl(
        "--store",
        str(store),
        "--quiet",
        "train",
        "--lookback-days",
        "0",
        "--model",
        str(model),
        "--seed",
        "1",
    )
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=100, help="A/A logs (default 100)")
    parser.add_argument("--aa-assessments", type=int, default=150, help="assessments per A/A log")
    parser.add_argument("--ab-seeds", type=int, default=5, help="A/B worlds with a known difference")
    parser.add_argument("--ab-assessments", type=int, default=2000)
    parser.add_argument(
        "--sizes", default="10,20,40,80,160,320,640,1280", help="interleaving ladder (assessments)"
    )
    parser.add_argument("--replicates", type=int, default=10, help="logs per ladder step and method")
    parser.add_argument(
        "--skip-aa", action="store_true", help="leave out the A/A calibration (the slowest part)"
    )
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    use_ab = has_option("sample", "--ab")
    results: dict[str, Any] = {"sample_ab": use_ab}
    with tempfile.TemporaryDirectory(prefix="recctl-experiments-") as temporary:
        work = Path(temporary)
        if not arguments.skip_aa:
            results["a_a"] = a_a(work, arguments.logs, arguments.aa_assessments, use_ab)
        results["srm"] = srm(work, arguments.aa_assessments * 4, use_ab)
        if use_ab:
            model = train_other_world(work, 1500)
            results["a_b"] = a_b(work, arguments.ab_seeds, arguments.ab_assessments, model)
            if has_option("sample", "--interleave"):
                sizes = [int(size) for size in arguments.sizes.split(",")]
                true_gain = sum(row["true_difference"] for row in results["a_b"]["worlds"])
                results["interleaving"] = interleaving(
                    work, model, sizes, arguments.replicates, "A" if true_gain > 0 else "B"
                )
    if arguments.json:
        print(json.dumps(results, indent=2))
    else:
        _print(results)
    if not all(part["pass"] for part in results.values() if isinstance(part, dict)):
        sys.exit(1)


def _verdict(passed: bool) -> str:
    return "pass" if passed else "FAIL"


def _print(results: dict[str, Any]) -> None:
    how = "sample --ab" if results["sample_ab"] else "users of a normal log split by hash"
    if "a_a" in results:
        aa = results["a_a"]
        print(
            f"A/A ({how}): the CTR difference's 95% interval excludes 0 in {aa['excluded_zero']} of "
            f"{aa['logs']} logs ({aa['share']:.1%}; 2-9% passes): {_verdict(aa['pass'])}"
        )
    s = results["srm"]
    print(
        f"SRM: users {s['users']} declared 50/50: flag {s['flag_50_50']} (p = {s['p_50_50']:.2g}); "
        f"declared 90/10: flag {s['flag_90_10']}: {_verdict(s['pass'])}"
    )
    if "a_b" not in results:
        print("A/B with a known difference: not run (this recctl's sample has no --ab)")
        return
    ab = results["a_b"]
    for row in ab["worlds"]:
        print(
            f"A/B: true CTR difference {row['true_difference']:+.4f}, estimate {row['estimate']:+.4f} "
            f"[{row['low']:+.4f}, {row['high']:+.4f}], p = {row['p_value']:.2g}; covers it: "
            f"{row['covers_difference']}; covers the true lift {row['true_lift']:+.1%}: {row['covers_lift']}"
        )
    print(f"A/B: covered in {ab['covered']} of {len(ab['worlds'])} worlds: {_verdict(ab['pass'])}")
    if "interleaving" in results:
        found = results["interleaving"]
        for method in ("interleaving", "ab"):
            hit = found[method]
            told = (
                f"tells them apart (power >= 80%) at {hit['assessments']} assessments "
                f"({hit['lists']:,.0f} lists, power {hit['power']:.0%})"
                if hit
                else "did not tell them apart on the largest log"
            )
            print(f"{method}: {told}")
        print(
            f"the truly better team: {found['truly_better']} (A = the model); interleaving needs "
            f"fewer lists: {_verdict(found['pass'])}"
        )


if __name__ == "__main__":
    main()
