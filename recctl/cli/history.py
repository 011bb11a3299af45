"""``recctl history``: one user's engagement summary and recent interactions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from recctl import defaults
from recctl.cli import output
from recctl.cli.common import print_json, settings
from recctl.cli.options import FilterSince, FilterUntil, Format, check_window
from recctl.cli.output import OutputFormat

if TYPE_CHECKING:
    import polars as pl
    from rich.console import Console


def history_command(
    ctx: typer.Context,
    user_id: Annotated[str, typer.Argument(help="The user to summarise.", show_default=False)],
    limit: Annotated[
        int, typer.Option(min=0, help="How many of the most recent interactions to list; 0 = all.")
    ] = defaults.HISTORY_LIMIT,
    since: FilterSince = None,
    until: FilterUntil = None,
    output_format: Format = OutputFormat.table,
) -> None:
    """One user's engagement summary and most recent interactions, newest first.

    The summary: interactions by type, category preferences (interactions per catalog category),
    implementation_rate (implementations / clicks; null without clicks) and avg_engagement (the
    mean non-null label). --format json prints one object, the summary plus "recent_interactions";
    csv and ndjson print the recent interactions, one row each starting with user_id, with the
    summary on stderr.
    """
    from recctl.stats import user_history

    check_window(since, until)
    options = settings(ctx)
    store = options.open_store(existing=True)
    try:
        summary, recent = user_history(store, user_id, since=since, until=until, limit=limit or None)
    finally:
        store.close()
    if output_format == OutputFormat.json:
        print_json({**summary, "recent_interactions": output.json_rows(recent)})
    elif output_format != OutputFormat.table:
        output.write_rows(recent, output_format)
        render_summary(options.console, summary)
    else:
        console = output.table_console()
        render_summary(console, summary)
        render_recent(console, recent, total=summary["total_interactions"])


def render_summary(console: Console, summary: dict[str, Any]) -> None:
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    types = summary["type_counts"]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    rows = {
        "implementation rate": f"{output.percent(summary['implementation_rate'])}  "
        f"({types['implement']:,} implementations / {types['click']:,} clicks)",
        "avg engagement": f"{output.decimal(summary['avg_engagement'])}  (mean label)",
        "by type": _counts(types),
        "by category": _counts(summary["category_preferences"]) or output.NULL,
    }
    for name, value in rows.items():
        grid.add_row(name, Text(value))  # Text: a category name is data, never markup
    title = Text(summary["user_id"], style="bold")
    title.append(f"  {summary['total_interactions']:,} interactions", style="")
    console.print(Panel(grid, title=title, title_align="left", expand=False))


def _counts(counts: dict[str, int]) -> str:
    return " · ".join(f"{name} {number:,}" for name, number in counts.items())


def render_recent(console: Console, recent: pl.DataFrame, *, total: int) -> None:
    from rich import box
    from rich.table import Table

    if recent.is_empty():
        return
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        padding=0,
        title=f"most recent {recent.height:,} of {total:,} interactions",
        title_justify="left",
    )
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("recommendation", no_wrap=True)
    table.add_column("category", no_wrap=True, overflow="ellipsis")
    table.add_column("type", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("label", justify="right", no_wrap=True)
    for row in recent.iter_rows(named=True):
        table.add_row(
            f"{row['timestamp']:%Y-%m-%d %H:%M:%S}",
            row["recommendation_id"],
            output.text(row["category"]),
            row["interaction_type"],
            output.NULL if row["interaction_value"] is None else f"{row['interaction_value']:g}",
            output.decimal(row["label"]),
        )
    console.print(table)
