"""Shared data for the fault tests: a generated interaction log with known valid unique rows.

The log is the simulator's (``recctl.sample``) with some event ids removed (so ids are derived),
some lines repeated verbatim (in-file duplicates) and some broken lines interleaved (rejects).
What a clean ingest of it stores is computed once, by the library, into a private store: every
fault test compares against that set of event ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recctl.ingestion import ingest
from recctl.sample import generate_sample
from recctl.stores import open_store

BROKEN_LINES = ("{not json", '{"user_id": "u"}', "[1, 2]", '{"interaction_type": "fly"}')


@dataclass(frozen=True)
class Log:
    """An NDJSON interaction log and what a clean ingest makes of it."""

    path: Path
    lines: list[str]
    expected_ids: frozenset[str]
    rejected: int
    duplicates: int

    @property
    def read(self) -> int:
        return len(self.lines)


def build_log(path: Path, source_lines: list[str]) -> Log:
    """Write ``source_lines`` with derived ids, repeats and broken lines mixed in; ingest it cleanly."""
    lines: list[str] = []
    for number, line in enumerate(source_lines):
        if number % 7 == 3:
            record = json.loads(line)
            record.pop("event_id", None)
            line = json.dumps(record)
        lines.append(line)
        if number % 97 == 5:
            lines.append(line)  # the same event twice: a duplicate within the file
        if number % 211 == 11:
            lines.append(BROKEN_LINES[number % len(BROKEN_LINES)])
    path.write_text("\n".join(lines) + "\n")
    clean = open_store(path.with_name(path.stem + "-clean-store"))
    try:
        summary = ingest(
            clean,
            "interactions",
            [str(path)],
            rejects_path=path.with_name(path.stem + "-clean-rejects.ndjson"),
        )
        ids = clean.read("interactions", columns=["event_id"])["event_id"].to_list()
    finally:
        clean.close()
    assert len(ids) == len(set(ids)) == summary.inserted
    assert summary.read == summary.inserted + summary.duplicates + summary.rejected == len(lines)
    assert summary.rejected > 0 and summary.duplicates > 0
    return Log(path, lines, frozenset(ids), summary.rejected, summary.duplicates)


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulator's files for 2,000 assessments over 20 days (about 58k interactions)."""
    folder = tmp_path_factory.mktemp("generated")
    generate_sample(folder, assessments=2000, seed=11, start=datetime(2025, 9, 1, tzinfo=UTC), days=20)
    return folder


@pytest.fixture(scope="session")
def interaction_lines(generated: Path) -> list[str]:
    return (generated / "interactions.ndjson").read_text().splitlines()


@pytest.fixture(scope="session")
def big_log(interaction_lines: list[str], tmp_path_factory: pytest.TempPathFactory) -> Log:
    """About 30k interaction lines: for the file store."""
    return build_log(tmp_path_factory.mktemp("big") / "big.ndjson", interaction_lines[:30_000])


@pytest.fixture(scope="session")
def small_log(interaction_lines: list[str], tmp_path_factory: pytest.TempPathFactory) -> Log:
    """About 3k interaction lines: for MongoDB (SecantusDB stores a few thousand documents a second)."""
    return build_log(tmp_path_factory.mktemp("small") / "small.ndjson", interaction_lines[:3000])
