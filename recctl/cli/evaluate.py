"""``recctl evaluate``: NDCG@k of a model against the confidence, random and ideal orders; with
``--off-policy``, what a ranking policy would earn per served list, estimated from logged lists."""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from recctl import defaults
from recctl.cli.common import given, print_json, refuse_idle_options, settings
from recctl.cli.options import (
    AttributionHours,
    Data,
    FeatureCols,
    GroupCol,
    LabelCol,
    Labels,
    LookbackDays,
    MinInteractions,
    Reward,
    Since,
    Until,
    resolve_window,
    training_data,
)
from recctl.cli.train import json_failures

OFF_POLICY = "Off-policy evaluation (--off-policy)"
LOW_ESS = 30
"""Below this effective sample size the report warns that an estimator's interval is not to be trusted."""
ESTIMATOR_NAMES = ("ips", "snips", "iips", "sniips", "rips", "snrips", "dr")  # recctl.off_policy.ESTIMATORS


class LoggedOrConfidence(StrEnum):
    confidence = "confidence"
    logged = "logged"


class ExplorePolicy(StrEnum):
    plackett_luce = "plackett-luce"
    epsilon_greedy = "epsilon-greedy"


def evaluate_command(
    ctx: typer.Context,
    data: Data = None,
    label_col: LabelCol = "grade",
    group_col: GroupCol = "query_id",
    feature_cols: FeatureCols = None,
    models: Annotated[
        list[Path] | None,
        typer.Option(
            "--model",
            help="The model file (default models/recommendation_ranker.txt); its meta is "
            "<name>.meta.json beside it. Give it twice (A, then B) to compare two models on the same "
            "groups: each one's NDCG and A - B with a paired bootstrap interval.",
        ),
    ] = None,
    min_interactions: MinInteractions = defaults.MIN_INTERACTIONS,
    lookback_days: LookbackDays = defaults.LOOKBACK_DAYS,
    since: Since = None,
    until: Until = None,
    labels: Labels = None,
    attribution_hours: AttributionHours = defaults.ATTRIBUTION_HOURS,
    k: Annotated[str, typer.Option("--k", help="Cut-offs, comma-separated.")] = ",".join(
        map(str, defaults.EVALUATE_K)
    ),
    resamples: Annotated[
        int, typer.Option(min=10, help="Bootstrap resamples for the 95% intervals.")
    ] = defaults.BOOTSTRAP_RESAMPLES,
    seed: Annotated[int, typer.Option(help="Seed of the random order and of the bootstrap.")] = 0,
    holdout_only: Annotated[
        bool, typer.Option(help="Leave out the groups the model was trained or validated on.")
    ] = False,
    grades: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Judge against these grades instead of the data's: recommendation_id and grade 0..4 "
            "per line (any format ingest reads, gzip too; other columns ignored). Unjudged rows count as "
            "grade 0; groups with no judged row are left out. Both are counted.",
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the results as one JSON object on stdout.")
    ] = False,
    off_policy: Annotated[
        bool,
        typer.Option(
            "--off-policy",
            help="Estimate what a ranking policy (--model with rank's options, or --policy) would earn "
            "per served list, from the logged lists of the window and their interactions.",
            rich_help_panel=OFF_POLICY,
        ),
    ] = False,
    policy: Annotated[
        LoggedOrConfidence | None,
        typer.Option(
            help="The target instead of --model: confidence (the confidence-score order) or logged "
            "(the logging policy itself: every weight 1, a check).",
            rich_help_panel=OFF_POLICY,
        ),
    ] = None,
    reward: Annotated[
        Reward,
        typer.Option(
            help="What a slot earns: a click, an implementation, or the item's label (0..1).",
            rich_help_panel=OFF_POLICY,
        ),
    ] = Reward.click,
    depth: Annotated[
        int | None,
        typer.Option(
            min=1, help="Count the first N slots of each list (default: all).", rich_help_panel=OFF_POLICY
        ),
    ] = None,
    estimator: Annotated[
        list[str] | None,
        typer.Option(
            "--estimator",
            help="An estimator to run (repeatable): ips, snips, iips, sniips, rips, snrips, dr. "
            "Default: every one the logged propensities support (the report names those skipped).",
            rich_help_panel=OFF_POLICY,
        ),
    ] = None,
    lambda_: Annotated[
        float,
        typer.Option(
            "--lambda",
            min=0.0,
            max=1.0,
            help="The target's MMR trade-off, as in rank.",
            rich_help_panel=OFF_POLICY,
        ),
    ] = defaults.DEFAULT_LAMBDA,
    top_k: Annotated[
        int | None,
        typer.Option(min=1, help="The target shows only its best K, as in rank.", rich_help_panel=OFF_POLICY),
    ] = None,
    no_diversity: Annotated[
        bool,
        typer.Option("--no-diversity", help="The target orders by score only.", rich_help_panel=OFF_POLICY),
    ] = False,
    explore: Annotated[
        ExplorePolicy | None,
        typer.Option(help="The target explores, as rank --explore.", rich_help_panel=OFF_POLICY),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(help="The exploring target's Plackett-Luce temperature.", rich_help_panel=OFF_POLICY),
    ] = None,
    epsilon: Annotated[
        float | None,
        typer.Option(help="The exploring target's epsilon-greedy epsilon.", rich_help_panel=OFF_POLICY),
    ] = None,
    folds: Annotated[
        int,
        typer.Option(
            min=2,
            help="Cross-fitting folds of dr's reward model (by assessment).",
            rich_help_panel=OFF_POLICY,
        ),
    ] = 2,
) -> None:
    """Score a model on a data set: NDCG@k for the model, the confidence order, random and ideal.

    NDCG convention (LightGBM's): gain 2^grade - 1, discount 1/log2(rank + 1), ties kept in input
    order, and a group with no relevant item scores 1 (how many there were is reported). Each
    figure has a bootstrap 95% interval over query groups. Groups the model was trained or
    validated on are counted (--holdout-only leaves them out).

    With --grades the groups are the data's, and the grades are the file's judgments (editorial
    grades, or `recctl sample --truth`): a recommendation the file does not judge counts as grade
    0, and a group with no judged recommendation is left out; the report gives both counts.
    """
    options = settings(ctx)
    if len(models or []) > 2:
        raise typer.BadParameter("give --model once, or twice to compare two models", param_hint="--model")
    model = models[0] if models else defaults.DEFAULT_MODEL_PATH
    other = models[1] if models and len(models) == 2 else None
    if other is not None and off_policy:
        raise typer.BadParameter(
            "--off-policy estimates one target: run it once per model", param_hint="--model"
        )
    if off_policy:
        _check_off_policy_options(ctx, data, policy, explore, estimator)
        with json_failures(json_output):
            from recctl.labels import load_policy
            from recctl.policy_evaluation import evaluate_store

            target = _target(model, policy, lambda_, top_k, no_diversity, explore, temperature, epsilon, seed)
            store = options.open_store(existing=True)
            report = evaluate_store(
                store,
                resolve_window(since, until, lookback_days),
                target,
                labels=load_policy(labels),
                attribution_hours=attribution_hours,
                reward=reward.value,
                depth=depth,
                estimators=estimator,
                resamples=resamples,
                seed=seed,
                folds=folds,
            ).as_json()
        if json_output:
            print_json(report)
        _render_off_policy(options.console, report)
        return
    for name in _OFF_POLICY_ONLY:
        if given(ctx, name):
            raise typer.BadParameter(f"--{name.replace('_', '-')} is an --off-policy option")

    from recctl.evaluation import evaluate, read_judgments
    from recctl.model import load_bundle

    try:
        cutoffs = tuple(sorted({int(part) for part in k.split(",") if part.strip()}))
    except ValueError:
        raise typer.BadParameter(f"--k wants integers like 1,3,5,10, got {k!r}") from None
    if not cutoffs or min(cutoffs) < 1:
        raise typer.BadParameter("--k values must be >= 1")
    if other is not None:
        _compare(options, model, other, data, label_col, group_col, feature_cols, min_interactions,
                 lookback_days, since, until, labels, attribution_hours, cutoffs, resamples, seed,
                 holdout_only, grades, json_output)  # fmt: skip
        return
    with json_failures(json_output, model_path=model):
        bundle = load_bundle(model)  # a bad model or grades file fails before the data is read
        judgments = read_judgments(grades) if grades is not None else None
        training = training_data(
            options,
            data,
            label_col,
            group_col,
            feature_cols,
            min_interactions,
            lookback_days,
            since,
            until,
            labels,
            # A model trained with features left out takes its own from the data's (LibSVM: by name).
            num_features=None if bundle.meta.get("excluded_features") else len(bundle.feature_names),
            attribution_hours=attribution_hours,
        )
        summary = evaluate(
            model,
            training,
            ks=cutoffs,
            resamples=resamples,
            seed=seed,
            holdout_only=holdout_only,
            judgments=judgments,
        ).as_json()
    if json_output:
        print_json(summary)
    _render(options.console, summary, cutoffs)


def _compare(
    options: Any,
    model_a: Path,
    model_b: Path,
    data: Path | None,
    label_col: str,
    group_col: str,
    feature_cols: str | None,
    min_interactions: int,
    lookback_days: int,
    since: Any,
    until: Any,
    labels: Path | None,
    attribution_hours: float,
    cutoffs: tuple[int, ...],
    resamples: int,
    seed: int,
    holdout_only: bool,
    grades: Path | None,
    json_output: bool,
) -> None:
    """``evaluate --model A --model B``: both on the same groups, A - B with a paired interval."""
    from recctl.evaluation import compare_models, read_judgments
    from recctl.model import load_bundle

    with json_failures(json_output, model_path=model_a):
        bundles = [load_bundle(path) for path in (model_a, model_b)]  # both fail before the data is read
        judgments = read_judgments(grades) if grades is not None else None
        trimmed = any(bundle.meta.get("excluded_features") for bundle in bundles)
        widths = {len(bundle.feature_names) for bundle in bundles}
        training = training_data(
            options, data, label_col, group_col, feature_cols, min_interactions, lookback_days, since,
            until, labels, num_features=None if trimmed or len(widths) > 1 else widths.pop(),
            attribution_hours=attribution_hours,
        )  # fmt: skip
        summary = compare_models(
            model_a,
            model_b,
            training,
            ks=cutoffs,
            resamples=resamples,
            seed=seed,
            holdout_only=holdout_only,
            judgments=judgments,
        ).as_json()
    if json_output:
        print_json(summary)
    _render_comparison(options.console, summary, cutoffs)


def _render_comparison(console: Any, summary: dict[str, Any], cutoffs: tuple[int, ...]) -> None:
    from rich.table import Table

    table = Table(
        title=f"A = {summary['a']['model_path']} ({summary['a']['model_version']}), "
        f"B = {summary['b']['model_path']} ({summary['b']['model_version']}), "
        f"on the same {summary['groups']:,} groups",
        title_justify="left",
    )
    for name in ("NDCG", "A", "B", "A - B", "95% interval (paired)"):
        table.add_column(name, justify="right")
    for k in cutoffs:
        row = summary["ndcg"][f"ndcg@{k}"]
        table.add_row(
            f"@{k}",
            f"{row['a']:.4f}",
            f"{row['b']:.4f}",
            f"{row['difference']:+.4f}",
            f"{row['interval'][0]:+.4f} to {row['interval'][1]:+.4f}",
        )
    console.print(table)
    console.print("interval: groups resampled together for both models (bootstrap)", style="dim")
    _render_grades(console, summary["grades"])
    for name in ("a", "b"):
        console.print(f"Model {name.upper()}: ", end="", markup=False)
        _render_overlap(console, summary[name]["training_overlap"], summary["groups"])


def _render(console: Any, summary: dict[str, Any], cutoffs: tuple[int, ...]) -> None:
    from rich.table import Table

    table = Table(
        title=f"NDCG on {summary['groups']:,} groups "
        f"({summary['groups_without_relevant']:,} without a relevant item)",
        title_justify="left",
    )
    table.add_column("order")
    for k in cutoffs:
        table.add_column(f"@{k}", justify="right")
    for name in ("model", "baseline", "random", "ideal"):
        means = summary[name]
        label = "confidence" if name == "baseline" else name
        if means is None:
            table.add_row(label, *["-"] * len(cutoffs))
            continue
        intervals = summary["intervals"][name]
        table.add_row(label, *(f"{means[f'ndcg@{k}']:.4f}" for k in cutoffs))
        table.add_row("", *(_interval(intervals[f"ndcg@{k}"]) for k in cutoffs), style="dim")
    console.print(table)
    console.print("dim rows: bootstrap 95% intervals over groups", style="dim")
    _render_grades(console, summary["grades"])
    _render_overlap(console, summary["training_overlap"], summary["groups"])


def _render_grades(console: Any, judged: dict[str, Any]) -> None:
    if judged.get("source") != "data":
        console.print(
            f"Grades from {judged['source']} ({judged['judgments']:,} judgments): "
            f"{judged['rows_judged']:,} rows judged, {judged['rows_unjudged']:,} unjudged (counted as 0), "
            f"{judged['groups_left_out_unjudged']:,} group(s) with no judged row left out",
            markup=False,
        )


def _render_overlap(console: Any, overlap: dict[str, Any] | None, groups: int) -> None:
    if overlap is None:
        console.print("Overlap with the model's training data: unknown (its meta does not list its groups)")
    elif overlap["left_out"]:
        console.print(
            f"Left out {overlap['groups']:,} group(s) the model was trained or validated on; "
            f"{groups:,} held-out group(s) evaluated"
        )
    elif overlap["groups"]:
        console.print(
            f"[yellow]Warning[/]: {overlap['groups']:,} of these {groups:,} groups overlap the model's "
            f"training data ({overlap['train']:,} trained on, {overlap['valid']:,} validated on), "
            "so the figures flatter it; --holdout-only leaves them out"
        )
    else:
        console.print(f"None of these {groups:,} groups was in the model's training data")


def _interval(bounds: list[float]) -> str:
    return f"{bounds[0]:.3f}-{bounds[1]:.3f}"


_OFF_POLICY_ONLY = (
    "policy",
    "reward",
    "depth",
    "estimator",
    "lambda_",
    "top_k",
    "no_diversity",
    "explore",
    "temperature",
    "epsilon",
    "folds",
)


def _check_off_policy_options(
    ctx: typer.Context,
    data: Path | None,
    policy: LoggedOrConfidence | None,
    explore: ExplorePolicy | None,
    estimators: list[str] | None,
) -> None:
    if data is not None:
        raise typer.BadParameter("--off-policy reads the served lists from the store, not --data")
    for name in ("grades", "holdout_only", "k"):
        if given(ctx, name):
            raise typer.BadParameter(f"--{name.replace('_', '-')} does not apply to --off-policy")
    if policy is not None:
        if given(ctx, "models"):
            raise typer.BadParameter("give the target as --model or as --policy, not both")
        if policy is LoggedOrConfidence.logged:
            for name in ("lambda_", "top_k", "no_diversity", "explore"):
                if given(ctx, name):
                    flag = "--lambda" if name == "lambda_" else f"--{name.replace('_', '-')}"
                    raise typer.BadParameter(f"{flag} does not apply to --policy logged")
    refuse_idle_options(ctx, explore=None if explore is None else explore.value)
    unknown = [name for name in estimators or [] if name not in ESTIMATOR_NAMES]
    if unknown:
        raise typer.BadParameter(
            f"--estimator: unknown {', '.join(unknown)} (choose from {', '.join(ESTIMATOR_NAMES)})"
        )


def _target(
    model: Path,
    policy: LoggedOrConfidence | None,
    lambda_: float,
    top_k: int | None,
    no_diversity: bool,
    explore: ExplorePolicy | None,
    temperature: float | None,
    epsilon: float | None,
    seed: int,
) -> Any:
    from recctl.policy_evaluation import Target

    if policy is LoggedOrConfidence.logged:
        return Target("logged")
    from recctl.exploration import Exploration
    from recctl.ranking import Ranker, RankOptions

    exploration = None
    if explore is not None:
        try:
            exploration = Exploration(explore.value)
            if temperature is not None:
                exploration = replace(exploration, temperature=temperature)
            if epsilon is not None:
                exploration = replace(exploration, epsilon=epsilon)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    rank_options = RankOptions(lambda_=lambda_, top_k=top_k, diversity=not no_diversity, explore=exploration)
    if policy is LoggedOrConfidence.confidence:
        return Target("confidence", Ranker.without_model(), rank_options, seed)
    return Target(str(model), Ranker(model, require_model=True), rank_options, seed)


def _render_off_policy(console: Any, report: dict[str, Any]) -> None:
    from rich.table import Table

    depth = "all slots" if report["depth"] is None else f"the first {report['depth']} slots"
    table = Table(
        title=f"{report['target']}: expected {report['reward']} reward per list over {depth} "
        f"({report['lists']:,} lists, {report['assessments']:,} assessments)",
        title_justify="left",
    )
    for column, justify in (("estimator", "left"), ("value", "right"), ("95% interval", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_column("ESS", justify="right")
    table.add_column("unbiased if")
    logged = report["logged"]
    table.add_row(
        "logged policy", f"{logged['value']:.4f}", _interval([logged["low"], logged["high"]]), "", ""
    )
    for name, result in report["estimators"].items():
        table.add_row(
            name,
            f"{result['value']:.4f}",
            _interval([result["low"], result["high"]]),
            f"{result['ess']:,.0f}",
            result["assumption"].split(":")[0].split(";")[0],
        )
    console.print(table)
    few = [name for name, result in report["estimators"].items() if result["ess"] < LOW_ESS]
    if few:
        console.print(
            f"[yellow]Warning[/]: {', '.join(few)} rest on fewer than {LOW_ESS} effective lists; "
            "their intervals are not to be trusted"
        )
    for name, reason in report["skipped"].items():
        console.print(f"skipped {name}: {reason}", markup=False)
    left_out = {reason: count for reason, count in report["left_out"].items() if count}
    for reason, count in left_out.items():
        console.print(f"left out {count:,} list(s): {reason.replace('_', ' ')}", markup=False)
    console.print("ESS: effective sample size (lists); intervals: bootstrap over assessments", style="dim")
