"""Ingest accounting: read == inserted + duplicates + updated + rejected, and every reject is on file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import interaction, recommendation, stored_count, write_ndjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recctl.errors import StrictModeError
from recctl.ingestion import ingest
from recctl.stores import open_store

INVALID_CHANGES: list[dict[str, Any]] = [
    {"user_id": None},
    {"interaction_type": "buy"},
    {"timestamp": "never"},
    {"interaction_type": "rate", "interaction_value": 9},
    {"context": {"position": -3}},
]

row_strategy = st.one_of(
    st.builds(lambda i: ("valid", interaction(event_id=f"e-{i}")), st.integers(0, 30)),
    st.builds(lambda i: ("derived", interaction(event_id=None, user_id=f"u-{i}")), st.integers(0, 10)),
    st.builds(
        lambda i: ("invalid", interaction(**INVALID_CHANGES[i])), st.integers(0, len(INVALID_CHANGES) - 1)
    ),
    st.sampled_from([("broken", "{oops"), ("broken", "[]"), ("broken", '{"a": NaN}')]),
)


def run_accounting(
    location: str, tmp_path: Path, rows: list[tuple[str, Any]], stored_before: set[str]
) -> None:
    source = write_ndjson(tmp_path / "in.ndjson", [row for _, row in rows])
    rejects_path = tmp_path / "rejects.ndjson"
    rejects_path.unlink(missing_ok=True)
    store = open_store(location)
    try:
        summary = ingest(store, "interactions", [str(source)], rejects_path=rejects_path)
        stored_after = set(store.read("interactions", columns=["event_id"])["event_id"])
    finally:
        store.close()
    assert summary.read == len(rows)
    assert summary.read == summary.inserted + summary.duplicates + summary.rejected
    bad_lines = [n for n, (kind, _) in enumerate(rows, start=1) if kind in ("invalid", "broken")]
    assert summary.rejected == len(bad_lines)
    assert sum(summary.reject_reasons.values()) == summary.rejected
    rejected = [json.loads(line) for line in rejects_path.read_text().splitlines()] if bad_lines else []
    assert [r["line"] for r in rejected] == bad_lines
    assert all(r["reason"] and r["raw"] for r in rejected)
    assert len(stored_after - stored_before) == summary.inserted


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(row_strategy, max_size=40))
def test_accounting_files(tmp_path: Path, rows: list[tuple[str, Any]]) -> None:
    location = str(tmp_path / "store")
    store = open_store(location)
    before = set(store.read("interactions", columns=["event_id"])["event_id"])
    store.close()
    run_accounting(location, tmp_path, rows, before)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(row_strategy, max_size=40))
def test_accounting_mongo(mongo_uri: str, tmp_path: Path, rows: list[tuple[str, Any]]) -> None:
    store = open_store(mongo_uri)
    before = set(store.read("interactions", columns=["event_id"])["event_id"])
    store.close()
    run_accounting(mongo_uri, tmp_path, rows, before)


def test_catalog_accounting(store: Any, tmp_path: Path) -> None:
    rows = [
        recommendation(recommendation_id="r-1"),
        recommendation(recommendation_id="r-2", confidence_score=2),
        recommendation(recommendation_id="r-1", title="again"),
        "not json",
    ]
    summary = ingest(store, "recommendations", [str(write_ndjson(tmp_path / "r.ndjson", rows))])
    assert (summary.read, summary.inserted, summary.updated, summary.rejected) == (4, 1, 1, 2)


def test_strict_writes_nothing(store: Any, tmp_path: Path) -> None:
    source = write_ndjson(tmp_path / "in.ndjson", [interaction(event_id="ok"), interaction(user_id=None)])
    with pytest.raises(StrictModeError, match="1 of 2 rows are invalid"):
        ingest(store, "interactions", [str(source)], strict=True, rejects_path=tmp_path / "rej.ndjson")
    assert stored_count(store, "interactions") == 0
    assert json.loads((tmp_path / "rej.ndjson").read_text())["line"] == 2
    clean = write_ndjson(tmp_path / "clean.ndjson", [interaction(event_id="ok")])
    assert ingest(store, "interactions", [str(clean)], strict=True).inserted == 1


def test_small_batches_still_account(store: Any, tmp_path: Path) -> None:
    rows = [interaction(event_id=f"e-{i % 7}") for i in range(20)]
    summary = ingest(store, "interactions", [str(write_ndjson(tmp_path / "in.ndjson", rows))], batch_rows=3)
    assert (summary.inserted, summary.duplicates) == (7, 13)


def test_ids_that_are_booleans_or_fractions_are_rejected_not_stored_as_text(
    store: Any, tmp_path: Path
) -> None:
    import polars as pl

    rows = [
        interaction(event_id="a", recommendation_id=True),
        interaction(event_id="b", user_id=1.5),
        interaction(event_id=7, recommendation_id=12, user_id="u"),
    ]
    summary = ingest(store, "interactions", [str(write_ndjson(tmp_path / "in.ndjson", rows))])
    assert (summary.inserted, summary.rejected) == (1, 2)
    assert dict(summary.reject_reasons) == {
        "recommendation_id: must be a string or an integer": 1,
        "user_id: must be a string or an integer": 1,
    }
    stored = store.read("interactions")
    assert stored.select("event_id", "recommendation_id", "user_id").rows() == [("7", "12", "u")]
    # A Parquet column of booleans or floats is the same JSON value: the same rule applies.
    parquet = tmp_path / "catalog.parquet"
    pl.DataFrame(
        {"recommendation_id": [1.0, 2.5], "assessment_id": [True, None], "category": ["security"] * 2}
    ).with_columns(confidence_score=pl.lit(0.5)).write_parquet(parquet)
    summary = ingest(store, "recommendations", [str(parquet)])
    assert dict(summary.reject_reasons) == {
        "assessment_id: must be a string or an integer": 1,  # row 0: its recommendation_id 1.0 is 1
        "recommendation_id: must be a string or an integer": 1,  # row 1: 2.5
    }
    assert stored_count(store, "recommendations") == 0


def test_read_ahead_gives_every_item_in_order_and_raises_where_the_source_did() -> None:
    from recctl.formats.ahead import read_ahead

    def source() -> Any:
        yield from range(5)
        raise ValueError("line 6: broken")

    got = []
    with pytest.raises(ValueError, match="line 6: broken"):
        for item in read_ahead(source(), 2):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_read_ahead_stopped_early_closes_its_source() -> None:
    import threading

    from recctl.formats.ahead import read_ahead

    closed = threading.Event()

    def source() -> Any:
        try:
            yield from range(1000)
        finally:
            closed.set()

    for item in read_ahead(source(), 2):
        if item == 3:
            break
    assert closed.wait(5), "the reader thread did not close its source"


def test_a_store_failure_is_reported_even_when_a_later_input_fails_too(tmp_path: Path) -> None:
    from recctl.errors import StoreError
    from recctl.stores.files import FileStore

    class FullDisk(FileStore):  # a real directory store whose fourth write finds the disk full
        writes = 0

        def write(self, kind: Any, records: Any) -> Any:
            FullDisk.writes += 1
            if FullDisk.writes == 4:
                raise StoreError("disk full", written=0)
            return super().write(kind, records)

    rows = [interaction(event_id=f"e{number}", recommendation_id=f"r{number}") for number in range(20)]
    good = write_ndjson(tmp_path / "a.ndjson", rows)
    broken = tmp_path / "b.json"
    broken.write_text("[1,")
    store = FullDisk(tmp_path / "store", create=True)
    with pytest.raises(StoreError, match=r"disk full; 6 rows were stored by this ingest before the failure"):
        ingest(store, "interactions", [str(good), str(broken)], batch_rows=2)
    assert stored_count(store, "interactions") == 6
