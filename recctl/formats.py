"""Reading input records: NDJSON, JSON arrays, CSV and Parquet, plain or gzip, from files or stdin.

Every reader yields :class:`RawChunk` frames with one row per input record:

``input_position``  where the record was in its source (NDJSON: 1-based line number; CSV: 1-based data row;
              JSON array and Parquet: 0-based element / row index; see :attr:`RawChunk.position_kind`)
``raw``       the record as the user gave it (NDJSON: the line; other formats: the row as a JSON object)
``json``      the record as canonical compact JSON text, or null when it could not be parsed
``error``     why it could not be parsed (invalid JSON, not an object, invalid UTF-8, bad CSV row), or null

Parsing is vectorised: a whole block of NDJSON lines is checked by polars at once. Blank lines in
NDJSON are not records and are not counted. NDJSON, CSV and Parquet stream in bounded memory; a
JSON array is read whole (use NDJSON for large inputs).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast

import polars as pl

from recctl.errors import InputError

Format = Literal["ndjson", "json", "csv", "parquet"]
FORMATS: tuple[Format, ...] = ("ndjson", "json", "csv", "parquet")
_EXTENSIONS: dict[str, Format] = {
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
BLOCK_BYTES = 16 << 20
CHUNK_ROWS = 100_000
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"


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
        raise InputError(f"cannot open {source}: {exc.strerror or exc}") from exc


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
            raise InputError(f"cannot open {source}: {exc.strerror or exc}") from exc
    counter = _CountingReader(stream)
    buffered = io.BufferedReader(counter, buffer_size=1 << 20)
    return buffered, counter


def _decompressed(buffered: io.BufferedReader[_CountingReader]) -> io.BufferedReader[Any]:
    if buffered.peek(2)[:2] == _GZIP_MAGIC:
        return io.BufferedReader(gzip.GzipFile(fileobj=buffered, mode="rb"), buffer_size=1 << 20)
    return buffered


def _sniff(stream: io.BufferedReader) -> Format:
    head = stream.peek(4096)[:4096]
    if head.startswith(b"PAR1"):
        return "parquet"
    text = head.removeprefix(_BOM).lstrip()
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        return "ndjson"
    return "csv"


def read_records(
    source: str,
    *,
    format: Format | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[RawChunk]:
    """Yield the records of ``source`` (a path, or ``-`` for stdin) in chunks.

    The format is ``format`` when given, else the file extension (``.ndjson .jsonl .json .csv
    .parquet``, each optionally ``.gz``), else sniffed from the first bytes (stdin). A ``.json`` file
    whose first character is ``{`` is read as NDJSON. Gzip is detected by its magic bytes.
    Raises :class:`InputError` when the source cannot be opened or is not in the format at all.
    """
    if format is not None and format not in FORMATS:
        raise InputError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    buffered, counter = _open_source(source)
    try:
        stream = _decompressed(buffered)
        try:
            sniffed = _sniff(stream)
        except (OSError, EOFError) as exc:
            raise InputError(f"{source}: cannot read: {exc}") from exc
        chosen = format or format_from_name(source) or sniffed
        if chosen == "json" and sniffed == "ndjson" and format is None:
            chosen = "ndjson"
        progress = lambda: counter.count  # noqa: E731
        readers: dict[Format, Callable[..., Iterator[RawChunk]]] = {
            "ndjson": _read_ndjson,
            "json": _read_json_array,
            "csv": _read_csv,
            "parquet": _read_parquet,
        }
        try:
            yield from readers[chosen](stream, source, chunk_rows, progress)
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
    stream: IO[bytes], source: str, chunk_rows: int, progress: Callable[[], int]
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
        parsed, error = _parse_json_objects(frame["raw"])
        frame = frame.with_columns(json=parsed, error=error).with_columns(
            pl.when(pl.col("bad_utf8")).then(None).otherwise(pl.col("json")).alias("json"),
            pl.when(pl.col("bad_utf8"))
            .then(pl.lit("invalid UTF-8"))
            .otherwise(pl.col("error"))
            .alias("error"),
        )
        for start in range(0, frame.height, chunk_rows):
            piece = frame.slice(start, chunk_rows)
            yield RawChunk(
                _chunk_frame(piece["input_position"], piece["raw"], piece["json"], piece["error"]),
                "line",
                progress(),
            )


def _read_json_array(
    stream: IO[bytes], source: str, chunk_rows: int, progress: Callable[[], int]
) -> Iterator[RawChunk]:
    data = stream.read().removeprefix(_BOM)
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: not a valid JSON document: {exc}") from exc
    if not isinstance(document, list):
        document = [document]
    # A JSON array is already in memory; one json.dumps per element is the price of this format.
    raw = pl.Series([json.dumps(item, ensure_ascii=False) for item in document], dtype=pl.String)
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


def _rows_as_json(frame: pl.DataFrame) -> pl.Series:
    if frame.width == 0:
        return pl.Series([None] * frame.height, dtype=pl.String)
    return frame.select(pl.struct(pl.all()).struct.json_encode()).to_series()


def _read_csv(
    stream: IO[bytes], source: str, chunk_rows: int, progress: Callable[[], int]
) -> Iterator[RawChunk]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header_line = stream.readline().removeprefix(_BOM).decode("utf-8", errors="replace")
    try:
        names = next(csv.reader([header_line]))
    except (StopIteration, csv.Error) as exc:
        raise InputError(f"{source}: CSV without a header row") from exc
    names = [name.strip() for name in names]
    if not names or any(not name for name in names) or len(set(names)) != len(names):
        raise InputError(f"{source}: CSV header must name every column once")
    bad_rows: list[tuple[int, str, str]] = []

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        number = (row.number - 1) if row.number is not None else -1
        bad_rows.append(
            (number, row.text, f"CSV row has {row.actual_columns} fields, header has {len(names)}")
        )
        return "skip"

    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(column_names=names, block_size=4 << 20),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid_row, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names}, strings_can_be_null=True
        ),
    )
    next_row = 1
    try:
        for batch in reader:
            frame = cast(pl.DataFrame, pl.from_arrow(batch))
            frame = frame.with_columns(pl.all().str.strip_chars().replace("", None))
            positions = pl.int_range(next_row, next_row + frame.height, eager=True, dtype=pl.Int64)
            next_row += frame.height + len(bad_rows)
            chunk = _chunk_frame(
                positions,
                _rows_as_json(frame),
                _rows_as_json(frame),
                pl.Series([None] * frame.height, dtype=pl.String),
            )
            if bad_rows:
                chunk = pl.concat([chunk, _bad_rows_frame(bad_rows)])
                bad_rows.clear()
            yield RawChunk(chunk, "row", progress())
    except pa.ArrowInvalid as exc:
        raise InputError(f"{source}: not readable as CSV: {exc}") from exc
    if bad_rows:
        yield RawChunk(_bad_rows_frame(bad_rows), "row", progress())


def _bad_rows_frame(bad_rows: list[tuple[int, str, str]]) -> pl.DataFrame:
    positions, texts, reasons = zip(*bad_rows, strict=True)
    return _chunk_frame(
        pl.Series(positions),
        pl.Series(texts),
        pl.Series([None] * len(bad_rows), dtype=pl.String),
        pl.Series(reasons),
    )


def _read_parquet(
    stream: IO[bytes], source: str, chunk_rows: int, progress: Callable[[], int]
) -> Iterator[RawChunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    seekable: IO[bytes] = stream
    if source == "-" or source.lower().endswith(".gz"):
        seekable = io.BytesIO(stream.read())  # Parquet needs random access: stdin and .gz are read whole.
    elif hasattr(stream, "raw"):
        seekable = open(source, "rb")  # noqa: SIM115 - closed below
    try:
        try:
            parquet = pq.ParquetFile(seekable)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{source}: not a Parquet file: {exc}") from exc
        index = 0
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            frame = cast(pl.DataFrame, pl.from_arrow(batch))
            as_json = _rows_as_json(frame)
            positions = pl.int_range(index, index + frame.height, eager=True, dtype=pl.Int64)
            index += frame.height
            yield RawChunk(
                _chunk_frame(positions, as_json, as_json, pl.Series([None] * frame.height, dtype=pl.String)),
                "index",
                progress(),
            )
    finally:
        if seekable is not stream:
            seekable.close()
