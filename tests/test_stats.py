"""recctl.stats on both stores (the ``store`` fixture): the definitions, filters, edge cases."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from builders import assessment, interaction, recommendation, write_ndjson
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from recctl.errors import NotFoundError, RecctlError
from recctl.ingestion import ingest
from recctl.records import INTERACTION_TYPES, SCHEMAS
from recctl.stats import (
    COUNT_COLUMNS,
    IMPRESSION_METRICS,
    RECENT_COLUMNS,
    STATS_COLUMNS,
    recommendation_stats,
    user_history,
)
from recctl.stores import open_store

START = datetime(2025, 6, 1, tzinfo=UTC)
LABELS = {
    "view": 0.25,
    "click": 0.4,
    "implement": 1.0,
    "save": 0.8,
    "share": 0.6,
    "dismiss": 0.0,
    "rate": 0.8,
}
"""The default policy's label of each event :func:`events` makes (views of 30 s, ratings of 4 stars)."""


def events(
    recommendation_id: str, counts: dict[str, int], *, user: str = "user-1", day: int = 0
) -> list[dict[str, Any]]:
    """``counts[type]`` interactions of each type on one recommendation, a minute apart from ``day``."""
    rows = []
    for kind, number in counts.items():
        for _ in range(number):
            moment = START + timedelta(days=day, minutes=len(rows))
            rows.append(
                interaction(
                    event_id=f"{recommendation_id}-{user}-{day}-{len(rows)}",
                    recommendation_id=recommendation_id,
                    user_id=user,
                    interaction_type=kind,
                    interaction_value={"view": 30, "rate": 4}.get(kind),
                    timestamp=moment.isoformat(),
                )
            )
    return rows


def load(
    store: Any, tmp_path: Path, rows: list[dict[str, Any]], catalog: list[dict[str, Any]] | None = None
) -> None:
    for kind, records in (("recommendations", catalog or []), ("interactions", rows)):
        if records:
            source = write_ndjson(tmp_path / f"{kind}.ndjson", list(records))
            assert ingest(store, kind, [str(source)]).rejected == 0


def row_of(stats: pl.DataFrame, recommendation_id: str) -> dict[str, Any]:
    rows = stats.filter(pl.col("recommendation_id") == recommendation_id).to_dicts()
    assert len(rows) == 1
    return rows[0]


# -- the original system's examples -------------------------------------------------------------
def test_seed_recommendation_example(store: Any, tmp_path: Path) -> None:
    # The original's figures: 38 views, 12 clicks, 3 implementations -> CTR 0.316, implementation rate 0.25.
    # (It also says "45 interactions", which cannot hold with 38 + 12 + 3 of them; the rates do.)
    seed = {"view": 38, "click": 12, "implement": 3, "save": 2, "share": 1, "dismiss": 1}
    load(
        store,
        tmp_path,
        events("rec-seed", seed) + events("rec-other", {"view": 1}),
        [recommendation(recommendation_id="rec-seed", category="security", title="Enable MFA")],
    )
    stats = recommendation_stats(store)
    assert stats.columns == list(STATS_COLUMNS)
    assert stats["recommendation_id"].to_list() == ["rec-seed", "rec-other"]  # by total, descending
    row = row_of(stats, "rec-seed")
    assert (row["total_interactions"], row["view_count"], row["click_count"]) == (57, 38, 12)
    assert (row["implementation_count"], row["save_count"], row["share_count"], row["dismiss_count"]) == (
        3,
        2,
        1,
        1,
    )
    assert (
        row["click_through_rate"] == pytest.approx(12 / 38) and round(row["click_through_rate"], 4) == 0.3158
    )
    assert row["implementation_rate"] == 0.25
    expected_label = sum(LABELS[kind] * n for kind, n in seed.items()) / 57
    assert row["avg_label"] == pytest.approx(expected_label, abs=1e-6)
    assert (row["category"], row["title"]) == ("security", "Enable MFA")
    other = row_of(stats, "rec-other")
    assert (other["category"], other["title"]) == (None, None)  # not in the catalog


def test_seed_user_example(store: Any, tmp_path: Path) -> None:
    # The original's figures: 156 interactions, 28 clicks, 8 implementations -> implementation rate 0.286.
    rows = (
        events("rec-a", {"view": 70, "click": 20, "implement": 5, "save": 3}, user="user-seed")
        + events("rec-b", {"view": 40, "click": 8, "implement": 3, "dismiss": 5, "rate": 2}, user="user-seed")
        + events("rec-a", {"click": 4, "implement": 4}, user="someone-else")
    )
    catalog = [
        recommendation(recommendation_id="rec-a", category="security"),
        recommendation(recommendation_id="rec-b", category="cost_optimization"),
    ]
    load(store, tmp_path, rows, catalog)
    summary, recent = user_history(store, "user-seed", limit=10)
    assert summary["total_interactions"] == 156
    assert summary["type_counts"] == {
        "view": 110,
        "click": 28,
        "implement": 8,
        "save": 3,
        "share": 0,
        "rate": 2,
        "dismiss": 5,
    }
    assert list(summary["type_counts"]) == list(INTERACTION_TYPES)
    assert (
        summary["implementation_rate"] == pytest.approx(8 / 28)
        and round(summary["implementation_rate"], 3) == 0.286
    )
    assert summary["category_preferences"] == {"security": 98, "cost_optimization": 58}
    mine = [row for row in rows if row["user_id"] == "user-seed"]
    mean_label = sum(LABELS[row["interaction_type"]] for row in mine) / len(mine)
    assert summary["avg_engagement"] == pytest.approx(mean_label, abs=1e-6)
    assert recent.columns == list(RECENT_COLUMNS)
    assert recent.height == 10
    newest = sorted(mine, key=lambda row: (row["timestamp"], row["event_id"]), reverse=True)[:10]
    assert recent["event_id"].to_list() == [row["event_id"] for row in newest]
    assert recent["category"].drop_nulls().len() == 10


# -- nulls, never fake zeros ----------------------------------------------------------------------
def test_zero_denominators_are_null(store: Any, tmp_path: Path) -> None:
    load(
        store,
        tmp_path,
        events("rec-dismissed", {"dismiss": 2})
        + events("rec-viewed", {"view": 3})
        + events("rec-clicked", {"click": 1}),
    )
    stats = recommendation_stats(store)
    dismissed, viewed, clicked = (
        row_of(stats, name) for name in ("rec-dismissed", "rec-viewed", "rec-clicked")
    )
    assert (dismissed["click_through_rate"], dismissed["implementation_rate"]) == (None, None)
    assert dismissed["avg_label"] == 0.0  # labels exist and are 0: a real 0, not a null
    assert (viewed["click_through_rate"], viewed["implementation_rate"]) == (0.0, None)
    assert (clicked["click_through_rate"], clicked["implementation_rate"]) == (None, 0.0)
    summary, _ = user_history(store, "user-1")
    assert summary["implementation_rate"] == 0.0
    load(store, tmp_path, events("rec-x", {"view": 1}, user="viewer"))
    assert user_history(store, "viewer").summary["implementation_rate"] is None


# -- filters and order ----------------------------------------------------------------------------
@pytest.fixture
def varied(store: Any, tmp_path: Path) -> Any:
    """Three recommendations, two users, three days, two categories (and one outside the catalog)."""
    rows = (
        events("rec-1", {"view": 5, "click": 2, "implement": 1}, user="ann", day=0)
        + events("rec-1", {"view": 1, "click": 1}, user="bob", day=2)
        + events("rec-2", {"view": 2, "click": 2, "implement": 2}, user="bob", day=1)
        + events("rec-3", {"view": 4}, user="ann", day=2)
        + events("rec-9", {"view": 1, "dismiss": 1}, user="bob", day=1)
    )
    catalog = [
        recommendation(recommendation_id="rec-1", category="security", title="One"),
        recommendation(recommendation_id="rec-2", category="security", title="Two"),
        recommendation(recommendation_id="rec-3", category="performance", title="Three"),
        recommendation(recommendation_id="rec-4", category="performance", title="Never seen"),
    ]
    load(store, tmp_path, rows, catalog)
    write_ndjson(tmp_path / "asm.ndjson", [assessment(user_id="carol")])
    ingest(store, "assessments", [str(tmp_path / "asm.ndjson")])
    return store


def ids(stats: pl.DataFrame) -> list[str]:
    return stats["recommendation_id"].to_list()


def test_time_window_is_since_inclusive_until_exclusive(varied: Any) -> None:
    day1 = START + timedelta(days=1)
    stats = recommendation_stats(varied, since=day1, until=START + timedelta(days=2))
    assert sorted(ids(stats)) == ["rec-2", "rec-9"]
    assert recommendation_stats(varied, until=day1)["total_interactions"].to_list() == [8]
    naive = recommendation_stats(varied, since=datetime(2025, 6, 3))  # naive = UTC
    assert sorted(ids(naive)) == ["rec-1", "rec-3"]
    assert row_of(naive, "rec-1")["total_interactions"] == 2


def test_category_user_and_min_views_filters(varied: Any) -> None:
    assert ids(recommendation_stats(varied, category="security")) == ["rec-1", "rec-2"]
    by_bob = recommendation_stats(varied, user="bob")
    assert sorted(ids(by_bob)) == ["rec-1", "rec-2", "rec-9"]
    assert row_of(by_bob, "rec-1")["total_interactions"] == 2
    assert ids(recommendation_stats(varied, min_views=4)) == ["rec-1", "rec-3"]
    both = recommendation_stats(varied, category="security", user="ann", since=START, min_views=1)
    assert ids(both) == ["rec-1"] and row_of(both, "rec-1")["view_count"] == 5


def test_category_in_any_case_and_an_unknown_one_lists_the_known(varied: Any) -> None:
    for spelling in ("Security", "SECURITY", " security "):
        assert ids(recommendation_stats(varied, category=spelling)) == ["rec-1", "rec-2"], spelling
    zero = recommendation_stats(varied, recommendation_id="rec-4", category="Performance")
    assert ids(zero) == ["rec-4"] and zero["total_interactions"].to_list() == [0]
    with pytest.raises(
        NotFoundError,
        match=r"^unknown category 'Securty': the catalog's categories are performance, security$",
    ):
        recommendation_stats(varied, category="Securty")
    with pytest.raises(NotFoundError, match="unknown category 'nothing-here'"):
        recommendation_stats(varied, category="nothing-here", recommendation_id="rec-1")


def test_an_unknown_user_is_not_an_empty_table(varied: Any) -> None:
    with pytest.raises(NotFoundError, match="unknown user 'anne'"):
        recommendation_stats(varied, user="anne")
    assert recommendation_stats(varied, user="carol").is_empty()  # known (an assessment), no interaction
    assert recommendation_stats(varied, user="ann", since=START + timedelta(days=30)).is_empty()


def test_an_empty_catalog_has_no_category(store: Any, tmp_path: Path) -> None:
    load(store, tmp_path, events("rec-1", {"view": 1}))
    with pytest.raises(
        NotFoundError, match="unknown category 'security': the catalog has no recommendations"
    ):
        recommendation_stats(store, category="security")


def test_many_categories_are_listed_up_to_twenty(store: Any, tmp_path: Path) -> None:
    catalog = [recommendation(recommendation_id=f"rec-{n}", category=f"kind-{n:02d}") for n in range(25)]
    load(store, tmp_path, events("rec-1", {"view": 1}), catalog)
    with pytest.raises(NotFoundError, match=r"are kind-00, kind-01, .*, kind-19 and 5 more$"):
        recommendation_stats(store, category="kind")


def test_sort_order_ties_and_nulls(varied: Any) -> None:
    by_rate = recommendation_stats(varied, sort="implementation_rate")
    # rec-2 1.0, rec-1 1/3, then nulls (rec-3, rec-9 have no clicks) by id
    assert ids(by_rate) == ["rec-2", "rec-1", "rec-3", "rec-9"]
    ascending = recommendation_stats(varied, sort="implementation_rate", descending=False)
    assert ids(ascending) == ["rec-1", "rec-2", "rec-3", "rec-9"]  # nulls last either way
    by_views = recommendation_stats(varied, sort="view_count", descending=False)
    assert ids(by_views) == ["rec-9", "rec-2", "rec-3", "rec-1"]
    ties = recommendation_stats(varied, sort="dismiss_count")  # rec-9 then the zeros by id
    assert ids(ties) == ["rec-9", "rec-1", "rec-2", "rec-3"]
    assert ids(recommendation_stats(varied, sort="click_count", limit=2)) == ["rec-1", "rec-2"]
    with pytest.raises(ValueError, match="cannot sort by 'title'"):
        recommendation_stats(varied, sort="title")


def test_one_recommendation(varied: Any) -> None:
    one = recommendation_stats(varied, recommendation_id="rec-2")
    assert ids(one) == ["rec-2"] and one["implementation_rate"].to_list() == [1.0]
    # In the catalog but no interaction (at all, or in the window): a row of zeros, rates null.
    for quiet in (
        recommendation_stats(varied, recommendation_id="rec-4"),
        recommendation_stats(varied, recommendation_id="rec-2", since=START + timedelta(days=2)),
    ):
        row = quiet.row(0, named=True)
        assert row["total_interactions"] == row["view_count"] == 0
        assert (row["click_through_rate"], row["implementation_rate"], row["avg_label"]) == (None, None, None)
    assert recommendation_stats(varied, recommendation_id="rec-4")["title"].to_list() == ["Never seen"]
    assert recommendation_stats(varied, recommendation_id="rec-2", category="performance").is_empty()
    assert ids(recommendation_stats(varied, recommendation_id="rec-9")) == ["rec-9"]  # interactions only
    with pytest.raises(RecctlError, match="unknown recommendation 'rec-nope'"):
        recommendation_stats(varied, recommendation_id="rec-nope")


def test_history_filters_and_unknown_user(varied: Any) -> None:
    summary, recent = user_history(
        varied, "bob", since=START + timedelta(days=1), until=START + timedelta(days=2)
    )
    assert recent.columns[0] == "user_id" and recent["user_id"].unique().to_list() == ["bob"]
    assert summary["total_interactions"] == 8
    assert summary["category_preferences"] == {"security": 6}  # rec-9 is not in the catalog
    assert recent["recommendation_id"].unique().sort().to_list() == ["rec-2", "rec-9"]
    assert recent["timestamp"].is_sorted(descending=True)
    assert user_history(varied, "bob", limit=None).recent.height == 10
    quiet = user_history(varied, "bob", since=START + timedelta(days=30))  # known, nothing in the window
    assert quiet.summary["total_interactions"] == 0 and quiet.recent.is_empty()
    assert quiet.summary["avg_engagement"] is None
    carol = user_history(varied, "carol")  # an assessment, no interaction
    assert carol.summary["type_counts"] == dict.fromkeys(INTERACTION_TYPES, 0)
    with pytest.raises(RecctlError, match="unknown user 'nobody'"):
        user_history(varied, "nobody")


def test_empty_store(store: Any) -> None:
    stats = recommendation_stats(store)
    assert stats.is_empty() and stats.columns == list(STATS_COLUMNS)
    with pytest.raises(RecctlError, match="unknown user"):
        user_history(store, "anyone")


# -- both stores, the same answers ----------------------------------------------------------------
@pytest.mark.mongo
@pytest.mark.parametrize("max_in_list", [1_000, 1])  # 1: Mongo filters by category / catalog here
def test_files_and_mongo_agree(
    tmp_path: Path, mongo_uri: str, max_in_list: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("recctl.stores.mongo.MAX_IN_LIST", max_in_list)
    rows = (
        events("rec-1", {"view": 7, "click": 3, "implement": 1, "rate": 2}, user="ann")
        + events("rec-2", {"view": 3, "save": 1, "share": 2}, user="bob", day=1)
        + events("rec-3", {"dismiss": 2}, user="ann", day=2)
        + events("rec-4", {"view": 2, "click": 1}, user="ann", day=3)
    )
    catalog = [
        recommendation(recommendation_id="rec-1"),
        recommendation(recommendation_id="rec-3", title=None),
        recommendation(recommendation_id="rec-4", category="performance"),
    ]
    stores = [open_store(tmp_path / "files"), open_store(mongo_uri)]
    try:
        for store in stores:
            load(store, tmp_path, rows, catalog)
        for options in ({}, {"sort": "avg_label"}, {"user": "ann", "since": START}, {"category": "security"}):
            files, mongo = (recommendation_stats(store, **options) for store in stores)
            assert_frame_equal(files, mongo)
        assert ids(recommendation_stats(stores[1], category="security")) == ["rec-1", "rec-3"]
        files_history, mongo_history = (user_history(store, "ann", limit=5) for store in stores)
        assert files_history.summary == mongo_history.summary
        assert files_history.summary["category_preferences"] == {"security": 15, "performance": 3}
        assert_frame_equal(files_history.recent, mongo_history.recent)
    finally:
        for store in stores:
            store.close()


@pytest.mark.mongo
def test_original_api_categories_in_other_cases_are_found(mongo_uri: str, tmp_path: Path) -> None:
    """recctl stores categories in lower case; the original API's documents may not be."""
    store = open_store(mongo_uri)
    try:
        rows = events("rec-a", {"view": 2}) + events("rec-b", {"click": 1}) + events("rec-c", {"view": 1})
        load(store, tmp_path, rows, [recommendation(recommendation_id="rec-a", category="security")])
        store.collection("recommendations").insert_many(
            [
                {"recommendation_id": "rec-b", "category": "Security"},
                {"recommendation_id": "rec-c", "category": "Performance"},
            ]
        )
        assert ids(recommendation_stats(store, category="SECURITY")) == ["rec-a", "rec-b"]
        with pytest.raises(NotFoundError, match=r"categories are Performance, Security, security$"):
            recommendation_stats(store, category="cost")
    finally:
        store.close()


@pytest.mark.mongo
def test_seed_documents_without_labels(mongo_uri: str) -> None:
    """Documents written by the original API have no event_id and no label: counted, not averaged."""
    store = open_store(mongo_uri)
    try:
        documents = [
            {
                "recommendation_id": "rec-s",
                "user_id": "u",
                "interaction_type": kind,
                "timestamp": START,
                "context": {},
            }
            for kind in ("view", "click", "implement")
        ]
        store.collection("interactions").insert_many([*documents, {**documents[1], "label": 0.4}])
        row = recommendation_stats(store).row(0, named=True)
        assert (row["total_interactions"], row["click_count"], row["implementation_rate"]) == (4, 2, 0.5)
        assert row["avg_label"] == 0.4  # the one labelled document
        summary, recent = user_history(store, "u")
        assert summary["avg_engagement"] == 0.4
        assert recent["label"].null_count() == 3 and recent["event_id"].null_count() == 0
    finally:
        store.close()


# -- invariants -----------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["r1", "r2", "r3"]),
            st.sampled_from(INTERACTION_TYPES),
            st.one_of(st.none(), st.floats(0, 1)),
        ),
        max_size=60,
    )
)
def test_counts_add_up_and_averages_stay_in_range(rows: list[tuple[str, str, float | None]]) -> None:
    frame = pl.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(len(rows))],
            "recommendation_id": [row[0] for row in rows],
            "user_id": "u",
            "interaction_type": [row[1] for row in rows],
            "timestamp": [START + timedelta(seconds=i) for i in range(len(rows))],
            "label": [row[2] for row in rows],
        },
        schema_overrides={"timestamp": pl.Datetime("ms", "UTC"), "label": pl.Float64()},
    )
    frame = frame.with_columns(
        pl.lit(None).cast(dtype).alias(name)
        for name, dtype in SCHEMAS["interactions"].items()
        if name not in frame.columns
    ).select(list(SCHEMAS["interactions"]))
    with tempfile.TemporaryDirectory() as folder:  # a fresh file store per example
        store = open_store(Path(folder) / "store")
        store.write("interactions", frame)
        stats = recommendation_stats(store)
        store.close()
    assert stats["total_interactions"].sum() == len(rows)
    assert (
        stats.select(pl.sum_horizontal(list(COUNT_COLUMNS.values()))).to_series()
        == stats["total_interactions"]
    ).all()
    assert stats["avg_label"].drop_nulls().is_between(0, 1).all()
    rates = pl.col("click_through_rate", "implementation_rate", "avg_label")
    assert stats.select(rates.is_nan().sum()).row(0) == (0, 0, 0)  # null, never NaN
    for recommendation_id, labels in _labels_by_recommendation(rows).items():
        expected = sum(labels) / len(labels) if labels else None
        assert row_of(stats, recommendation_id)["avg_label"] == (
            None if expected is None else pytest.approx(expected, abs=1e-6)
        )


def _labels_by_recommendation(rows: list[tuple[str, str, float | None]]) -> dict[str, list[float]]:
    labels: dict[str, list[float]] = {}
    for recommendation_id, _, label in rows:
        labels.setdefault(recommendation_id, [])
        if label is not None:
            labels[recommendation_id].append(label)
    return labels


def test_every_interaction_type_has_a_count_column() -> None:
    from recctl.stores.base import COUNTS_SCHEMA

    assert sorted(COUNT_COLUMNS) == sorted(INTERACTION_TYPES)
    assert set(COUNT_COLUMNS.values()) <= set(COUNTS_SCHEMA)


# -- impressions ------------------------------------------------------------------------------------
def served(request_id: str, day: int, shown: list[str], user: str = "user-1") -> dict[str, Any]:
    """A served list of ``shown`` (positions 0, 1, ...) at ``day`` from START."""
    return {
        "request_id": request_id,
        "timestamp": (START + timedelta(days=day)).isoformat(),
        "assessment_id": "asm-1",
        "user_id": user,
        "items": [{"recommendation_id": rec, "position": slot} for slot, rec in enumerate(shown)],
    }


def test_impressions_add_shown_counts_and_ctr_per_impression(store: Any, tmp_path: Path) -> None:
    rows = events("r-1", {"view": 4, "click": 2}) + events("r-2", {"click": 1}) + events("r-3", {"view": 1})
    load(store, tmp_path, rows)
    before = recommendation_stats(store)
    assert before.columns == list(STATS_COLUMNS)  # no impressions stored: the columns are as they were
    lists = [served(f"q-{i}", 0, ["r-1", "r-2", "r-9"]) for i in range(4)] + [served("late", 5, ["r-1"])]
    ingest(store, "impressions", [str(write_ndjson(tmp_path / "impressions.ndjson", list(lists)))])
    stats = recommendation_stats(store)
    assert stats.columns == [*STATS_COLUMNS, *IMPRESSION_METRICS]
    assert_frame_equal(stats.select(STATS_COLUMNS), before)  # the other columns keep their values
    by_id = {row["recommendation_id"]: row for row in stats.to_dicts()}
    assert (by_id["r-1"]["impressions"], by_id["r-1"]["ctr_per_impression"]) == (5, 2 / 5)
    assert (by_id["r-2"]["impressions"], by_id["r-2"]["ctr_per_impression"]) == (4, 1 / 4)
    assert (by_id["r-3"]["impressions"], by_id["r-3"]["ctr_per_impression"]) == (0, None)  # never shown
    assert (
        "r-9" not in by_id
    )  # shown but never interacted with: rows are still recommendations with interactions
    window = recommendation_stats(store, until=START + timedelta(days=1))
    assert row_of(window, "r-1")["impressions"] == 4
    outside = recommendation_stats(store, since=START + timedelta(days=6))
    assert outside.columns == list(STATS_COLUMNS)  # no impression in the window: no such columns
