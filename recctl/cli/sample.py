"""``recctl sample``: generate a synthetic, realistic data set."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recctl import defaults
from recctl.cli.common import print_json, settings

if TYPE_CHECKING:
    from rich.console import Console

DEFAULT_OUT = Path("recctl-sample")
#: The Plackett-Luce temperature when none is given (recctl.sample.DEFAULT_TEMPERATURE, kept
#: here so --help does not import the simulator).
DEFAULT_TEMPERATURE = 0.2


class Explore(StrEnum):
    plackett_luce = "plackett-luce"


def sample_command(
    ctx: typer.Context,
    out: Annotated[
        Path,
        typer.Option(
            help="Directory to write the four NDJSON files into (assessments, recommendations, "
            "interactions, impressions): a new or empty one, unless --force."
        ),
    ] = DEFAULT_OUT,
    assessments: Annotated[
        int,
        typer.Option(
            min=1, help="How many assessments to simulate (about 28 interactions and 2.5 served lists each)."
        ),
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
    explore: Annotated[
        Explore | None,
        typer.Option(
            help="Serve each session a randomised list: plackett-luce draws it from "
            "softmax(confidence_score / --temperature) and logs exact propensities. "
            "Default: every list in confidence order (propensity 1.0)."
        ),
    ] = None,
    temperature: Annotated[
        float,
        typer.Option(
            help="Plackett-Luce temperature on confidence_score (0.3..0.98): lower stays closer "
            "to the confidence order; at 0.2 a confidence gap of 0.1 makes an item 1.65 times likelier.",
        ),
    ] = DEFAULT_TEMPERATURE,
    examination: Annotated[
        str,
        typer.Option(
            help="How likely users are to examine each slot: default ((1+p)^-0.6), steep "
            "((1+p)^-1.2), cliff (1.0 at slots 0-3, 0.1 after) or comma-separated per-slot "
            "probabilities (the last one holds for later slots)."
        ),
    ] = "default",
    truth: Annotated[
        Path | None,
        typer.Option(
            help="Also write the hidden truth: per recommendation its utility and a 0..4 grade "
            "(NDJSON, usable as evaluate --grades), and the examination curve beside it "
            "(PATH without .ndjson + .examination.json)."
        ),
    ] = None,
    compress: Annotated[
        bool, typer.Option("--gzip", help="Write .ndjson.gz files instead of plain NDJSON.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Write into --out even if it is not empty (replacing the four files)."),
    ] = False,
) -> None:
    """Simulate users reacting to served lists of recommendations and write the data set as NDJSON.

    Users have hidden preferences; the old confidence_score is a noisy view of them and set the
    display order (or, with --explore, the centre of a randomised one), so position bias and a
    learnable signal are both in the logs. Impressions record every served list; views are what
    the frontend logs (every item on the first screen, with the page's dwell time); how likely a
    user was to look at a slot is never logged, only --truth tells it.
    """
    from recctl.errors import OutputExistsError
    from recctl.sample import ExaminationCurve, check_output_dir, generate_sample

    options = settings(ctx)
    if not temperature > 0:
        raise typer.BadParameter(f"must be > 0, got {temperature}", param_hint="--temperature")
    try:
        curve = ExaminationCurve.parse(examination)
    except ValueError as exc:
        raise typer.BadParameter(str(exc).removeprefix("examination: "), param_hint="--examination") from None
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
        explore=explore.value if explore else None,
        temperature=temperature,
        examination=curve,
        truth=truth,
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
        f"{summary.interactions:,} interactions, {summary.impressions:,} served lists "
        f"({summary.users:,} users, {summary.policy}) -> {out}" + (f"; truth -> {truth}" if truth else ""),
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
