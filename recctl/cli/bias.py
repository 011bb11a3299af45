"""``recctl bias``: how likely each slot of a list is to be examined, relative to the first."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from recctl import defaults
from recctl.cli.common import print_json, settings
from recctl.cli.options import LookbackDays, Since, Until, resolve_window
from recctl.cli.train import json_failures

if TYPE_CHECKING:
    import polars as pl
    from rich.console import Console

    from recctl.dataset import TimeWindow
    from recctl.stores.base import Store


class BiasMethod(StrEnum):
    auto = "auto"
    direct = "direct"
    regression_em = "regression-em"


def bias_command(
    ctx: typer.Context,
    lookback_days: LookbackDays = defaults.LOOKBACK_DAYS,
    since: Since = None,
    until: Until = None,
    attribution_hours: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="An interaction without a request_id belongs to the newest list that showed its "
            "recommendation at most this many hours before it.",
        ),
    ] = defaults.ATTRIBUTION_HOURS,
    method: Annotated[
        BiasMethod,
        typer.Option(
            help="direct: from randomised lists; regression-em: EM over the click model; auto: direct "
            "when most shown items come from a randomised policy."
        ),
    ] = BiasMethod.auto,
    max_position: Annotated[
        int | None, typer.Option(min=1, help="The last slot to estimate (default: the last slot shown).")
    ] = None,
    resamples: Annotated[
        int,
        typer.Option(min=1, help="Bootstrap resamples of the assessments for the 95% intervals."),
    ] = defaults.BOOTSTRAP_RESAMPLES,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Save the curve as JSON here (for train --bias).")] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the curve and its summary as one JSON object on stdout.")
    ] = False,
) -> None:
    """Estimate the examination probability of each slot, relative to slot 0, from the served
    lists (impressions) and the clicks linked to them.

    Clicks follow the position-based model: P(click) = examination(slot) x relevance(item). On
    lists from a randomised policy the estimate is direct: inverse-propensity weighted clicks per
    slot, and each recommendation's click rate at a slot against its own at slot 0, mixed by
    their variances; the curve stops where fewer than 30 clicks are left to compare. Otherwise it
    is regression EM over the model. A click is a linked click, save, implement, share or rate;
    views and dismissals are not. Intervals are
    bootstrap 95% intervals over assessments (regression EM refits the model on each, so it
    draws at most 200 resamples, and on large logs as few as 50).

    When every recommendation was always shown at the same slot, position is confounded with
    relevance and no curve can be estimated: exit 3, log randomised lists. Exit 3 too when the
    window has no shown items or no clicks.
    """
    from recctl.bias import estimate_bias

    options = settings(ctx)
    window = resolve_window(since, until, lookback_days)
    if out is not None:
        _check_out(out)
    with json_failures(json_output):
        store = options.open_store(existing=True)
        try:
            with options.console.status("reading impressions and interactions"):
                log, counts = click_log_from_store(store, window, attribution_hours=attribution_hours)
        finally:
            store.close()
        with options.console.status("estimating"):
            curve = estimate_bias(
                log, method=method.value, max_position=max_position, resamples=resamples, seed=seed
            )
        if out is not None:
            curve.save(out)
    summary = {"status": "estimated", **curve.as_json(), **counts, "window": window.as_json()}
    if out is not None:
        summary["out"] = str(out)
    if json_output:
        print_json(summary)
    _render(options.console, summary)


def click_log_from_store(
    store: Store, window: TimeWindow, *, attribution_hours: float
) -> tuple[pl.DataFrame, dict[str, int]]:
    """The click log of the lists shown in ``window``, and how many interactions were read and
    left unlinked. Interactions are read up to ``attribution_hours`` past the window's end, so a
    click on a list shown just before the end still counts."""
    from recctl.attribution import linked_window
    from recctl.bias import click_log

    impressions, linked, _, counts = linked_window(
        store,
        window.since,
        window.until,
        attribution_hours=attribution_hours,
    )
    return click_log(impressions, linked), counts


def _check_out(out: Path) -> None:
    """A usage error unless a file can be written at ``out``: not a directory, and the nearest
    existing folder on the way accepts a new file (tried with a probe, removed at once)."""
    if out.is_dir():
        raise typer.BadParameter(
            f"{out} is a directory; name the file to write, e.g. {out / 'bias.json'}", param_hint="--out"
        )
    from recctl.atomic import why_unwritable

    reason = why_unwritable(out)
    if reason is not None:
        raise typer.BadParameter(f"cannot write {out}: {reason}", param_hint="--out")


def _render(console: Console, summary: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(
        title=f"Examination by slot ({summary['method']}; "
        f"{summary['lists']:,} lists, {summary['clicks']:,} clicks)",
        title_justify="left",
    )
    for name in ("slot", "examination", "95% interval", "shown"):
        table.add_column(name, justify="right")
    for row in summary["positions"]:
        table.add_row(
            str(row["position"]),
            _number(row["examination"]),
            f"{_number(row['low'])}-{_number(row['high'])}",
            f"{row['impressions']:,}",
        )
    console.print(table)
    console.print(
        f"interactions read {summary['interactions']:,}, "
        f"not linked to a shown list {summary['unlinked_interactions']:,}",
        markup=False,
    )
    if summary["confounded"]:
        console.print(
            "[yellow]Warning[/]: position may be confounded with relevance in this log", highlight=False
        )
    if summary["note"]:
        console.print(summary["note"], markup=False)
    if "out" in summary:
        console.print(f"-> {summary['out']}", markup=False, soft_wrap=True)


def _number(value: float | None) -> str:
    return "inf" if value is None else f"{value:.3f}"  # None: a bound the resamples could not fix
