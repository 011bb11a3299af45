"""``recctl ingest``: validate records and put them in the store."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recctl.cli.common import print_json, settings

if TYPE_CHECKING:
    from rich.console import Console

    from recctl.ingestion import IngestSummary

PROGRESS_MIN_BYTES = 8 << 20
BATCH_ROWS_ENV = "RECCTL_INGEST_BATCH_ROWS"


class Kind(StrEnum):
    interactions = "interactions"
    recommendations = "recommendations"
    assessments = "assessments"
    impressions = "impressions"


class InputFormat(StrEnum):
    ndjson = "ndjson"
    json = "json"
    csv = "csv"
    parquet = "parquet"


def ingest_command(
    ctx: typer.Context,
    kind: Annotated[
        Kind,
        typer.Argument(
            help="What the input holds: interactions, recommendations, assessments or impressions.",
            metavar="KIND",
            show_default=False,
        ),
    ],
    files: Annotated[
        list[str] | None,
        typer.Argument(
            help="Input files (.ndjson .jsonl .json .csv .tsv .parquet, optionally .gz); '-' or none: stdin."
        ),
    ] = None,
    input_format: Annotated[
        InputFormat | None,
        typer.Option(
            "--format", help="Force the input format instead of recognising it from the content and name."
        ),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            help="Where rejected rows go (NDJSON). Default: a timestamped file under the store's rejects/."
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Write nothing if any row is invalid (exit 1).")
    ] = False,
    labels: Annotated[
        Path | None,
        typer.Option(help="Label policy TOML file overriding the default labels (see the README)."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")
    ] = False,
) -> None:
    """Validate interaction logs, served lists (impressions) or catalog records and store them.

    Every row is accounted for: read = inserted + duplicates (for catalogs: updated + unchanged)
    + rejected; an impression (one served list, its items as a JSON list, or JSON text in CSV) is
    one record however many items it has, and a request_id seen before is a duplicate; a catalog
    row identical to the stored one is unchanged, and is not written again.
    A row of another kind (a recommendations file ingested as assessments) is rejected as "looks
    like a recommendation row", so the wrong file cannot overwrite a catalog; an ingest whose
    every row was rejected exits 1.
    Rejected rows go to the rejects file with their line number (or row index) and the reason.
    Valid rows are written in batches of 250,000 (environment variable RECCTL_INGEST_BATCH_ROWS
    to change it): an ingest that dies part-way keeps its finished batches, and running it again
    stores exactly the rest.
    """
    from recctl.errors import StrictModeError
    from recctl.ingestion import ingest, total_size
    from recctl.labels import load_policy

    options = settings(ctx)
    batch_rows = _batch_rows()
    policy = load_policy(labels)
    store = options.open_store(create=True)
    sources = files or ["-"]
    size = total_size(sources)
    progress_bar = _progress(options.console, size) if options.console.is_terminal else None
    try:
        if progress_bar is not None:
            progress_bar.start()
        summary = ingest(
            store,
            kind.value,
            sources,
            format=input_format.value if input_format else None,
            policy=policy,
            rejects_path=rejects,
            strict=strict,
            progress=progress_bar.advance_to if progress_bar is not None else None,
            batch_rows=batch_rows,
        )
    except StrictModeError as exc:
        raise StrictModeError(f"--strict: {exc}") from None
    finally:
        if progress_bar is not None:
            progress_bar.stop()
        store.close()
    if json_output:
        print_json(summary.as_json())
    _report(options.console, summary, store.description)
    if summary.read and summary.rejected == summary.read:
        from recctl.errors import InputError

        reason, count = summary.reasons_by_count()[0]
        why = f": {reason}" if count == summary.rejected else f", {count:,} as: {reason}"
        raise InputError(
            f"all {summary.rejected:,} rows were rejected{why}; nothing was stored "
            f"(rejects in {summary.rejects_path})"
        )


def _batch_rows() -> int:
    """Rows per store write: ``RECCTL_INGEST_BATCH_ROWS``, else the library's default."""
    from recctl.ingestion import BATCH_ROWS

    text = os.environ.get(BATCH_ROWS_ENV, "").strip()
    if not text:
        return BATCH_ROWS
    try:
        rows = int(text)
    except ValueError:
        rows = 0
    if rows < 1:
        raise typer.BadParameter(f"{BATCH_ROWS_ENV} must be a positive integer, got {text!r}")
    return rows


class _Progress:
    """A rich progress bar over input bytes (shown for large inputs on a terminal only)."""

    def __init__(self, console: Console, total: int | None) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("ingesting"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("ingest", total=total)

    def start(self) -> None:
        self._progress.start()

    def stop(self) -> None:
        self._progress.stop()

    def advance_to(self, done: int) -> None:
        self._progress.update(self._task, completed=done)


def _progress(console: Console, size: int | None) -> _Progress | None:
    if size is not None and size < PROGRESS_MIN_BYTES:
        return None
    return _Progress(console, size)


def _report(console: Console, summary: IngestSummary, where: str) -> None:
    from rich.table import Table

    from recctl.records import KINDS

    if KINDS[summary.kind].log:
        stored_before = [("duplicates", summary.duplicates)]
    else:
        stored_before = [("updated", summary.updated), ("unchanged", summary.unchanged)]
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name, value in (
        ("read", summary.read),
        ("inserted", summary.inserted),
        *stored_before,
        ("rejected", summary.rejected),
    ):
        table.add_row(name, f"{value:,}")
    console.print(f"[bold]{summary.kind}[/] from {', '.join(summary.sources)} -> {where}")
    for source in summary.empty_sources:
        console.print(f"warning: {'stdin' if source == '-' else source} is empty (no records)", markup=False)
    console.print(table)
    if summary.reject_reasons:
        console.print("top reject reasons:")
        for reason, count in summary.reasons_by_count()[:5]:
            console.print(f"  {count:>8,}  {reason}", markup=False)
        console.print(f"rejected rows written to {summary.rejects_path}", markup=False)
