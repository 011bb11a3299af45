"""History features as of a moment: the same as counting the earlier events one by one, and
never moved by anything at or after that moment (so no row sees its own list's interactions)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from recctl.history import HISTORY_FEATURES, PRIOR_WEIGHT, HistoryTables, history_features
from recctl.records.schema import CLICK_TYPES, USUAL_CATEGORIES

START = datetime(2025, 9, 1, tzinfo=UTC)
CATALOG = {  # recommendation -> (category, agent); r4's category is not a usual one, r5 has none
    "r1": ("cost_optimization", "cost-agent"),
    "r2": ("security", "sec-agent"),
    "r3": ("cost_optimization", "sec-agent"),
    "r4": ("quantum", None),
    "r5": (None, "cost-agent"),
}
TYPE_LABELS = {
    "view": 0.1,
    "click": 0.4,
    "save": 0.8,
    "implement": 1.0,
    "dismiss": 0.0,
    "rate": 0.6,
    "share": 0.6,
}


def moment(ms: int) -> datetime:
    return START + timedelta(milliseconds=ms)


events = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2", "u3"]),
        st.sampled_from(sorted(CATALOG)),
        st.sampled_from(sorted(TYPE_LABELS)),
        st.integers(0, 12),
    ),
    max_size=25,
)
shown_items = st.lists(
    st.tuples(st.sampled_from(["u1", "u2", "u3"]), st.sampled_from(sorted(CATALOG)), st.integers(0, 12)),
    max_size=25,
)
queries = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2", "u4", None]),
        st.sampled_from(sorted(CATALOG)),
        st.integers(0, 14),
    ),
    min_size=1,
    max_size=8,
)


def frames(events: list[Any], shown: list[Any] | None) -> HistoryTables:
    interactions = pl.DataFrame(
        {
            "user_id": [user for user, *_ in events],
            "recommendation_id": [rec for _, rec, _, _ in events],
            "interaction_type": [kind for _, _, kind, _ in events],
            "label": [TYPE_LABELS[kind] for _, _, kind, _ in events],
            "timestamp": [moment(ms) for *_, ms in events],
        },
        schema={
            "user_id": pl.String,
            "recommendation_id": pl.String,
            "interaction_type": pl.String,
            "label": pl.Float64,
            "timestamp": pl.Datetime("ms", "UTC"),
        },
    )
    catalog = pl.DataFrame(
        {
            "recommendation_id": list(CATALOG),
            "category": [category for category, _ in CATALOG.values()],
            "agent_name": [agent for _, agent in CATALOG.values()],
        }
    )
    impressions = None
    if shown is not None:
        impressions = pl.DataFrame(
            {
                "user_id": [user for user, _, _ in shown],
                "recommendation_id": [rec for _, rec, _ in shown],
                "timestamp": [moment(ms) for *_, ms in shown],
            },
            schema={
                "user_id": pl.String,
                "recommendation_id": pl.String,
                "timestamp": pl.Datetime("ms", "UTC"),
            },
        )
    return HistoryTables.build(interactions, catalog, impressions)


def computed(events: list[Any], shown: list[Any] | None, asked: list[Any]) -> list[dict[str, float]]:
    rows = pl.DataFrame(
        {
            "user_id": [user for user, _, _ in asked],
            "as_of": [moment(ms) for *_, ms in asked],
            "category": [CATALOG[rec][0] for _, rec, _ in asked],
            "agent_name": [CATALOG[rec][1] for _, rec, _ in asked],
        },
        schema={
            "user_id": pl.String,
            "as_of": pl.Datetime("ms", "UTC"),
            "category": pl.String,
            "agent_name": pl.String,
        },
    )
    return history_features(rows, frames(events, shown)).to_dicts()


def expected(
    events: list[Any], shown: list[Any] | None, user: str | None, rec: str, at: int
) -> dict[str, float]:
    """The features of one row, counted event by event: the definition, written plainly."""
    nan = math.nan
    earlier = [(u, r, kind, ms) for u, r, kind, ms in events if ms < at]
    category, agent = CATALOG[rec]

    def rate(clicks: float, seen: float) -> float:
        return clicks / seen if seen > 0 else nan

    def smoothed(clicks: float, seen: float, prior: float) -> float:
        return (clicks + PRIOR_WEIGHT * prior) / (seen + PRIOR_WEIGHT)

    def tally(keep: Any) -> tuple[float, float]:
        clicks = sum(1 for u, r, kind, _ in earlier if keep(u, r) and kind in CLICK_TYPES)
        if not shown:  # no served lists at all: views count as shown
            seen = sum(1 for u, r, kind, _ in earlier if keep(u, r) and kind == "view")
        else:
            seen = sum(1 for u, r, ms in shown if ms < at and keep(u, r))
        return clicks, seen

    overall = rate(*tally(lambda u, r: True))
    row: dict[str, float] = {}
    if category is not None:
        category_clicks, category_seen = tally(lambda u, r: CATALOG[r][0] == category)
        category_rate = rate(category_clicks, category_seen)
        row["category_engagement"] = smoothed(category_clicks, category_seen, overall)
    else:
        category_rate = nan
        row["category_engagement"] = nan
    if agent is not None:
        row["agent_engagement"] = smoothed(*tally(lambda u, r: CATALOG[r][1] == agent), overall)
    else:
        row["agent_engagement"] = nan
    if user is None:
        return {name: nan for name in HISTORY_FEATURES} | {
            k: row[k] for k in ("category_engagement", "agent_engagement")
        }
    mine = [(r, kind, ms) for u, r, kind, ms in earlier if u == user]
    count = len(mine)
    row["user_interactions"] = float(count)
    for usual in USUAL_CATEGORIES:
        row[f"user_share_{usual}"] = rate(sum(1 for r, _, _ in mine if CATALOG[r][0] == usual), count)
    row["user_implementation_rate"] = rate(
        sum(1 for _, kind, _ in mine if kind == "implement"), sum(1 for _, kind, _ in mine if kind == "click")
    )
    row["user_mean_engagement"] = rate(sum(TYPE_LABELS[kind] for _, kind, _ in mine), count)
    row["user_days_since_last"] = (at - max(ms for *_, ms in mine)) / 86_400_000 if mine else nan
    if category is None:
        row["user_category_rate"] = nan
    else:
        row["user_category_rate"] = smoothed(
            *tally(lambda u, r: u == user and CATALOG[r][0] == category), category_rate
        )
    return row


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)


@settings(max_examples=80, deadline=None)
@given(events=events, shown=st.one_of(st.none(), shown_items), asked=queries)
def test_features_are_the_earlier_events_counted_one_by_one(
    events: list[Any], shown: list[Any] | None, asked: list[Any]
) -> None:
    for got, (user, rec, at) in zip(computed(events, shown, asked), asked, strict=True):
        want = expected(events, shown, user, rec, at)
        wrong = {
            name: (got[name], want[name]) for name in HISTORY_FEATURES if not same(got[name], want[name])
        }
        assert not wrong, (user, rec, at, wrong)


@settings(max_examples=60, deadline=None)
@given(events=events, later=events, asked=queries)
def test_nothing_at_or_after_the_moment_moves_a_row(
    events: list[Any], later: list[Any], asked: list[Any]
) -> None:
    # Each row's moment: interactions at it or after it (its own list's, say) are added, changed
    # or removed, and the row's features stay exactly as they were.
    for user, rec, at in asked:
        before = [event for event in events if event[3] < at]
        with_others = before + [(u, r, kind, at + ms) for u, r, kind, ms in later]
        first = computed(events, None, [(user, rec, at)])[0]
        second = computed(with_others, None, [(user, rec, at)])[0]
        assert all(same(first[name], second[name]) for name in HISTORY_FEATURES)


def test_a_list_never_sees_its_own_interactions() -> None:
    # u1's list is served at 10 ms; u1 clicks and implements on it at 10 and 11 ms.
    events = [("u1", "r1", "view", 3), ("u1", "r1", "click", 10), ("u1", "r1", "implement", 11)]
    (row,) = computed(events, None, [("u1", "r1", 10)])
    assert (
        row["user_interactions"] == 1.0 and row["user_implementation_rate"] != row["user_implementation_rate"]
    )
    assert row["user_mean_engagement"] == 0.1


def test_without_history_every_feature_is_missing() -> None:
    rows = pl.DataFrame({"user_id": ["u1"], "as_of": [START], "category": ["security"], "agent_name": ["a"]})
    features = history_features(rows, None)
    assert features.columns == list(HISTORY_FEATURES)
    assert all(math.isnan(value) for value in features.row(0))
