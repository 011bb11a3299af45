"""Reading input records: NDJSON, JSON arrays, CSV and Parquet, plain or gzip, from files or stdin.

Every reader yields :class:`RawChunk` frames with one row per input record:

``input_position``  where the record was in its source (NDJSON: 1-based line number; CSV: 1-based data row;
              JSON array and Parquet: 0-based element / row index; see :attr:`RawChunk.position_kind`)
``raw``       the record as the user gave it (NDJSON: the line; other formats: the row as a JSON object)
``json``      the record's JSON text, or null when it could not be read; NDJSON lines are not checked
              here: :func:`recctl.records.checked_objects` marks those that are not JSON objects
``error``     why it could not be read (invalid UTF-8, a bad CSV row, a JSON array element that is not
              an object), or null

NDJSON is split into lines block by block (vectorised), and the lines are parsed once, by the
validation that follows. Blank lines in NDJSON are not records and are not counted. NDJSON, CSV
and Parquet stream in bounded memory; a JSON array is read whole (use NDJSON for large inputs).
"""

from __future__ import annotations

import atexit
import codecs
import csv
import gzip
import io
import json
import re
import sys
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast

import polars as pl

from recctl.errors import InputError, cannot_open, first_line

Format = Literal["ndjson", "json", "csv", "parquet"]
FORMATS: tuple[Format, ...] = ("ndjson", "json", "csv", "parquet")
_EXTENSIONS: dict[str, Format] = {
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
BLOCK_BYTES = 16 << 20
CSV_BLOCK_BYTES = 16 << 20
"""Arrow parses CSV in blocks of this size: a CSV row longer than this cannot be read."""
CHUNK_ROWS = 100_000
_REPLACEMENT = "\ufffd"
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip: an .xlsx or .ods spreadsheet, or an archive
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an Excel 97-2003 workbook (.xls)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
CSV_DELIMITERS = (",", "\t", ";")
"""The CSV delimiters recctl recognises from the header line, the first one on a tie."""
READS = "recctl reads NDJSON, JSON, CSV or Parquet, optionally gzip-compressed"


@dataclass(frozen=True)
class RawChunk:
    """One block of input records (see the module docstring for the columns)."""

    rows: pl.DataFrame
    position_kind: Literal["line", "row", "index"]
    bytes_done: int


def _chunk_frame(position: pl.Series, raw: pl.Series, parsed: pl.Series, error: pl.Series) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "input_position": position.cast(pl.Int64),
            "raw": raw.cast(pl.String),
            "json": parsed.cast(pl.String),
            "error": error.cast(pl.String),
        }
    )


def source_size(source: str) -> int | None:
    """Size in bytes of a file source (compressed size for .gz), None for stdin."""
    if source == "-":
        return None
    try:
        return Path(source).stat().st_size
    except OSError as exc:
        raise cannot_open(source, exc) from exc


def format_from_name(source: str) -> Format | None:
    """The format a file name implies, ignoring a trailing .gz; None when it implies none."""
    name = source.lower().removesuffix(".gz")
    return _EXTENSIONS.get(Path(name).suffix)


class _CountingReader(io.RawIOBase):
    """Wraps a binary stream to count the bytes taken from it (for progress on compressed input)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.count = 0

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed and self._stream is not sys.stdin.buffer:
            self._stream.close()
        super().close()

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


def _open_source(source: str) -> tuple[io.BufferedReader[_CountingReader], _CountingReader]:
    if source == "-":
        stream: IO[bytes] = sys.stdin.buffer
    else:
        try:
            stream = open(source, "rb")  # noqa: SIM115 - closed by the caller through the wrapper
        except OSError as exc:
            raise cannot_open(source, exc) from exc
    counter = _CountingReader(stream)
    buffered = io.BufferedReader(counter, buffer_size=1 << 20)
    return buffered, counter


def _decompressed(buffered: io.BufferedReader[_CountingReader]) -> io.BufferedReader[Any]:
    if buffered.peek(2)[:2] == _GZIP_MAGIC:
        return io.BufferedReader(gzip.GzipFile(fileobj=buffered, mode="rb"), buffer_size=1 << 20)
    return buffered


Content = Literal["parquet", "json", "ndjson", "blank", "text", "binary", "empty"]


def _sniff(stream: io.BufferedReader, source: str) -> Content:
    """What the first bytes of ``stream`` say it holds.

    ``parquet`` (magic bytes), ``json`` / ``ndjson`` (text starting with ``[`` / ``{``), ``blank``
    (only white space so far), ``text`` (any other text), ``binary`` (a NUL byte: not text),
    ``empty`` (no bytes at all). A spreadsheet, a zip archive or UTF-16 text, which no format
    reads, raises :class:`InputError` saying what it is.
    """
    head = stream.peek(4096)[:4096]
    if not head:
        return "empty"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(_ZIP_MAGICS):
        raise InputError(f"{source}: {_zip_kind(head)}: {READS} (save the sheet as CSV first)")
    if head.startswith(_OLE2_MAGIC):
        workbook = "an Excel 97-2003 workbook (.xls), not a data file"
        raise InputError(f"{source}: {workbook}: {READS} (save the sheet as CSV first)")
    if head.startswith(_UTF16_BOMS):
        raise InputError(f"{source}: UTF-16 text; recctl reads UTF-8 (save it as UTF-8, e.g. 'CSV UTF-8')")
    if b"\x00" in head:
        return "binary"
    text = head.removeprefix(_BOM).lstrip()
    if not text:
        return "blank"
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        return "ndjson"
    return "text"


def _zip_kind(head: bytes) -> str:
    """Name a zip by its first member (an .xlsx starts with ``[Content_Types].xml`` or ``xl/``,
    an OpenDocument file with ``mimetype`` and its type)."""
    name_length = int.from_bytes(head[26:28], "little") if len(head) >= 30 else 0
    first = head[30 : 30 + name_length]
    if first == b"[Content_Types].xml" or first.startswith((b"xl/", b"_rels/", b"docProps/")):
        return "an Excel workbook (.xlsx), not a data file"
    if first == b"mimetype" and b"opendocument.spreadsheet" in head[:200]:
        return "an OpenDocument spreadsheet (.ods), not a data file"
    return "a zip archive, not a data file"


def _chosen_format(content: Content, forced: Format | None, named: Format | None) -> Format | None:
    """The reader for ``content``; None when there is nothing to read (no bytes at all).

    A forced format is used as given, and Parquet's magic bytes win over any name (a Parquet file
    named ``.ndjson``). A text format's extension is kept for text, so an NDJSON file whose first
    line is broken (even ``[1]``) is still read line by line; only a ``.json`` file of objects one
    per line is NDJSON. Without a text extension (none, or ``.parquet`` on text) the content
    decides: ``[`` a JSON array, ``{`` NDJSON, other text CSV.
    """
    if content == "empty":
        return None
    if forced is not None:
        return forced
    if content == "parquet":
        return "parquet"
    if named in ("ndjson", "csv"):
        return named
    if named == "json":
        return "ndjson" if content == "ndjson" else "json"
    if content in ("json", "ndjson"):
        return cast(Format, content)
    if content == "blank":
        return "ndjson"  # blank lines are no records; whatever follows is judged line by line
    if content == "text":
        return "csv"
    if named is None:
        raise InputError(f"binary data that is not Parquet, gzip or a spreadsheet: {READS}")
    return named  # binary named .parquet: its reader says what is wrong with it


Nested = Mapping[str, Collection[str] | None]
"""Object fields that tabular input may give flattened, one column per key (``context.position``):
field -> the keys whose text is a number (None: every key's)."""


def read_records(
    source: str,
    *,
    format: Format | None = None,
    chunk_rows: int = CHUNK_ROWS,
    nested: Nested | None = None,
) -> Iterator[RawChunk]:
    """Yield the records of ``source`` (a path, or ``-`` for stdin) in chunks.

    ``nested`` names object fields whose flattened columns (``<field>.<key>``, as CSV and Parquet
    exports write nested data) are folded back into the field; see :func:`fold_flattened`.

    The format is ``format`` when given; else Parquet when the content starts with its magic
    bytes, whatever the name; else the extension of a text format (``.ndjson .jsonl .json .csv
    .tsv``, each optionally ``.gz``; a ``.json`` file whose first character is ``{`` is NDJSON);
    else the content: ``[`` a JSON array, ``{`` NDJSON, other text CSV.
    Gzip is detected by its magic bytes. Input with no bytes at all holds no records. Raises
    :class:`InputError` when the source cannot be opened or is not in the format at all (a
    spreadsheet or a zip archive is named as such).
    """
    if format is not None and format not in FORMATS:
        raise InputError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    buffered, counter = _open_source(source)
    try:
        stream = _decompressed(buffered)
        try:
            content = _sniff(stream, source)
        except (OSError, EOFError) as exc:
            raise InputError(f"{source}: cannot read: {exc}") from exc
        try:
            chosen = _chosen_format(content, format, format_from_name(source))
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from None
        if chosen is None:
            return
        progress = lambda: counter.count  # noqa: E731
        readers: dict[Format, Callable[..., Iterator[RawChunk]]] = {
            "ndjson": _read_ndjson,
            "json": _read_json_array,
            "csv": _read_csv,
            "parquet": _read_parquet,
        }
        try:
            yield from readers[chosen](stream, source, chunk_rows, progress, nested or {})
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise InputError(f"{source}: cannot read: {exc}") from exc
    finally:
        if source != "-":
            buffered.close()


def _parse_json_objects(raw: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Canonical JSON text of each raw JSON object, and an error reason where there is none."""
    parsed = raw.str.json_path_match("$")
    is_object = raw.str.strip_chars_start().str.starts_with("{") & parsed.str.starts_with("{")
    frame = pl.DataFrame({"parsed": parsed, "is_object": is_object})
    result = frame.select(
        pl.when(pl.col("is_object")).then(pl.col("parsed")).alias("json"),
        pl.when(pl.col("parsed").is_null())
        .then(pl.lit("invalid JSON"))
        .when(~pl.col("is_object"))
        .then(pl.lit("not a JSON object"))
        .alias("error"),
    )
    return result["json"], result["error"]


def _lines_of(block: bytes) -> tuple[pl.Series, pl.Series]:
    """Split a block of whole lines into text lines and an invalid-UTF-8 flag per line."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        # Rare path: find the bad lines one by one so the good ones still count.
        decoded, bad = [], []
        for line in block.split(b"\n"):
            try:
                decoded.append(line.decode("utf-8"))
                bad.append(False)
            except UnicodeDecodeError:
                decoded.append(line.decode("utf-8", errors="replace"))
                bad.append(True)
        return pl.Series(decoded, dtype=pl.String), pl.Series(bad, dtype=pl.Boolean)
    lines = pl.Series([text], dtype=pl.String).str.split("\n").explode()
    return lines, pl.Series([False], dtype=pl.Boolean).extend_constant(False, len(lines) - 1)


def _line_blocks(stream: IO[bytes]) -> Iterator[bytes]:
    """Blocks of whole lines (without the final newline), a leading BOM removed."""
    pending = b""
    first = True
    while data := stream.read(BLOCK_BYTES):
        if first:
            data, first = data.removeprefix(_BOM), False
        data = pending + data
        cut = data.rfind(b"\n")
        if cut < 0:
            pending = data
            continue
        yield data[:cut]
        pending = data[cut + 1 :]
    if pending:
        yield pending


def _read_ndjson(
    stream: IO[bytes], source: str, chunk_rows: int, progress: Callable[[], int], nested: Nested
) -> Iterator[RawChunk]:
    first_line = 1
    for block in _line_blocks(stream):
        lines, bad_utf8 = _lines_of(block)
        frame = pl.DataFrame({"raw": lines, "bad_utf8": bad_utf8}).with_columns(
            pl.col("raw").str.strip_suffix("\r"),
            input_position=pl.int_range(first_line, first_line + len(lines), dtype=pl.Int64),
        )
        first_line += len(lines)
        frame = frame.filter(pl.col("raw").str.strip_chars().str.len_bytes() > 0)
        # Lines go on unchecked: validation parses them anyway and names the ones that are not
        # JSON objects (see recctl.records.checked_objects).
        frame = frame.with_columns(
            pl.when(pl.col("bad_utf8")).then(None).otherwise(pl.col("raw")).alias("json"),
            pl.when(pl.col("bad_utf8")).then(pl.lit("invalid UTF-8")).alias("error"),
        )
        for start in range(0, frame.height, chunk_rows):
            piece = frame.slice(start, chunk_rows)
            yield RawChunk(
                _chunk_frame(piece["input_position"], piece["raw"], piece["json"], piece["error"]),
                "line",
                progress(),
            )


def _read_json_array(
    stream: IO[bytes], source: str, chunk_rows: int, progress: Callable[[], int], nested: Nested
) -> Iterator[RawChunk]:
    data = stream.read().removeprefix(_BOM)
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: not a valid JSON document: {exc}") from exc
    except RecursionError:
        raise InputError(f"{source}: not a JSON document recctl can read: nested too deeply") from None
    if not isinstance(document, list):
        document = [document]
    # A JSON array is already in memory; one json.dumps per element is the price of this format.
    try:
        raw = pl.Series([json.dumps(item, ensure_ascii=False) for item in document], dtype=pl.String)
    except RecursionError:
        raise InputError(f"{source}: not a JSON document recctl can read: nested too deeply") from None
    parsed, error = _parse_json_objects(raw)
    positions = pl.int_range(0, len(raw), eager=True, dtype=pl.Int64)
    for start in range(0, max(len(raw), 1), chunk_rows):
        if len(raw) == 0:
            return
        yield RawChunk(
            _chunk_frame(
                positions.slice(start, chunk_rows),
                raw.slice(start, chunk_rows),
                parsed.slice(start, chunk_rows),
                error.slice(start, chunk_rows),
            ),
            "index",
            progress(),
        )


def _rows_as_json(frame: pl.DataFrame, source: str = "-") -> pl.Series:
    if frame.width == 0:
        return pl.Series([None] * frame.height, dtype=pl.String)
    try:
        return frame.select(pl.struct(pl.all()).struct.json_encode()).to_series()
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:  # a type JSON lacks
        raise InputError(f"{source}: columns recctl cannot turn into JSON: {first_line(exc)}") from None


def _read_csv(
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

    header = stream.readline().removeprefix(_BOM)
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
            as_json = _rows_as_json(frame)
            error = pl.Series([None] * frame.height, dtype=pl.String)
            if feed.repaired and frame.width:
                replaced = frame.select(
                    pl.any_horizontal(pl.all().str.contains(_REPLACEMENT, literal=True).fill_null(False))
                ).to_series()
                error = replaced.replace_strict({True: "invalid UTF-8", False: None}, return_dtype=pl.String)
            records, error = _with_flattened_folded(frame, as_json, error, nested, source)
            chunk = _chunk_frame(positions, as_json, records, error)
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


_JSON_NUMBER = r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$"


def fold_flattened(frame: pl.DataFrame, nested: Nested) -> tuple[pl.DataFrame, pl.Series | None]:
    """``frame`` with every column ``<field>.<key>`` of a ``nested`` field folded into ``<field>``.

    The folded ``<field>`` is the JSON text of an object of the row's non-null flattened values
    (so ``context.session_id`` fills ``context.session_id``, not an unknown top-level field). A
    text value stays text, except for the keys ``nested`` names as numbers, where text that is a
    JSON number becomes that number (``"3"`` in a CSV cell: position 3). A row that also has a
    ``<field>`` value keeps it, with the flattened keys added; when both give the same key, the
    row's error says so (which one was meant cannot be known). Returns the frame (unchanged when
    it has no such column) and the per-row error, or None.
    """
    errors: list[pl.Expr] = []
    folded: list[pl.Expr] = []
    dropped: list[str] = []
    for field, numeric in nested.items():
        prefix = f"{field}."
        columns = [name for name in frame.columns if name.startswith(prefix) and len(name) > len(prefix)]
        if not columns:
            continue
        pieces = []
        for name in columns:
            key = name[len(prefix) :]
            value = _json_value(pl.col(name), frame.schema[name])
            if frame.schema[name] == pl.String and (numeric is None or key in numeric):
                text = pl.col(name).str.strip_chars()
                value = pl.when(text.str.contains(_JSON_NUMBER)).then(text).otherwise(value)
            pieces.append(
                pl.when(pl.col(name).is_not_null()).then(pl.concat_str(pl.lit(_dumps(key) + ":"), value))
            )
        joined = pl.concat_str(pieces, separator=",", ignore_nulls=True)
        flat = pl.when(joined.str.len_bytes() > 0).then(pl.concat_str(pl.lit("{"), joined, pl.lit("}")))
        if field in frame.columns:
            # The row's own value as JSON text: a CSV cell is text already, a Parquet struct is not.
            original = (
                pl.col(field)
                if frame.schema[field] == pl.String
                else _json_value(pl.col(field), frame.schema[field])
            )
            given = original.str.strip_chars()
            is_object = given.str.contains(r"^\{[\s\S]*\}$").fill_null(False)
            is_empty = given.str.contains(r"^\{\s*\}$").fill_null(False)
            merged = (
                pl.when(given.is_null() | is_empty)
                .then(flat)
                .when(flat.is_null() | ~is_object)
                .then(original)  # not an object: validation rejects it, naming the field
                .otherwise(pl.concat_str(given.str.strip_suffix("}"), pl.lit(","), joined, pl.lit("}")))
            )
            for name in columns:
                key = name[len(prefix) :]
                both = (
                    is_object
                    & pl.col(name).is_not_null()
                    & given.str.json_path_match(f"$[{_dumps(key)}]").is_not_null()
                )
                errors.append(
                    pl.when(both).then(pl.lit(f"{field}.{key}: given both in {field} and as a column"))
                )
            folded.append(merged.alias(field))
        else:
            folded.append(flat.alias(field))
        dropped += columns
    if not folded:
        return frame, None
    error = frame.select(pl.coalesce(errors) if errors else pl.lit(None, dtype=pl.String)).to_series()
    result = frame.with_columns(folded).drop(dropped)
    return result, error if error.null_count() < error.len() else None


def _json_value(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """The JSON text of each value of ``column`` (null stays null)."""
    encoded = (
        pl.struct(column.alias("v")).struct.json_encode().str.strip_prefix('{"v":').str.strip_suffix("}")
    )
    return pl.when(column.is_not_null()).then(encoded)


def _dumps(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _with_flattened_folded(
    frame: pl.DataFrame, as_json: pl.Series, error: pl.Series, nested: Nested, source: str
) -> tuple[pl.Series, pl.Series]:
    """The records' JSON with flattened columns folded (``as_json`` when there are none), and the
    errors with any folding conflict added."""
    if not nested:
        return as_json, error
    folded, conflict = fold_flattened(frame, nested)
    if folded is frame:
        return as_json, error
    if conflict is not None:
        error = pl.select(pl.coalesce(error, conflict)).to_series()
    return _rows_as_json(folded, source), error


def _csv_problem(source: str, exc: Exception) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
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
    return _chunk_frame(
        pl.Series(positions),
        pl.Series(texts),
        pl.Series([None] * len(bad_rows), dtype=pl.String),
        pl.Series(reasons),
    )


def _read_parquet(
    stream: IO[bytes], source: str, chunk_rows: int, progress: Callable[[], int], nested: Nested
) -> Iterator[RawChunk]:
    """Parquet rows as records (positions are 0-based row indexes).

    A file is read by Arrow itself, so Arrow's reader threads never wait for Python; stdin and
    compressed input are read whole (Parquet needs random access). Column types JSON lacks are
    made text: binary columns are decoded as UTF-8 (a row with bytes that are not is a record
    whose ``error`` is ``invalid UTF-8``), and a float column holding NaN or Infinity becomes text
    (``NaN``, ``inf``), which validation judges like the same text in a CSV cell.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if source != "-" and _starts_with(source, b"PAR1"):
        native = pa.OSFile(source)
    else:
        native = pa.BufferReader(stream.read())
    try:
        try:
            parquet = pq.ParquetFile(native)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{source}: not a Parquet file: {first_line(exc)}") from None
        index = 0
        try:
            for batch in parquet.iter_batches(batch_size=chunk_rows):
                try:
                    frame = cast(pl.DataFrame, pl.from_arrow(batch))
                except pl.exceptions.PolarsError as exc:
                    raise InputError(
                        f"{source}: Parquet columns recctl cannot read: {first_line(exc)}"
                    ) from None
                frame, error = _json_ready(frame)
                as_json = _rows_as_json(frame, source)
                records, error = _with_flattened_folded(frame, as_json, error, nested, source)
                positions = pl.int_range(index, index + frame.height, eager=True, dtype=pl.Int64)
                index += frame.height
                yield RawChunk(_chunk_frame(positions, as_json, records, error), "index", progress())
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{source}: a damaged Parquet file: {first_line(exc)}") from None
    finally:
        native.close()


def _starts_with(path: str, magic: bytes) -> bool:
    try:
        with open(path, "rb") as head:
            return head.read(len(magic)) == magic
    except OSError:
        return False


def _json_ready(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """``frame`` with the columns JSON cannot hold made text, and an ``invalid UTF-8`` error per row."""
    invalid = pl.Series([False] * frame.height, dtype=pl.Boolean)
    replaced: list[pl.Series] = []
    for column in frame.get_columns():
        dtype = column.dtype
        if dtype == pl.Binary:
            text, bad = _decoded(column)
            replaced.append(text)
            invalid = invalid | bad
        elif "Binary" in str(dtype):  # bytes inside lists or structs: rare enough for Python
            pairs = [_decoded_value(value) for value in column.to_list()]
            values = [value for value, _ in pairs]
            try:
                replaced.append(pl.Series(column.name, values, strict=False))
            except (pl.exceptions.PolarsError, TypeError, ValueError):
                replaced.append(pl.Series(column.name, [json.dumps(v) for v in values], dtype=pl.String))
            invalid = invalid | pl.Series([bad for _, bad in pairs], dtype=pl.Boolean)
        elif dtype.is_float() and (column.is_nan() | column.is_infinite()).any():
            replaced.append(column.cast(pl.String))
    if replaced:
        frame = frame.with_columns(replaced)
    error = pl.Series([None] * frame.height, dtype=pl.String)
    if invalid.any():
        error = invalid.replace_strict({True: "invalid UTF-8", False: None}, return_dtype=pl.String)
    return frame, error


def _decoded(column: pl.Series) -> tuple[pl.Series, pl.Series]:
    """A binary column as text, and which rows were not UTF-8 (null there)."""
    try:
        return column.cast(pl.String), pl.Series([False] * column.len(), dtype=pl.Boolean)
    except pl.exceptions.PolarsError:
        pairs = [_decoded_value(value) for value in column.to_list()]
        return (
            pl.Series(column.name, [value for value, _ in pairs], dtype=pl.String),
            pl.Series([bad for _, bad in pairs], dtype=pl.Boolean),
        )


def _decoded_value(value: Any) -> tuple[Any, bool]:
    """``value`` with every ``bytes`` in it decoded as UTF-8, and whether one was not UTF-8."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8"), False
        except UnicodeDecodeError:
            return None, True
    if isinstance(value, list):
        pairs = [_decoded_value(item) for item in value]
        return [item for item, _ in pairs], any(bad for _, bad in pairs)
    if isinstance(value, dict):
        pairs_by_key = {key: _decoded_value(item) for key, item in value.items()}
        return {key: item for key, (item, _) in pairs_by_key.items()}, any(
            b for _, b in pairs_by_key.values()
        )
    return value, False
