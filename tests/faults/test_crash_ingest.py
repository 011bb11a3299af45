"""kill -9 in the middle of ``recctl ingest``, then the same ingest again: nothing lost, nothing doubled.

Kill points are random (the random seed is in every assertion message): the file store is killed once a
drawn number of new part files has appeared, or after a drawn delay; MongoDB once a drawn number
of new documents is stored. Writes go in small batches (``RECCTL_INGEST_BATCH_ROWS``) so that
a kill lands between and inside writes, not only before the first one.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from faults.conftest import Log
from faults.processes import (
    MongoCounter,
    file_store_event_ids,
    kill_when,
    mongo_event_ids,
    part_files,
    run,
    start,
    summary,
    temporaries,
)

FILE_BATCH_ROWS = "1000"  # about 45 part files for the 30k-line log
MONGO_BATCH_ROWS = "250"


def ingest_args(store: str, log: Log, rejects: Path) -> list[str]:
    return [
        "-q",
        "--store",
        store,
        "ingest",
        "interactions",
        str(log.path),
        "--json",
        "--rejects",
        str(rejects),
    ]


def assert_store_is_a_clean_subset(ids: list[str], log: Log, context: str) -> None:
    assert len(ids) == len(set(ids)), f"an event is stored twice ({context})"
    assert set(ids) <= log.expected_ids, f"a row that a clean ingest does not store is stored ({context})"


def test_file_store_survives_kill_9_at_random_points(big_log: Log, tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    store = tmp_path / "store"
    args = ingest_args(str(store), big_log, tmp_path / "rejects.ndjson")
    kills: list[str] = []
    for attempt in range(4):
        before = len(part_files(store))
        stored_before = len(file_store_event_ids(store))
        process = start(args, RECCTL_INGEST_BATCH_ROWS=FILE_BATCH_ROWS)
        started = time.monotonic()
        if attempt < 3:
            new_parts = rng.randint(1, 12)
            point = f"after {new_parts} new part files"
            killed = kill_when(process, lambda: len(part_files(store)) >= before + new_parts)  # noqa: B023
        else:
            delay = rng.uniform(0.3, 1.2)
            point = f"after {delay:.2f} s"
            killed = kill_when(process, lambda: time.monotonic() - started >= delay, timeout=30)  # noqa: B023
        context = f"seed {seed}, kill {attempt + 1} {point}"
        if not killed:
            assert attempt == 3, f"the ingest finished before the kill point ({context})"
            point += " (the ingest had finished)"
        kills.append(point)
        ids = file_store_event_ids(store)  # every visible part file opens
        assert_store_is_a_clean_subset(ids, big_log, context)
        if attempt < 3:
            assert len(ids) > stored_before, f"the killed run stored nothing new ({context})"

    code, out, err = run(args, RECCTL_INGEST_BATCH_ROWS=FILE_BATCH_ROWS)
    assert code == 0, err
    stored_before = len(ids)
    result = summary(out)
    ids = file_store_event_ids(store)
    context = f"seed {seed}, kills {kills}"
    assert sorted(ids) == sorted(big_log.expected_ids), context
    assert result["read"] == big_log.read
    assert result["rejected"] == big_log.rejected
    assert result["inserted"] == len(big_log.expected_ids) - stored_before, context
    assert temporaries(store) == [], f"temporaries of killed writers are left behind ({context})"


@pytest.mark.mongo
@pytest.mark.slow
def test_mongo_store_survives_kill_9_at_random_points(small_log: Log, mongo_uri: str, tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    args = ingest_args(mongo_uri, small_log, tmp_path / "rejects.ndjson")
    count = MongoCounter(mongo_uri)
    try:
        for attempt in range(3):
            before = count()
            new_documents = rng.randint(1, 700)
            context = f"seed {seed}, kill {attempt + 1} after {new_documents} new documents"
            process = start(args, RECCTL_INGEST_BATCH_ROWS=MONGO_BATCH_ROWS)
            killed = kill_when(process, lambda: count() >= before + new_documents)  # noqa: B023
            assert killed, f"the ingest finished before the kill point ({context})"
            count.settled()
            ids = mongo_event_ids(mongo_uri)
            assert_store_is_a_clean_subset(ids, small_log, context)
        stored_before = count.settled()
    finally:
        count.close()

    code, out, err = run(args, RECCTL_INGEST_BATCH_ROWS=MONGO_BATCH_ROWS)
    assert code == 0, err
    result = summary(out)
    ids = mongo_event_ids(mongo_uri)
    assert sorted(ids) == sorted(small_log.expected_ids), f"seed {seed}"
    assert result["read"] == small_log.read
    assert result["rejected"] == small_log.rejected
    assert result["inserted"] == len(small_log.expected_ids) - stored_before, f"seed {seed}"
