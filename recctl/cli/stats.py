"""``recctl stats``: engagement per recommendation, as a table or for scripts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from recctl.cli import output
from recctl.cli.common import settings
from recctl.cli.options import FilterSince, FilterUntil, Format, check_window
from recctl.cli.output import OutputFormat

if TYPE_CHECKING:
    from collections.abc import Callable

    import polars as pl
    from rich.console import Console

TABLE_LIMIT = 20


class SortField(StrEnum):
    """The metrics of :data:`recctl.stats.METRICS` (listed here so that ``recctl --help`` stays cheap)."""

    total_interactions = "total_interactions"
    view_count = "view_count"
    click_count = "click_count"
    save_count = "save_count"
    share_count = "share_count"
    implementation_count = "implementation_count"
    dismiss_count = "dismiss_count"
    rate_count = "rate_count"
    click_through_rate = "click_through_rate"
    implementation_rate = "implementation_rate"
    avg_label = "avg_label"


def stats_command(
    ctx: typer.Context,
    recommendation_id: Annotated[
        str | None, typer.Argument(help="One recommendation, shown in detail.", show_default=False)
    ] = None,
    since: FilterSince = None,
    until: FilterUntil = None,
    category: Annotated[
        str | None,
        typer.Option(help="Only recommendations of this catalog category (any case); unknown: exit 1."),
    ] = None,
    user: Annotated[str | None, typer.Option(help="Only this user's interactions.")] = None,
    sort: Annotated[
        SortField,
        typer.Option(
            metavar="METRIC",
            help=f"The metric to order by (descending unless --asc): {', '.join(SortField)}.",
        ),
    ] = SortField.total_interactions,
    ascending: Annotated[bool, typer.Option("--asc", help="Order ascending instead.")] = False,
    limit: Annotated[
        int | None,
        typer.Option(
            min=0,
            help=f"Rows to print; 0 = all. Default: {TABLE_LIMIT} for the table, all for json/csv/ndjson.",
            show_default=False,
        ),
    ] = None,
    min_views: Annotated[
        int, typer.Option(min=0, help="Hide recommendations with fewer views than this (noisy rates).")
    ] = 0,
    output_format: Format = OutputFormat.table,
) -> None:
    """Engagement per recommendation: interactions by type, click-through and implementation rates.

    click_through_rate = clicks / views and implementation_rate = implementations / clicks; a rate
    with a zero denominator is null (- in the table). avg_label is the mean stored label (labels
    that are null, as in documents written by the original API, are skipped). All time unless
    --since/--until are given. Category and title come from the catalog when it has them.
    Where served lists (impressions) are stored for the window, impressions (times shown) and
    ctr_per_impression (clicks / impressions) are added.
    --format json prints an array of objects, csv a header line and rows, ndjson one object a line.
    """
    from recctl.stats import recommendation_stats

    check_window(since, until)
    if limit is None and output_format == OutputFormat.table:
        limit = TABLE_LIMIT
    options = settings(ctx)
    store = options.open_store(existing=True)
    try:
        stats = recommendation_stats(
            store,
            since=since,
            until=until,
            category=category,
            user=user,
            recommendation_id=recommendation_id,
            min_views=min_views,
            sort=sort.value,
            descending=not ascending,
            limit=limit + 1 if limit else None,  # one more than shown tells whether there are more
        )
    finally:
        store.close()
    shown = stats.head(limit) if limit else stats
    if output_format != OutputFormat.table:
        output.write_rows(shown, output_format)
    elif stats.is_empty():
        options.console.print("No recommendation matches these filters.")
    elif recommendation_id is not None:
        render_detail(output.table_console(), stats.row(0, named=True))
    else:
        render_table(
            output.table_console(), shown, more=stats.height > shown.height, sort=sort, ascending=ascending
        )


@dataclass(frozen=True)
class _Column:
    header: str
    name: str
    cell: Callable[[Any], str]
    optional: int = 0
    """0: always shown; otherwise shown when it fits, optional columns taken in this order."""

    @property
    def numeric(self) -> bool:
        return self.name not in ("recommendation_id", "category", "title")


_COLUMNS = (
    _Column("recommendation", "recommendation_id", output.text),
    _Column("category", "category", output.text),
    _Column("title", "title", output.text, optional=5),
    _Column("total", "total_interactions", output.count),
    _Column("views", "view_count", output.count),
    _Column("clicks", "click_count", output.count),
    _Column("saves", "save_count", output.count, optional=2),
    _Column("shares", "share_count", output.count, optional=3),
    _Column("impl.", "implementation_count", output.count),
    _Column("dism.", "dismiss_count", output.count, optional=1),
    _Column("CTR", "click_through_rate", output.percent),
    _Column("impl.\nrate", "implementation_rate", output.percent),
    _Column("avg\nlabel", "avg_label", output.decimal),
    _Column("shown", "impressions", output.count, optional=4),
    _Column("CTR /\nshown", "ctr_per_impression", output.percent, optional=4),
)


def render_table(console: Console, stats: pl.DataFrame, *, more: bool, sort: str, ascending: bool) -> None:
    """One line per recommendation: counts and rates right-aligned, ``-`` for null.

    The counts and rates fit 100 characters; the served lists' columns (``shown`` and ``CTR /
    shown``, when impressions are stored) and then the titles show only when the console is wide
    enough for them, and on a narrower console the share, save and dismiss counts go first. Text
    is never wrapped; a category that still does not fit is cut with an ellipsis.
    """
    from rich import box
    from rich.cells import cell_len
    from rich.table import Table

    available = [column for column in _COLUMNS if column.name in stats.columns]  # impressions: if any
    cells = {column.name: [column.cell(value) for value in stats[column.name]] for column in available}
    widths = {
        column.name: max(cell_len(text) for text in [*column.header.split("\n"), *cells[column.name]])
        for column in available
    }
    shown = {column.name for column in available if not column.optional}
    for column in sorted((c for c in available if c.optional), key=lambda c: c.optional):
        # one space between columns: n columns need n - 1
        if sum(widths[name] for name in shown) + widths[column.name] + len(shown) <= console.width:
            shown.add(column.name)
    columns = [column for column in available if column.name in shown]

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=0)
    for column in columns:
        table.add_column(
            column.header,
            justify="right" if column.numeric else "left",
            vertical="bottom",
            no_wrap=True,
            overflow="fold" if column.numeric else "ellipsis",
            min_width=widths[column.name] if column.numeric else None,
            header_style="bold underline" if column.name == sort else "bold",
        )
    for index in range(stats.height):
        table.add_row(*(cells[column.name][index] for column in columns))
    console.print(table)
    order = "ascending" if ascending else "descending"
    cut = "; --limit 0 shows all" if more else ""
    console.print(f"{stats.height:,} recommendations by {sort}, {order}{cut}", style="dim")


def render_detail(console: Console, row: dict[str, Any]) -> None:
    """A panel with every metric of one recommendation and how its rates are made."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(justify="right")
    grid.add_column(style="dim")
    ctr, implementation_rate = row["click_through_rate"], row["implementation_rate"]
    lines = [
        ("category", output.text(row["category"]), ""),
        ("interactions", output.count(row["total_interactions"]), "all types"),
        ("views", output.count(row["view_count"]), ""),
        ("clicks", output.count(row["click_count"]), ""),
        ("implementations", output.count(row["implementation_count"]), ""),
        ("saves", output.count(row["save_count"]), ""),
        ("shares", output.count(row["share_count"]), ""),
        ("dismissals", output.count(row["dismiss_count"]), ""),
        ("ratings", output.count(row["rate_count"]), ""),
        (
            "click-through rate",
            output.percent(ctr),
            f"clicks / views = {row['click_count']:,} / {row['view_count']:,}",
        ),
        (
            "implementation rate",
            output.percent(implementation_rate),
            f"implementations / clicks = {row['implementation_count']:,} / {row['click_count']:,}",
        ),
        ("average label", output.decimal(row["avg_label"]), "over interactions with a label"),
    ]
    if "impressions" in row:
        lines += [
            ("impressions", output.count(row["impressions"]), "times shown in a served list"),
            (
                "CTR per impression",
                output.percent(row["ctr_per_impression"]),
                f"clicks / impressions = {row['click_count']:,} / {row['impressions']:,}",
            ),
        ]
    for line in lines:
        grid.add_row(*line)
    title = Text(row["recommendation_id"], style="bold")
    if row["title"]:
        title.append(f"  {row['title']}", style="")
    console.print(Panel(grid, title=title, title_align="left", expand=False))
