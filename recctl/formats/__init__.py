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

:func:`read_records` (:mod:`~recctl.formats.source`) opens the source and picks the reader:
:mod:`~recctl.formats.ndjson` (NDJSON and JSON arrays), :mod:`~recctl.formats.csv` and
:mod:`~recctl.formats.parquet`; :mod:`~recctl.formats.chunks` holds what they share.
"""

from __future__ import annotations

from recctl.formats.chunks import Nested, RawChunk, fold_flattened
from recctl.formats.csv import CSV_DELIMITERS, sniff_delimiter
from recctl.formats.source import (
    CHUNK_ROWS,
    FORMATS,
    READS,
    Format,
    format_from_name,
    read_records,
    source_size,
)

__all__ = [
    "CHUNK_ROWS",
    "CSV_DELIMITERS",
    "FORMATS",
    "READS",
    "Format",
    "Nested",
    "RawChunk",
    "fold_flattened",
    "format_from_name",
    "read_records",
    "sniff_delimiter",
    "source_size",
]
