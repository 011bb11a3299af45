"""Two ``recctl ingest`` processes on overlapping logs into one store at the same time.

The store ends with the union of both logs' valid rows, each once, and each process's own
accounting still adds up: the rows they inserted, summed, are exactly the union.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from faults.conftest import Log, build_log
from faults.processes import file_store_event_ids, mongo_event_ids, start, summary, temporaries


def overlapping_logs(lines: list[str], folder: Path, size: int) -> tuple[Log, Log]:
    """Two logs of ``size`` lines sharing their middle third (their duplicates and rejects too)."""
    shift = size * 2 // 3
    return build_log(folder / "first.ndjson", lines[:size]), build_log(
        folder / "second.ndjson", lines[shift : shift + size]
    )


def ingest_both(store: str, logs: tuple[Log, Log], folder: Path, batch_rows: str) -> list[dict[str, int]]:
    processes = [
        start(
            [
                *("-q", "--store", store, "ingest", "interactions", str(log.path), "--json"),
                *("--rejects", str(folder / f"rejects-{number}.ndjson")),
            ],
            RECCTL_INGEST_BATCH_ROWS=batch_rows,
        )
        for number, log in enumerate(logs)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        results.append(summary(out))
    return results


def check(results: list[dict[str, int]], logs: tuple[Log, Log], stored: list[str]) -> None:
    union = logs[0].expected_ids | logs[1].expected_ids
    assert len(logs[0].expected_ids & logs[1].expected_ids) > 0  # the logs do overlap
    assert len(stored) == len(set(stored)), "an event is stored twice"
    assert set(stored) == union
    assert sum(result["inserted"] for result in results) == len(union)
    for result, log in zip(results, logs, strict=True):
        assert result["read"] == log.read
        assert result["rejected"] == log.rejected
        assert result["inserted"] + result["duplicates"] == log.read - log.rejected


def test_two_writers_into_one_file_store(interaction_lines: list[str], tmp_path: Path) -> None:
    logs = overlapping_logs(interaction_lines, tmp_path, 18_000)
    store = tmp_path / "store"
    results = ingest_both(str(store), logs, tmp_path, batch_rows="1000")
    check(results, logs, file_store_event_ids(store))
    assert temporaries(store) == []


@pytest.mark.mongo
def test_two_writers_into_one_mongo_store(
    interaction_lines: list[str], mongo_uri: str, tmp_path: Path
) -> None:
    logs = overlapping_logs(interaction_lines, tmp_path, 1_800)
    results = ingest_both(mongo_uri, logs, tmp_path, batch_rows="200")
    check(results, logs, mongo_event_ids(mongo_uri))
