"""``recctl tune``: the relevance/diversity frontier of MMR's lambda over a window's lists."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from recctl import defaults
from recctl.cli.common import print_json, settings
from recctl.cli.options import LookbackDays, MinInteractions, ModelPath, Reward, Since, Until, resolve_window
from recctl.cli.train import json_failures

if TYPE_CHECKING:
    from rich.console import Console


LOW_ESS = 30
"""Below this effective sample size an off-policy estimate is flagged."""


class OffPolicyEstimator(StrEnum):
    ips = "ips"
    snips = "snips"
    iips = "iips"
    sniips = "sniips"
    rips = "rips"
    snrips = "snrips"


def tune_command(
    ctx: typer.Context,
    lambdas: Annotated[
        str,
        typer.Option(
            "--lambda",
            metavar="START:STOP:STEP|L1,L2,...",
            help="The lambdas to try (each in 0..1, at most 1,001).",
        ),
    ] = "0:1:0.05",
    model: ModelPath = defaults.DEFAULT_MODEL_PATH,
    top_k: Annotated[
        int | None, typer.Option(min=1, help="Rank only the best K of each list, as rank --top-k.")
    ] = None,
    k: Annotated[
        int | None,
        typer.Option("--k", min=1, help="Relevance is NDCG@k (default 10, or --top-k when smaller)."),
    ] = None,
    grades: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Judge relevance against these grades (recommendation_id, grade 0..4) instead of "
            "the logged labels, as evaluate --grades.",
        ),
    ] = None,
    off_policy: Annotated[
        OffPolicyEstimator | None,
        typer.Option(
            "--off-policy",
            metavar="ESTIMATOR",
            help="Relevance is this estimator's estimate of each lambda's reward per list, from the "
            "logged lists' propensities (randomised logs): ips, snips, iips, sniips, rips, snrips.",
        ),
    ] = None,
    reward: Annotated[Reward, typer.Option(help="With --off-policy: what a slot earns.")] = Reward.click,
    lookback_days: LookbackDays = defaults.LOOKBACK_DAYS,
    since: Since = None,
    until: Until = None,
    min_interactions: MinInteractions = defaults.MIN_INTERACTIONS,
    plot: Annotated[
        Path | None, typer.Option(metavar="PATH", help="Also draw the frontier to PATH (.svg or .png).")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print every lambda's figures as one JSON object on stdout.")
    ] = False,
) -> None:
    """Sweep MMR's lambda: relevance against diversity_discounted over the window's lists.

    Every served list of the window is ranked as rank --lambda L would rank it (the model's
    scores, then MMR). Relevance is NDCG@k against the logged labels (or --grades), or an
    off-policy estimate of the reward per list (--off-policy); diversity is the mean
    diversity_discounted of the ranked lists. A lambda is marked pareto when no other lambda is
    at least as good on both and better on one; the knee suggested is the frontier point
    farthest from the line joining its two ends (both figures scaled to 0..1), where giving up
    relevance starts to buy little diversity.
    """
    from recctl.plots import kind_of
    from recctl.tuning import lambda_grid

    options = settings(ctx)
    try:
        grid = lambda_grid(lambdas)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--lambda") from None
    if k is None:
        k = min(10, top_k) if top_k is not None else 10
    if top_k is not None and k > top_k:
        raise typer.BadParameter(
            f"NDCG@{k} of lists cut to {top_k} items: give --k <= --top-k", param_hint="--k"
        )
    if grades is not None and off_policy is not None:
        raise typer.BadParameter("relevance is --grades or --off-policy, not both", param_hint="--off-policy")
    if plot is not None:
        try:
            kind_of(plot)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--plot") from None
    window = resolve_window(since, until, lookback_days)
    with json_failures(json_output, model_path=model):
        from recctl.evaluation import read_judgments
        from recctl.tuning import tune_store

        judgments = read_judgments(grades) if grades is not None else None
        store = options.open_store(existing=True)
        try:
            with options.console.status("ranking the window's lists at each lambda"):
                report = tune_store(
                    store,
                    window,
                    model,
                    grid,
                    top_k=top_k,
                    k=k,
                    judgments=judgments,
                    off_policy=off_policy.value if off_policy else None,
                    reward=reward.value,
                    min_interactions=min_interactions,
                )
        finally:
            store.close()
        summary = {**report.as_json(), "window": window.as_json()}
        if plot is not None:
            from recctl.plots import frontier_chart, save

            save(frontier_chart(summary["points"], summary["relevance"]), plot)
            summary["plot"] = str(plot)
    if json_output:
        print_json(summary)
    _render(options.console, summary)


def _render(console: Console, summary: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(
        title=f"lambda frontier over {summary['lists']:,} lists (model {summary['model_version']})",
        title_justify="left",
    )
    estimated = "ess" in summary["points"][0]
    extra = ["95% interval", "ESS"] if estimated else []
    for name in ["lambda", summary["relevance"], *extra, "diversity", "pareto", "knee"]:
        table.add_column(name, justify="right")
    for point in summary["points"]:
        estimate = [f"{point['low']:.3f}-{point['high']:.3f}", f"{point['ess']:,.0f}"] if estimated else []
        table.add_row(
            f"{point['lambda']:.2f}",
            f"{point['relevance']:.4f}",
            *estimate,
            f"{point['diversity']:.4f}",
            "yes" if point["pareto"] else "",
            "<- knee" if point["knee"] else "",
            style="bold" if point["knee"] else None,
        )
    console.print(table)
    if estimated and min(point["ess"] for point in summary["points"]) < LOW_ESS:
        console.print(
            f"[yellow]Warning[/]: some estimates rest on an effective sample of fewer than {LOW_ESS} lists: "
            "their intervals are wide and the knee is not to be trusted (an item-level estimator such as "
            "iips or rips, or more randomised lists, helps)"
        )
    console.print(f"Suggested: --lambda {summary['knee']:.2f}", markup=False)
    if "plot" in summary:
        console.print(f"Frontier drawn to {summary['plot']}", markup=False)
