"""``recctl show``: ranked batches (the JSON ``recctl rank`` writes) as a table, for people."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from recctl.cli import output

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.console import Console


def show_command(
    source: Annotated[
        str, typer.Argument(help="rank's output: a JSON file, or '-' / none for stdin.", show_default=False)
    ] = "-",
) -> None:
    """Show ranked batches (what recctl rank writes) as a table: rank, score, category, title.

    Reads one JSON document, or one per line (rank --ndjson). Each batch is printed as a table
    of its recommendations in their ranked order, then its summary: whether the model ranked it,
    the model version, the MMR lambda and the diversity score. A missing score shows as -.
    """
    from recctl.errors import InputError

    if source == "-":
        text = sys.stdin.read()
        where = "stdin"
    else:
        try:
            with open(source, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None
        where = source
    documents = list(_documents(text, where))  # every line checked before anything is printed
    for number, document in documents:
        if not isinstance(document, dict) or not isinstance(document.get("recommendations"), list):
            raise InputError(f"{where}, document {number}: not a ranked batch (no 'recommendations' list)")
    if not documents:
        raise InputError(f"{where}: no ranked batch to show")
    console = output.table_console()
    for number, (_, document) in enumerate(documents):
        if number:
            console.print()
        render_batch(console, document)


def _documents(text: str, where: str) -> Iterator[tuple[int, Any]]:
    """The JSON documents of ``text``: the whole text as one, else one per non-blank line."""
    from recctl.errors import InputError

    try:
        yield 1, json.loads(text)
        return
    except json.JSONDecodeError:
        pass
    lines = [(index, line) for index, line in enumerate(text.splitlines(), 1) if line.strip()]
    for number, (index, line) in enumerate(lines, 1):
        try:
            document = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}, line {index}: invalid JSON: {exc.msg}") from None
        yield number, document


def render_batch(console: Console, document: dict[str, Any]) -> None:
    """One line per recommendation in ranked order under a header, then a line with the summary.

    Numbers always show in full; category and id are cut (with an ellipsis) at 20 and 24
    characters, the title at the console's width.
    """
    from rich.cells import cell_len

    items = [item if isinstance(item, dict) else {} for item in document["recommendations"]]
    rows = [
        (
            _text(item.get("rank", slot)),
            _number(item.get("ml_score"), "+.3f"),
            _number(item.get("confidence_score"), ".2f"),
            _cut(_text(item.get("category")), 20),
            _cut(_text(item.get("recommendation_id")), 24),
            _text(item.get("title")),
        )
        for slot, item in enumerate(items, 1)
    ]
    headers = ("rank", "score", "conf.", "category", "recommendation", "title")
    widths = [max(cell_len(text) for text in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        numbers = [" " * (widths[i] - cell_len(cells[i])) + cells[i] for i in range(3)]
        texts = [cells[i] + " " * (widths[i] - cell_len(cells[i])) for i in (3, 4)]
        return _cut("  ".join([*numbers, *texts, cells[5]]).rstrip(), console.width)

    console.print(line(headers), style="bold")
    for row in rows:
        console.print(line(row))
    summary = document.get("summary")
    if isinstance(summary, dict):
        count = summary.get("count", len(items))
        lambda_ = summary.get("mmr_lambda")
        parts = [
            f"{count} ranked by model {_text(summary.get('model_version'))}"
            if summary.get("ml_ranking_applied")
            else f"{count} in confidence order (no model)",
            "no MMR" if lambda_ is None else f"MMR lambda {_text(lambda_)}",
            f"diversity {_number(summary.get('diversity_score'), '.3f')}",
        ]
        console.print(" · ".join(parts), style="dim")


def _cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, ending in an ellipsis when cut."""
    from rich.cells import cell_len, chop_cells

    if cell_len(text) <= width:
        return text
    return chop_cells(text, max(width - 1, 0))[0] + "…"


def _number(value: Any, spec: str) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, spec)
    return output.NULL


def _text(value: Any) -> str:
    return output.NULL if value is None else str(value)
