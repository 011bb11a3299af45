"""Hostile input for ``recctl ingest``, in every format: never a traceback, always exit 0 or 1, and
``read == inserted + duplicates + rejected`` with every rejected row in the rejects file.

Two parts: a corpus of named hostile rows (10 MB values, invalid UTF-8, BOM, CRLF, NaN/Infinity,
duplicate keys, deep nesting) whose outcome is known row by row, run through the real command;
and hypothesis-generated records and random bytes run through the library (faster).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import interaction, stored_count
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faults.processes import start, summary
from recctl.errors import InputError
from recctl.ingestion import IngestSummary, ingest
from recctl.stores import open_store

TEN_MB = 10 << 20
BOM = b"\xef\xbb\xbf"


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"down": value}
    return value


# -- the hostile corpus ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One hostile row: its record, and per format the reject reason (None: stored)."""

    name: str
    record: dict[str, Any]
    reasons: dict[str, str | None]
    raw_line: bytes | None = None  # for line formats: the exact bytes of the line, when not JSON

    def reason(self, fmt: str) -> str | None:
        return self.reasons.get(fmt, self.reasons.get("*"))


STORED: dict[str, str | None] = {"*": None}
NOT_FINITE = "interaction_value: must be a finite number"
ROWS = [
    Row("plain", interaction(event_id="plain"), STORED),
    Row("ten megabytes", interaction(event_id="huge", note="x" * TEN_MB), STORED),
    Row("a long unicode string", interaction(event_id="unicode", note="é😀\u2028\u0085" * 5000), STORED),
    Row(
        "NaN token",
        interaction(event_id="nan", interaction_type="view", interaction_value=float("nan")),
        {"*": "invalid JSON", "csv": NOT_FINITE, "parquet": NOT_FINITE},
    ),
    Row(
        "Infinity token",
        interaction(event_id="inf", interaction_type="view", interaction_value=float("inf")),
        {"*": "invalid JSON", "csv": NOT_FINITE, "parquet": NOT_FINITE},
    ),
    Row(
        "duplicate keys",
        interaction(event_id="dupkeys"),
        STORED,
        raw_line=b'{"event_id": "dupkeys", "recommendation_id": "r", "user_id": "a", "user_id": "b", '
        b'"interaction_type": "click", "timestamp": "2025-06-01T12:00:00Z"}',
    ),
    Row("nested 100 deep", interaction(event_id="deep100", extra_tree=nested(100)), STORED),
    Row(
        "nested 500 deep",
        interaction(event_id="deep500", extra_tree=nested(500)),
        # CSV cells and the Parquet column here are text: JSON text in them is just a string
        {"*": "invalid JSON", "csv": None, "parquet": None},
    ),
    Row(
        "invalid UTF-8",
        interaction(event_id="badutf8", user_id="user-\udcff"),
        {"*": "invalid UTF-8"},
        raw_line=b'{"event_id": "badutf8", "recommendation_id": "r", "user_id": "user-\xff\xfe", '
        b'"interaction_type": "click", "timestamp": "2025-06-01T12:00:00Z"}',
    ),
    Row("position 1e20", interaction(event_id="pos", context={"position": 1e20}), {"*": "context.position"}),
    Row("keys polars reads as patterns", interaction(event_id="keys", **{"*": 1, "^a.*$": 2}), STORED),
]
# Formats that cannot hold a row leave it out: a JSON array with invalid UTF-8 is not JSON (see
# test_whole_file_failures), and a column twice in CSV or Parquet is a header error.
SKIPPED = {"json": {"invalid UTF-8"}, "parquet": {"duplicate keys"}, "csv": {"duplicate keys"}}


def ndjson_bytes(rows: list[Row]) -> bytes:
    lines = [row.raw_line or json.dumps(row.record).encode() for row in rows]
    return BOM + b"\r\n".join(lines) + b"\r\n"


def json_bytes(rows: list[Row]) -> bytes:
    return BOM + json.dumps([row.record for row in rows], indent=1).replace("\n", "\r\n").encode()


def csv_bytes(rows: list[Row]) -> bytes:
    names = sorted({name for row in rows for name in row.record})
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(names)
    for row in rows:
        cells = [row.record.get(name) for name in names]
        writer.writerow(["" if c is None else c if isinstance(c, str) else json.dumps(c) for c in cells])
    data = text.getvalue().encode("utf-8", errors="surrogateescape")
    return BOM + data


def parquet_bytes(rows: list[Row]) -> bytes:
    """Nested values as JSON text; ``user_id`` as a binary column (the invalid UTF-8 row's bytes)."""
    records = []
    for row in rows:
        record = dict(row.record)
        for key in ("context", "extra_tree"):
            if key in record:
                record[key] = json.dumps(record[key])
        record["user_id"] = record["user_id"].encode("utf-8", errors="surrogateescape")
        records.append(record)
    names = sorted({name for record in records for name in record})  # from_pylist looks at row 1 only
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([{n: r.get(n) for n in names} for r in records]), sink)
    return sink.getvalue()


WRITERS: dict[str, Callable[[list[Row]], bytes]] = {
    "ndjson": ndjson_bytes,
    "json": json_bytes,
    "csv": csv_bytes,
    "parquet": parquet_bytes,
}


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_hostile_rows_in_every_format(compressed: bool, tmp_path: Path) -> None:
    processes = {}
    expected_rows = {}
    for fmt, write in WRITERS.items():
        rows = [row for row in ROWS if row.name not in SKIPPED.get(fmt, set())]
        data = write(rows)
        path = tmp_path / (f"hostile.{fmt}" + (".gz" if compressed else ""))
        path.write_bytes(gzip.compress(data) if compressed else data)
        expected_rows[fmt] = rows
        args = ["-q", "--store", str(tmp_path / f"store-{fmt}"), "ingest", "interactions", str(path)]
        processes[fmt] = start([*args, "--json", "--rejects", str(tmp_path / f"rejects-{fmt}.ndjson")])
    for fmt, process in processes.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, f"{fmt}: {err[-500:]}"
        assert err == ""
        result = summary(out)
        rows = expected_rows[fmt]
        rejected = [row for row in rows if row.reason(fmt) is not None]
        assert result["read"] == len(rows), fmt
        assert result["rejected"] == len(rejected), (fmt, result["reject_reasons"])
        assert result["inserted"] == len(rows) - len(rejected), fmt
        rejects_file = tmp_path / f"rejects-{fmt}.ndjson"
        on_file = read_rejects(rejects_file)
        position = "line" if fmt == "ndjson" else "row" if fmt == "csv" else "index"
        first = 1 if fmt in ("ndjson", "csv") else 0
        assert [entry[position] for entry in on_file] == [first + rows.index(row) for row in rejected], fmt
        for entry, row in zip(on_file, rejected, strict=True):
            assert row.reason(fmt) in entry["reason"], (fmt, row.name, entry["reason"])
        stored = pl.read_parquet(tmp_path / f"store-{fmt}" / "interactions" / "*" / "*.parquet")
        kept = {row.record["event_id"] for row in rows if row.reason(fmt) is None}
        assert set(stored["event_id"]) == kept, fmt
        huge = stored.filter(pl.col("event_id") == "huge")["extra"].item()
        assert json.loads(huge)["note"] == "x" * TEN_MB, fmt  # a 10 MB value is stored whole


def test_whole_file_failures_are_one_line_exit_1(tmp_path: Path) -> None:
    """Input that is not in its format at all: exit 1, one ``Error:`` line naming the file."""
    deep = json.dumps([interaction(event_id="deep", tree=nested(50))])
    cases = {
        "deep.json": ("[" * 100_000 + "]" * 100_000).encode(),  # deeper than any JSON parser goes
        "very-deep-element.json": deep.replace('"bottom"', "[" * 5000 + "]" * 5000).encode(),
        "bad-utf8.json": b'[{"user_id": "\xff"}]',
        "truncated.json": b'[{"user_id": "u"',
        "random.parquet": bytes(range(256)) * 4,
        "duplicate-columns.parquet": _parquet_with_duplicate_columns(),
        "truncated.ndjson.gz": gzip.compress(b"".join(b'{"n": %d}\n' % i**3 for i in range(9000)))[:20_000],
        "not-gzip.csv.gz": b"\x1f\x8b" + bytes(range(256)),
        "empty-header.csv": b"user_id,,timestamp\nu,x,2025-01-01\n",
        "long-cell.csv": b"user_id,note\nu," + b"y" * (33 << 20) + b"\n",  # more than two 16 MB blocks
    }
    processes = {}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        args = ["--store", str(tmp_path / "store"), "ingest", "interactions", str(path)]
        processes[name] = start([*args, "--rejects", str(tmp_path / f"{name}.rejects")])
    for name, process in processes.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 1, f"{name}: exit {process.returncode}: {err[-500:]}"
        assert out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {tmp_path / name}"), f"{name}: {err[-500:]}"
        assert "unexpected" not in err, name
    assert not (tmp_path / "store" / "interactions").exists()


def _parquet_with_duplicate_columns() -> bytes:
    table = pa.Table.from_arrays([pa.array(["a"]), pa.array(["b"])], names=["user_id", "user_id"])
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


# -- hypothesis: generated records and random bytes through the library ----------------------------
FIELDS = ["event_id", "recommendation_id", "user_id", "assessment_id", "interaction_type"]
FIELDS += ["interaction_value", "timestamp", "context", "label", "extra"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        ["click", " VIEW ", "rate", "2025-06-01T12:00:00Z", "1717243200", "1E20", "-1e400", "NaN", "inf", ""]
    )
)
# Object keys: often the context keys recctl reads (so ``context`` gets hostile values), else any text.
object_keys = st.sampled_from(["position", "propensity", "session_id", "assessment_id"]) | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(object_keys, children, max_size=4),
    max_leaves=12,
)
records = st.lists(
    st.builds(
        lambda changes, keep: {**(interaction(event_id=None) if keep else {}), **changes},
        st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), json_values, max_size=5),
        st.booleans(),
    ),
    max_size=25,
)


def serialise(fmt: str, items: list[dict[str, Any]], *, crlf: bool, bom: bool) -> bytes:
    ending = "\r\n" if crlf else "\n"
    if fmt == "ndjson":
        data = ending.join(json.dumps(item) for item in items).encode("utf-8", "surrogatepass")
    elif fmt == "json":
        data = json.dumps(items).encode("utf-8", "surrogatepass")
    elif fmt == "csv":
        names = sorted({name for item in items for name in item if CSV_NAME.fullmatch(name)}) or ["user_id"]
        text = io.StringIO()
        # QUOTE_ALL: a bare \r in an unquoted cell is a line break to every CSV reader
        writer = csv.writer(text, lineterminator=ending, quoting=csv.QUOTE_ALL)
        writer.writerow(names)
        for item in items:
            writer.writerow([_cell(item.get(name)) for name in names])
        data = text.getvalue().encode("utf-8", "surrogatepass")
    else:
        names = sorted({name for item in items for name in item})
        columns = {
            name: pa.array([_cell(item.get(name)) or None for item in items], pa.string()) for name in names
        }
        sink = io.BytesIO()
        pq.write_table(
            pa.table(columns) if columns else pa.table({"x": pa.nulls(len(items), pa.string())}), sink
        )
        return sink.getvalue()
    return (BOM if bom else b"") + data


# A CSV header is one line of distinct names: no line breaks, nothing that strips to another name.
CSV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def _cell(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)


def read_rejects(path: Path) -> list[dict[str, Any]]:
    """The rejects file's entries. Split on \\n only: raw U+0085 / U+2028 are valid inside JSON strings."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().split("\n") if line]


def ingest_bytes(data: bytes, name: str) -> tuple[IngestSummary | None, list[dict[str, Any]], int]:
    """Ingest ``data`` saved as ``name`` twice into a fresh store: (first summary, rejects, stored)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        rejects = Path(folder) / "rejects.ndjson"
        store = open_store(Path(folder) / "store")
        try:
            try:
                first = ingest(store, "interactions", [str(path)], rejects_path=rejects)
            except InputError as exc:
                assert str(exc).startswith(str(path)) or "cannot" in str(exc), exc
                return None, [], stored_count(store, "interactions")
            on_file = read_rejects(rejects)
            rejects.unlink(missing_ok=True)
            second = ingest(store, "interactions", [str(path)], rejects_path=rejects)
            stored = stored_count(store, "interactions")
        finally:
            store.close()
    for result in (first, second):
        assert result.read == result.inserted + result.duplicates + result.rejected
        assert sum(result.reject_reasons.values()) == result.rejected
    assert len(on_file) == first.rejected
    assert all(entry["reason"] and entry["raw"] is not None for entry in on_file)
    assert stored == first.inserted
    # the same input again stores nothing new and is accounted the same way
    assert (second.read, second.rejected, second.inserted) == (first.read, first.rejected, 0)
    assert second.duplicates == first.inserted + first.duplicates
    return first, on_file, stored


FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("fmt", ["ndjson", "json", "csv", "parquet"])
@FUZZ
@given(items=records, crlf=st.booleans(), bom=st.booleans(), compressed=st.booleans())
def test_generated_records(
    fmt: str, items: list[dict[str, Any]], crlf: bool, bom: bool, compressed: bool
) -> None:
    data = serialise(fmt, items, crlf=crlf, bom=bom)
    name = f"in.{fmt}" + (".gz" if compressed else "")
    first, _, _ = ingest_bytes(gzip.compress(data) if compressed else data, name)
    assert first is not None, "a well-formed file must never fail as a whole"
    assert first.read == len(items)


# What the content says whatever the name: gzip, Parquet, a zip (a spreadsheet), an .xls, UTF-16.
NOT_TEXT = (
    b"\x1f\x8b",
    b"PAR1",
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
    b"\xff\xfe",
    b"\xfe\xff",
)


@pytest.mark.parametrize("fmt", ["ndjson", "json", "csv", "parquet", "ndjson.gz", "csv.gz"])
@FUZZ
@given(data=st.binary(max_size=2000) | st.lists(st.binary(max_size=60), max_size=30).map(b"\n".join))
def test_random_bytes(fmt: str, data: bytes) -> None:
    first, _, _ = ingest_bytes(data, f"in.{fmt}")
    if fmt == "ndjson" and not data.startswith(NOT_TEXT):
        assert first is not None  # NDJSON is judged line by line: there is no whole-file failure
        assert first.read == records_in_ndjson(data)


# Unicode White_Space: what a blank NDJSON line may hold (it is then not a record).
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
WHITE_SPACE += "\u200a\u2028\u2029\u202f\u205f\u3000"


def records_in_ndjson(data: bytes) -> int:
    """Lines that are not blank: lines are split on \\n only, a leading BOM is not content."""
    count = 0
    for line in data.removeprefix(BOM).split(b"\n"):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            count += 1
            continue
        count += bool(text.strip(WHITE_SPACE))
    return count


def test_csv_bad_rows_keep_their_row_numbers_and_null_words_are_text(tmp_path: Path) -> None:
    """Malformed rows among good ones: every reject names its own data row; "NA", "null", "NaN"
    in a cell are that text, not a missing value (found by the corpus above: they were nulls)."""
    header = "event_id,recommendation_id,user_id,interaction_type,timestamp,interaction_value\n"
    rows = [
        "e1,r,u,click,2025-06-01,",  # 1 stored
        "e2,r,u,click",  # 2 too few fields
        "e3,r,,click,2025-06-01,",  # 3 user_id missing
        "x,y",  # 4 too few fields
        'e5,"r\nwith a line break",NA,click,2025-06-01,',  # 5 stored: user "NA"
        "e6,r,null,view,2025-06-01,NaN",  # 6 interaction_value NaN is not a number
        "e7,r,N/A,click,2025-06-01,",  # 7 stored: user "N/A"
    ]
    path = tmp_path / "rows.csv"
    path.write_text(header + "\n".join(rows) + "\n")
    first, on_file, stored = ingest_bytes(path.read_bytes(), "rows.csv")
    assert first is not None and (first.read, first.inserted, stored) == (7, 3, 3)
    assert [(entry["row"], entry["reason"]) for entry in on_file] == [
        (2, "CSV row has 4 fields, header has 6"),
        (3, "user_id: required"),
        (4, "CSV row has 2 fields, header has 6"),
        (6, "interaction_value: must be a finite number"),
    ]
