"""``recctl train``: LightGBM LambdaRank on the store or a learning-to-rank file, with CI gates."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from recctl.cli.common import settings
from recctl.cli.options import (
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

if TYPE_CHECKING:
    from rich.console import Console

    from recctl.training import TrainingData


class SplitChoice(StrEnum):
    time = "time"
    group_random = "group-random"


def train_command(
    ctx: typer.Context,
    data: Data = None,
    label_col: LabelCol = "grade",
    group_col: GroupCol = "query_id",
    feature_cols: FeatureCols = None,
    model: ModelPath = Path("models/recommendation_ranker.txt"),
    min_interactions: MinInteractions = 100,
    lookback_days: LookbackDays = 90,
    since: Since = None,
    until: Until = None,
    labels: Labels = None,
    validation_split: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share of query groups held out for validation.")
    ] = 0.2,
    split: Annotated[
        SplitChoice | None,
        typer.Option(
            help="time: newest groups validate (default with event times); group-random: seeded groups."
        ),
    ] = None,
    num_boost_round: Annotated[int, typer.Option(min=1, help="Maximum boosting rounds.")] = 500,
    early_stopping_rounds: Annotated[
        int,
        typer.Option(
            min=0, help="Stop after this many rounds without a better validation NDCG@10; 0 = never."
        ),
    ] = 50,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed for LightGBM and the group-random split (default: LightGBM's own)."),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="LightGBM parameter KEY=VALUE (repeatable; lists as a,b,c).")
    ] = None,
    min_ndcg: Annotated[
        float | None, typer.Option(help="Quality gate: validation NDCG@10 must reach this, else exit 4.")
    ] = None,
    fail_below_baseline: Annotated[
        bool, typer.Option(help="Quality gate: exit 4 when the model does not beat the confidence order.")
    ] = False,
    evaluate_only: Annotated[
        bool, typer.Option(help="Do not train: report the current model on this data (gates still apply).")
    ] = False,
    json_output: Annotated[
        str | None, typer.Option("--json", help="Write the JSON summary to PATH, or '-' for stdout.")
    ] = None,
) -> None:
    """Train the LambdaRank ranker and write the model bundle (model text + .meta.json).

    Exit 3 when there is too little data, 4 when a quality gate fails (the new model is then
    written as *.rejected.txt and the current one is left as it was).
    """
    from recctl.errors import InsufficientDataError, QualityGateError
    from recctl.training import TrainOptions, parse_param

    options = settings(ctx)
    try:
        overrides = dict(parse_param(text) for text in param or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--param") from None
    if validation_split == 0 and (min_ndcg is not None or fail_below_baseline):
        raise typer.BadParameter("quality gates need a validation split", param_hint="--validation-split")
    train_options = TrainOptions(
        num_boost_round=num_boost_round,
        early_stopping_rounds=early_stopping_rounds,
        validation_split=validation_split,
        split=split.value if split else None,
        seed=seed,
        params=overrides,
    )
    console = options.console
    console.rule("[bold]recctl train")
    try:
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
            num_features=None,
        )
    except InsufficientDataError as exc:
        # CI reads the JSON as well as the exit code: say what happened there too.
        _write_json(
            {"status": "insufficient_data", "message": str(exc), "model_path": str(model)}, json_output
        )
        raise
    console.print(
        f"Retrieved {training.retrieved:,} raw training examples from {training.source}", markup=False
    )
    console.print(
        f"Prepared {len(training.data.grades):,} training examples "
        f"in {len(training.data.group_sizes):,} query groups"
    )
    if evaluate_only:
        summary = _evaluate_only(console, training, train_options, model, min_ndcg, fail_below_baseline)
    else:
        try:
            summary = _train(console, training, train_options, model, min_ndcg, fail_below_baseline)
        except InsufficientDataError as exc:
            _write_json(
                {"status": "insufficient_data", "message": str(exc), "model_path": str(model)}, json_output
            )
            raise
    _write_json(summary, json_output)
    if summary["status"] == "gate_failed":
        raise QualityGateError("; ".join(summary["gate_failures"]))


def _train(
    console: Console,
    training: TrainingData,
    train_options: Any,
    model_path: Path,
    min_ndcg: float | None,
    fail_below_baseline: bool,
) -> dict[str, Any]:
    from recctl.model import rejected_path_for, save_bundle
    from recctl.training import gate_failures, model_meta, train_model

    with console.status("training"):
        result = train_model(training.data, train_options)
    failures = gate_failures(
        result.metrics, result.baseline, min_ndcg=min_ndcg, fail_below_baseline=fail_below_baseline
    )
    status = "gate_failed" if failures else "trained"
    model_text = result.model_text()
    meta = model_meta(result, training, model_text=model_text, status=status, gate_failures=failures)
    target = rejected_path_for(model_path) if failures else model_path
    written, _meta_path = save_bundle(model_text, meta, target)
    _report(
        console,
        result.metrics,
        result.baseline,
        result.top_features,
        f"Boosting rounds: {result.best_iteration} ({result.split} split: {result.train_groups:,} train / "
        f"{result.valid_groups:,} validation groups)",
    )
    if failures:
        console.print(
            f"[bold red]Quality gate failed[/]: model written to {written}; {model_path} left as it was"
        )
    else:
        console.print(f"[bold green]Model saved[/] to {written} (version {meta['model_version']})")
    return _summary(
        status,
        training,
        best_iteration=result.best_iteration,
        model_path=written,
        model_version=meta["model_version"],
        metrics=result.metrics,
        baseline=result.baseline,
        top_features=[list(item) for item in result.top_features],
        split=result.split,
        gate_failures=failures,
    )


def _evaluate_only(
    console: Console,
    training: TrainingData,
    train_options: Any,
    model_path: Path,
    min_ndcg: float | None,
    fail_below_baseline: bool,
) -> dict[str, Any]:
    from recctl.model import load_bundle
    from recctl.training import existing_model_metrics, gate_failures

    bundle = load_bundle(model_path, expected_features=training.data.feature_names)
    metrics, baseline, split = existing_model_metrics(bundle.booster(), training.data, train_options)
    failures = gate_failures(metrics, baseline, min_ndcg=min_ndcg, fail_below_baseline=fail_below_baseline)
    _report(console, metrics, baseline, None, f"Model {model_path} (version {bundle.version}), {split} split")
    return _summary(
        "gate_failed" if failures else "evaluated",
        training,
        best_iteration=bundle.meta.get("best_iteration"),
        model_path=model_path,
        model_version=bundle.version,
        metrics=metrics,
        baseline=baseline,
        top_features=bundle.meta.get("top_features", []),
        split=split,
        gate_failures=failures,
    )


def _summary(status: str, training: TrainingData, *, model_path: Path, **figures: Any) -> dict[str, Any]:
    """The ``--json`` summary (the documented keys, plus model_version, split and gate_failures)."""
    return {
        "status": status,
        "examples": len(training.data.grades),
        "groups": len(training.data.group_sizes),
        "model_path": str(model_path),
        **figures,
    }


def _report(
    console: Console,
    metrics: dict[str, dict[str, float]],
    baseline: dict[str, dict[str, float]] | None,
    top_features: list[tuple[str, float]] | None,
    headline: str,
) -> None:
    from rich.table import Table

    table = Table(title="NDCG", title_justify="left")
    table.add_column("groups")
    for name in ("model @5", "model @10", "confidence @5", "confidence @10"):
        table.add_column(name, justify="right")
    for part, values in metrics.items():
        reference = (baseline or {}).get(part, {})
        table.add_row(
            part,
            f"{values['ndcg@5']:.4f}",
            f"{values['ndcg@10']:.4f}",
            *(f"{reference[k]:.4f}" if k in reference else "-" for k in ("ndcg@5", "ndcg@10")),
        )
    console.print(table)
    console.print(headline, markup=False)
    if top_features:
        console.print("Top features by gain:")
        for rank, (name, gain) in enumerate(top_features, start=1):
            console.print(f"  {rank:>2}. {name}: {gain:,.2f}", markup=False)


def _write_json(summary: dict[str, Any], destination: str | None) -> None:
    if destination is None:
        return
    from recctl.cli.common import print_json

    if destination == "-":
        print_json(summary)
        return
    from recctl.errors import InputError

    path = Path(destination)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2) + "\n")
    except OSError as exc:
        raise InputError(f"cannot write the --json summary to {path}: {exc.strerror or exc}") from None
