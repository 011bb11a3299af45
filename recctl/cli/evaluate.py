"""``recctl evaluate``: NDCG@k of a model against the confidence, random and ideal orders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from recctl import defaults
from recctl.cli.common import print_json, settings
from recctl.cli.options import (
    AttributionHours,
    Data,
    FeatureCols,
    GroupCol,
    LabelCol,
    Labels,
    LookbackDays,
    MinInteractions,
    ModelPath,
    Since,
    Until,
    training_data,
)
from recctl.cli.train import json_failures


def evaluate_command(
    ctx: typer.Context,
    data: Data = None,
    label_col: LabelCol = "grade",
    group_col: GroupCol = "query_id",
    feature_cols: FeatureCols = None,
    model: ModelPath = defaults.DEFAULT_MODEL_PATH,
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
    from recctl.evaluation import evaluate, read_judgments
    from recctl.model import load_bundle

    options = settings(ctx)
    try:
        cutoffs = tuple(sorted({int(part) for part in k.split(",") if part.strip()}))
    except ValueError:
        raise typer.BadParameter(f"--k wants integers like 1,3,5,10, got {k!r}") from None
    if not cutoffs or min(cutoffs) < 1:
        raise typer.BadParameter("--k values must be >= 1")
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
    judged = summary["grades"]
    if judged.get("source") != "data":
        console.print(
            f"Grades from {judged['source']} ({judged['judgments']:,} judgments): "
            f"{judged['rows_judged']:,} rows judged, {judged['rows_unjudged']:,} unjudged (counted as 0), "
            f"{judged['groups_left_out_unjudged']:,} group(s) with no judged row left out",
            markup=False,
        )
    _render_overlap(console, summary["training_overlap"], summary["groups"])


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
