"""``recctl sample``: generate a synthetic, realistic data set."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recctl import defaults
from recctl.cli.common import print_json, settings

if TYPE_CHECKING:
    from rich.console import Console

DEFAULT_OUT = Path("recctl-sample")


def sample_command(
    ctx: typer.Context,
    out: Annotated[
        Path,
        typer.Option(
            help="Directory to write the three NDJSON files into: a new or empty one, unless --force."
        ),
    ] = DEFAULT_OUT,
    assessments: Annotated[
        int, typer.Option(min=1, help="How many assessments to simulate (about 20 interactions each).")
    ] = defaults.SAMPLE_ASSESSMENTS,
    seed: Annotated[
        int, typer.Option(min=0, help="Random seed: the same seed gives byte-identical files.")
    ] = 0,
    start: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="First day of the simulated window (UTC).")
    ] = defaults.SAMPLE_START,
    days: Annotated[int, typer.Option(min=1, help="Length of the simulated window in days.")] = (
        defaults.SAMPLE_DAYS
    ),
    compress: Annotated[
        bool, typer.Option("--gzip", help="Write .ndjson.gz files instead of plain NDJSON.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Write into --out even if it is not empty (replacing the three files)."),
    ] = False,
) -> None:
    """Simulate users reacting to ranked recommendations and write the data set as NDJSON.

    Users have hidden preferences; the old confidence_score is a noisy view of them and set the
    display order, so position bias and a learnable signal are both in the logs.
    """
    from recctl.errors import OutputExistsError
    from recctl.sample import check_output_dir, generate_sample

    options = settings(ctx)
    try:
        check_output_dir(out, overwrite=force)
    except OutputExistsError as exc:
        hint = " (pass --force to write into it, or choose another --out)" if out.is_dir() else ""
        raise OutputExistsError(f"--out {exc}{hint}") from None
    bar = _Bar(options.console) if options.console.is_terminal and assessments >= 5_000 else None
    summary = generate_sample(
        out,
        assessments=assessments,
        seed=seed,
        start=start,
        days=days,
        compress=compress,
        progress=bar.update if bar else None,
        overwrite=force,
    )
    if bar:
        bar.stop()
    if json_output:
        print_json(summary.as_json())
    options.console.print(
        f"{summary.assessments:,} assessments, {summary.recommendations:,} recommendations, "
        f"{summary.interactions:,} interactions ({summary.users:,} users) -> {out}",
        markup=False,
    )


class _Bar:
    def __init__(self, console: Console) -> None:
        from rich.progress import Progress

        self._progress = Progress(console=console, transient=True)
        self._task = self._progress.add_task("simulating", total=None)
        self._progress.start()

    def update(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total)

    def stop(self) -> None:
        self._progress.stop()
