"""Row output for the commands that print tables of data (stats, history), defined once.

``table`` is a rich table for people; ``json`` (one array of objects), ``csv`` (a header line, then
rows) and ``ndjson`` (one object per line) are plain text for scripts: every row, every column, no
markup. In the machine formats a null is JSON ``null`` / an empty CSV cell, a float keeps its full
precision, and a datetime is ISO-8601 UTC with milliseconds (``2025-09-01T08:10:56.874Z``).

Cheap to import (``recctl.cli`` loads it): polars and rich are imported by the functions.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl
    from rich.console import Console

NULL = "-"
"""How the table shows a missing value (a rate with no denominator, a title not in the catalog)."""


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    ndjson = "ndjson"


def write_rows(frame: pl.DataFrame, output_format: OutputFormat) -> None:
    """``frame`` on stdout as ``json``, ``csv`` or ``ndjson`` (the table is the command's own)."""
    plain = _plain(frame)
    if output_format == OutputFormat.json:
        text = plain.write_json() + "\n"
    elif output_format == OutputFormat.ndjson:
        text = plain.write_ndjson()
    elif output_format == OutputFormat.csv:
        text = plain.write_csv()
    else:
        raise ValueError(f"write_rows writes json, csv or ndjson, not {output_format}")
    sys.stdout.write(text)
    sys.stdout.flush()


def json_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """The rows as JSON-ready dicts, values as :func:`write_rows` writes them (to embed in a document)."""
    import json

    rows: list[dict[str, Any]] = json.loads(_plain(frame).write_json())
    return rows


def _plain(frame: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    def iso_utc(name: str, dtype: pl.Datetime) -> pl.Expr:
        column = pl.col(name)
        utc = (
            column.dt.replace_time_zone("UTC")
            if dtype.time_zone is None
            else column.dt.convert_time_zone("UTC")
        )
        return utc.dt.to_string("%Y-%m-%dT%H:%M:%S%.3fZ")

    return frame.with_columns(
        iso_utc(name, dtype) for name, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime)
    )


# -- table cells ------------------------------------------------------------------------------------
def table_console() -> Console:
    """The stdout console tables are printed on (its width is the terminal's, 80 when piped).

    Markup is off, so text from the data (a title with ``[brackets]``) prints as it is.
    """
    from rich.console import Console

    return Console(highlight=False, markup=False, emoji=False)


def count(value: int | None) -> str:
    return NULL if value is None else f"{value:,}"


def percent(value: float | None) -> str:
    return NULL if value is None else f"{value:.1%}"


def decimal(value: float | None, places: int = 3) -> str:
    return NULL if value is None else f"{value:.{places}f}"


def text(value: str | None) -> str:
    return NULL if value is None else value
