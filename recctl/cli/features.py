"""``recctl features``: the feature registry."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer


class RegistryFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def features_command(
    output_format: Annotated[
        RegistryFormat, typer.Option("--format", help="table for people, json or csv for scripts.")
    ] = RegistryFormat.table,
) -> None:
    """List every model feature with its group and a one-line meaning."""
    import sys

    from recctl.features import FEATURE_SET_VERSION, registry_table

    registry = registry_table()
    if output_format == RegistryFormat.json:
        sys.stdout.write(registry.write_json() + "\n")
    elif output_format == RegistryFormat.csv:
        sys.stdout.write(registry.write_csv())
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{registry.height} features ({FEATURE_SET_VERSION})", title_justify="left")
        for column in registry.columns:
            table.add_column(column, overflow="fold")
        for row in registry.iter_rows():
            table.add_row(*row)
        Console().print(table)
