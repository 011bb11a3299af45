"""``recctl experiment``: A/B tests and team-draft interleaving, analysed from the served lists."""

from __future__ import annotations

import math
import sys
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from recctl import defaults
from recctl.cli import output
from recctl.cli.common import print_json, settings
from recctl.cli.options import AttributionHours, Labels, check_window, parse_time

if TYPE_CHECKING:
    from rich.console import Console

    from recctl.experiment import ExperimentReport, InterleavingReport

METRIC_NAMES = {
    "ctr": "CTR",
    "implementation_rate": "impl. rate",
    "mean_label": "mean label",
    "diversity_discounted": "diversity",
}


class ExperimentFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def parse_split(text: str | None) -> dict[str, float] | None:
    """``--expected-split A=50,B=50`` as {name: weight}: a usage error unless every part is
    NAME=WEIGHT with a positive weight and no name twice."""
    if text is None:
        return None
    split: dict[str, float] = {}
    for part in (piece.strip() for piece in text.split(",")):
        name, sep, weight = part.partition("=")
        name = name.strip()
        try:
            value = float(weight)
        except ValueError:
            value = math.nan
        if not sep or not name or not math.isfinite(value) or value <= 0:
            raise typer.BadParameter(
                f"{part!r} is not NAME=WEIGHT with a positive weight (like A=50,B=50)",
                param_hint="--expected-split",
            )
        if name in split:
            raise typer.BadParameter(f"variant {name!r} is named twice", param_hint="--expected-split")
        split[name] = value
    if len(split) < 2:
        raise typer.BadParameter("name two or more variants (like A=50,B=50)", param_hint="--expected-split")
    return split


def experiment_command(
    ctx: typer.Context,
    since: Annotated[
        datetime | None,
        typer.Option(
            parser=parse_time,
            metavar="TIME",
            help="Only lists served at or after this time (ISO-8601; no zone = UTC). Default: all.",
        ),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(
            parser=parse_time,
            metavar="TIME",
            help="Only lists served before this time (ISO-8601; no zone = UTC). Default: all.",
        ),
    ] = None,
    control: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="The variant the others are compared with (default: 'control' if there is one, else "
            "the first by name).",
        ),
    ] = None,
    expected_split: Annotated[
        str | None,
        typer.Option(
            metavar="A=50,B=50",
            help="The intended share of users per variant (weights, normalised) for the sample-ratio "
            "check. Default: equal shares.",
        ),
    ] = None,
    interleaving: Annotated[
        bool,
        typer.Option(
            "--interleaving",
            help="Analyse team-draft interleaved lists instead (items with a team): wins, losses, "
            "ties, the preference and a sign test.",
        ),
    ] = False,
    output_format: Annotated[
        ExperimentFormat, typer.Option("--format", help="table for people; json or csv for scripts.")
    ] = ExperimentFormat.table,
    resamples: Annotated[
        int, typer.Option(min=100, help="Bootstrap resamples (of users) for the 95% intervals.")
    ] = defaults.BOOTSTRAP_RESAMPLES,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    labels: Labels = None,
    attribution_hours: AttributionHours = defaults.ATTRIBUTION_HOURS,
) -> None:
    """Analyse an online experiment from the served lists (impressions) and their feedback.

    A/B (the default): per variant (the impression's variant, else the interactions'
    context.variant) the lists, users, ctr (clicked items / items shown), implementation_rate
    (implemented items / items shown), mean_label (mean item label) and diversity_discounted (of
    each list in its served order, averaged over lists), each with a 95% bootstrap interval
    clustered by user; every other variant against --control: the difference and relative lift
    with their intervals and a p-value that agrees with the interval (the 95% interval excludes 0
    exactly when p < 0.05; p is never reported below 1/resamples). A sample-ratio-mismatch check
    (chi-squared on users against --expected-split) is flagged at p < 0.001.

    --interleaving: per team-draft list, the clicks on each team's items decide a win for team A,
    a loss or a tie; the preference (wins + ties/2) / (wins + losses + ties) - 0.5 with a
    user-clustered interval, and the sign test (binomial, ties left out).

    Exit 3 when the window has no list with a variant, only one variant, or (interleaving) no
    interleaved list with a click; exit 1 when --control or --expected-split does not fit the
    variants found.
    """
    from recctl.experiment import analyse_ab, analyse_interleaving, list_outcomes, served_items_from_store
    from recctl.labels import load_policy

    check_window(since, until)
    split = parse_split(expected_split)
    if interleaving and (control is not None or split is not None):
        raise typer.BadParameter("--control and --expected-split are for A/B tests, not --interleaving")
    options = settings(ctx)
    policy = load_policy(labels)
    store = options.open_store(existing=True)
    try:
        with options.console.status("reading impressions and interactions"):
            items, catalog, counts = served_items_from_store(
                store, since=since, until=until, attribution_hours=attribution_hours, policy=policy
            )
    finally:
        store.close()
    if items.is_empty():
        from recctl.errors import InsufficientDataError

        raise InsufficientDataError("no served lists (impressions) in the window")
    report: ExperimentReport | InterleavingReport
    if interleaving:
        report = analyse_interleaving(items, resamples=resamples, seed=seed)
    else:
        report = analyse_ab(
            list_outcomes(items, catalog),
            control=control,
            expected_split=split,
            resamples=resamples,
            seed=seed,
        )
    document = {**report.as_json(), **counts}
    if output_format == ExperimentFormat.json:
        print_json(document)
    elif output_format == ExperimentFormat.csv:
        _write_csv(report)
    elif interleaving:
        _render_interleaving(output.table_console(), document)
    else:
        _render_ab(output.table_console(), document)
    if counts["unlinked_interactions"] and output_format == ExperimentFormat.table:
        options.console.print(
            f"{counts['unlinked_interactions']:,} of {counts['interactions']:,} interactions are not "
            "linked to a served list and do not count",
            markup=False,
        )


# -- csv --------------------------------------------------------------------------------------------
def _write_csv(report: ExperimentReport | InterleavingReport) -> None:
    import polars as pl

    from recctl.experiment import ExperimentReport

    if isinstance(report, ExperimentReport):
        rows = _ab_rows(report)
    else:
        document = report.as_json()
        rows = [
            {
                "team_a": report.teams[0],
                "team_b": report.teams[1],
                **{key: document[key] for key in ("lists", "users", "wins", "losses", "ties", "no_clicks")},
                "preference": report.preference.value,
                "low": report.preference.low,
                "high": report.preference.high,
                "p_value": report.sign_test_p_value,
                "winner": report.winner,
            }
        ]
    sys.stdout.write(pl.DataFrame(rows, infer_schema_length=None).write_csv())
    sys.stdout.flush()


def _ab_rows(report: ExperimentReport) -> list[dict[str, Any]]:
    """One tidy table: a row per (variant, metric), per comparison, and the SRM check."""
    empty = dict.fromkeys(("control", "relative_lift", "relative_low", "relative_high", "p_value", "flag"))
    rows: list[dict[str, Any]] = []
    for name, summary in report.variants.items():
        for metric, estimate in summary.metrics.items():
            rows.append(
                {
                    "row": "variant",
                    "variant": name,
                    "metric": metric,
                    **estimate.as_json(),
                    "lists": summary.lists,
                    "users": summary.users,
                    **empty,
                }
            )
    for comparison in report.comparisons:
        rows.append(
            {
                "row": "comparison",
                "variant": comparison.variant,
                "metric": comparison.metric,
                **comparison.difference.as_json(),
                "lists": None,
                "users": None,
                **empty,
                "control": comparison.control,
                "relative_lift": comparison.relative_lift.value,
                "relative_low": comparison.relative_lift.low,
                "relative_high": comparison.relative_lift.high,
                "p_value": comparison.p_value,
            }
        )
    rows.append(
        {
            "row": "srm",
            "variant": None,
            "metric": "users",
            "value": report.srm.statistic,
            "low": None,
            "high": None,
            "lists": None,
            "users": sum(report.srm.users.values()),
            **empty,
            "p_value": report.srm.p_value,
            "flag": report.srm.flag,
        }
    )
    return rows


# -- tables -----------------------------------------------------------------------------------------
def _cell(metric: str) -> Any:
    return output.percent if metric in ("ctr", "implementation_rate") else output.decimal


def _range(low: float | None, high: float | None, cell: Any) -> str:
    return output.NULL if low is None or high is None else f"{cell(low)} .. {cell(high)}"


def _p(value: float | None, resamples: int) -> str:
    if value is None:
        return output.NULL
    return f"<{1 / resamples:.2g}" if value <= 1.0 / resamples else f"{value:.2g}"


def _render_ab(console: Console, document: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    from recctl.experiment import METRICS

    control = document["control"]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0), title_justify="left",
                  title="Per variant, 95% intervals clustered by user")  # fmt: skip
    for header, justify in (("variant", "left"), ("lists", "right"), ("users", "right"),
                            ("metric", "left"), ("value", "right"), ("95% interval", "right")):  # fmt: skip
        table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for name, summary in document["variants"].items():
        for number, metric in enumerate(METRICS):
            estimate, cell = summary[metric], _cell(metric)
            first = number == 0
            table.add_row(
                (name + (" (control)" if name == control else "")) if first else "",
                output.count(summary["lists"]) if first else "",
                output.count(summary["users"]) if first else "",
                METRIC_NAMES[metric],
                cell(estimate["value"]),
                _range(estimate["low"], estimate["high"], cell),
                end_section=number == len(METRICS) - 1,
            )
    console.print(table)
    comparisons = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0), title_justify="left",
                        title=f"Against {control}: difference and relative lift, 95% intervals")  # fmt: skip
    for header, justify in (("variant", "left"), ("metric", "left"), ("diff.", "right"),
                            ("95% interval", "right"), ("lift", "right"), ("95% interval", "right"),
                            ("p", "right")):  # fmt: skip
        comparisons.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in document["comparisons"]:
        cell = _cell(row["metric"])
        comparisons.add_row(
            row["variant"],
            METRIC_NAMES[row["metric"]],
            cell(row["difference"]),
            _range(row["low"], row["high"], cell),
            output.percent(row["relative_lift"]),
            _range(row["relative_low"], row["relative_high"], output.percent),
            _p(row["p_value"], document["resamples"]),
        )
    console.print(comparisons)
    srm = document["srm"]
    users = ", ".join(
        f"{name} {count:,} (expected {srm['expected'][name]:.0%})" for name, count in srm["users"].items()
    )
    verdict = (
        f"MISMATCH (p < {srm['threshold']:g}): the assignment or the logging is broken; the "
        "comparisons cannot be trusted"
        if srm["flag"]
        else f"no mismatch (flagged at p < {srm['threshold']:g})"
    )
    console.print(f"Sample ratio: users {users}; chi-squared p = {srm['p_value']:.3g}: {verdict}")
    if document["lists_without_variant"]:
        console.print(f"{document['lists_without_variant']:,} lists name no variant and are left out")
    if document["users_in_several_variants"]:
        console.print(f"{document['users_in_several_variants']:,} users are in more than one variant")


def _render_interleaving(console: Console, document: dict[str, Any]) -> None:
    first, second = document["teams"]
    preference = document["preference"]
    lines = [
        f"Team-draft interleaving: {document['lists']:,} lists, {document['users']:,} users",
        f"clicks: {first} {document['clicks'][first]:,}, {second} {document['clicks'][second]:,}",
        f"{first} wins {document['wins']:,}, loses {document['losses']:,}, ties {document['ties']:,}; "
        f"{document['no_clicks']:,} lists without clicks",
        f"preference for {first}: {output.decimal(preference['value'])}, 95% interval "
        f"{_range(preference['low'], preference['high'], output.decimal)} (clustered by user; "
        f"-0.5 .. 0.5, > 0 favours {first})",
        f"sign test (wins against losses) p = {document['sign_test']['p_value']:.3g}",
        f"winner: {document['winner'] or 'none at 95%'}",
    ]
    for line in lines:
        console.print(line)
