"""``recctl report``: one self-contained HTML page of the store's window and a model, with plots."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recctl import defaults
from recctl.cli.common import print_json, settings
from recctl.cli.options import (
    LookbackDays,
    MinInteractionsPerSection,
    ModelPath,
    Since,
    Until,
    resolve_window,
)
from recctl.cli.train import json_failures

if TYPE_CHECKING:
    from recctl.report import Report


class ReportFormat(StrEnum):
    html = "html"
    png = "png"


def report_command(
    ctx: typer.Context,
    out: Annotated[
        Path,
        typer.Option(help="The HTML file to write; with --format png, the folder for one PNG per plot."),
    ] = Path("report.html"),
    report_format: Annotated[
        ReportFormat,
        typer.Option("--format", help="html: one self-contained page; png: each plot as a PNG, for slides."),
    ] = ReportFormat.html,
    model: ModelPath = defaults.DEFAULT_MODEL_PATH,
    lambdas: Annotated[
        str,
        typer.Option(
            "--lambda",
            metavar="START:STOP:STEP|L1,L2,...",
            help="The frontier's lambdas (each in 0..1, at most 1,001).",
        ),
    ] = "0:1:0.1",
    lookback_days: LookbackDays = defaults.LOOKBACK_DAYS,
    since: Since = None,
    until: Until = None,
    min_interactions: MinInteractionsPerSection = defaults.MIN_INTERACTIONS,
    resamples: Annotated[int, typer.Option(min=10, help="Bootstrap resamples for the intervals.")] = 200,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print what was written (sections, plots, paths) as JSON on stdout."),
    ] = False,
) -> None:
    """Write one HTML report: the data window and counts, the model against the confidence
    order with intervals, feature importance, the position-bias curve, the lambda frontier,
    engagement over time and per category.

    The page is self-contained: plots are inline SVG, there is no script, and it loads nothing
    (it opens offline; its Content-Security-Policy forbids any request). A section the data
    cannot support (no model, no served lists, a bias curve that cannot be estimated) says why
    instead of failing the report. With --format png, each plot is written to --out/<section>.png.
    """
    from recctl.atomic import why_unwritable
    from recctl.tuning import lambda_grid

    options = settings(ctx)
    try:
        grid = lambda_grid(lambdas)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--lambda") from None
    if report_format == ReportFormat.html:
        if out.is_dir():
            raise typer.BadParameter(
                f"{out} is a directory; name the file, e.g. {out / 'report.html'}", param_hint="--out"
            )
        reason = why_unwritable(out)
    else:
        if out.exists() and not out.is_dir():
            raise typer.BadParameter(
                f"{out} is a file; --format png writes into a folder", param_hint="--out"
            )
        reason = why_unwritable(out / "probe.png")
    if reason is not None:
        raise typer.BadParameter(f"cannot write {out}: {reason}", param_hint="--out")
    window = resolve_window(since, until, lookback_days)
    with json_failures(json_output):
        from recctl.report import build_report

        store = options.open_store(existing=True)
        try:
            with options.console.status("building the report") as status:
                report = build_report(
                    store,
                    window,
                    model,
                    lambdas=grid,
                    min_interactions=min_interactions,
                    resamples=resamples,
                    progress=status.update,
                )
        finally:
            store.close()
        written = _write(report, out, report_format)
    summary = {
        "status": "written",
        "format": report_format.value,
        "out": str(out),
        "files": written,
        **report.as_json(),
    }
    if json_output:
        print_json(summary)
    for section in report.sections:
        if section.missing:
            options.console.print(f"{section.title}: not shown ({section.missing})", markup=False)
    options.console.print(
        f"Report written to {', '.join(written) if report_format == ReportFormat.png else out}", markup=False
    )


def _write(report: Report, out: Path, report_format: ReportFormat) -> list[str]:
    """Write the page (html) or each plot (png); the paths written."""
    from recctl.atomic import write_text_atomically
    from recctl.plots import save
    from recctl.report import render_html

    if report_format == ReportFormat.html:
        write_text_atomically(out, render_html(report))
        return [str(out)]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for key, chart in report.charts().items():
        path = out / f"{key}.png"
        save(chart, path)
        written.append(str(path))
    return written
