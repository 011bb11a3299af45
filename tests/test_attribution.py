"""Linking interactions to the served list they belong to (recctl.attribution)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from recctl.attribution import fill_assessment_ids, link_interactions
from recctl.records.schema import IMPRESSION_SCHEMA, UTC_MS

T0 = datetime(2025, 9, 1, 12, tzinfo=UTC)


def lists(*served: tuple[str, float, str, str | None, list[str]]) -> pl.DataFrame:
    """Impression item rows from (request_id, hours after T0, assessment_id, user_id, [rec ids])."""
    rows = [
        {
            "request_id": request_id,
            "timestamp": T0 + timedelta(hours=hours),
            "assessment_id": assessment_id,
            "user_id": user_id,
            "policy": "deterministic",
            "recommendation_id": rec,
            "position": position,
        }
        for request_id, hours, assessment_id, user_id, recs in served
        for position, rec in enumerate(recs)
    ]
    return pl.DataFrame(rows, schema_overrides={"timestamp": UTC_MS}).select(
        pl.col(name).cast(dtype) if name in rows[0] else pl.lit(None, dtype).alias(name)
        for name, dtype in IMPRESSION_SCHEMA.items()
    )


def events(*logged: tuple[str, float, str | None, str, str | None]) -> pl.DataFrame:
    """Interactions from (recommendation_id, hours after T0, assessment_id, user_id, request_id)."""
    return pl.DataFrame(
        [
            {
                "event_id": f"e{number}",
                "recommendation_id": rec,
                "timestamp": T0 + timedelta(hours=hours),
                "assessment_id": assessment_id,
                "user_id": user_id,
                "request_id": request_id,
            }
            for number, (rec, hours, assessment_id, user_id, request_id) in enumerate(logged)
        ],
        schema={
            "event_id": pl.String,
            "recommendation_id": pl.String,
            "timestamp": UTC_MS,
            "assessment_id": pl.String,
            "user_id": pl.String,
            "request_id": pl.String,
        },
    )


def linked(interactions: pl.DataFrame, impressions: pl.DataFrame, hours: float = 24) -> list[tuple]:
    out = link_interactions(interactions, impressions, attribution_hours=hours)
    return list(out.select("request_id", "list_position").iter_rows())


SERVED = lists(
    ("r1", 0, "a1", "u1", ["x", "y", "z"]),
    ("r2", 5, "a1", "u1", ["z", "x", "y"]),
    ("r3", 6, "a1", "u2", ["y", "z", "x"]),
    ("r4", 7, "a2", None, ["x", "w"]),
)


def test_a_named_list_wins_over_a_newer_one() -> None:
    assert linked(events(("x", 6, "a1", "u1", "r1")), SERVED) == [("r1", 0)]


def test_without_a_name_the_newest_earlier_list_of_the_same_user_and_assessment_claims_it() -> None:
    # r3 is newer but shown to u2; r2 is u1's newest list before the click.
    assert linked(events(("x", 6.5, "a1", "u1", None)), SERVED) == [("r2", 1)]
    assert linked(events(("x", 6.5, "a1", "u2", None)), SERVED) == [("r3", 2)]


def test_a_list_is_not_claimed_by_an_interaction_before_it() -> None:
    assert linked(events(("z", 4.9, "a1", "u1", None)), SERVED) == [("r1", 2)]
    assert linked(events(("x", -0.1, "a1", "u1", None)), SERVED) == [(None, None)]


def test_a_list_that_names_no_user_matches_any_user() -> None:
    assert linked(events(("w", 8, "a2", "anyone", None)), SERVED) == [("r4", 1)]


def test_outside_the_window_or_of_another_assessment_is_unlinked() -> None:
    assert linked(events(("y", 6 + 24.5, "a1", "u2", None)), SERVED) == [(None, None)]
    assert linked(events(("y", 6 + 24.5, "a1", "u2", None)), SERVED, hours=48) == [("r3", 0)]
    assert linked(events(("x", 8, "a3", "u1", None)), SERVED) == [(None, None)]


def test_a_name_of_a_list_that_does_not_show_the_item_falls_back_to_the_time_rule() -> None:
    assert linked(events(("w", 8, "a2", "u1", "r1")), SERVED) == [("r4", 1)]
    assert linked(events(("q", 8, "a2", "u1", "r1")), SERVED) == [(None, None)]


def test_rows_keep_their_order_and_columns() -> None:
    interactions = events(
        ("y", 9, "a1", "u1", None), ("x", 0.5, "a1", "u1", "r1"), ("w", 100, "a2", "u9", None)
    )
    out = link_interactions(interactions, SERVED)
    assert out["event_id"].to_list() == ["e0", "e1", "e2"]
    assert out.columns == [*interactions.columns, "list_position"]
    assert out["request_id"].to_list() == ["r2", "r1", None]


def test_missing_assessment_ids_come_from_the_catalog() -> None:
    catalog = pl.DataFrame({"recommendation_id": ["x", "w"], "assessment_id": ["a1", "a2"]})
    filled = fill_assessment_ids(events(("x", 1, None, "u1", None), ("w", 1, "a9", "u1", None)), catalog)
    assert filled["assessment_id"].to_list() == ["a1", "a9"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from("xyzw"),
            st.floats(-2, 40),
            st.sampled_from(["a1", "a2"]),
            st.sampled_from(["u1", "u2"]),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_each_link_obeys_the_rule_brute_force(logged: list[tuple[str, float, str, str]]) -> None:
    """Against a direct reading of the rule, for every interaction."""
    interactions = events(*((rec, hours, asm, user, None) for rec, hours, asm, user in logged))
    got = linked(interactions, SERVED)
    shown = SERVED.to_dicts()
    for (rec, hours, asm, user), link in zip(logged, got, strict=True):
        at = T0 + timedelta(hours=hours)
        claims = [
            item
            for item in shown
            if item["recommendation_id"] == rec
            and item["assessment_id"] == asm
            and item["user_id"] in (None, user)
            and at - timedelta(hours=24) <= item["timestamp"] <= at
        ]
        newest = max(claims, key=lambda item: (item["timestamp"], item["request_id"]), default=None)
        assert link == ((newest["request_id"], newest["position"]) if newest else (None, None))
