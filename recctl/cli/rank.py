"""``recctl rank``: rank a JSON batch (or a stream of them) in a shell pipeline."""

from __future__ import annotations

import io
import os
import queue
import select
import stat
import sys
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from recctl import defaults
from recctl.cli.common import refuse_idle_options, settings
from recctl.cli.options import Epsilon, Explore, ModelPath, Temperature

if TYPE_CHECKING:
    from recctl.rank_process import HelperProcess
    from recctl.ranking import RankedLines, Ranker, RankOptions

READ_BYTES = 1 << 16
CHUNK_BYTES = 8 << 20  # at most this much input is ranked in one go
IN_FLIGHT = 2  # chunks being ranked at once by threads (two cores)
THREADS_BESIDE_HELPER = 1  # once the helper process is up: it and one thread, a core each


class LineErrors(StrEnum):
    skip = "skip"
    inline = "inline"


class Propensities(StrEnum):
    prefix = "prefix"
    marginal = "marginal"


def rank_command(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="A JSON file with the batch; '-' or none: stdin.")] = "-",
    model: ModelPath = defaults.DEFAULT_MODEL_PATH,
    lambda_: Annotated[
        float,
        typer.Option(
            "--lambda", min=0.0, max=1.0, help="MMR trade-off: 1 = relevance only, 0 = diversity only."
        ),
    ] = defaults.DEFAULT_LAMBDA,
    top_k: Annotated[int | None, typer.Option(min=1, help="Return only the best K recommendations.")] = None,
    diversify_depth: Annotated[
        int,
        typer.Option(min=1, help="Slots MMR fills when there is no --top-k (the rest follow by score)."),
    ] = defaults.DIVERSIFY_DEPTH,
    no_diversity: Annotated[
        bool, typer.Option("--no-diversity", help="Order by score only, no MMR.")
    ] = False,
    explain: Annotated[
        bool, typer.Option(help="Add each recommendation's top feature contributions.")
    ] = False,
    ndjson: Annotated[
        bool, typer.Option(help="One batch per line in, one result per line out, flushed as each is done.")
    ] = False,
    errors: Annotated[
        LineErrors,
        typer.Option(
            help="With --ndjson, a bad line is skipped (reported on stderr) or also answered inline "
            'by {"error": ..., "line": N}.'
        ),
    ] = LineErrors.skip,
    seed: Annotated[
        int | None,
        typer.Option(help="Derive missing request_ids from this seed and the line number (reproducible)."),
    ] = None,
    require_model: Annotated[
        bool,
        typer.Option(
            help="Exit 1 instead of falling back to confidence order when there is no usable model."
        ),
    ] = False,
    log: Annotated[
        Path | None,
        typer.Option(
            "--log",
            metavar="PATH",
            help="Append each served list to PATH as an impression record (NDJSON, for "
            "'recctl ingest impressions'), written before the list itself.",
        ),
    ] = None,
    explore: Explore = None,
    temperature: Temperature = defaults.DEFAULT_TEMPERATURE,
    epsilon: Epsilon = defaults.DEFAULT_EPSILON,
    propensities: Annotated[
        Propensities,
        typer.Option(
            help="With --explore: prefix (each item's prefix_propensity, exact) or marginal (also its "
            "propensity of being at its slot: exact up to 12 items, else Monte Carlo, 2,000 draws)."
        ),
    ] = Propensities.prefix,
    interleave: Annotated[
        Path | None,
        typer.Option(
            metavar="OTHER_MODEL",
            help="Team-draft interleaving of --model's list (team A) and this model's (team B); "
            "each item gets its team.",
        ),
    ] = None,
) -> None:
    """Rank recommendations with the model and MMR diversity; JSON in, JSON out.

    Input: {"assessment": {...}, "recommendations": [...], ...} or a bare array of recommendations.
    Each recommendation gains ml_score and rank; everything else passes through; a summary is added.
    Without a usable model the batch is ranked by confidence_score (one warning on stderr).
    With --log, a list is logged under the batch's assessment.assessment_id, else the assessment_id
    all its recommendations share; a batch with neither is answered as a bad line (it could not be
    linked to its clicks), and an empty list is not logged (nothing was shown).
    With --explore, each list is drawn from its own random stream, seeded by --seed and its
    request_id: the same request gets the same list, however the input is chunked.
    """
    if ndjson:
        _polars_threads_for_stream()
    options = settings(ctx)
    if errors == LineErrors.inline and not ndjson:
        raise typer.BadParameter("--errors inline answers bad lines of a stream: it needs --ndjson")
    if propensities == Propensities.marginal and explore is None:
        raise typer.BadParameter(
            "--propensities marginal: a deterministic order has no propensities to give; add --explore"
        )
    refuse_idle_options(ctx, explore=None if explore is None else explore.value, diversity=not no_diversity)
    if interleave is not None and explore is not None:
        raise typer.BadParameter(
            "--interleave merges two deterministic lists: it cannot be used with --explore"
        )
    log_file = _open_log(log) if log is not None else None  # an unwritable --log fails before any work
    stream = _open(source)
    chosen = {  # RankOptions' fields as plain values (see rank_options)
        "lambda_": lambda_,
        "top_k": top_k,
        "diversity": not no_diversity,
        "explain": explain,
        "diversify_depth": diversify_depth,
        "seed": seed,
        "log": log_file is not None,
        "explore": None
        if explore is None
        else (explore.value, temperature, epsilon, propensities == Propensities.marginal),
        "interleave": interleave,
    }
    from recctl.rank_process import RankerRecipe

    errors_inline = errors == LineErrors.inline
    recipe = RankerRecipe(model, require_model, interleave)
    helper = None
    if ndjson and _large_file(stream):  # start the helper process now: it loads as this one does
        from recctl.rank_process import HelperProcess

        helper = HelperProcess(recipe, chosen, errors_inline=errors_inline)
    try:
        from recctl.errors import InputError
        from recctl.jsontext import BatchError, dumps, parse_json
        from recctl.rank_process import rank_options
        from recctl.ranking import RankedLines, impression_line

        # (an unusable interleaving model fails here, before any work)
        ranker = recipe.build(warn=lambda reason: typer.echo(f"warning: {reason}", err=True))
        how = rank_options(chosen)
        if not ndjson:
            try:
                result = ranker.rank([parse_json(stream.read())], how)[0]
                logged = impression_line(result) if log_file is not None and isinstance(result, dict) else b""
            except BatchError as exc:
                result = exc
            if isinstance(result, BatchError):
                raise InputError(str(result))
            _write(RankedLines(dumps(result) + b"\n", [], logged), log_file)
            return
        failures = _rank_stream(
            stream, ranker, how, errors_inline=errors_inline, log_file=log_file, helper=helper
        )
    finally:
        if helper is not None:
            helper.close()
    if failures:
        if not options.quiet:
            typer.echo(f"Error: {failures} line(s) could not be ranked; the others were written", err=True)
        raise typer.Exit(1)


def _large_file(stream: IO[bytes]) -> bool:
    """Whether ``stream`` is a regular file with more than two chunks still to read: then a helper
    process will be wanted (see :func:`_rank_stream`), and is best started at once."""
    try:
        status = os.fstat(stream.fileno())
        left = status.st_size - stream.tell()
    except (OSError, ValueError, io.UnsupportedOperation):
        return False
    return stat.S_ISREG(status.st_mode) and left > 2 * CHUNK_BYTES


def _polars_threads_for_stream() -> None:
    """One polars thread per ranking worker: a stream ranks ``IN_FLIGHT`` chunks at once, one per
    core, and polars' own pool (a thread per core) on top would oversubscribe the cores (measured:
    about 10% more CPU per batch). Polars reads this when it is first imported, which a fresh
    ``recctl rank`` has not done yet; a value the caller set is kept."""
    if "polars" not in sys.modules:
        os.environ.setdefault("POLARS_MAX_THREADS", "1")


@dataclass
class _Chunk:
    """Lines of a stream in order: waiting (no ``future`` yet), or being ranked by a thread or by
    the helper process."""

    first_line: int
    lines: list[bytes]
    future: Future[RankedLines] | None = None
    in_helper: bool = False

    def busy(self) -> bool:
        return self.future is not None and not self.future.done()


def _rank_stream(
    stream: IO[bytes],
    ranker: Ranker,
    options: RankOptions,
    *,
    errors_inline: bool,
    log_file: IO[bytes] | None = None,
    helper_allowed: bool = True,
    helper: HelperProcess | None = None,
) -> int:
    """Rank NDJSON batches as they arrive; returns the number of lines that failed.

    Chunks of lines (everything that has arrived, see :func:`_line_chunks`) are ranked two at a
    time by threads: parsing and building a chunk's documents holds the GIL, while polars and
    LightGBM release it, so on two cores one chunk's Python work overlaps the other's frames. When
    a chunk waits for both threads (a fast producer), a helper process
    (:class:`recctl.rank_process.HelperProcess`) is started; once it is up, it and one thread
    rank a chunk each, a core each with no lock between them. A helper that dies has its chunk
    ranked here, and no other is started. Results are written in input order as soon as each is
    ready; at most ``IN_FLIGHT + 2`` chunks are held (raw lines only while they wait).

    ``helper``: one started already (from the model's path, for a large input file); it is used
    once it is up if it loaded the same models as ``ranker``, else it is stopped and the stream
    goes on as if it had never been started.
    """
    from recctl.rank_process import HelperProcess, collect_rarely

    collect_rarely()
    # LightGBM: one thread per scoring call, the other core ranks the other chunk.
    ranker.score_in_one_thread()
    # Hand the GIL over more often (default 5 ms): a worker coming back from polars or LightGBM
    # then waits less for the other worker's Python code.
    sys.setswitchinterval(0.001)
    events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    slots = threading.Semaphore(IN_FLIGHT + 2)

    def read() -> None:
        try:
            for chunk in _line_chunks(stream):
                slots.acquire()
                events.put(("chunk", chunk))
            events.put(("end", None))
        except BaseException as exc:  # handed to the main thread, which reports it
            events.put(("error", exc))

    def wake(_: Future[Any]) -> None:
        events.put(("done", None))

    threading.Thread(target=read, name="recctl-rank-reader", daemon=True).start()
    pending: deque[_Chunk] = deque()
    models: tuple[str | None, ...] = ()  # ranker.models (hashes them): only once a helper is started
    early = helper is not None
    if helper is not None:
        helper.ready.add_done_callback(wake)
    failures = 0
    reading = True
    with ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="recctl-rank") as pool:

        def on_thread(chunk: _Chunk) -> None:
            chunk.future = pool.submit(
                ranker.rank_lines, chunk.lines, chunk.first_line, options, errors_inline=errors_inline
            )
            chunk.in_helper = False
            chunk.future.add_done_callback(wake)

        try:
            while reading or pending:
                kind, payload = events.get()
                if kind == "chunk":
                    pending.append(_Chunk(*payload))
                elif kind == "end":
                    reading = False
                elif kind == "error":
                    raise payload
                if helper is not None and not models:
                    models = ranker.models
                if helper is not None and helper.failed(models):
                    helper.close()
                    helper = None
                    # One started from the model's path may have found another model there (the
                    # file was replaced): a copy of this process's ranker may still be started.
                    helper_allowed, early = helper_allowed and early, False
                helper_up = helper is not None and helper.serves(models)
                for chunk in pending:
                    if chunk.future is not None:
                        continue
                    if helper_up and not any(c.in_helper and c.busy() for c in pending):
                        assert helper is not None
                        chunk.future = helper.submit(chunk.lines, chunk.first_line)
                        chunk.in_helper = True
                        chunk.future.add_done_callback(wake)
                    elif sum(not c.in_helper and c.busy() for c in pending) < (
                        THREADS_BESIDE_HELPER if helper_up else IN_FLIGHT
                    ):
                        on_thread(chunk)
                    else:  # a backlog: the threads alone do not keep up
                        if helper is None and helper_allowed:
                            helper = HelperProcess(ranker, options, errors_inline=errors_inline)
                            helper.ready.add_done_callback(wake)
                        break
                while pending and pending[0].future is not None and pending[0].future.done():
                    chunk = pending[0]
                    assert chunk.future is not None
                    if chunk.in_helper and chunk.future.exception() is not None and _broken(chunk.future):
                        on_thread(chunk)  # the helper died (killed?): its chunk is ranked here
                        helper_allowed = False
                        break
                    failures += _write(chunk.future.result(), log_file)
                    pending.popleft()
                    slots.release()
                if helper is not None and not helper_allowed:
                    helper.close()
                    helper = None
        finally:
            for chunk in pending:
                if chunk.future is not None:
                    chunk.future.cancel()
            if helper is not None:
                helper.close()
    return failures


def _broken(future: Future[Any]) -> bool:
    """The helper process died (killed, out of memory) before it gave this chunk back."""
    from concurrent.futures.process import BrokenProcessPool

    return isinstance(future.exception(), BrokenProcessPool)


def _write(chunk: RankedLines, log_file: IO[bytes] | None = None) -> int:
    """Report a chunk's bad lines on stderr, append its impressions to ``log_file`` (flushed
    first: a list the caller receives is always logged), write its results and flush; returns the
    bad lines."""
    if log_file is not None and chunk.impressions:
        log_file.write(chunk.impressions)
        log_file.flush()
    for error in chunk.errors:
        typer.echo(f"Error: {error}", err=True)
    if chunk.output:
        binary = getattr(sys.stdout, "buffer", None)  # absent when stdout is replaced by a text stream
        if binary is None:
            sys.stdout.write(chunk.output.decode("utf-8"))
        else:
            sys.stdout.flush()  # text written before goes first
            binary.write(chunk.output)
        sys.stdout.flush()
    return len(chunk.errors)


def _open_log(path: Path) -> IO[bytes]:
    """``path`` opened for appending (created if missing); exit 1 with one line when it cannot be."""
    from recctl.errors import RecctlError

    try:
        return open(path, "ab")
    except OSError as exc:
        raise RecctlError(f"--log {path}: cannot append to it: {exc.strerror or exc}") from None


def _open(source: str) -> IO[bytes]:
    from recctl.errors import cannot_open

    if source == "-":
        return sys.stdin.buffer
    try:
        return open(source, "rb")
    except OSError as exc:
        raise cannot_open(source, exc) from None


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
