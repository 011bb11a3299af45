"""One suite, both stores (the ``store`` fixture runs each test on files and on MongoDB)."""

from __future__ import annotations

import csv
import json
import uuid
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from builders import RECORD_KINDS as SAMPLE_KINDS
from builders import (
    SAMPLE_DATA,
    assessment,
    impression,
    interaction,
    recommendation,
    stored_count,
    write_ndjson,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from recctl.ingestion import ingest
from recctl.records import RECOMMENDATION_SCHEMA, SCHEMAS
from recctl.stores import is_mongo_uri, open_store
from recctl.stores.base import (
    COUNT_COLUMNS,
    COUNTS_SCHEMA,
    IMPRESSION_COUNTS_SCHEMA,
    RECENT_SCHEMA,
    InteractionFilter,
)


def interactions(count: int, **overrides: Any) -> list[dict[str, Any]]:
    """``count`` varied interactions over five days; ``overrides`` apply to all (event_id=None: derived)."""
    rows = []
    for i in range(count):
        fields: dict[str, Any] = {
            "event_id": f"e-{i}",
            "user_id": f"user-{i % 3}",
            "timestamp": f"2025-06-{1 + i % 5:02d}T{i % 24:02d}:00:00Z",
            "interaction_type": ("view", "click", "save", "rate", "dismiss")[i % 5],
            "interaction_value": (30.0, None, None, 4, None)[i % 5],
        }
        rows.append(interaction(**{**fields, **overrides}))
    return rows


def test_interactions_round_trip(store: Any, tmp_path: Path) -> None:
    source = write_ndjson(tmp_path / "in.ndjson", interactions(20))
    summary = ingest(store, "interactions", [str(source)])
    assert (summary.read, summary.inserted, summary.duplicates, summary.rejected) == (20, 20, 0, 0)
    stored = store.read("interactions")
    assert stored.schema == pl.Schema(SCHEMAS["interactions"])
    assert sorted(stored["event_id"].to_list()) == sorted(f"e-{i}" for i in range(20))
    assert stored_count(store, "interactions") == 20
    rated = stored.filter(pl.col("interaction_type") == "rate")
    assert rated["label"].to_list() == [pytest.approx(0.8)] * rated.height


def test_second_ingest_stores_nothing(store: Any, tmp_path: Path) -> None:
    rows = interactions(10) + interactions(10, event_id=None, variant="b")  # half without event_id: derived
    source = write_ndjson(tmp_path / "in.ndjson", rows)
    first = ingest(store, "interactions", [str(source)])
    second = ingest(store, "interactions", [str(source)])
    assert first.inserted == first.read - first.duplicates
    assert (second.inserted, second.duplicates) == (0, second.read)
    assert stored_count(store, "interactions") == first.inserted


def test_duplicates_inside_one_input_are_counted(store: Any, tmp_path: Path) -> None:
    row = interaction(event_id="same")
    source = write_ndjson(tmp_path / "in.ndjson", [row, row, {**row, "user_id": "other"}])
    summary = ingest(store, "interactions", [str(source)])
    assert (summary.inserted, summary.duplicates) == (1, 2)
    assert store.read("interactions")["user_id"].to_list() == ["user-1"]  # the first one wins


def test_catalog_upserts(store: Any, tmp_path: Path) -> None:
    first = write_ndjson(
        tmp_path / "a.ndjson", [recommendation(recommendation_id=f"r-{i}") for i in range(3)]
    )
    summary = ingest(store, "recommendations", [str(first)])
    assert (summary.inserted, summary.updated) == (3, 0)
    changed = [
        recommendation(recommendation_id="r-1", title="New title"),
        recommendation(recommendation_id="r-9"),
    ]
    second = write_ndjson(tmp_path / "b.ndjson", [*changed, changed[0]])
    summary = ingest(store, "recommendations", [str(second)])
    # r-1 replaces a different row (updated), r-9 is new, and r-1 again is the row just written
    assert (summary.read, summary.inserted, summary.updated, summary.unchanged) == (3, 1, 1, 1)
    stored = store.read("recommendations")
    assert stored.schema == pl.Schema(RECOMMENDATION_SCHEMA)
    assert stored["recommendation_id"].to_list() == ["r-0", "r-1", "r-2", "r-9"]
    assert stored.filter(pl.col("recommendation_id") == "r-1")["title"].item() == "New title"


def test_time_window(store: Any, tmp_path: Path) -> None:
    ingest(store, "interactions", [str(write_ndjson(tmp_path / "in.ndjson", interactions(25)))])
    since, until = datetime(2025, 6, 2, tzinfo=UTC), datetime(2025, 6, 4, tzinfo=UTC)
    window = store.read("interactions", since=since, until=until, columns=["event_id", "timestamp"])
    everything = store.read("interactions")
    expected = everything.filter((pl.col("timestamp") >= since) & (pl.col("timestamp") < until))
    assert window.columns == ["event_id", "timestamp"]
    assert sorted(window["event_id"]) == sorted(expected["event_id"])
    assert 0 < window.height < everything.height


def test_both_stores_hold_the_same_records(tmp_path: Path, mongo_uri: str) -> None:
    sources = {
        "assessments": write_ndjson(
            tmp_path / "a.ndjson", [assessment(assessment_id=f"a-{i}") for i in range(3)]
        ),
        "recommendations": write_ndjson(
            tmp_path / "r.ndjson",
            [recommendation(recommendation_id=f"r-{i}", team={"name": "x"} if i else None) for i in range(4)],
        ),
        "interactions": write_ndjson(
            tmp_path / "i.ndjson", interactions(30) + interactions(5, event_id=None, campaign="spring")
        ),
    }
    stores = [open_store(tmp_path / "files"), open_store(mongo_uri)]
    frames: list[dict[str, pl.DataFrame]] = []
    for store in stores:
        for kind, path in sources.items():
            ingest(store, kind, [str(path)])  # type: ignore[arg-type]
        frames.append({kind: store.read(kind) for kind in sources})  # type: ignore[misc]
        store.close()
    files, mongo = frames
    for kind in sources:
        json_columns = [c for c in ("context", "extra", "priorities") if c in files[kind].columns]
        assert_frame_equal(files[kind].drop(json_columns), mongo[kind].drop(json_columns))
        for column in json_columns:
            as_objects = [[None if t is None else json.loads(t) for t in f[kind][column]] for f in frames]
            assert as_objects[0] == as_objects[1], (kind, column)


def test_both_stores_give_the_same_export(sample_store: Path, mongo_uri: str) -> None:
    from recctl.dataset import TimeWindow, build_training_set

    window = TimeWindow.resolve(since=datetime(2025, 9, 1), until=datetime(2025, 11, 1))
    with closing(open_store(mongo_uri)) as store:
        for kind in SAMPLE_KINDS:  # what sample_store holds
            ingest(store, kind, [str(SAMPLE_DATA / f"{kind}.ndjson")])
        mongo = build_training_set(store, window)
    with closing(open_store(sample_store)) as store:
        files = build_training_set(store, window)
    assert files.frame.height > 1000
    assert_frame_equal(files.frame, mongo.frame)
    assert files.manifest["data_fingerprint"] == mongo.manifest["data_fingerprint"]
    assert {k: v for k, v in files.manifest.items() if k != "source"} == {
        k: v for k, v in mongo.manifest.items() if k != "source"
    }


def test_flattened_context_columns_fill_context(store: Any, tmp_path: Path) -> None:
    """CSV columns ``context.session_id``, ``context.position`` were stored only in ``extra``."""
    source = tmp_path / "flat.csv"
    source.write_text(
        "event_id,recommendation_id,user_id,interaction_type,timestamp,"
        "context.session_id,context.position,context.propensity,context.page\n"
        "e-1,r-1,u-1,click,2025-06-01T12:00:00Z,s-9,3,0.25,home\n"
        "e-2,r-1,u-1,view,2025-06-01T12:00:00Z,,,,\n"
        "e-3,r-1,u-1,view,2025-06-01T12:00:00Z,s-1,top,,\n"
    )
    summary = ingest(store, "interactions", [str(source)], rejects_path=tmp_path / "rejects.ndjson")
    assert (summary.inserted, summary.rejected) == (2, 1)
    assert dict(summary.reject_reasons) == {"context.position: must be a finite number": 1}
    stored = store.read("interactions")
    first = stored.filter(pl.col("event_id") == "e-1").row(0, named=True)
    assert (first["session_id"], first["position"], first["propensity"]) == ("s-9", 3, 0.25)
    assert json.loads(first["context"]) == {
        "session_id": "s-9",
        "position": 3,
        "propensity": 0.25,
        "page": "home",
    }
    assert first["extra"] is None
    second = stored.filter(pl.col("event_id") == "e-2").row(0, named=True)
    assert (second["context"], second["session_id"], second["extra"]) == (None, None, None)


def test_flattened_parquet_columns_and_a_context_cell_together(store: Any, tmp_path: Path) -> None:
    source = tmp_path / "flat.parquet"
    pl.DataFrame(
        {
            "event_id": ["p-1", "p-2", "p-3"],
            "recommendation_id": ["r-1"] * 3,
            "user_id": ["u-1"] * 3,
            "interaction_type": ["click"] * 3,
            "timestamp": ["2025-06-01T12:00:00Z"] * 3,
            "context": ['{"variant": "b"}', None, '{"position": 1}'],
            "context.position": [2, 4, 5],
        }
    ).write_parquet(source)
    summary = ingest(store, "interactions", [str(source)], rejects_path=tmp_path / "rejects.ndjson")
    assert (summary.inserted, summary.rejected) == (2, 1)
    assert dict(summary.reject_reasons) == {"context.position: given both in context and as a column": 1}
    stored = store.read("interactions").sort("event_id")
    assert stored.select("event_id", "position", "variant").rows() == [("p-1", 2, "b"), ("p-2", 4, None)]
    assert [json.loads(text) for text in stored["context"]] == [
        {"variant": "b", "position": 2},
        {"position": 4},
    ]


def test_flattened_priorities_columns_fill_priorities(store: Any, tmp_path: Path) -> None:
    source = tmp_path / "assessments.csv"
    source.write_text("assessment_id,priorities.security,priorities.cost_optimization\na-1,0.8,0.25\na-2,,\n")
    summary = ingest(store, "assessments", [str(source)])
    assert (summary.inserted, summary.rejected) == (2, 0)
    stored = store.read("assessments").sort("assessment_id")
    assert json.loads(stored["priorities"][0]) == {"security": 0.8, "cost_optimization": 0.25}
    assert stored["priorities"][1] is None and stored["extra"].to_list() == [None, None]


def test_an_unchanged_catalog_re_ingested_is_unchanged(store: Any, tmp_path: Path) -> None:
    """Re-ingesting an unchanged catalog reported "updated 2,000"."""
    rows = [
        recommendation(recommendation_id=f"r-{i}", team={"name": "x", "size": i}, tags=["a", "b"])
        for i in range(5)
    ]
    source = write_ndjson(tmp_path / "r.ndjson", rows)
    first = ingest(store, "recommendations", [str(source)])
    assert (first.inserted, first.updated, first.unchanged) == (5, 0, 0)
    before = store.read("recommendations")
    again = ingest(store, "recommendations", [str(source)])
    assert (again.read, again.inserted, again.updated, again.unchanged) == (5, 0, 0, 5)
    assert again.as_json()["unchanged"] == 5
    rows[2] = {**rows[2], "title": "Changed"}
    third = ingest(store, "recommendations", [str(write_ndjson(tmp_path / "r2.ndjson", rows))])
    assert (third.inserted, third.updated, third.unchanged) == (0, 1, 4)
    after = store.read("recommendations")
    assert after.filter(pl.col("recommendation_id") != "r-2").equals(
        before.filter(pl.col("recommendation_id") != "r-2")
    )
    assert after.filter(pl.col("recommendation_id") == "r-2")["title"].item() == "Changed"


def test_the_same_catalog_in_another_format_is_unchanged(store: Any, tmp_path: Path) -> None:
    """Equality is of the stored values: JSON objects compare as objects, numbers as numbers."""
    rows = [
        assessment(assessment_id=f"a-{i}", priorities={"security": 0.6, "cost_optimization": 1})
        for i in range(3)
    ]
    ingest(store, "assessments", [str(write_ndjson(tmp_path / "a.ndjson", rows))])
    header = list(rows[0])
    cells = [
        [
            json.dumps(row[name], separators=(", ", ": "))
            if isinstance(row[name], dict | list)
            else str(row[name])
            for name in header
        ]
        for row in rows
    ]
    with open(tmp_path / "a.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(cells)
    summary = ingest(store, "assessments", [str(tmp_path / "a.csv")])
    assert (summary.read, summary.rejected, summary.updated, summary.unchanged) == (3, 0, 0, 3)


def test_catalog_rows_are_judged_in_input_order(store: Any, tmp_path: Path) -> None:
    first, second = recommendation(title="A"), recommendation(title="B")
    ingest(store, "recommendations", [str(write_ndjson(tmp_path / "a.ndjson", [first]))])
    # A -> B is an update, B -> A another, A -> A nothing: the store ends where it began
    rows = [second, first, first]
    summary = ingest(store, "recommendations", [str(write_ndjson(tmp_path / "b.ndjson", rows))])
    assert (summary.inserted, summary.updated, summary.unchanged) == (0, 2, 1)
    assert store.read("recommendations")["title"].to_list() == ["A"]


catalog_rows = st.lists(
    st.tuples(
        st.sampled_from(["r-1", "r-2", "r-3"]), st.sampled_from(["A", "B"]), st.sampled_from([0.5, 0.7, 2.0])
    ),
    max_size=12,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(catalog_rows, min_size=1, max_size=3))
def test_catalog_accounting_matches_writing_one_row_at_a_time(
    store: Any, tmp_path: Path, batches: list[list[tuple[str, str, float]]]
) -> None:
    """read == inserted + updated + unchanged + rejected, and each count is what writing the rows
    one at a time, in order, would give (confidence 2.0 is invalid: rejected)."""
    prefix = uuid.uuid4().hex[:8]  # examples share the store: each one has keys of its own
    model: dict[str, tuple[str, float]] = {}
    for batch in batches:
        expected = {"inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0}
        for key, title, score in batch:
            if score > 1:
                expected["rejected"] += 1
            elif key not in model:
                expected["inserted"] += 1
            else:
                expected["unchanged" if model[key] == (title, score) else "updated"] += 1
            if score <= 1:
                model[key] = (title, score)
        rows = [
            recommendation(recommendation_id=f"{prefix}-{k}", title=t, confidence_score=c)
            for k, t, c in batch
        ]
        summary = ingest(store, "recommendations", [str(write_ndjson(tmp_path / "c.ndjson", rows))])
        got = {name: getattr(summary, name) for name in expected}
        assert got == expected
        assert summary.read == sum(got.values())
    stored = store.read("recommendations").filter(pl.col("recommendation_id").str.starts_with(prefix))
    assert {
        rid.split("-", 1)[1]: (title, score)
        for rid, title, score in stored.select("recommendation_id", "title", "confidence_score").rows()
    } == model


# -- the queries of stats and history ----------------------------------------------------------------
QUERY_INTERACTIONS = [
    # event, recommendation, user, type, time; e-04/e-05 and e-06/e-07 share a timestamp
    ("e-01", "r-1", "u-a", "click", "2025-06-01T10:00:00Z"),
    ("e-02", "r-1", "u-a", "implement", "2025-06-01T11:00:00Z"),
    ("e-03", "r-1", "u-b", "view", "2025-06-02T09:00:00Z"),
    ("e-04", "r-2", "u-a", "save", "2025-06-02T12:00:00Z"),
    ("e-05", "r-2", "u-a", "click", "2025-06-02T12:00:00Z"),
    ("e-06", "r-9", "u-b", "dismiss", "2025-06-03T08:00:00Z"),  # r-9 is not in the catalog
    ("e-07", "r-3", "u-a", "click", "2025-06-03T08:00:00Z"),
]
NEWEST_FIRST = ["e-07", "e-06", "e-05", "e-04", "e-03", "e-02", "e-01"]
UNIT = 1_000_000_000  # label units in a label of 1.0 (LABEL_UNIT is 1e-9)


@pytest.fixture
def queried(store: Any, tmp_path: Path) -> Any:
    """Four catalog recommendations in two categories, the seven interactions above (labels: click
    0.4, implement 1.0, a 30 s view 0.25, save 0.8, dismiss 0.0) and an assessment of user u-c."""
    rows = [
        interaction(
            event_id=event,
            recommendation_id=rec,
            user_id=user,
            interaction_type=kind,
            timestamp=moment,
            interaction_value=30 if kind == "view" else None,
        )
        for event, rec, user, kind, moment in QUERY_INTERACTIONS
    ]
    catalog = [
        recommendation(recommendation_id="r-1", category="security", title="One"),
        recommendation(recommendation_id="r-2", category="security", title="Two"),
        recommendation(recommendation_id="r-3", category="performance", title="Three"),
        recommendation(recommendation_id="r-4", category="performance", title="Four"),
    ]
    sources = {
        "recommendations": catalog,
        "interactions": rows,
        "assessments": [assessment(assessment_id="asm-c", user_id="u-c")],
    }
    for kind, records in sources.items():
        source = write_ndjson(tmp_path / f"{kind}.ndjson", records)
        assert ingest(store, kind, [str(source)]).rejected == 0  # type: ignore[arg-type]
    return store


@pytest.fixture(params=[1_000, 1], ids=["in-list", "past-the-in-limit"])
def in_limit(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """MongoDB's ``$in`` limit as shipped, and 1: a category (two ids) or a frame of more than one
    recommendation is then filtered or joined after the server's query. No effect on files."""
    monkeypatch.setattr("recctl.stores.mongo.MAX_IN_LIST", request.param)
    return int(request.param)


def counts_of(store: Any, **where: Any) -> list[tuple[Any, ...]]:
    """interaction_counts as rows sorted by recommendation_id, every column of COUNTS_SCHEMA."""
    counts = store.interaction_counts(InteractionFilter(**where)).collect()
    assert counts.schema == pl.Schema(COUNTS_SCHEMA)
    return counts.sort("recommendation_id").rows()


def counts_row(rec: str, *, labels: float = 0.0, **types: int) -> tuple[Any, ...]:
    """An expected COUNTS_SCHEMA row: the given type counts, their total, labels summed in units."""
    by_type = [types.get(kind, 0) for kind in COUNT_COLUMNS]
    return (rec, sum(types.values()), *by_type, round(labels * UNIT), sum(types.values()))


def test_interaction_counts(queried: Any, in_limit: int) -> None:
    r1 = counts_row("r-1", click=1, implement=1, view=1, labels=0.4 + 1.0 + 0.25)
    r2 = counts_row("r-2", save=1, click=1, labels=0.8 + 0.4)
    r3 = counts_row("r-3", click=1, labels=0.4)
    r9 = counts_row("r-9", dismiss=1, labels=0.0)
    assert counts_of(queried) == [r1, r2, r3, r9]
    assert counts_of(queried, user_id="u-a") == [
        counts_row("r-1", click=1, implement=1, labels=1.4),
        r2,
        r3,
    ]
    since, until = datetime(2025, 6, 2), datetime(2025, 6, 3, 8, tzinfo=UTC)  # naive is UTC; until exclusive
    assert counts_of(queried, since=since, until=until) == [counts_row("r-1", view=1, labels=0.25), r2]
    assert counts_of(queried, recommendation_id="r-1", user_id="u-b") == [
        counts_row("r-1", view=1, labels=0.25)
    ]
    assert counts_of(queried, category=("security",)) == [r1, r2]
    assert counts_of(queried, category=("performance", "security"), user_id="u-b") == [
        counts_row("r-1", view=1, labels=0.25)
    ]
    assert counts_of(queried, category=("security",), recommendation_id="r-2") == [r2]
    assert counts_of(queried, category=("security",), recommendation_id="r-3") == []
    assert counts_of(queried, category=()) == []


def test_counts_of_an_empty_store(store: Any) -> None:
    assert counts_of(store) == []
    assert counts_of(store, category=("security",)) == []


def test_a_category_of_more_recommendations_than_the_in_limit(store: Any, tmp_path: Path) -> None:
    from recctl.stores.mongo import MAX_IN_LIST

    catalog = [
        recommendation(recommendation_id=f"b-{n:04d}", category="bulk") for n in range(MAX_IN_LIST + 1)
    ]
    catalog.append(recommendation(recommendation_id="other", category="security"))
    rows = [
        interaction(event_id=f"e-{rec}", recommendation_id=rec, interaction_type="click")
        for rec in ("b-0000", "b-0500", f"b-{MAX_IN_LIST:04d}", "other")
    ]
    for kind, records in (("recommendations", catalog), ("interactions", rows)):
        assert ingest(store, kind, [str(write_ndjson(tmp_path / f"{kind}.ndjson", records))]).rejected == 0
    expected = [counts_row(rec, click=1, labels=0.4) for rec in ("b-0000", "b-0500", f"b-{MAX_IN_LIST:04d}")]
    assert counts_of(store, category=("bulk",)) == expected
    recent = store.recent_interactions(InteractionFilter(category=("bulk",)), 2)
    assert recent["event_id"].to_list() == [f"e-b-{MAX_IN_LIST:04d}", "e-b-0500"]
    assert store.has_interactions(InteractionFilter(category=("bulk",), user_id="user-1"))
    assert not store.has_interactions(InteractionFilter(category=("bulk",), user_id="user-2"))
    every = pl.DataFrame({"recommendation_id": [row["recommendation_id"] for row in reversed(catalog)]})
    joined = store.with_catalog(every)
    assert joined["recommendation_id"].to_list() == every["recommendation_id"].to_list()
    assert joined["category"].to_list() == ["security"] + ["bulk"] * (MAX_IN_LIST + 1)


def test_recent_interactions_newest_first_ties_by_event_id(queried: Any, in_limit: int) -> None:
    def recent(limit: int | None, **where: Any) -> list[str]:
        frame = queried.recent_interactions(InteractionFilter(**where), limit)
        assert frame.schema == pl.Schema(RECENT_SCHEMA)
        return frame["event_id"].to_list()

    assert recent(None) == NEWEST_FIRST
    assert recent(3) == ["e-07", "e-06", "e-05"]
    assert recent(2, user_id="u-a") == ["e-07", "e-05"]
    assert recent(None, category=("security",)) == ["e-05", "e-04", "e-03", "e-02", "e-01"]
    assert recent(2, category=("security",)) == ["e-05", "e-04"]
    assert recent(None, since=datetime(2025, 6, 2, tzinfo=UTC), until=datetime(2025, 6, 2, 12)) == ["e-03"]
    assert recent(None, user_id="u-c") == []
    view = queried.recent_interactions(InteractionFilter(recommendation_id="r-1", user_id="u-b"), None)
    assert view.rows() == [
        (datetime(2025, 6, 2, 9, tzinfo=UTC), "e-03", "r-1", "view", 30.0, 0.25, "asm-1", "s-1", 0)
    ]


def test_recent_interactions_of_an_empty_store(store: Any) -> None:
    recent = store.recent_interactions(InteractionFilter(user_id="u-a"), 10)
    assert recent.is_empty() and recent.schema == pl.Schema(RECENT_SCHEMA)


def test_with_catalog_keeps_the_rows_and_their_order(queried: Any, in_limit: int) -> None:
    frame = pl.DataFrame({"recommendation_id": ["r-9", "r-2", "r-1", "r-2"], "n": [1, 2, 3, 4]})
    joined = queried.with_catalog(frame)
    assert joined.columns == ["recommendation_id", "n", "category", "title"]
    assert joined.rows() == [
        ("r-9", 1, None, None),
        ("r-2", 2, "security", "Two"),
        ("r-1", 3, "security", "One"),
        ("r-2", 4, "security", "Two"),
    ]
    assert queried.with_catalog(frame.clear()).columns == joined.columns


def test_catalog_membership_and_categories(queried: Any, store: Any) -> None:
    assert [queried.in_catalog(rec) for rec in ("r-1", "r-4", "r-9")] == [True, True, False]
    assert queried.in_catalog("r-1", ("performance",)) is False
    assert queried.in_catalog("r-3", ("x", "performance")) is True
    assert queried.in_catalog("r-3", ()) is False
    assert queried.categories() == ["performance", "security"]


def test_catalog_questions_of_an_empty_store(store: Any) -> None:
    assert store.categories() == []
    assert store.in_catalog("r-1") is False
    assert store.has_interactions(InteractionFilter()) is False
    assert store.has_assessment("u-a") is False


def test_has_interactions(queried: Any, in_limit: int) -> None:
    def has(**where: Any) -> bool:
        return bool(queried.has_interactions(InteractionFilter(**where)))

    assert has() and has(user_id="u-b") and has(recommendation_id="r-9")
    assert not has(user_id="u-c") and not has(recommendation_id="r-4")
    assert not has(user_id="u-a", since=datetime(2025, 6, 3, 8, 0, 1))
    assert has(category=("performance",)) and not has(category=("performance",), user_id="u-b")
    assert has(category=("security",), user_id="u-b") and not has(category=())


def test_has_assessment(queried: Any) -> None:
    assert queried.has_assessment("u-c") is True
    assert queried.has_assessment("u-a") is False  # interactions, no assessment


def test_rejects_dir(store: Any, store_location: str) -> None:
    expected = Path("recctl-rejects") if is_mongo_uri(store_location) else Path(store_location) / "rejects"
    assert store.rejects_dir == expected


@pytest.mark.mongo
def test_original_api_documents_in_the_queries(mongo_uri: str) -> None:
    """Documents without event_id and label, assessment_id in context: event_id reads as the text of
    ``_id``, a missing label is not counted, and ties are broken by that event_id."""
    store = open_store(mongo_uri)
    try:
        moment = datetime(2025, 6, 1, 12, tzinfo=UTC)
        documents = [
            {
                "recommendation_id": "r-1",
                "user_id": "u-o",
                "interaction_type": kind,
                "timestamp": moment,
                "context": {"assessment_id": "asm-9", "session_id": "s-9", "position": 2},
            }
            for kind in ("view", "click", "implement")
        ]
        documents[1]["label"] = 0.4
        inserted = store.collection("interactions").insert_many(documents).inserted_ids
        assert counts_of(store, user_id="u-o") == [("r-1", 3, 1, 1, 0, 0, 1, 0, 0, round(0.4 * UNIT), 1)]
        recent = store.recent_interactions(InteractionFilter(user_id="u-o"), None)
        kinds = dict(zip((str(i) for i in inserted), ("view", "click", "implement"), strict=True))
        assert recent["event_id"].to_list() == sorted(kinds, reverse=True)
        assert recent["interaction_type"].to_list() == [kinds[e] for e in sorted(kinds, reverse=True)]
        assert recent.select("assessment_id", "session_id", "position").unique().rows() == [
            ("asm-9", "s-9", 2)
        ]
        assert sorted(recent["label"].to_list(), key=lambda label: label is None) == [0.4, None, None]
        assert store.has_interactions(InteractionFilter(user_id="u-o"))
        assert store.recent_interactions(InteractionFilter(user_id="u-o"), 1)["event_id"].to_list() == [
            max(kinds)
        ]
    finally:
        store.close()


# -- impressions: served lists, one record per list, stored one row per item ---------------------------
def served_lists() -> list[dict[str, Any]]:
    """Four lists over two days, given out of time order, items out of position order."""
    return [
        impression(
            request_id="q-2",
            timestamp="2025-06-02T09:00:00Z",
            items=[
                {"recommendation_id": "r-2", "position": 1, "team": "a", "score": 0.5},
                {"recommendation_id": "r-1", "position": 0, "team": "b"},
            ],
            page="home",
        ),
        impression(request_id="q-1", timestamp="2025-06-01T10:00:00Z", policy=None, model_version=None),
        impression(request_id=7, timestamp="2025-06-02T09:00:00Z", user_id="user-2"),
        impression(
            request_id="q-3",
            timestamp="2025-06-03T23:59:59.999Z",
            items=[{"recommendation_id": "r-9", "position": 4}],
        ),
    ]


def test_impressions_round_trip(store: Any, tmp_path: Path) -> None:
    summary = ingest(store, "impressions", [str(write_ndjson(tmp_path / "in.ndjson", served_lists()))])
    assert (summary.read, summary.inserted, summary.duplicates, summary.rejected) == (4, 4, 0, 0)
    stored = store.read("impressions")
    assert stored.schema == pl.Schema(SCHEMAS["impressions"])
    # sorted by (timestamp, request_id, position); integer request ids stored as text
    assert stored.select("request_id", "position", "recommendation_id").rows() == [
        ("q-1", 0, "rec-0"),
        ("q-1", 1, "rec-1"),
        ("q-1", 2, "rec-2"),
        ("7", 0, "rec-0"),
        ("7", 1, "rec-1"),
        ("7", 2, "rec-2"),
        ("q-2", 0, "r-1"),
        ("q-2", 1, "r-2"),
        ("q-3", 4, "r-9"),
    ]
    first = stored.row(0, named=True)
    assert first["policy"] == "deterministic" and first["model_version"] is None
    assert (first["propensity"], first["prefix_propensity"], first["assessment_id"]) == (0.5, 0.5, "asm-1")
    q2 = stored.filter(pl.col("request_id") == "q-2")
    assert q2["team"].to_list() == ["b", "a"] and q2["policy"].to_list() == ["plackett-luce"] * 2
    assert [json.loads(text) for text in q2["extra"]] == [{"page": "home"}] * 2
    assert [None if t is None else json.loads(t) for t in q2["item_extra"]] == [None, {"score": 0.5}]
    assert stored["extra"].null_count() == stored.height - 2
    assert stored["timestamp"][-1] == datetime(2025, 6, 3, 23, 59, 59, 999000, tzinfo=UTC)
    assert store.read("impressions", columns=["position", "request_id"]).columns == ["position", "request_id"]


def test_impressions_are_insert_only_by_request_id(store: Any, tmp_path: Path) -> None:
    source = write_ndjson(tmp_path / "in.ndjson", served_lists())
    ingest(store, "impressions", [str(source)])
    before = store.read("impressions")
    changed = [{**row, "items": [{"recommendation_id": "other", "position": 0}]} for row in served_lists()]
    again = ingest(store, "impressions", [str(write_ndjson(tmp_path / "again.ndjson", changed))])
    assert (again.read, again.inserted, again.duplicates) == (4, 0, 4)
    assert_frame_equal(store.read("impressions"), before)  # a stored list is never replaced
    written = store.write("impressions", store.read("impressions").filter(pl.col("request_id") == "7"))
    assert (written.inserted, written.duplicates) == (0, 1)  # counted in lists: one list of three items


def test_impressions_repeated_in_the_input_are_duplicates(
    store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request_id repeated in one chunk, in a later chunk and in another batch: the first list wins."""
    import recctl.ingestion

    monkeypatch.setattr(recctl.ingestion, "CHUNK_LISTS", 3)
    lists = served_lists()
    repeat = {**lists[0], "items": [{"recommendation_id": "late", "position": 0}]}
    rows = [lists[0], repeat, lists[1], lists[2], repeat, lists[3], repeat]
    source = write_ndjson(tmp_path / "in.ndjson", rows)
    summary = ingest(store, "impressions", [str(source)], batch_rows=4)
    assert (summary.read, summary.inserted, summary.duplicates, summary.rejected) == (7, 4, 3, 0)
    stored = store.read("impressions")
    assert stored.height == 9 and "late" not in stored["recommendation_id"].to_list()


def test_impressions_since_until(store: Any, tmp_path: Path) -> None:
    ingest(store, "impressions", [str(write_ndjson(tmp_path / "in.ndjson", served_lists()))])
    window = store.read(
        "impressions", since=datetime(2025, 6, 2, 9), until=datetime(2025, 6, 3, 23, 59, 59, 999000)
    )
    assert window["request_id"].unique(maintain_order=True).to_list() == ["7", "q-2"]
    assert store.read("impressions", since=datetime(2025, 6, 4)).is_empty()
    assert store.read("impressions", until=datetime(2025, 6, 1, 10))["request_id"].to_list() == []


def test_impression_counts(store: Any, tmp_path: Path) -> None:
    assert store.impression_counts(InteractionFilter()).schema == pl.Schema(IMPRESSION_COUNTS_SCHEMA)
    ingest(store, "impressions", [str(write_ndjson(tmp_path / "in.ndjson", served_lists()))])
    catalog = [
        recommendation(recommendation_id="r-1"),
        recommendation(recommendation_id="rec-2", category="x"),
    ]
    ingest(store, "recommendations", [str(write_ndjson(tmp_path / "r.ndjson", catalog))])

    def counts(**where: Any) -> list[tuple[str, int]]:
        return sorted(store.impression_counts(InteractionFilter(**where)).rows())

    assert counts() == [("r-1", 1), ("r-2", 1), ("r-9", 1), ("rec-0", 2), ("rec-1", 2), ("rec-2", 2)]
    assert counts(since=datetime(2025, 6, 2), until=datetime(2025, 6, 3)) == [
        ("r-1", 1),
        ("r-2", 1),
        ("rec-0", 1),
        ("rec-1", 1),
        ("rec-2", 1),
    ]
    assert counts(user_id="user-2") == [("rec-0", 1), ("rec-1", 1), ("rec-2", 1)]
    assert counts(recommendation_id="rec-1") == [("rec-1", 2)]
    assert counts(category=("x",)) == [("rec-2", 2)]
    assert counts(category=("security",)) == [("r-1", 1)]


def test_interactions_keep_their_request_id(store: Any, tmp_path: Path) -> None:
    rows = [
        interaction(event_id="e-1", context={"request_id": "q-1", "position": 2}),
        interaction(event_id="e-2", context={"request_id": 42}),
        interaction(event_id="e-3"),
    ]
    ingest(store, "interactions", [str(write_ndjson(tmp_path / "in.ndjson", rows))])
    stored = store.read("interactions", columns=["event_id", "request_id", "position"]).sort("event_id")
    assert stored.rows() == [("e-1", "q-1", 2), ("e-2", "42", None), ("e-3", None, 0)]


impression_lists = st.lists(
    st.tuples(
        st.integers(0, 5),  # request id: a few, so that repeats happen
        st.sampled_from(["ok", "empty", "repeated position", "bad propensity", "no assessment"]),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(impression_lists, min_size=1, max_size=2), chunk_lists=st.integers(1, 4))
def test_impression_accounting(
    store: Any, tmp_path: Path, batches: list[list[tuple[int, str]]], chunk_lists: int
) -> None:
    """read == inserted + duplicates + rejected, in lists, for any mix of valid, invalid and
    repeated lists over several ingests and chunk sizes; each request_id is stored once, with the
    items of its first valid list."""
    import recctl.ingestion

    prefix = uuid.uuid4().hex[:8]  # examples share the store: each one has ids of its own
    stored: dict[str, int] = {}  # request_id -> items of the list stored
    original = recctl.ingestion.CHUNK_LISTS
    recctl.ingestion.CHUNK_LISTS = chunk_lists
    try:
        for number, batch in enumerate(batches):
            rows, expected = [], {"inserted": 0, "duplicates": 0, "rejected": 0}
            for index, (key, shape) in enumerate(batch):
                request_id = f"{prefix}-{key}"
                items = [{"recommendation_id": f"r-{i}", "position": i} for i in range(1 + index % 3)]
                if shape == "empty":
                    items = []
                elif shape == "repeated position":
                    items = [*items, {"recommendation_id": "again", "position": 0}]
                elif shape == "bad propensity":
                    items[0]["propensity"] = 0
                row = impression(request_id=request_id, items=items)
                if shape == "no assessment":
                    del row["assessment_id"]
                rows.append(row)
                if shape != "ok":
                    expected["rejected"] += 1
                elif request_id in stored:
                    expected["duplicates"] += 1
                else:
                    expected["inserted"] += 1
                    stored[request_id] = len(items)
            source = write_ndjson(tmp_path / f"{prefix}-{number}.ndjson", rows)
            summary = ingest(store, "impressions", [str(source)], rejects_path=tmp_path / f"{prefix}.rejects")
            assert summary.read == summary.inserted + summary.duplicates + summary.rejected == len(rows)
            got = {
                "inserted": summary.inserted,
                "duplicates": summary.duplicates,
                "rejected": summary.rejected,
            }
            assert got == expected
    finally:
        recctl.ingestion.CHUNK_LISTS = original
    mine = store.read("impressions", columns=["request_id"]).filter(
        pl.col("request_id").str.starts_with(prefix)
    )
    assert dict(mine["request_id"].value_counts().iter_rows()) == stored


def test_no_impressions_read_empty(store: Any) -> None:
    assert store.read("impressions").schema == pl.Schema(SCHEMAS["impressions"])
    assert store.read("impressions", since=datetime(2025, 1, 1), columns=["request_id"]).height == 0
