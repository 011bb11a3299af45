"""Opening a source and choosing its reader: :func:`read_records`, the one entry point.

The format is the one asked for, else Parquet's when the content starts with its magic bytes,
else a text format's extension, else the content (see :func:`read_records`). Gzip is detected by
its magic bytes; a spreadsheet, a zip archive or UTF-16 text is refused, saying what it is.
"""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Literal, cast

from recctl.errors import InputError, cannot_open
from recctl.formats.ahead import read_ahead as ahead_of_the_caller
from recctl.formats.chunks import BOM, Nested, RawChunk
from recctl.formats.csv import read_csv
from recctl.formats.ndjson import read_json_array, read_ndjson
from recctl.formats.parquet import read_parquet

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
CHUNK_ROWS = 100_000
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip: an .xlsx or .ods spreadsheet, or an archive
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an Excel 97-2003 workbook (.xls)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
READS = "recctl reads NDJSON, JSON, CSV or Parquet, optionally gzip-compressed"


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
    text = head.removeprefix(BOM).lstrip()
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


def read_records(
    source: str,
    *,
    format: Format | None = None,
    chunk_rows: int = CHUNK_ROWS,
    nested: Nested | None = None,
    read_ahead: int = 0,
) -> Iterator[RawChunk]:
    """Yield the records of ``source`` (a path, or ``-`` for stdin) in chunks.

    ``read_ahead``: NDJSON is read and cut into chunks by a thread of its own, up to this many
    chunks ahead of the caller (0: in the caller's thread). The other formats are read by Arrow
    or in one piece, and always in the caller's thread: Arrow's CSV reader runs I/O threads of its
    own that call back into Python, and one more Python thread around it is not safe.

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
            "ndjson": read_ndjson,
            "json": read_json_array,
            "csv": read_csv,
            "parquet": read_parquet,
        }
        try:
            chunks = readers[chosen](stream, source, chunk_rows, progress, nested or {})
            if read_ahead and chosen == "ndjson":
                chunks = ahead_of_the_caller(chunks, read_ahead)
            yield from chunks
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise InputError(f"{source}: cannot read: {exc}") from exc
    finally:
        if source != "-":
            buffered.close()
