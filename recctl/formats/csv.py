"""CSV input, through Arrow's streaming CSV reader.

Every cell is text (a blank cell is missing); the delimiter is sniffed from the header line. Arrow
reads ahead on a thread of its own, which :class:`_ArrowFeed` keeps bounded and shuts down
cleanly; it also repairs invalid UTF-8, which Arrow would refuse a whole block for, so a bad row
costs that row and not the file.
"""

from __future__ import annotations

import atexit
import codecs
import csv
import io
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, cast

import polars as pl

from recctl.errors import InputError, first_line
from recctl.formats.chunks import BOM, Nested, RawChunk, chunk_frame, rows_as_json, with_flattened_folded

CSV_BLOCK_BYTES = 16 << 20
"""Arrow parses CSV in blocks of this size: a CSV row longer than this cannot be read."""
_REPLACEMENT = "\ufffd"
CSV_DELIMITERS = (",", "\t", ";")
"""The CSV delimiters recctl recognises from the header line, the first one on a tie."""


def read_csv(
    stream: IO[bytes], source: str, chunk_rows: int, progress: Callable[[], int], nested: Nested
) -> Iterator[RawChunk]:
    """CSV rows as records: every cell text (blank = missing), positions are 1-based data rows.

    Bad bytes cost a row, not the file: a row holding invalid UTF-8 is a record whose ``error`` is
    ``invalid UTF-8`` (in a file with invalid UTF-8, every row holding U+FFFD is one, since that is
    what the bad bytes became). A header that is not one line of distinct UTF-8 names, or a row
    longer than :data:`CSV_BLOCK_BYTES`, is an :class:`InputError`.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = stream.readline().removeprefix(BOM)
    try:
        header_line = header.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"{source}: the CSV header is not UTF-8 (is the file in another encoding?)"
        ) from None
    if not header_line.strip():
        raise InputError(f"{source}: CSV without a header row (the first line is blank)")
    delimiter = sniff_delimiter(header_line)
    try:
        names = next(csv.reader([header_line], delimiter=delimiter))
    except (StopIteration, csv.Error) as exc:
        raise InputError(f"{source}: CSV without a header row") from exc
    names = [name.strip() for name in names]
    if not names or any(not name for name in names) or len(set(names)) != len(names):
        raise InputError(f"{source}: CSV header must name every column once")
    bad_rows: list[tuple[int, str, str]] = []

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        number = row.number if row.number is not None else -1
        bad_rows.append(
            (number, row.text, f"CSV row has {row.actual_columns} fields, header has {len(names)}")
        )
        return "skip"

    feed = _ArrowFeed(stream)
    reached_the_end = False
    try:
        with feed.waited_for():
            try:
                reader = pacsv.open_csv(
                    feed.native,
                    # Without threads Arrow parses in this thread: on_invalid_row is never called
                    # from one of Arrow's, and every row number is known.
                    read_options=pacsv.ReadOptions(
                        column_names=names, block_size=CSV_BLOCK_BYTES, use_threads=False
                    ),
                    parse_options=pacsv.ParseOptions(
                        delimiter=delimiter, invalid_row_handler=on_invalid_row, newlines_in_values=True
                    ),
                    # Only a blank cell is missing: Arrow's default null words ("NA", "null",
                    # "NaN", "N/A", ...) are text like any other (a user called "NA" is a user).
                    convert_options=pacsv.ConvertOptions(
                        column_types={name: pa.string() for name in names},
                        strings_can_be_null=True,
                        null_values=[""],
                    ),
                )
            except pa.ArrowInvalid as exc:
                feed.raise_error(source)
                if str(exc).startswith("Empty CSV file"):
                    reached_the_end = True
                    return  # a header and no rows
                raise
        next_row = 1
        while True:
            with feed.waited_for():
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    reached_the_end = True
                    break
            feed.raise_error(source)
            frame = cast(pl.DataFrame, pl.from_arrow(batch))
            frame = frame.with_columns(pl.all().str.strip_chars().replace("", None))
            # Good rows take the row numbers that the bad rows skipped in this batch did not.
            taken = {number for number, _, _ in bad_rows}
            numbers = range(next_row, next_row + frame.height + len(bad_rows))
            positions = pl.Series([n for n in numbers if n not in taken][: frame.height], dtype=pl.Int64)
            next_row += frame.height + len(bad_rows)
            as_json = rows_as_json(frame)
            error = pl.Series([None] * frame.height, dtype=pl.String)
            if feed.repaired and frame.width:
                replaced = frame.select(
                    pl.any_horizontal(pl.all().str.contains(_REPLACEMENT, literal=True).fill_null(False))
                ).to_series()
                error = replaced.replace_strict({True: "invalid UTF-8", False: None}, return_dtype=pl.String)
            records, error = with_flattened_folded(frame, as_json, error, nested, source)
            chunk = chunk_frame(positions, as_json, records, error)
            if bad_rows:
                chunk = pl.concat([chunk, _bad_rows_frame(bad_rows)]).sort("input_position")
                bad_rows.clear()
            yield RawChunk(chunk, "row", progress())
        feed.raise_error(source)
    except pa.ArrowInvalid as exc:
        raise InputError(_csv_problem(source, exc)) from None
    finally:
        feed.close(reached_the_end=reached_the_end)
    if bad_rows:
        yield RawChunk(_bad_rows_frame(bad_rows), "row", progress())


def sniff_delimiter(header_line: str) -> str:
    """The delimiter of a CSV header line: whichever of ``,`` tab ``;`` occurs most often outside
    quoted names (``,`` when none does: a one-column file)."""
    unquoted = re.sub(r'"(?:[^"]|"")*"', "", header_line)
    counts = {delimiter: unquoted.count(delimiter) for delimiter in CSV_DELIMITERS}
    best = max(CSV_DELIMITERS, key=lambda delimiter: counts[delimiter])  # the first on a tie
    return best if counts[best] else ","


def _csv_problem(source: str, exc: Exception) -> str:
    text = first_line(exc)
    if "straddl" in text:
        return f"{source}: a CSV row is longer than {CSV_BLOCK_BYTES >> 20} MB, which recctl cannot read"
    return f"{source}: not readable as CSV: {text}"


class _ArrowFeed:
    """The byte stream Arrow's CSV reader pulls from: invalid UTF-8 repaired, read-ahead bounded.

    Arrow reads ahead on an I/O thread of its own, which takes the GIL to call :meth:`read` and to
    release Arrow's wrapper of this object (:attr:`native`). Left alone it reads up to 32 blocks
    ahead, and a process that exits while that thread waits for the GIL dies with "terminate called
    without an active exception" (exit 134) instead of its exit code. So Arrow may read only
    :data:`AHEAD` blocks ahead of the batches taken (more only if the reading thread has waited for
    a batch for a while); :meth:`close` makes every further read an end of file and waits until
    Arrow is out of :meth:`read`; the wrapper is kept a while after that (:data:`KEEP_S`), so that
    Arrow's thread never holds its last reference; and an ``atexit`` hook closes feeds left open.
    Arrow also refuses a whole block holding invalid UTF-8 (and cannot report a malformed row
    holding some): bytes that are not UTF-8 become U+FFFD here, and :attr:`repaired` tells the
    reader to judge the rows holding it.
    """

    AHEAD = 2
    PATIENCE_S = 0.5
    KEEP_S = 2.0

    def __init__(self, stream: IO[bytes]) -> None:
        import pyarrow as pa

        self.native = pa.PythonFile(self, mode="r")
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.repaired = False
        self._error: BaseException | None = None
        self._state = threading.Condition()
        self._blocks = 0  # blocks handed to Arrow
        self._taken = 0  # batches the reading thread took from Arrow
        self._waiting_since: float | None = None
        self._inside = 0  # Arrow threads in read(), waiting or reading
        self._closed = False
        self._finished = False
        _OPEN_FEEDS.add(self)

    # -- Arrow's side (its I/O thread) --------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        with self._state:
            self._inside += 1
            while not (self._closed or self._finished or self._may_read()):
                self._state.wait(timeout=self.PATIENCE_S)
            if self._closed or self._finished:
                self._inside -= 1
                self._state.notify_all()
                return b""
        data = b""
        try:
            data = self._next_bytes(size if size > 0 else 1 << 20)
        except Exception as exc:  # handed to the reading thread by raise_error()
            self._error = exc
        finally:
            with self._state:
                self._inside -= 1
                self._blocks += 1
                self._finished = self._finished or not data
                self._state.notify_all()
        return data

    def _may_read(self) -> bool:
        if self._blocks - self._taken < self.AHEAD:
            return True
        # A batch that needs more blocks than that (a row across blocks) must not wait forever.
        since = self._waiting_since
        return since is not None and time.monotonic() - since > self.PATIENCE_S

    def _next_bytes(self, size: int) -> bytes:
        while True:
            data = self._stream.read(size)
            final = not data
            try:
                text = self._decoder.decode(data, final)
            except UnicodeDecodeError:
                self.repaired = True
                state = self._decoder.getstate()  # a failed call leaves the state it started from
                self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
                self._decoder.setstate(state)
                text = self._decoder.decode(data, final)
            if text or final:  # a lone partial character decodes to nothing: read on
                return text.encode("utf-8")

    # -- the reading thread's side ------------------------------------------------------------------
    @contextmanager
    def waited_for(self) -> Iterator[None]:
        """Around each call that takes a batch from Arrow (or opens the reader)."""
        with self._state:
            self._waiting_since = time.monotonic()
        try:
            yield
        finally:
            with self._state:
                self._waiting_since = None
                self._taken += 1
                self._state.notify_all()

    def raise_error(self, source: str) -> None:
        """Raise the source's read error (broken gzip, I/O error) as an InputError, if there was one."""
        if self._error is not None:
            error, self._error = self._error, None
            raise InputError(f"{source}: cannot read: {error}") from error

    def close(self, *, reached_the_end: bool) -> None:
        """End the feed: every read returns end of file; wait until Arrow is out of :meth:`read`.

        ``reached_the_end``: the reader returned its last batch, so Arrow's thread is done.
        """
        with self._state:
            self._closed = True
            self._state.notify_all()
        _OPEN_FEEDS.discard(self)
        self._stream = io.BytesIO()  # the source is closed by its opener; keep nothing large
        now = time.monotonic()
        _RELEASED.append((now, self.native))
        while _RELEASED and now - _RELEASED[0][0] > self.KEEP_S:
            _RELEASED.pop(0)  # Arrow's thread let go of it long ago: freed here, with the GIL
        if reached_the_end:
            return
        # A read Arrow started, or is waiting for the GIL to start, ends at once now: give it the
        # GIL (sleeping releases it) until none has been in read() for a few switch intervals.
        quiet = 0
        for _ in range(1000):
            time.sleep(0.002)
            with self._state:
                quiet = 0 if self._inside else quiet + 1
            if quiet >= 10:
                return


_OPEN_FEEDS: weakref.WeakSet[_ArrowFeed] = weakref.WeakSet()
_RELEASED: list[tuple[float, Any]] = []  # Arrow wrappers of closed feeds, kept KEEP_S: see _ArrowFeed


@atexit.register
def _close_open_feeds() -> None:
    for feed in list(_OPEN_FEEDS):
        feed.close(reached_the_end=False)


def _bad_rows_frame(bad_rows: list[tuple[int, str, str]]) -> pl.DataFrame:
    positions, texts, reasons = zip(*bad_rows, strict=True)
    return chunk_frame(
        pl.Series(positions),
        pl.Series(texts),
        pl.Series([None] * len(bad_rows), dtype=pl.String),
        pl.Series(reasons),
    )
