"""Options shared by several commands: the time options take every timestamp form recctl prints."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import typer
from builders import interaction, recommendation, run, write_ndjson

from recctl.cli.options import parse_time
from recctl.ingestion import ingest
from recctl.stores import open_store


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-10-01", datetime(2025, 10, 1)),
        ("2025-10-01T12:00:00Z", datetime(2025, 10, 1, 12)),  # what stats/history print, and sample
        ("2025-10-01T12:00:00.250Z", datetime(2025, 10, 1, 12, 0, 0, 250000)),  # stats --format json
        ("2025-10-01T12:00:00+00:00", datetime(2025, 10, 1, 12)),  # manifests and model meta
        ("2025-10-01T12:00:00.123456+00:00", datetime(2025, 10, 1, 12, 0, 0, 123456)),
        ("2025-10-01T14:30:00+02:00", datetime(2025, 10, 1, 12, 30)),  # converted to UTC
        ("2025-10-01T07:00:00-0500", datetime(2025, 10, 1, 12)),
        ("2025-10-01 12:00", datetime(2025, 10, 1, 12)),  # the training report
        ("2025-10-01 12:00:00", datetime(2025, 10, 1, 12)),  # the history table
        ("2025-10-01T12:00:00z", datetime(2025, 10, 1, 12)),
        (" 2025-10-01T12:00:00Z ", datetime(2025, 10, 1, 12)),
    ],
)
def test_parse_time_accepts_what_recctl_prints(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected  # naive UTC, what the commands work in


@pytest.mark.parametrize("text", ["yesterday", "2025-13-01", "01/10/2025", ""])
def test_parse_time_refuses_other_text(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="not an ISO-8601 time"):
        parse_time(text)


COMMANDS = [["stats"], ["history", "user-1"], ["export"], ["train"], ["evaluate"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("option", ["--since", "--until"])
def test_every_time_option_takes_a_utc_timestamp(tmp_path: Path, command: list[str], option: str) -> None:
    """The options parse (no usage error, exit 2): the command goes on and fails on the missing store
    (or, for evaluate, the missing model)."""
    code, _, err = run("--store", str(tmp_path / "none"), *command, option, "2025-10-01T12:00:00.000Z")
    assert code == 1, err
    assert "Error: no store at" in err or "Error: no model at" in err


def test_a_zoned_since_filters_in_utc(tmp_path: Path) -> None:
    location = str(tmp_path / "store")
    rows = [
        interaction(event_id="early", timestamp="2025-10-01T11:59:59Z"),
        interaction(event_id="late", timestamp="2025-10-01T12:00:00Z"),
    ]
    store = open_store(location)
    ingest(store, "recommendations", [str(write_ndjson(tmp_path / "r.ndjson", [recommendation()]))])
    ingest(store, "interactions", [str(write_ndjson(tmp_path / "i.ndjson", rows))])
    store.close()
    for since in ("2025-10-01T12:00:00Z", "2025-10-01T14:00:00+02:00", "2025-10-01T12:00:00.000Z"):
        code, out, err = run("--store", location, "stats", "--since", since, "--format", "json")
        assert code == 0, err
        assert '"total_interactions":1' in out.replace(" ", ""), since
