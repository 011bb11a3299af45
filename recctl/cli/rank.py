"""``recctl rank``: rank a JSON batch (or a stream of them) in a shell pipeline."""

from __future__ import annotations

import io
import json
import os
import select
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from recctl.cli.common import settings
from recctl.cli.options import ModelPath

READ_BYTES = 1 << 16
CHUNK_BYTES = 4 << 20  # at most this much input is ranked in one go


def rank_command(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="A JSON file with the batch; '-' or none: stdin.")] = "-",
    model: ModelPath = Path("models/recommendation_ranker.txt"),
    lambda_: Annotated[
        float,
        typer.Option(
            "--lambda", min=0.0, max=1.0, help="MMR trade-off: 1 = relevance only, 0 = diversity only."
        ),
    ] = 0.7,
    top_k: Annotated[int | None, typer.Option(min=1, help="Return only the best K recommendations.")] = None,
    no_diversity: Annotated[
        bool, typer.Option("--no-diversity", help="Order by score only, no MMR.")
    ] = False,
    explain: Annotated[
        bool, typer.Option(help="Add each recommendation's top feature contributions.")
    ] = False,
    ndjson: Annotated[
        bool, typer.Option(help="One batch per line in, one result per line out, flushed as each is done.")
    ] = False,
    require_model: Annotated[
        bool,
        typer.Option(
            help="Exit 1 instead of falling back to confidence order when there is no usable model."
        ),
    ] = False,
) -> None:
    """Rank recommendations with the model and MMR diversity; JSON in, JSON out.

    Input: {"assessment": {...}, "recommendations": [...], ...} or a bare array of recommendations.
    Each recommendation gains ml_score and rank; everything else passes through; a summary is added.
    Without a usable model the batch is ranked by confidence_score (one warning on stderr).
    """
    from recctl.errors import InputError
    from recctl.ranking import BatchError, Ranker, RankOptions, parse_json

    options = settings(ctx)
    ranker = Ranker(model, require_model=require_model)
    if ranker.warning:
        typer.echo(f"warning: {ranker.warning}", err=True)
    rank_options = RankOptions(lambda_=lambda_, top_k=top_k, diversity=not no_diversity, explain=explain)
    stream = _open(source)
    if not ndjson:
        try:
            result = ranker.rank([parse_json(stream.read())], rank_options)[0]
        except BatchError as exc:
            result = exc
        if isinstance(result, BatchError):
            raise InputError(str(result))
        _emit([result])
        return
    failures = 0
    for first_line, lines in _line_chunks(stream):
        documents: list[Any] = []
        numbers: list[int] = []
        outcome: dict[int, Any] = {}
        for offset, line in enumerate(lines):
            number = first_line + offset
            if not line.strip():
                continue
            try:
                documents.append(parse_json(line))
                numbers.append(number)
            except BatchError as exc:
                outcome[number] = exc
        for number, result in zip(numbers, ranker.rank(documents, rank_options), strict=True):
            outcome[number] = result
        ready = []
        for number in sorted(outcome):
            result = outcome[number]
            if isinstance(result, BatchError):
                failures += 1
                typer.echo(f"Error: line {number}: {result}", err=True)
            else:
                ready.append(result)
        _emit(ready)
    if failures:
        if not options.quiet:
            typer.echo(f"Error: {failures} line(s) could not be ranked; the others were written", err=True)
        raise typer.Exit(1)


def _open(source: str) -> IO[bytes]:
    from recctl.errors import InputError

    if source == "-":
        return sys.stdin.buffer
    try:
        return open(source, "rb")
    except OSError as exc:
        raise InputError(f"cannot open {source}: {exc.strerror or exc}") from None


def _line_chunks(stream: IO[bytes]) -> Iterator[tuple[int, list[bytes]]]:
    """Whole lines as they arrive: every complete line already read is handed over at once.

    Reading with ``os.read`` returns as soon as any data is there, so a slow producer gets each
    answer right away and a fast one gets lines processed many at a time.
    """
    try:
        descriptor: int | None = stream.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        descriptor = None  # an in-memory stream (tests)
    pending = b""
    line_number = 1
    while True:
        block = os.read(descriptor, READ_BYTES) if descriptor is not None else stream.read(READ_BYTES)
        if not block:
            break
        parts = [block]
        size = len(block)
        # Take whatever else has already arrived (without waiting), so a fast producer gets its
        # lines ranked many at a time while a slow one still gets each answer at once.
        while descriptor is not None and size < CHUNK_BYTES and select.select([descriptor], [], [], 0)[0]:
            more = os.read(descriptor, READ_BYTES)
            if not more:
                break
            parts.append(more)
            size += len(more)
        pending += b"".join(parts)
        cut = pending.rfind(b"\n")
        if cut < 0:
            continue
        lines = pending[:cut].split(b"\n")
        pending = pending[cut + 1 :]
        yield line_number, lines
        line_number += len(lines)
    if pending:
        yield line_number, [pending]


def _emit(documents: list[dict[str, Any]]) -> None:
    if not documents:
        return
    out = sys.stdout
    out.write("".join(json.dumps(document, ensure_ascii=False) + "\n" for document in documents))
    out.flush()
