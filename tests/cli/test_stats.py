"""``recctl stats`` as an analyst and a script use it: formats, table width, filters, errors."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import builders
import polars as pl
import pytest
from builders import SAMPLE_DATA, interaction, recommendation, write_ndjson
from mongo_server import with_database

from recctl.cli.stats import SortField
from recctl.ingestion import ingest
from recctl.stats import IMPRESSION_METRICS, METRICS, STATS_COLUMNS
from recctl.stores import open_store

KINDS = ("assessments", "recommendations", "impressions", "interactions")
run = partial(builders.run, columns=100)  # the tables here are read at 100 columns


def fill(location: str, sources: dict[str, list[Path]]) -> None:
    store = open_store(location)
    try:
        for kind in KINDS:
            for source in sources.get(kind, []):
                assert ingest(store, kind, [str(source)]).rejected == 0
    finally:
        store.close()


@pytest.fixture
def sample_files(sample_store: Path) -> str:
    """The committed sample data in a file store (read-only for the tests)."""
    return str(sample_store)


@pytest.fixture(scope="module")
def sample_mongo(mongo_server_uri: str, mongo_client: Any) -> Iterator[str]:
    """The committed sample data in MongoDB, served lists included as in ``sample_files`` (about
    12,500 documents: a few seconds on SecantusDB)."""
    database = "recctl_test_stats_sample"
    mongo_client.drop_database(database)
    location = with_database(mongo_server_uri, database)
    fill(location, {kind: [SAMPLE_DATA / f"{kind}.ndjson"] for kind in KINDS})
    yield location
    mongo_client.drop_database(database)


@pytest.fixture
def seed_store(tmp_path: Path) -> str:
    """The original system's example (38 views, 12 clicks, 3 implementations) and one without clicks."""
    counts = {"view": 38, "click": 12, "implement": 3, "save": 1, "dismiss": 1}
    kinds = [kind for kind, number in counts.items() for _ in range(number)]
    rows = [
        interaction(
            event_id=f"e-{i}",
            recommendation_id="rec-seed",
            interaction_type=kind,
            timestamp=f"2025-06-01T10:{i:02d}:00Z",
        )
        for i, kind in enumerate(kinds)
    ]
    rows += [
        interaction(event_id=f"q-{i}", recommendation_id="rec-quiet", interaction_type="view", user_id="ann")
        for i in range(2)
    ]
    catalog = [recommendation(recommendation_id="rec-seed", title="Enable [bold]MFA[/bold] everywhere")]
    location = str(tmp_path / "seed")
    fill(
        location,
        {
            "recommendations": [write_ndjson(tmp_path / "recs.ndjson", list(catalog))],
            "interactions": [write_ndjson(tmp_path / "events.ndjson", list(rows))],
        },
    )
    return location


def sample_events() -> pl.DataFrame:
    """The committed interactions, with ``kind``: the interaction type as the store reads it."""
    sample = pl.read_ndjson(SAMPLE_DATA / "interactions.ndjson", infer_schema_length=None)
    return sample.with_columns(kind=pl.col("interaction_type").str.strip_chars().str.to_lowercase())


def rows_of(location: str, *args: str) -> list[dict[str, Any]]:
    code, out, err = run("--store", location, "stats", "--format", "json", *args)
    assert code == 0, err
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


# -- the original system's example, in every format ---------------------------------------------
def test_seed_example_in_json_and_table(seed_store: str) -> None:
    seed, quiet = rows_of(seed_store)
    assert seed["recommendation_id"] == "rec-seed" and seed["total_interactions"] == 55
    assert (
        seed["click_through_rate"] == pytest.approx(12 / 38)
        and round(seed["click_through_rate"], 4) == 0.3158
    )
    assert seed["implementation_rate"] == 0.25
    assert (quiet["click_through_rate"], quiet["implementation_rate"]) == (0.0, None)  # JSON null
    code, out, _ = run("--store", seed_store, "stats")
    assert code == 0
    seed_line = next(line for line in out.splitlines() if line.startswith("rec-seed"))
    assert seed_line.split()[-3:] == ["31.6%", "25.0%", "0.225"]  # (38 x 0.1 + 12 x 0.4 + 3 + 0.8) / 55
    quiet_line = next(line for line in out.splitlines() if line.startswith("rec-quiet"))
    assert quiet_line.split()[-3:] == ["0.0%", "-", "0.100"]


def test_detail_panel_for_one_recommendation(seed_store: str) -> None:
    code, out, _ = run("--store", seed_store, "stats", "rec-seed")
    assert code == 0
    assert "Enable [bold]MFA[/bold] everywhere" in out  # a title is data, never markup
    assert "click-through rate" in out and "31.6%" in out and "12 / 38" in out
    assert "implementation rate" in out and "25.0%" in out and "3 / 12" in out
    [row] = rows_of(seed_store, "rec-seed")
    assert row["title"] == "Enable [bold]MFA[/bold] everywhere"


def test_unknown_recommendation_exits_1(seed_store: str) -> None:
    code, out, err = run("--store", seed_store, "stats", "rec-nope")
    assert code == 1 and out == ""
    assert err.strip() == (
        "Error: unknown recommendation 'rec-nope': it is not in the catalog and has no interactions"
    )


# -- machine formats: valid and complete ----------------------------------------------------------
def test_json_csv_ndjson_are_plain_and_complete(sample_files: str) -> None:
    sample = sample_events()
    rows = rows_of(sample_files)
    assert len(rows) == sample["recommendation_id"].n_unique() == 2755
    # the sample has served lists, so the impression columns follow the usual ones
    assert all(list(row) == [*STATS_COLUMNS, *IMPRESSION_METRICS] for row in rows)
    assert sum(row["total_interactions"] for row in rows) == sample.height
    assert sum(row["click_count"] for row in rows) == sample.filter(pl.col("kind") == "click").height
    served = pl.read_ndjson(SAMPLE_DATA / "impressions.ndjson", infer_schema_length=None)
    shown = dict(
        served.select(pl.col("items").explode().struct.field("recommendation_id"))
        .group_by("recommendation_id")
        .len()
        .iter_rows()
    )
    assert all(row["impressions"] == shown[row["recommendation_id"]] for row in rows)
    assert all(row["ctr_per_impression"] == row["click_count"] / row["impressions"] for row in rows)

    code, out, _ = run("--store", sample_files, "stats", "--format", "csv")
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert len(table) == len(rows)
    assert [line["recommendation_id"] for line in table] == [row["recommendation_id"] for row in rows]
    for line, row in zip(table, rows, strict=True):
        assert int(line["implementation_count"]) == row["implementation_count"]
        rate = row["implementation_rate"]
        assert (
            (line["implementation_rate"] == "")
            if rate is None
            else (float(line["implementation_rate"]) == rate)
        )

    code, out, _ = run("--store", sample_files, "stats", "--format", "ndjson")
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == rows
    for output_format in ("json", "csv", "ndjson"):
        _, out, _ = run("--store", sample_files, "stats", "--format", output_format, "--limit", "3")
        assert "\x1b" not in out and "[/" not in out  # no ANSI codes, no rich markup
    assert len(rows_of(sample_files, "--limit", "3")) == 3


# -- the table ------------------------------------------------------------------------------------
def test_table_fits_100_columns(sample_files: str) -> None:
    code, out, _ = run("--store", sample_files, "stats", "--sort", "implementation_rate", "--asc")
    assert code == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    header = " ".join(lines[:2])
    for name in ("recommendation", "category", "total", "views", "clicks", "saves", "shares", "impl.", "CTR"):
        assert name in header
    data = [line for line in lines if line.startswith("rec-")]
    assert len(data) == 20  # the default --limit, one line each (nothing wrapped)
    assert all(len(line.split()) == 12 for line in data)  # every count and rate, no cut values
    assert "shown" not in header  # the impression columns give way before the optional counts
    assert "20 recommendations by implementation_rate, ascending; --limit 0 shows all" in lines[-1]
    narrow = run("--store", sample_files, "stats", columns=80)[1].splitlines()
    assert max(len(line) for line in narrow) <= 80
    assert "CTR" in narrow[1] and "shares" not in narrow[1]  # optional counts make room for the rates
    wide = run("--store", sample_files, "stats", columns=160)[1].splitlines()
    top = rows_of(sample_files, "--limit", "1")[0]
    assert "title" in wide[1] and top["title"] in wide[3]  # titles when there is room for them
    assert "shown" in wide[1] and "CTR /" in wide[0]  # and the served lists' columns
    assert max(len(line) for line in wide) <= 160


def test_limit_zero_shows_every_row(sample_files: str) -> None:
    code, out, _ = run("--store", sample_files, "stats", "--limit", "0", "--min-views", "4")
    assert code == 0
    shown = [line for line in out.splitlines() if line.startswith("rec-")]
    views = sample_events().filter(pl.col("kind") == "view").group_by("recommendation_id").len()
    busy = views.filter(pl.col("len") >= 4).height  # 279 on the sample: views are page views
    assert len(shown) == len(rows_of(sample_files, "--min-views", "4")) == busy > 20
    assert "--limit 0 shows all" not in out


# -- filters and sort -----------------------------------------------------------------------------
def test_filters(sample_files: str) -> None:
    security = rows_of(sample_files, "--category", "security")
    assert security and {row["category"] for row in security} == {"security"}
    assert len(security) < len(rows_of(sample_files))
    busy = rows_of(sample_files, "--min-views", "3")
    assert busy and min(row["view_count"] for row in busy) == 3
    window = rows_of(sample_files, "--since", "2025-10-01", "--until", "2025-10-08")
    with closing(open_store(sample_files)) as store:
        in_window = store.read(
            "interactions", since=datetime(2025, 10, 1, tzinfo=UTC), until=datetime(2025, 10, 8, tzinfo=UTC)
        )
    assert sum(row["total_interactions"] for row in window) == in_window.height > 0
    user = rows_of(sample_files, "--user", "user-0139")
    assert sum(row["total_interactions"] for row in user) == 149


def test_category_in_any_case_and_a_typo_names_the_categories(sample_files: str) -> None:
    security = rows_of(sample_files, "--category", "security")
    assert rows_of(sample_files, "--category", "Security") == security
    code, out, err = run("--store", sample_files, "stats", "--category", "Securty", "--format", "csv")
    assert code == 1 and out == ""
    assert err == (
        "Error: unknown category 'Securty': the catalog's categories are architecture, compliance, "
        "cost_optimization, monitoring, performance, reliability, scalability, security\n"
    )
    code, _, err = run("--store", sample_files, "stats", "--user", "user-9999")
    assert code == 1 and err.startswith("Error: unknown user 'user-9999'")


def test_sort_and_asc(sample_files: str) -> None:
    rates = [row["implementation_rate"] for row in rows_of(sample_files, "--sort", "implementation_rate")]
    known = [rate for rate in rates if rate is not None]
    assert known == sorted(known, reverse=True) and rates[len(known) :] == [None] * (len(rates) - len(known))
    ascending = rows_of(sample_files, "--sort", "avg_label", "--asc")
    labels = [row["avg_label"] for row in ascending]
    assert labels == sorted(labels)
    totals = rows_of(sample_files)  # default: total_interactions, descending, ties by id
    keys = [(-row["total_interactions"], row["recommendation_id"]) for row in totals]
    assert keys == sorted(keys)


def test_usage_errors_exit_2(sample_files: str) -> None:
    assert run("--store", sample_files, "stats", "--sort", "title")[0] == 2
    assert run("--store", sample_files, "stats", "--since", "2025-10-02", "--until", "2025-10-01")[0] == 2
    assert run("--store", sample_files, "stats", "--format", "xml")[0] == 2


def test_sort_choices_are_the_library_metrics() -> None:
    assert tuple(SortField) == METRICS


# -- both stores ----------------------------------------------------------------------------------
@pytest.mark.mongo
@pytest.mark.slow
def test_files_and_mongo_print_identical_json_on_the_sample_data(
    sample_files: str, sample_mongo: str
) -> None:
    commands = [  # 0.2-3 s each on SecantusDB, the category filter ~10 s
        ["stats", "--format", "json"],
        [
            "stats",
            "--format",
            "json",
            "--category",
            "compliance",  # the smallest category: SecantusDB reads an $in of its ids slowly
            "--since",
            "2025-10-01",
            "--sort",
            "avg_label",
            "--asc",
        ],
        ["stats", "--format", "json", "rec-000172-01"],
        ["history", "user-0139", "--format", "json", "--limit", "0", "--until", "2025-10-20"],
        ["stats", "--format", "csv", "--user", "user-0079", "--min-views", "2"],
    ]
    for command in commands:
        files, mongo = (run("--store", location, *command) for location in (sample_files, sample_mongo))
        assert files[0] == mongo[0] == 0, (command, files[2], mongo[2])
        assert files[1] == mongo[1], command


def test_impressions_show_as_times_shown_and_ctr_per_impression(tmp_path: Path) -> None:
    from builders import impression

    location = str(tmp_path / "store")
    rows = [interaction(event_id=f"e-{i}", recommendation_id="rec-0") for i in range(2)]
    lists = [impression(request_id=f"q-{i}") for i in range(4)]  # rec-0, rec-1, rec-2 shown 4 times each
    fill(location, {"interactions": [write_ndjson(tmp_path / "i.ndjson", list(rows))]})
    with closing(open_store(location)) as store:
        ingest(store, "impressions", [str(write_ndjson(tmp_path / "q.ndjson", list(lists)))])
    code, out, err = run("--store", location, "stats", "--format", "json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert (row["click_count"], row["impressions"], row["ctr_per_impression"]) == (2, 4, 0.5)
    code, out, err = run("--store", location, "stats")
    assert code == 0, err
    assert "shown" in out and "50.0%" in out
    code, out, err = run("--store", location, "stats", "rec-0")
    assert code == 0, err
    assert "CTR per impression" in out and "clicks / impressions = 2 / 4" in out
