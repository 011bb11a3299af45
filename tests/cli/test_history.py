"""``recctl history``: one user's summary and recent interactions, for people and for scripts."""

from __future__ import annotations

import csv
import io
import json
from functools import partial
from pathlib import Path

import builders
import pytest

from recctl.records import INTERACTION_TYPES
from recctl.stats import RECENT_COLUMNS

USER = "user-0139"  # the sample's busiest user: 149 interactions
run = partial(builders.run, columns=100)  # the tables here are read at 100 columns


@pytest.fixture
def sample_files(sample_store: Path) -> str:
    return str(sample_store)


def test_json_is_the_summary_plus_recent_interactions(sample_files: str) -> None:
    code, out, err = run("--store", sample_files, "history", USER, "--format", "json", "--limit", "5")
    assert code == 0 and err == ""
    document = json.loads(out)
    assert document["user_id"] == USER and document["total_interactions"] == 149
    assert list(document["type_counts"]) == list(INTERACTION_TYPES)
    assert sum(document["type_counts"].values()) == 149
    assert (
        sum(document["category_preferences"].values()) == 149
    )  # every sample recommendation is in the catalog
    preferences = list(document["category_preferences"].values())
    assert preferences == sorted(preferences, reverse=True)
    types = document["type_counts"]
    assert document["implementation_rate"] == pytest.approx(types["implement"] / types["click"])
    assert 0 < document["avg_engagement"] < 1
    recent = document["recent_interactions"]
    assert len(recent) == 5 and all(list(row) == list(RECENT_COLUMNS) for row in recent)
    times = [row["timestamp"] for row in recent]
    assert times == sorted(times, reverse=True) and times[0].endswith("Z")


def test_csv_and_ndjson_are_the_interactions_with_the_summary_on_stderr(sample_files: str) -> None:
    code, out, err = run("--store", sample_files, "history", USER, "--format", "csv", "--limit", "0")
    assert code == 0
    assert out.startswith("user_id,timestamp,event_id,recommendation_id,")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 149 and list(rows[0]) == list(RECENT_COLUMNS)
    assert {row["user_id"] for row in rows} == {USER}  # rows of several users can be concatenated
    assert USER in err and "149 interactions" in err
    code, out, _ = run("-q", "--store", sample_files, "history", USER, "--format", "ndjson")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(lines) == 100  # the default --limit
    assert [line["event_id"] for line in lines] == [row["event_id"] for row in rows[:100]]


def test_table_shows_summary_and_recent_rows(sample_files: str) -> None:
    code, out, _ = run("--store", sample_files, "history", USER, "--limit", "3")
    assert code == 0
    assert "149 interactions" in out and "implementation rate" in out and "by category" in out
    assert "most recent 3 of 149 interactions" in out
    assert max(len(line) for line in out.splitlines()) <= 100
    _, out, _ = run("--store", sample_files, "history", USER, "--format", "json", "--limit", "1")
    newest = json.loads(out)["recent_interactions"][0]
    assert newest["recommendation_id"] in run("--store", sample_files, "history", USER, "--limit", "1")[1]


def test_window(sample_files: str) -> None:
    _, out, _ = run("--store", sample_files, "history", USER, "--format", "json", "--since", "2030-01-01")
    quiet = json.loads(out)
    assert quiet["total_interactions"] == 0 and quiet["recent_interactions"] == []
    assert (quiet["implementation_rate"], quiet["avg_engagement"]) == (None, None)
    assert (
        run("--store", sample_files, "history", USER, "--since", "2025-10-02", "--until", "2025-10-01")[0]
        == 2
    )


def test_unknown_user_exits_1(sample_files: str) -> None:
    code, out, err = run("--store", sample_files, "history", "nobody")
    assert code == 1 and out == ""
    assert err.strip() == "Error: unknown user 'nobody': no interaction or assessment is stored for it"
