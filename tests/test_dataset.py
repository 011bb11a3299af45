"""Training pairs, grades and groups, on handmade frames and on the sample data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from builders import assessment, interaction, recommendation

from recctl.dataset import TimeWindow, assemble, build_training_set, write_training_set
from recctl.errors import InputError, InsufficientDataError
from recctl.features import FEATURE_NAMES
from recctl.records import validate_objects
from recctl.stores import open_store

SAMPLE_WINDOW = TimeWindow.resolve(since=datetime(2025, 9, 1), until=datetime(2025, 11, 1))
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def frames(
    interactions: list[dict], recommendations: list[dict], assessments: list[dict]
) -> tuple[pl.DataFrame, ...]:
    validated = [
        validate_objects("interactions", interactions, now=NOW),
        validate_objects("recommendations", recommendations, now=NOW),
        validate_objects("assessments", assessments, now=NOW),
    ]
    assert all(v.rejects.is_empty() for v in validated)
    return tuple(v.records for v in validated)


def grades_for(events: list[dict], *, catalog: list[str] | None = None) -> dict[str, int]:
    catalog = catalog or sorted({e["recommendation_id"] for e in events} | {"rec-unseen", "rec-hot"})
    hot = [interaction(event_id="hot", recommendation_id="rec-hot", interaction_type="implement")]
    interactions, recommendations, assessments = frames(
        events + hot,
        [recommendation(recommendation_id=r) for r in catalog],
        [assessment()],
    )
    training = assemble(interactions, recommendations, assessments)
    return dict(training.frame.select("recommendation_id", "grade").iter_rows())


def test_dismiss_only_pair_is_0() -> None:
    events = [interaction(event_id="d", recommendation_id="rec-a", interaction_type="dismiss")]
    assert grades_for(events)["rec-a"] == 0


def test_short_view_then_dismiss_is_0_but_a_click_survives_dismiss() -> None:
    events = [
        interaction(event_id="v", recommendation_id="rec-a", interaction_type="view", interaction_value=30),
        interaction(event_id="d", recommendation_id="rec-a", interaction_type="dismiss"),
        interaction(event_id="c", recommendation_id="rec-b", interaction_type="click"),
        interaction(event_id="d2", recommendation_id="rec-b", interaction_type="dismiss"),
    ]
    grades = grades_for(events)
    assert grades["rec-a"] == 0  # 0.25 < click strength 0.4
    assert grades["rec-b"] == 2  # a click (0.4) is at click strength: the dismiss does not erase it


def test_dismiss_then_implement_is_4() -> None:
    events = [
        interaction(event_id="d", recommendation_id="rec-a", interaction_type="dismiss"),
        interaction(
            event_id="i",
            recommendation_id="rec-a",
            interaction_type="implement",
            timestamp="2025-06-02T00:00:00Z",
        ),
    ]
    assert grades_for(events)["rec-a"] == 4


def test_view_30_seconds_is_grade_1() -> None:
    events = [
        interaction(event_id="v", recommendation_id="rec-a", interaction_type="view", interaction_value=30)
    ]
    assert grades_for(events)["rec-a"] == 1  # floor(4 * 0.25 + 0.5)


def test_pair_label_is_the_max_and_grades_round() -> None:
    events = [
        interaction(event_id="v", recommendation_id="rec-a", interaction_type="view"),
        interaction(event_id="c", recommendation_id="rec-a", interaction_type="click"),
        interaction(event_id="r", recommendation_id="rec-b", interaction_type="rate", interaction_value=3),
        interaction(event_id="s", recommendation_id="rec-c", interaction_type="share"),
    ]
    grades = grades_for(events)
    assert (grades["rec-a"], grades["rec-b"], grades["rec-c"]) == (2, 2, 2)  # 0.4, 0.6, 0.6 -> 2


def test_unseen_catalog_item_in_a_seen_group_is_0() -> None:
    events = [interaction(event_id="c", recommendation_id="rec-a", interaction_type="click")]
    grades = grades_for(events)
    assert grades["rec-unseen"] == 0
    assert set(grades) == {"rec-a", "rec-hot", "rec-unseen"}


def test_orphans_and_left_out_groups_are_counted() -> None:
    interactions, recommendations, assessments = frames(
        [
            interaction(event_id="o", recommendation_id="not-in-catalog"),
            interaction(event_id="solo", recommendation_id="rec-solo", assessment_id="asm-solo"),
            interaction(event_id="flat", recommendation_id="rec-f1", assessment_id="asm-flat"),
            interaction(event_id="flat2", recommendation_id="rec-f2", assessment_id="asm-flat"),
            interaction(
                event_id="ok", recommendation_id="rec-k1", assessment_id="asm-ok", interaction_type="save"
            ),
        ],
        [
            recommendation(recommendation_id="rec-solo", assessment_id="asm-solo"),
            recommendation(recommendation_id="rec-f1", assessment_id="asm-flat"),
            recommendation(recommendation_id="rec-f2", assessment_id="asm-flat"),
            recommendation(recommendation_id="rec-k1", assessment_id="asm-ok"),
            recommendation(recommendation_id="rec-k2", assessment_id="asm-ok"),
        ],
        [assessment(assessment_id=a) for a in ("asm-solo", "asm-flat", "asm-ok")],
    )
    training = assemble(interactions, recommendations, assessments)
    manifest = training.manifest
    assert manifest["orphan_interactions"] == 1
    assert manifest["groups"] == {
        "seen": 3,
        "kept": 1,
        "lists": 0,
        "assessments": 1,
        "left_out": {"fewer_than_2_items": 1, "all_grades_equal": 1, "lists_without_interactions": 0},
    }
    assert training.frame["query_id"].unique().to_list() == ["asm-ok"]
    assert dict(training.frame.select("recommendation_id", "grade").iter_rows()) == {"rec-k1": 3, "rec-k2": 0}


def test_sample_export_contract(sample_store: Path, tmp_path: Path) -> None:
    training = build_training_set(open_store(sample_store), SAMPLE_WINDOW)
    frame, manifest = training.frame, training.manifest
    assert len(FEATURE_NAMES) >= 50
    assert frame.columns[:9] == [
        "query_id",
        "recommendation_id",
        "label",
        "grade",
        "event_time",
        "position",
        "assessment_id",
        "propensity",
        "prefix_propensity",
    ]
    assert frame.columns[9:] == list(FEATURE_NAMES)
    per_group = frame.group_by("query_id").agg(
        pl.len().alias("rows"), pl.col("grade").n_unique().alias("grades")
    )
    assert per_group["rows"].min() >= 2 and per_group["grades"].min() >= 2
    groups = manifest["groups"]
    assert groups["kept"] + sum(groups["left_out"].values()) == groups["seen"]
    assert manifest["rows"] == frame.height and groups["kept"] == per_group.height
    assert frame["query_id"].is_sorted()
    assert sum(manifest["grade_counts"].values()) == frame.height
    data_path, manifest_path = write_training_set(training, tmp_path / "export")
    written = json.loads(manifest_path.read_text())
    assert written["data_fingerprint"] == manifest["data_fingerprint"]
    assert pl.read_parquet(data_path).equals(frame)


def test_window_excludes_everything_exits_3(sample_store: Path) -> None:
    window = TimeWindow.resolve(since=datetime(2024, 1, 1), until=datetime(2024, 2, 1))
    with pytest.raises(InsufficientDataError, match=r"only 0 interactions .* at least 100 are needed"):
        build_training_set(open_store(sample_store), window)


def test_window_resolution() -> None:
    now = datetime(2025, 6, 30, tzinfo=UTC)
    assert TimeWindow.resolve(lookback_days=30, now=now).since == datetime(2025, 5, 31, tzinfo=UTC)
    assert TimeWindow.resolve(lookback_days=0, now=now).since is None
    until = datetime(2025, 3, 1)
    window = TimeWindow.resolve(until=until, lookback_days=10)
    assert (window.since, window.until) == (
        datetime(2025, 2, 19, tzinfo=UTC),
        datetime(2025, 3, 1, tzinfo=UTC),
    )
    with pytest.raises(ValueError, match="empty"):
        TimeWindow.resolve(since=datetime(2025, 3, 2), until=until)


def test_manifest_gives_each_feature_groups_coverage_and_names_the_empty_ones() -> None:
    events = [
        interaction(event_id="c", recommendation_id="rec-a", interaction_type="click"),
        interaction(event_id="i", recommendation_id="rec-b", interaction_type="implement"),
    ]
    catalog = [recommendation(recommendation_id=r) for r in ("rec-a", "rec-b", "rec-c")]
    interactions, recommendations, assessments = frames(events, catalog, [assessment()])
    with_assessments = assemble(interactions, recommendations, assessments).manifest
    assert list(with_assessments["feature_coverage"]) == ["recommendation", "assessment", "cross", "list"]
    assert with_assessments["empty_feature_groups"] == []
    assert with_assessments["feature_coverage"]["assessment"]["coverage"] > 0.5
    without = assemble(interactions, recommendations, assessments.clear()).manifest
    assert without["empty_feature_groups"] == ["assessment", "cross"]
    cross = without["feature_coverage"]["cross"]
    assert cross["coverage"] == 0.0 and {"own_category_priority", "provider_match"} <= set(
        cross["empty_features"]
    )
    assert sum(info["features"] for info in without["feature_coverage"].values()) == len(FEATURE_NAMES)
    recommendation_part = with_assessments["feature_coverage"]["recommendation"]
    assert without["feature_coverage"]["recommendation"] == recommendation_part  # not the catalog's fault


def served(lists: list[tuple[str, str, str, list[str]]], *, user: str | None = "user-1") -> pl.DataFrame:
    """Stored impression rows: (request_id, timestamp, assessment_id, items in slot order); the item
    at slot p has propensity 1 / (p + 1) and prefix_propensity 1 / (p + 2)."""
    from recctl.records.schema import IMPRESSION_SCHEMA

    rows = [
        {
            "request_id": request_id,
            "timestamp": datetime.fromisoformat(timestamp.replace("Z", "+00:00")),
            "assessment_id": assessment_id,
            "user_id": user,
            "policy": "deterministic",
            "recommendation_id": item,
            "position": position,
            "propensity": 1 / (position + 1),
            "prefix_propensity": 1 / (position + 2),
        }
        for request_id, timestamp, assessment_id, items in lists
        for position, item in enumerate(items)
    ]
    return pl.DataFrame(rows, schema=IMPRESSION_SCHEMA)


def with_request_ids(interactions: pl.DataFrame, named: dict[str, str]) -> pl.DataFrame:
    """``interactions`` with ``request_id`` set from ``named`` (event_id -> request_id), else null."""
    ids = pl.col("event_id").replace_strict(named, default=None, return_dtype=pl.String)
    return interactions.with_columns(ids.alias("request_id"))


def impression_world() -> tuple[pl.DataFrame, ...]:
    """asm-1 has three served lists (L3 never touched) and one interaction no list claims; asm-2
    has none, so it keeps its assessment group."""
    interactions, recommendations, assessments = frames(
        [
            interaction(event_id="c2", recommendation_id="r2", timestamp="2025-06-01T12:30:00Z"),
            interaction(
                event_id="i1",
                recommendation_id="r1",
                interaction_type="implement",
                timestamp="2025-06-01T14:10:00Z",
            ),
            interaction(event_id="c3", recommendation_id="r3", timestamp="2025-06-01T14:20:00Z"),
            interaction(event_id="c4", recommendation_id="r4", timestamp="2025-06-01T14:30:00Z"),
            interaction(
                event_id="s5", recommendation_id="r5", assessment_id="asm-2", interaction_type="save"
            ),
        ],
        [
            *(recommendation(recommendation_id=r) for r in ("r1", "r2", "r3", "r4")),
            *(recommendation(recommendation_id=r, assessment_id="asm-2") for r in ("r5", "r6")),
        ],
        [assessment(), assessment(assessment_id="asm-2")],
    )
    impressions = served(
        [
            ("L1", "2025-06-01T12:00:00Z", "asm-1", ["r1", "r2", "r3", "ghost"]),
            ("L2", "2025-06-01T14:00:00Z", "asm-1", ["r3", "r1", "r2"]),
            ("L3", "2025-06-01T15:00:00Z", "asm-1", ["r2", "r1"]),
        ]
    )
    return with_request_ids(interactions, {"c3": "L1"}), recommendations, assessments, impressions


def test_an_assessment_with_served_lists_has_one_group_per_list_labelled_by_its_own_interactions() -> None:
    interactions, recommendations, assessments, impressions = impression_world()
    training = assemble(interactions, recommendations, assessments, impressions=impressions)
    frame = training.frame.sort("query_id", "position")
    rows = {
        (q, r): (grade, position)
        for q, r, grade, position in frame.select(
            "query_id", "recommendation_id", "grade", "position"
        ).iter_rows()
    }
    assert rows == {
        # c2 (12:30) belongs to L1, the newest list showing r2 before it; c3 names L1 itself.
        ("L1", "r1"): (0, 0),
        ("L1", "r2"): (2, 1),
        ("L1", "r3"): (2, 2),
        # i1 (14:10) belongs to L2: it showed r1 at 14:00.
        ("L2", "r3"): (0, 0),
        ("L2", "r1"): (4, 1),
        ("L2", "r2"): (0, 2),
        # asm-2 has no served list: its catalog list, positions from its interactions.
        ("asm-2", "r5"): (3, 0),
        ("asm-2", "r6"): (0, None),
    }
    lists = frame.filter(pl.col("query_id").is_in(["L1", "L2"]))
    assert lists["assessment_id"].unique().to_list() == ["asm-1"]
    assert lists["propensity"].to_list() == [1 / (p + 1) for p in lists["position"]]
    assert lists["prefix_propensity"].to_list() == [1 / (p + 2) for p in lists["position"]]
    # Within-list features are the served list's: L1 showed 3 catalog items, not asm-1's 4.
    assert frame.filter(pl.col("query_id") == "L1")["list_size"].unique().to_list() == [3.0]
    newest = dict(frame.group_by("query_id").agg(pl.col("event_time").first()).iter_rows())
    assert newest["L1"] == datetime(2025, 6, 1, 14, 20, tzinfo=UTC)  # c3, its newest linked interaction
    assert newest["L2"] == datetime(2025, 6, 1, 14, 10, tzinfo=UTC)
    manifest = training.manifest
    assert manifest["unlinked_interactions"] == 1  # c4: r4 was in no list of asm-1
    assert manifest["linked_interactions"] == 3
    assert manifest["groups"]["lists"] == 2 and manifest["groups"]["assessments"] == 1
    assert manifest["groups"]["left_out"]["lists_without_interactions"] == 1  # L3
    assert manifest["impressions"]["list_items_not_in_catalog"] == 1  # "ghost"
    assert manifest["impressions"]["assessments_with_lists"] == 1


def test_a_list_served_before_the_window_is_a_group_only_when_an_interaction_links_to_it() -> None:
    interactions, recommendations, assessments, impressions = impression_world()
    since = datetime(2025, 6, 1, 13, 0, tzinfo=UTC)
    kept = interactions.filter(pl.col("timestamp") >= since)
    training = assemble(kept, recommendations, assessments, impressions=impressions, lists_since=since)
    # L1 (12:00) is before the window but c3 (14:20) names it; L3 (15:00) is in the window, untouched.
    assert sorted(training.frame["query_id"].unique()) == ["L1", "L2"]
    assert training.manifest["impressions"]["list_groups_seen"] == 3
    unnamed = with_request_ids(kept, {})  # now c3 links to L2, the newest list showing r3
    training = assemble(unnamed, recommendations, assessments, impressions=impressions, lists_since=since)
    assert sorted(training.frame["query_id"].unique()) == ["L2"]
    assert training.manifest["impressions"]["list_groups_seen"] == 2


def test_a_list_id_that_is_also_an_assessment_id_is_refused() -> None:
    interactions, recommendations, assessments, impressions = impression_world()
    clash = impressions.with_columns(pl.col("request_id").replace({"L2": "asm-2"}))
    with pytest.raises(InputError, match=r"also assessment ids \(e.g. 'asm-2'\)"):
        assemble(interactions, recommendations, assessments, impressions=clash)


def test_without_served_lists_every_group_is_an_assessment() -> None:
    interactions, recommendations, assessments, _ = impression_world()
    training = assemble(interactions, recommendations, assessments, impressions=None)
    assert sorted(training.frame["query_id"].unique()) == ["asm-1", "asm-2"]
    assert training.manifest["unlinked_interactions"] == 0
    assert training.frame["assessment_id"].to_list() == training.frame["query_id"].to_list()


def test_build_training_set_reads_the_served_lists_from_either_store(store: Any) -> None:
    from builders import impression

    def items(*ids: str) -> list[dict[str, Any]]:
        return [{"recommendation_id": r, "position": p, "propensity": 0.5} for p, r in enumerate(ids)]

    records = {
        "assessments": [assessment()],
        "recommendations": [recommendation(recommendation_id=r) for r in ("r1", "r2", "r3")],
        "impressions": [
            impression(request_id="L1", timestamp="2025-06-01T12:00:00Z", items=items("r1", "r2", "r3")),
            # served the day before the window: linked to by c3 alone, so a group all the same
            impression(request_id="L0", timestamp="2025-05-31T23:00:00Z", items=items("r3", "r2")),
        ],
        "interactions": [
            interaction(event_id="c2", recommendation_id="r2", timestamp="2025-06-01T12:05:00Z", context={}),
            interaction(
                event_id="c3",
                recommendation_id="r3",
                timestamp="2025-06-01T12:10:00Z",
                context={"request_id": "L0"},
            ),
        ],
    }
    for kind, rows in records.items():
        validated = validate_objects(kind, rows, now=NOW)  # type: ignore[arg-type]
        assert validated.rejects.is_empty(), validated.rejects
        store.write(kind, validated.records)
    window = TimeWindow.resolve(since=datetime(2025, 6, 1), until=datetime(2025, 6, 2))
    training = build_training_set(store, window, min_interactions=1)
    grades = {
        (q, r): (g, p)
        for q, r, g, p in training.frame.select(
            "query_id", "recommendation_id", "grade", "position"
        ).iter_rows()
    }
    assert grades == {
        ("L0", "r3"): (2, 0),
        ("L0", "r2"): (0, 1),
        ("L1", "r1"): (0, 0),
        ("L1", "r2"): (2, 1),
        ("L1", "r3"): (0, 2),
    }
    assert training.manifest["linked_interactions"] == 2 and training.manifest["unlinked_interactions"] == 0
