"""``recctl ingest`` as a user runs it: exit codes, JSON summary, stdin, errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import polars as pl
import pytest
from builders import assessment, interaction, recommendation, run, write_ndjson

from recctl.stores import open_store

SUMMARY_KEYS = {
    "read",
    "inserted",
    "duplicates",
    "updated",
    "unchanged",
    "rejected",
    "reject_reasons",
    "rejects_path",
}


def test_json_summary_and_rejects(store_location: str, tmp_path: Path) -> None:
    source = write_ndjson(
        tmp_path / "in.ndjson", [interaction(event_id="a"), "{broken", interaction(user_id=None)]
    )
    rejects = tmp_path / "rejects.ndjson"
    code, out, err = run(
        "--store", store_location, "ingest", "interactions", str(source), "--json", "--rejects", str(rejects)
    )
    assert code == 0, err
    summary = json.loads(out)
    assert set(summary) >= SUMMARY_KEYS
    assert (summary["read"], summary["inserted"], summary["rejected"]) == (3, 1, 2)
    assert summary["reject_reasons"] == {"invalid JSON": 1, "user_id: required": 1}
    assert summary["rejects_path"] == str(rejects)
    assert [json.loads(line)["line"] for line in rejects.read_text().splitlines()] == [2, 3]
    assert "rejected" in err  # the human summary goes to stderr


def test_stdin_and_quiet(tmp_path: Path) -> None:
    lines = "\n".join(json.dumps(interaction(event_id=f"e-{i}")) for i in range(4))
    code, out, err = run(
        "--quiet", "--store", str(tmp_path / "s"), "ingest", "interactions", "--json", input=lines
    )
    assert code == 0
    assert json.loads(out)["inserted"] == 4
    assert err == ""


def test_default_rejects_file_lives_in_the_store(tmp_path: Path) -> None:
    source = write_ndjson(tmp_path / "in.ndjson", [interaction(), "nope"])
    code, out, _ = run("--store", str(tmp_path / "s"), "ingest", "interactions", str(source), "--json")
    assert code == 0
    path = Path(json.loads(out)["rejects_path"])
    assert path.parent == tmp_path / "s" / "rejects" and path.name.startswith("interactions-")


def test_strict_exit_code(tmp_path: Path) -> None:
    source = write_ndjson(tmp_path / "in.ndjson", [interaction(), interaction(timestamp="x")])
    code, _, err = run("--store", str(tmp_path / "s"), "ingest", "interactions", str(source), "--strict")
    assert code == 1
    assert err.startswith("Error: --strict: 1 of 2 rows are invalid")
    assert not (tmp_path / "s" / "interactions").exists()


def test_missing_file_is_one_line_exit_1(tmp_path: Path) -> None:
    code, _, err = run(
        "--store", str(tmp_path / "s"), "ingest", "interactions", str(tmp_path / "nope.ndjson")
    )
    assert code == 1
    assert err.strip().count("\n") == 0 and err.startswith("Error: cannot open")
    assert "Traceback" not in err


def test_bad_label_policy(tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text("click = 3\n")
    code, _, err = run(
        "--store", str(tmp_path / "s"), "ingest", "interactions", "--labels", str(policy), input=""
    )
    assert code == 1 and "click must be between 0 and 1" in err


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_mongo_fails_fast_without_the_password(tmp_path: Path) -> None:
    uri = f"mongodb://admin:s3cr3t-pw@127.0.0.1:{closed_port()}/recctl"
    source = write_ndjson(tmp_path / "in.ndjson", [interaction()])
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "recctl", "--store", uri, "ingest", "interactions", str(source)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert completed.returncode == 1
    assert elapsed < 12  # 5 s of server selection plus start-up on a loaded machine; pymongo alone waits 30 s
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot reach MongoDB")
    assert "s3cr3t-pw" not in completed.stderr + completed.stdout
    assert "***" in lines[0]


def test_python_module_entry_point(tmp_path: Path) -> None:
    completed = subprocess.run([sys.executable, "-m", "recctl", "--version"], capture_output=True, text=True)
    assert completed.returncode == 0 and completed.stdout.startswith("recctl ")


def test_empty_stdin_is_named_plainly_and_stores_nothing(tmp_path: Path) -> None:
    """An empty stdin said "CSV header must name every column once"."""
    code, out, err = run("--store", str(tmp_path / "s"), "ingest", "assessments", "--json", input="")
    assert code == 0, err
    assert "warning: stdin is empty (no records)" in err and "Error" not in err
    assert json.loads(out)["read"] == 0


def test_a_spreadsheet_is_named_plainly(tmp_path: Path) -> None:
    import zipfile

    book = tmp_path / "catalog.xlsx"
    with zipfile.ZipFile(book, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    code, _, err = run("--store", str(tmp_path / "s"), "ingest", "recommendations", str(book))
    assert code == 1
    assert err.splitlines() == [
        f"Error: {book}: an Excel workbook (.xlsx), not a data file: recctl reads NDJSON, JSON, CSV or "
        "Parquet, optionally gzip-compressed (save the sheet as CSV first)"
    ]


def test_a_semicolon_csv_is_ingested(tmp_path: Path) -> None:
    source = tmp_path / "catalog.csv"
    source.write_text(
        "recommendation_id;assessment_id;category;confidence_score;title\n"
        'r-1;a-1;security;0,5;"Rotate keys; then audit"\n'.replace("0,5", "0.5")
        + "r-2;a-1;performance;0.7;Cache\n"
    )
    code, out, err = run("--store", str(tmp_path / "s"), "ingest", "recommendations", str(source), "--json")
    assert code == 0, err
    assert (json.loads(out)["inserted"], json.loads(out)["rejected"]) == (2, 0)


def test_an_unchanged_catalog_reports_unchanged(store_location: str, tmp_path: Path) -> None:
    source = write_ndjson(
        tmp_path / "r.ndjson", [recommendation(recommendation_id=f"r-{i}") for i in range(4)]
    )
    args = ["--store", store_location, "ingest", "recommendations", str(source)]
    assert run(*args)[0] == 0
    code, out, err = run(*args, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert set(summary) >= SUMMARY_KEYS
    assert (summary["read"], summary["inserted"], summary["updated"], summary["unchanged"]) == (4, 0, 0, 4)
    names = ("read", "inserted", "updated", "unchanged", "rejected")
    table = [line.split() for line in err.splitlines() if line.split()[:1] and line.split()[0] in names]
    assert table == [
        ["read", "4"],
        ["inserted", "0"],
        ["updated", "0"],
        ["unchanged", "4"],
        ["rejected", "0"],
    ]


def test_the_wrong_file_cannot_wipe_a_catalog(store_location: str, tmp_path: Path) -> None:
    """``ingest assessments recommendations.ndjson`` reported "updated 19,966, rejected 0", exit 0,
    and every assessment lost user_id, company_size and priorities."""
    assessments = write_ndjson(tmp_path / "a.ndjson", [assessment(assessment_id=f"a-{i}") for i in range(3)])
    recommendations = write_ndjson(
        tmp_path / "r.ndjson",
        [recommendation(recommendation_id=f"r-{i}", assessment_id=f"a-{i}") for i in range(3)],
    )
    assert run("--store", store_location, "ingest", "assessments", str(assessments))[0] == 0
    code, out, err = run("--store", store_location, "ingest", "assessments", str(recommendations), "--json")
    assert code == 1
    summary = json.loads(out)  # the summary is still printed for scripts
    assert (summary["read"], summary["updated"], summary["rejected"]) == (3, 0, 3)
    assert summary["reject_reasons"] == {"looks like a recommendation row": 3}
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert errors == [
        f"Error: all 3 rows were rejected: looks like a recommendation row; nothing was stored "
        f"(rejects in {summary['rejects_path']})"
    ]
    store = open_store(store_location)
    try:
        stored = store.read("assessments")
    finally:
        store.close()
    assert stored["user_id"].to_list() == ["user-1"] * 3
    assert stored["company_size"].to_list() == ["small"] * 3
    assert stored["priorities"].null_count() == 0


def test_an_ingest_that_stores_some_rows_exits_0(tmp_path: Path) -> None:
    source = write_ndjson(tmp_path / "in.ndjson", [recommendation(), interaction()])
    code, out, err = run("--store", str(tmp_path / "s"), "ingest", "recommendations", str(source), "--json")
    assert code == 0, err
    assert json.loads(out)["reject_reasons"] == {"looks like an interaction row": 1}


def test_an_ingest_that_rejects_every_row_exits_1(tmp_path: Path) -> None:
    source = write_ndjson(tmp_path / "in.ndjson", ["nope", interaction(user_id=None)])
    code, _, err = run("--store", str(tmp_path / "s"), "ingest", "interactions", str(source))
    assert code == 1
    assert err.splitlines()[-1].startswith("Error: all 2 rows were rejected, 1 as: ")


def served(count: int) -> list[dict[str, object]]:
    """``count`` impression records of two or three items each (the third list has an extra field)."""
    from builders import impression

    lists = []
    for i in range(count):
        items = [
            {"recommendation_id": f"r-{i}-{slot}", "position": slot, "propensity": 0.5}
            for slot in range(2 + i % 2)
        ]
        lists.append(impression(request_id=f"q-{i}", items=items, **({"page": "home"} if i == 2 else {})))
    return lists


def impressions_in(path: Path, fmt: str, lists: list[dict[str, object]]) -> Path:
    """``lists`` written as ``fmt``: ndjson, json (an array), csv (items as JSON text), parquet
    (items as a list of structs) or parquet-text (items as JSON text)."""
    import csv

    import polars as pl

    if fmt == "ndjson":
        return write_ndjson(path, list(lists))
    if fmt == "json":
        path.write_text(json.dumps(lists))
        return path
    columns = sorted({name for row in lists for name in row})
    if fmt == "csv":
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            for row in lists:
                writer.writerow(
                    [
                        json.dumps(v) if isinstance(v, list) else "" if v is None else v
                        for v in map(row.get, columns)
                    ]
                )
        return path
    frame = pl.DataFrame(lists)
    if fmt == "parquet-text":
        frame = frame.with_columns(pl.Series("items", [json.dumps(row["items"]) for row in lists]))
    frame.write_parquet(path)
    return path


@pytest.mark.parametrize("fmt", ["ndjson", "json", "csv", "parquet", "parquet-text"])
def test_impressions_in_every_format(store_location: str, tmp_path: Path, fmt: str) -> None:
    lists = served(4)
    source = impressions_in(tmp_path / f"in.{fmt.split('-')[0]}", fmt, lists)
    code, out, err = run("--store", store_location, "ingest", "impressions", str(source), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["read"], summary["inserted"], summary["duplicates"], summary["rejected"]) == (4, 4, 0, 0)
    assert "duplicates" in err and "updated" not in err  # a log's summary
    with closing(open_store(store_location)) as store:
        stored = store.read("impressions")
    assert stored.height == 10  # items: 2 + 3 + 2 + 3
    assert stored.filter(pl.col("request_id") == "q-1")["recommendation_id"].to_list() == [
        "r-1-0",
        "r-1-1",
        "r-1-2",
    ]
    assert json.loads(stored.filter(pl.col("request_id") == "q-2")["extra"][0]) == {"page": "home"}
    again = json.loads(run("--store", store_location, "ingest", "impressions", str(source), "--json").stdout)
    assert (again["inserted"], again["duplicates"]) == (0, 4)


def test_impression_rejects_name_the_item(tmp_path: Path) -> None:
    from builders import impression

    rows = [impression(), impression(request_id="q-2", items=[{"recommendation_id": "r", "position": -2}])]
    source = write_ndjson(tmp_path / "in.ndjson", rows)
    rejects = tmp_path / "rejects.ndjson"
    code, out, err = run(
        "--store",
        str(tmp_path / "s"),
        "ingest",
        "impressions",
        str(source),
        "--json",
        "--rejects",
        str(rejects),
    )
    assert code == 0, err
    assert json.loads(out)["reject_reasons"] == {"items[0].position: must be >= 0": 1}
    assert [json.loads(line)["line"] for line in rejects.read_text().splitlines()] == [2]
