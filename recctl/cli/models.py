"""``recctl models show PATH``: what a model bundle is, from its meta."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from recctl.cli.common import print_json, settings
from recctl.cli.train import json_failures

if TYPE_CHECKING:
    from rich.console import Console

models_app = typer.Typer(help="Look at model bundles.", no_args_is_help=True)


@models_app.command("show")
def show_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The model file (its meta is <name>.meta.json beside it).")],
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print the whole meta, with model_path, as one JSON object on stdout."),
    ] = False,
) -> None:
    """Show a model bundle on stdout: version, status, data window, size of the training set, metrics
    against the confidence order, position correction, features, top features and parameters.

    The model file and its meta are checked as rank and evaluate check them: a missing,
    truncated or foreign file is exit 1.
    """
    from recctl.model import load_bundle

    settings(ctx)
    with json_failures(json_output, model_path=path):
        bundle = load_bundle(path)
    meta = {"model_path": str(path), **bundle.meta}
    if json_output:
        print_json(meta)
        return
    from rich.console import Console

    _render(Console(highlight=False), meta)  # the table is this command's data: stdout


def _render(console: Console, meta: dict[str, Any]) -> None:
    from rich.table import Table

    facts = Table(title=f"Model {meta['model_path']}", title_justify="left", show_header=False)
    facts.add_column("what", style="bold")
    facts.add_column("value", overflow="fold")
    window = meta.get("time_window") or {}
    groups = meta.get("groups") or {}
    debias = meta.get("debias") or {}
    features = meta.get("feature_names") or []
    rows = [
        ("version", meta.get("model_version")),
        ("status", meta.get("status")),
        ("created", meta.get("created_at")),
        ("data", meta.get("data_source")),
        ("window", f"{window.get('since') or 'open'} .. {window.get('until') or 'open'}" if window else None),
        ("examples", _count(meta.get("examples"))),
        (
            "groups",
            f"{_count(groups.get('train'))} train / {_count(groups.get('valid'))} validation"
            if groups
            else None,
        ),
        ("split", meta.get("split")),
        ("boosting rounds", meta.get("best_iteration")),
        ("splits", _count(meta.get("splits"))),
        ("position correction", debias.get("method")),
        ("features", f"{len(features)}" + _excluded(meta.get("excluded_features"))),
        ("feature set", meta.get("feature_set_version")),
        ("label policy", meta.get("label_policy_hash")),
        (
            "libraries",
            ", ".join(f"{name} {version}" for name, version in (meta.get("library_versions") or {}).items()),
        ),
    ]
    for name, value in rows:
        if value not in (None, ""):
            facts.add_row(name, str(value))
    console.print(facts)
    metrics, baseline = meta.get("metrics") or {}, meta.get("baseline") or {}
    if metrics:
        table = Table(title="NDCG (model / confidence order)", title_justify="left")
        table.add_column("split")
        names = sorted(
            {name for values in metrics.values() for name in values}, key=lambda n: int(n.split("@")[1])
        )
        for name in names:
            table.add_column(name, justify="right")
        for part, values in metrics.items():
            base = baseline.get(part) or {}
            table.add_row(part, *(f"{values[name]:.4f} / {_fmt(base.get(name))}" for name in names))
        console.print(table)
    top = meta.get("top_features") or []
    if top:
        console.print(
            "Top features (gain): " + ", ".join(f"{name} {gain:,.0f}" for name, gain in top[:8]), markup=False
        )
    params = meta.get("params") or {}
    if params:
        console.print(
            "Parameters: " + ", ".join(f"{key}={value}" for key, value in sorted(params.items())),
            markup=False,
        )


def _count(value: Any) -> str | None:
    return f"{value:,}" if isinstance(value, int) else None


def _excluded(names: list[str] | None) -> str:
    return f" ({len(names)} left out: {', '.join(names)})" if names else ""


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
