"""``recctl sample``: generate a synthetic, realistic data set (DESIGN §10)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recctl.cli.common import print_json, settings


def sample_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Directory to write the three NDJSON files into.")] = Path("sample_data"),
    assessments: Annotated[
        int, typer.Option(min=1, help="How many assessments to simulate (about 100 interactions each).")
    ] = 300,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives byte-identical files.")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")] = False,
) -> None:
    """Simulate users reacting to ranked recommendations and write the data set as NDJSON."""
    from recctl.sample import generate_sample

    options = settings(ctx)
    summary = generate_sample(out, assessments=assessments, seed=seed)
    if json_output:
        print_json(summary.as_json())
    options.console.print(str(summary), markup=False)
