"""Running ``python -m recctl`` as a real process, and looking inside stores the way readers do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pymongo

RECCTL = [sys.executable, "-m", "recctl"]
INTERACTIONS = "recommendation_interactions"


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RECCTL_STORE"}
    env.update(extra)
    return env


def start(args: Sequence[str], *, cwd: Path | None = None, **env: str) -> subprocess.Popen[str]:
    """``recctl <args>`` started in the background, its output captured as text."""
    return subprocess.Popen(
        [*RECCTL, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=cwd,
        env=environment(**env),
    )


def run(
    args: Sequence[str], *, cwd: Path | None = None, timeout: float = 120, **env: str
) -> tuple[int, str, str]:
    """``recctl <args>`` to the end: (exit code, stdout, stderr)."""
    process = start(args, cwd=cwd, **env)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def kill_when(process: subprocess.Popen[str], condition: Callable[[], bool], timeout: float = 60) -> bool:
    """SIGKILL ``process`` as soon as ``condition()`` holds; False if it finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            process.communicate()
            return False
        if condition():
            process.kill()
            process.communicate()
            return True
        time.sleep(0.01)
    process.kill()
    process.communicate()
    raise AssertionError(f"the kill condition did not hold within {timeout} s")


def summary(out: str) -> dict[str, Any]:
    """The ``--json`` summary, with the accounting invariant (read = the sum of the outcomes) checked."""
    result: dict[str, Any] = json.loads(out)
    assert (
        result["read"] == result["inserted"] + result["duplicates"] + result["updated"] + result["rejected"]
    )
    return result


# -- the file store, read the way readers read it --------------------------------------------------
def part_files(store: Path) -> list[Path]:
    """The interaction files readers see (``interactions/date=*/part-*.parquet``)."""
    return sorted((store / "interactions").glob("date=*/part-*.parquet"))


def file_store_event_ids(store: Path) -> list[str]:
    """Every stored event id, each visible part file opened on its own (a torn one fails here)."""
    ids: list[str] = []
    for part in part_files(store):
        ids.extend(pl.read_parquet(part, columns=["event_id"])["event_id"].to_list())
    return ids


def temporaries(store: Path) -> list[Path]:
    """Files a killed writer may leave: hidden temporaries, never read."""
    return sorted(path for path in store.rglob(".*.tmp"))


# -- MongoDB ----------------------------------------------------------------------------------------
def mongo_event_ids(uri: str) -> list[str]:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri)
    try:
        database = client.get_default_database()
        return [doc["event_id"] for doc in database[INTERACTIONS].find({}, {"event_id": 1, "_id": 0})]
    finally:
        client.close()


class MongoCounter:
    """Counts interaction documents, cheaply enough to poll while an ingest runs."""

    def __init__(self, uri: str) -> None:
        self._client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            uri, serverSelectionTimeoutMS=2000
        )
        self._collection = self._client.get_default_database()[INTERACTIONS]

    def __call__(self) -> int:
        return int(self._collection.count_documents({}))

    def settled(self, quiet_seconds: float = 0.3) -> int:
        """The count once it stops moving: a killed client's last batch may still be landing."""
        last = self()
        while True:
            time.sleep(quiet_seconds)
            now = self()
            if now == last:
                return now
            last = now

    def close(self) -> None:
        self._client.close()
