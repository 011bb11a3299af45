"""MongoStore specifics: indexes, the stored document shape, original-API documents, errors.

The behaviour both stores share is in ``test_stores.py``; here the raw documents are checked with
pymongo (``mongo_client``) and the database is the test's own (``mongo_uri``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pymongo
import pytest
from builders import stored_count
from mongo_server import free_port, server_uri, start_secantus, stop, wait_until_ready
from polars.testing import assert_frame_equal

from recctl.errors import StoreError
from recctl.records import ASSESSMENT_SCHEMA, INTERACTION_SCHEMA, RECOMMENDATION_SCHEMA
from recctl.stores import redact
from recctl.stores.mongo import MongoStore

pytestmark = pytest.mark.mongo

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
Client = pymongo.MongoClient[dict[str, Any]]


def interaction_row(number: int, **overrides: Any) -> dict[str, Any]:
    """One stored-shape interaction row (what validation hands to ``write``)."""
    row: dict[str, Any] = {
        "event_id": f"e-{number}",
        "recommendation_id": f"rec-{number % 4}",
        "user_id": f"user-{number % 3}",
        "assessment_id": "asm-1",
        "interaction_type": "view",
        "interaction_value": 12.5,
        "timestamp": T0 + timedelta(hours=number),
        "session_id": "s-1",
        "position": number % 5,
        "propensity": 0.5,
        "model_version": None,
        "variant": None,
        "context": json.dumps(
            {"session_id": "s-1", "position": number % 5, "propensity": 0.5}, separators=(",", ":")
        ),
        "label": 0.175,
        "extra": None,
    }
    row.update(overrides)
    return row


def interactions(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=INTERACTION_SCHEMA)


def recommendations(*ids: str, title: str = "Enable MFA") -> pl.DataFrame:
    rows = [
        {
            "recommendation_id": rid,
            "assessment_id": "asm-1",
            "category": "security",
            "confidence_score": 0.7,
            "title": title,
            "services": ["iam", "kms"],
            "tags": [],
            "created_at": T0,
        }
        for rid in ids
    ]
    return pl.DataFrame(rows, schema=RECOMMENDATION_SCHEMA)


@pytest.fixture
def store(mongo_uri: str) -> Iterator[MongoStore]:
    opened = MongoStore(mongo_uri)
    yield opened
    opened.close()


@pytest.fixture
def db(store: MongoStore, mongo_client: Client) -> pymongo.database.Database[dict[str, Any]]:
    return mongo_client[store.database.name]


def test_database_comes_from_the_uri_path(store: MongoStore, mongo_uri: str) -> None:
    assert store.database.name.startswith("recctl_test_")
    assert store.database.name in mongo_uri
    assert store.description == redact(mongo_uri)


def index_specs(collection: Any) -> dict[tuple[tuple[str, int], ...], dict[str, Any]]:
    """The collection's indexes by key pattern."""
    return {tuple(spec["key"].items()): spec for spec in collection.list_indexes()}


def test_indexes_exist_after_open(store: MongoStore, db: Any, mongo_uri: str) -> None:
    interactions_ix = index_specs(db.recommendation_interactions)
    event_id = interactions_ix[(("event_id", 1),)]
    assert event_id.get("unique") is True
    assert event_id.get("sparse") is True
    assert (("recommendation_id", 1),) in interactions_ix
    assert (("user_id", 1), ("timestamp", 1)) in interactions_ix
    assert (("timestamp", 1),) in interactions_ix
    recommendations_ix = index_specs(db.recommendations)
    assert recommendations_ix[(("recommendation_id", 1),)].get("unique") is True
    assert (("assessment_id", 1),) in recommendations_ix
    assessments_ix = index_specs(db.assessments)
    assert assessments_ix[(("assessment_id", 1),)].get("unique") is True
    MongoStore(mongo_uri).close()  # opening again is idempotent
    assert len(list(db.recommendation_interactions.list_indexes())) == len(interactions_ix)


def test_writing_the_same_interactions_twice_stores_them_once(store: MongoStore) -> None:
    frame = interactions([interaction_row(i) for i in range(12)])
    first = store.write("interactions", frame)
    assert (first.inserted, first.duplicates, first.updated) == (12, 0, 0)
    second = store.write("interactions", frame)
    assert (second.inserted, second.duplicates) == (0, 12)
    assert stored_count(store, "interactions") == 12


def test_duplicates_inside_one_frame_are_counted_and_the_first_wins(store: MongoStore) -> None:
    store.write("interactions", interactions([interaction_row(0)]))
    rows = [interaction_row(1), interaction_row(1, user_id="later"), interaction_row(0), interaction_row(2)]
    result = store.write("interactions", interactions(rows))
    assert (result.inserted, result.duplicates) == (2, 2)
    assert stored_count(store, "interactions") == 3
    stored = store.read("interactions", columns=["event_id", "user_id"])
    assert stored.filter(pl.col("event_id") == "e-1")["user_id"].to_list() == ["user-1"]


def test_write_spans_batches(store: MongoStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("recctl.stores.mongo.WRITE_BATCH", 7)
    frame = interactions([interaction_row(i) for i in range(40)])
    result = store.write("interactions", frame.slice(0, 30))
    assert (result.inserted, result.duplicates) == (30, 0)
    again = store.write("interactions", frame.slice(20, 20))  # batches mixing stored and new rows
    assert (again.inserted, again.duplicates) == (10, 10)
    assert stored_count(store, "interactions") == 40
    stored = store.read("interactions", columns=["event_id"])
    assert stored["event_id"].to_list() == [f"e-{i}" for i in range(40)]


def test_catalog_upserts_count_inserted_then_updated(store: MongoStore, db: Any) -> None:
    first = store.write("recommendations", recommendations("r-1", "r-2"))
    assert (first.inserted, first.updated, first.duplicates) == (2, 0, 0)
    second = store.write("recommendations", recommendations("r-2", "r-3", title="New"))
    assert (second.inserted, second.updated) == (1, 1)
    assert stored_count(store, "recommendations") == 3
    assert db.recommendations.find_one({"recommendation_id": "r-2"})["title"] == "New"


def test_same_catalog_key_twice_in_one_frame_last_row_wins(store: MongoStore, db: Any) -> None:
    frame = pl.concat([recommendations("r-1", title="old"), recommendations("r-1", title="new")])
    result = store.write("recommendations", frame)
    assert (result.inserted, result.updated) == (1, 1)
    assert result.inserted + result.updated == frame.height
    assert db.recommendations.count_documents({}) == 1
    assert db.recommendations.find_one({})["title"] == "new"


def test_catalog_documents_keep_arrays_objects_and_dates(store: MongoStore, db: Any) -> None:
    rows = [
        {
            "assessment_id": "asm-1",
            "user_id": "u-1",
            "company_size": "small",
            "monthly_budget": 1000.0,
            "priorities": '{"security":0.9,"cost_optimization":0.25}',
            "compliance_requirements": ["SOC2", "GDPR"],
            "cloud_providers": ["aws"],
            "workload_types": [],
            "created_at": T0,
            "extra": '{"team":"blue","n":3}',
        }
    ]
    frame = pl.DataFrame(rows, schema=ASSESSMENT_SCHEMA)
    store.write("assessments", frame)
    document = db.assessments.find_one({})
    assert document["priorities"] == {"security": 0.9, "cost_optimization": 0.25}
    assert document["compliance_requirements"] == ["SOC2", "GDPR"]
    assert document["created_at"] == T0
    assert (document["team"], document["n"]) == ("blue", 3)
    assert "extra" not in document and "industry" not in document  # nulls are not stored
    assert_frame_equal(store.read("assessments"), frame)


def test_extra_fields_at_top_level_and_context_as_object(store: MongoStore, db: Any) -> None:
    context = {
        "session_id": "s-9",
        "position": 2,
        "propensity": 0.25,
        "model_version": "m7",
        "page": "home",
        "nested": {"a": [1, 2]},
    }
    extra = {"device": "mobile", "score": 1.5, "tags": ["x", "é"], "_id": "input-id"}
    row = interaction_row(
        0,
        session_id="s-9",
        position=2,
        propensity=0.25,
        model_version="m7",
        context=json.dumps(context),
        extra=json.dumps(extra, ensure_ascii=False),
    )
    store.write("interactions", interactions([row]))
    document = db.recommendation_interactions.find_one({"event_id": "e-0"})
    assert document["context"] == context
    assert (document["device"], document["score"], document["tags"]) == ("mobile", 1.5, ["x", "é"])
    assert document["_input_id"] == "input-id"  # MongoDB owns _id; the input's is kept beside it
    for copied in ("session_id", "position", "propensity", "model_version", "variant", "extra"):
        assert copied not in document
    assert document["timestamp"] == T0

    stored = store.read("interactions")
    assert json.loads(stored["context"].item()) == context
    assert json.loads(stored["extra"].item()) == extra
    assert stored["context"].item() == json.dumps(context, separators=(",", ":"))  # compact, order kept
    typed = stored.select("session_id", "position", "propensity", "model_version").row(0)
    assert typed == ("s-9", 2, 0.25, "m7")


def test_read_returns_the_schema_and_round_trips(store: MongoStore) -> None:
    rows = [interaction_row(i) for i in range(6)]
    rows[3] = interaction_row(
        3,
        interaction_value=None,
        context=None,
        session_id=None,
        position=None,
        propensity=None,
        extra='{"k":"v"}',
        assessment_id=None,
        label=None,
    )
    frame = interactions(rows)
    store.write("interactions", frame)
    stored = store.read("interactions")
    assert stored.schema == pl.Schema(INTERACTION_SCHEMA)
    assert_frame_equal(stored, frame)
    picked = store.read("interactions", columns=["label", "event_id"])
    assert picked.columns == ["label", "event_id"]
    assert picked["event_id"].to_list() == [f"e-{i}" for i in range(6)]


def test_interactions_sorted_by_timestamp_then_event_id(store: MongoStore) -> None:
    rows = [
        interaction_row(5, event_id="b"),
        interaction_row(1, event_id="z"),
        interaction_row(5, event_id="a"),
    ]
    store.write("interactions", interactions(rows))
    assert store.read("interactions", columns=["event_id"])["event_id"].to_list() == ["z", "a", "b"]


def test_seed_document_reads_as_it_is(store: MongoStore, db: Any) -> None:
    seed_time = datetime(2025, 6, 3, 8, 30, 15, 250000, tzinfo=UTC)
    inserted = db.recommendation_interactions.insert_one(
        {
            "recommendation_id": "rec-7",
            "user_id": "u-42",
            "interaction_type": "click",
            "context": {"assessment_id": "asm-9", "session_id": "s-3"},
            "timestamp": seed_time,
            "created_by": "api",
        }
    )
    stored = store.read("interactions")
    assert stored.height == 1
    row = stored.row(0, named=True)
    assert row["event_id"] == str(inserted.inserted_id)
    assert (row["assessment_id"], row["session_id"], row["user_id"]) == ("asm-9", "s-3", "u-42")
    assert row["label"] is None and row["interaction_value"] is None and row["position"] is None
    assert row["timestamp"] == seed_time.replace(microsecond=250000)
    assert json.loads(row["context"]) == {"assessment_id": "asm-9", "session_id": "s-3"}
    assert json.loads(row["extra"]) == {"created_by": "api"}
    # recctl documents coexist with it under the sparse unique index
    result = store.write("interactions", interactions([interaction_row(0), interaction_row(1)]))
    assert result.inserted == 2 and stored_count(store, "interactions") == 3


def test_seed_document_with_a_numeric_id_keeps_its_context(store: MongoStore, db: Any) -> None:
    db.recommendation_interactions.insert_one(
        {
            "_id": 42.0,
            "recommendation_id": 7,
            "user_id": "u",
            "interaction_type": "view",
            "timestamp": T0,
            "context": {"position": 3},
        }
    )
    row = store.read("interactions").row(0, named=True)
    assert (row["recommendation_id"], row["position"]) == ("7", 3)
    assert row["event_id"] in ("42", "42.0")  # the server's $toString of a double; Python's str says "42.0"
    assert json.loads(row["context"]) == {"position": 3}  # the JSON query joined to the Arrow one


def test_seed_catalog_document_without_key_reads_with_its_id(store: MongoStore, db: Any) -> None:
    inserted = db.recommendations.insert_one(
        {
            "assessment_id": "asm-1",
            "category": "cost_optimization",
            "confidence_score": 1,
            "services": ["ec2", 3],
        }
    )
    stored = store.read("recommendations")
    assert stored.schema == pl.Schema(RECOMMENDATION_SCHEMA)
    row = stored.row(0, named=True)
    assert row["recommendation_id"] == str(inserted.inserted_id)
    assert (row["confidence_score"], row["services"], row["extra"]) == (1.0, ["ec2", "3"], None)


def test_time_window_is_pushed_into_the_query(store: MongoStore) -> None:
    store.write("interactions", interactions([interaction_row(i) for i in range(48)]))
    since, until = T0 + timedelta(hours=10), T0 + timedelta(hours=20)
    window = store.read("interactions", since=since, until=until)
    assert window["event_id"].to_list() == [f"e-{i}" for i in range(10, 20)]  # since included, until not
    assert window["context"].null_count() == 0  # the JSON columns follow the same window
    assert store.read("interactions", since=T0 + timedelta(hours=40))["event_id"].to_list() == [
        f"e-{i}" for i in range(40, 48)
    ]
    assert store.read("interactions", until=T0 + timedelta(hours=2), columns=["event_id"]).height == 2
    assert store.read("interactions", since=T0 + timedelta(days=30)).height == 0


def test_empty_collection_reads_as_an_empty_frame(store: MongoStore) -> None:
    for kind, schema in (("interactions", INTERACTION_SCHEMA), ("recommendations", RECOMMENDATION_SCHEMA)):
        frame = store.read(kind)
        assert frame.height == 0
        assert frame.schema == pl.Schema(schema)


def test_unreachable_server_fails_fast_with_a_masked_message() -> None:
    uri = f"mongodb://user:s3cret@127.0.0.1:{free_port()}/db"
    started = time.monotonic()
    with pytest.raises(StoreError) as raised:
        MongoStore(uri)
    assert time.monotonic() - started < 6
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("cannot reach MongoDB at mongodb://user:***@127.0.0.1:")
    assert "s3cret" not in message
    assert "Topology" not in message  # the short reason, not the driver's whole state


def test_invalid_uri_is_a_store_error_without_the_password() -> None:
    with pytest.raises(StoreError) as raised:
        MongoStore("mongodb://user:s3cret@[broken/db")
    assert "s3cret" not in str(raised.value) and "***" in str(raised.value)


def test_other_write_errors_raise_with_the_rows_written(store: MongoStore, db: Any) -> None:
    db.drop_collection("recommendation_interactions")
    db.create_collection("recommendation_interactions", validator={"user_id": {"$ne": "blocked"}})
    rows = [interaction_row(0), interaction_row(1, user_id="blocked"), interaction_row(2), interaction_row(0)]
    with pytest.raises(StoreError, match="rejected an interaction row: Document failed validation") as raised:
        store.write("interactions", interactions(rows))
    assert raised.value.written == 2 == stored_count(store, "interactions")


def test_connection_lost_part_way_reports_the_acknowledged_batches(
    store: MongoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("recctl.stores.mongo.WRITE_BATCH", 4)
    real_insert_many = pymongo.collection.Collection.insert_many
    calls = 0

    def failing_third_batch(self: Any, documents: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise pymongo.errors.AutoReconnect("127.0.0.1:1: connection closed")
        return real_insert_many(self, documents, **kwargs)

    monkeypatch.setattr(pymongo.collection.Collection, "insert_many", failing_third_batch)
    with pytest.raises(StoreError) as raised:
        store.write("interactions", interactions([interaction_row(i) for i in range(10)]))
    assert raised.value.written == 8
    assert str(raised.value).startswith("lost the connection writing interactions to MongoDB at ")
    assert calls == 3  # nothing is written after the failure


def test_server_stopped_and_restarted_on_the_same_storage(tmp_path: Path) -> None:
    port = free_port()
    uri = server_uri(port, "recctl")
    server = start_secantus(tmp_path / "data", port)
    try:
        wait_until_ready(uri, server)
        store = MongoStore(uri, timeout_ms=1000)
        store.write("interactions", interactions([interaction_row(i) for i in range(5)]))
        stop(server)
        started = time.monotonic()
        with pytest.raises(StoreError) as raised:
            store.write("interactions", interactions([interaction_row(9)]))
        assert time.monotonic() - started < 5
        assert raised.value.written == 0
        assert str(raised.value).startswith(f"lost the connection writing interactions to MongoDB at {uri}: ")
        server = start_secantus(tmp_path / "data", port)
        wait_until_ready(uri, server)
        assert stored_count(store, "interactions") == 5  # the same client reconnects; the data survived
        store.close()
    finally:
        stop(server)
