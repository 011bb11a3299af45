"""Input formats: every reader yields the same records, with positions, and never sinks a file."""

from __future__ import annotations

import gzip
import io
import json
import re
import sys
from pathlib import Path

import polars as pl
import pytest
from builders import interaction

from recctl.errors import InputError
from recctl.formats import read_records
from recctl.records import checked_objects


def read_all(source: str, **options: object) -> tuple[pl.DataFrame, set[str]]:
    chunks = list(read_records(source, **options))  # type: ignore[arg-type]
    kinds = {chunk.position_kind for chunk in chunks}
    frame = pl.concat([chunk.rows for chunk in chunks]) if chunks else pl.DataFrame()
    return frame, kinds


RECORDS = [interaction(event_id=f"e-{i}", interaction_value=float(i)) for i in range(3)]


def test_ndjson_positions_blank_lines_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    lines = [json.dumps(RECORDS[0]), "", "{not json", "[1, 2]", json.dumps(RECORDS[1]), "   "]
    path.write_text("\n".join(lines) + "\n")
    frame, kinds = read_all(str(path))
    assert kinds == {"line"}
    assert frame["input_position"].to_list() == [1, 3, 4, 5]  # blank lines are not records
    assert frame["error"].null_count() == 4  # lines are checked by validation, not by the reader
    frame, _ = checked_objects(frame)
    assert frame["error"].to_list() == [None, "invalid JSON", "not a JSON object", None]
    assert frame["json"].null_count() == 2
    assert json.loads(frame["json"][3]) == RECORDS[1]
    assert frame["raw"][1] == "{not json"


def test_bom_crlf_and_missing_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(json.dumps(r).encode() for r in RECORDS))
    frame, _ = read_all(str(path))
    assert frame["error"].null_count() == 3
    assert [json.loads(text) for text in frame["json"]] == RECORDS
    assert not any(raw.endswith("\r") for raw in frame["raw"])


def test_invalid_utf8_line_is_rejected_alone(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_bytes(
        json.dumps(RECORDS[0]).encode() + b"\n" + b'{"a": "\xff\xfe"}\n' + json.dumps(RECORDS[1]).encode()
    )
    frame, _ = read_all(str(path))
    assert frame["error"].to_list() == [None, "invalid UTF-8", None]


def test_line_numbers_continue_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("recctl.formats.ndjson.BLOCK_BYTES", 64)
    path = tmp_path / "events.ndjson"
    path.write_text("".join(json.dumps(interaction(event_id=f"e-{i}")) + "\n" for i in range(50)))
    frame, _ = read_all(str(path), chunk_rows=7)
    assert frame["input_position"].to_list() == list(range(1, 51))
    assert [json.loads(t)["event_id"] for t in frame["json"]] == [f"e-{i}" for i in range(50)]


def test_json_array_csv_parquet_and_gzip_agree(tmp_path: Path) -> None:
    flat = [{k: v for k, v in r.items() if k != "context"} for r in RECORDS]
    (tmp_path / "a.json").write_text(json.dumps(flat))
    pl.DataFrame(flat).write_csv(tmp_path / "a.csv")
    pl.DataFrame(flat).write_parquet(tmp_path / "a.parquet")
    with gzip.open(tmp_path / "a.ndjson.gz", "wt") as handle:
        handle.write("\n".join(json.dumps(r) for r in flat))
    expected_ids = ["e-0", "e-1", "e-2"]
    for name, kind in [
        ("a.json", "index"),
        ("a.csv", "row"),
        ("a.parquet", "index"),
        ("a.ndjson.gz", "line"),
    ]:
        frame, kinds = read_all(str(tmp_path / name))
        assert kinds == {kind}, name
        assert frame["error"].null_count() == 3, name
        ids = [json.loads(text)["event_id"] for text in frame["json"]]
        assert ids == expected_ids, name
        values = [float(json.loads(text)["interaction_value"]) for text in frame["json"]]
        assert values == [0.0, 1.0, 2.0], name


def test_csv_bad_row_is_a_reject_not_a_failure(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("event_id,user_id\ne-1,u-1\ne-2,u-2,extra\ne-3,u-3\n")
    frame, _ = read_all(str(path))
    assert frame.height == 3
    assert frame.filter(pl.col("error").is_not_null())["error"][0].startswith("CSV row has 3 fields")


def test_format_forced_and_sniffed_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "events.txt"
    path.write_text(json.dumps(RECORDS[0]) + "\n")
    with pytest.raises(InputError):
        list(read_records(str(path), format="parquet"))
    frame, _ = read_all(str(path), format="ndjson")
    assert frame.height == 1
    payload = gzip.compress(json.dumps([RECORDS[0], RECORDS[1]]).encode())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(payload)))
    frame, kinds = read_all("-")
    assert kinds == {"index"} and frame.height == 2


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open"):
        list(read_records(str(tmp_path / "nope.ndjson")))


def test_invalid_json_array_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('[{"a": 1},')
    with pytest.raises(InputError, match="not a valid JSON document"):
        list(read_records(str(path)))


# -- formats by content: where the extension lies or is missing ------------------------------------
def ids_of(frame: pl.DataFrame) -> list[str]:
    return [json.loads(text)["event_id"] for text in frame["json"]]


@pytest.mark.parametrize("name", ["events.ndjson", "events.csv", "events", "events.ndjson.gz"])
def test_parquet_is_known_by_its_magic_bytes_whatever_the_name(tmp_path: Path, name: str) -> None:
    """A Parquet file named ``.ndjson`` was read as 6,966 lines of invalid UTF-8."""
    flat = [{k: v for k, v in r.items() if k != "context"} for r in RECORDS]
    sink = io.BytesIO()
    pl.DataFrame(flat).write_parquet(sink)
    data = sink.getvalue()
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    frame, kinds = read_all(str(tmp_path / name))
    assert kinds == {"index"}
    assert frame["error"].null_count() == 3 and ids_of(frame) == ["e-0", "e-1", "e-2"]


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        ("events.parquet", "\n".join(json.dumps(r) for r in RECORDS), "line"),  # NDJSON named .parquet
        ("events.parquet", json.dumps(RECORDS, indent=2), "index"),  # a JSON array named .parquet
        ("events", "\n".join(json.dumps(r) for r in RECORDS), "line"),  # no extension
        ("events.json", "\n".join(json.dumps(r) for r in RECORDS), "line"),  # NDJSON named .json
    ],
)
def test_json_text_without_a_text_extension_is_known_by_its_first_character(
    tmp_path: Path, name: str, text: str, kind: str
) -> None:
    (tmp_path / name).write_text(text)
    frame, kinds = read_all(str(tmp_path / name))
    assert kinds == {kind} and ids_of(frame) == ["e-0", "e-1", "e-2"]


@pytest.mark.parametrize("first", ["oops", "[1, 2]", "[]"])
def test_an_ndjson_file_with_a_broken_first_line_is_still_ndjson(tmp_path: Path, first: str) -> None:
    path = tmp_path / "events.ndjson"
    path.write_text(first + "\n" + json.dumps(RECORDS[0]) + "\n")
    frame, kinds = read_all(str(path))
    assert kinds == {"line"} and frame["input_position"].to_list() == [1, 2]


def _zip(members: dict[str, str]) -> bytes:
    import zipfile

    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as archive:
        for member, content in members.items():
            # a fixed time: test ids hold these bytes, and every xdist worker must collect the same ids
            archive.writestr(zipfile.ZipInfo(member, date_time=(2025, 1, 1, 0, 0, 0)), content)
    return sink.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        (
            "book.xlsx",
            _zip({"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<w/>"}),
            "an Excel workbook",
        ),
        ("book.csv", _zip({"[Content_Types].xml": "<Types/>"}), "an Excel workbook (.xlsx)"),
        (
            "sheet.ods",
            _zip({"mimetype": "application/vnd.oasis.opendocument.spreadsheet"}),
            "an OpenDocument",
        ),
        ("logs.zip", _zip({"events.ndjson": "{}"}), "a zip archive"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "an Excel 97-2003 workbook"),
        ("unicode.txt", "user_id\tx\n".encode("utf-16"), "UTF-16 text"),
        (
            "book.xlsx.gz",
            gzip.compress(_zip({"[Content_Types].xml": "<Types/>"}), mtime=0),
            "an Excel workbook",
        ),
    ],
)
def test_spreadsheets_and_archives_are_named_plainly(
    tmp_path: Path, name: str, data: bytes, said: str
) -> None:
    """A real ``.xlsx`` said "the CSV header is not UTF-8"."""
    (tmp_path / name).write_bytes(data)
    with pytest.raises(InputError, match=f"^{tmp_path / name}: {re.escape(said)}"):
        list(read_records(str(tmp_path / name)))


def test_binary_data_from_stdin_is_named_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\x00\x01\x02binary")))
    with pytest.raises(InputError, match=r"^-: binary data that is not Parquet, gzip or a spreadsheet"):
        list(read_records("-"))


@pytest.mark.parametrize("forced", [None, "csv", "parquet", "json", "ndjson"])
def test_empty_input_holds_no_records(monkeypatch: pytest.MonkeyPatch, forced: str | None) -> None:
    """An empty stdin said "CSV header must name every column once"."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert list(read_records("-", format=forced)) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "delimiter"), [("a.csv", ";"), ("a.tsv", "\t"), ("a.csv", "\t"), ("a", ";"), ("a.csv", ",")]
)
def test_csv_delimiters_are_sniffed_from_the_header(tmp_path: Path, name: str, delimiter: str) -> None:
    """Semicolon CSV and ``.tsv`` were rejected whole: "row has 6 fields, header has 1"."""
    header = ["event_id", "user_id", "note", "interaction_value"]
    rows = [["e-1", "u-1", "a, b; c", "1.5"], ["e-2", "u-2", "tab\there", "2"]]
    quote = lambda cell: f'"{cell}"' if any(c in cell for c in ",;\t") else cell  # noqa: E731
    text = "\n".join(delimiter.join(quote(cell) for cell in row) for row in [header, *rows]) + "\n"
    (tmp_path / name).write_text(text)
    frame, kinds = read_all(str(tmp_path / name))
    assert kinds == {"row"} and frame["error"].null_count() == 2
    assert [json.loads(t) for t in frame["json"]] == [dict(zip(header, row, strict=True)) for row in rows]


def test_a_quoted_header_name_does_not_decide_the_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text('"a;b;c";event_id\nx;e-1\n')
    frame, _ = read_all(str(path))
    assert json.loads(frame["json"][0]) == {"a;b;c": "x", "event_id": "e-1"}
