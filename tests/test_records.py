"""Every record rule: a row breaking it is rejected with a reason naming the field."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest
from builders import assessment, impression, interaction, recommendation
from builders import chunk_of as lines_chunk
from hypothesis import given, settings
from hypothesis import strategies as st

from recctl.labels import DEFAULT_POLICY
from recctl.records import SCHEMAS, RecordKind, unknown_key_pattern, validate

NOW = datetime(2025, 7, 1, tzinfo=UTC)
# An object key (the text after `{` or `,`): extracting every key this way is what the unknown-field
# search must agree with.
KEY_PATTERN = r'[{,]\s*"((?:[^"\\]|\\.)*)"\s*:'


def chunk_of(rows: list[Any]) -> pl.DataFrame:
    """A RawChunk frame as the readers build it, from Python records (a str is a raw line)."""
    raw = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    series = pl.Series(raw, dtype=pl.String)
    parsed = series.str.json_path_match("$")
    return pl.DataFrame(
        {
            "input_position": pl.Series(range(1, len(rows) + 1), dtype=pl.Int64),
            "raw": series,
            "json": parsed,
            "error": pl.Series([None] * len(rows), dtype=pl.String),
        }
    )


def check(kind: RecordKind, record: dict[str, Any]) -> tuple[pl.DataFrame, list[str]]:
    result = validate(kind, chunk_of([record]), DEFAULT_POLICY, now=NOW)
    return result.records, result.rejects["reason"].to_list()


INVALID_INTERACTIONS = [
    ({"event_id": ""}, None),  # an empty event_id is the same as none: derived, not rejected
    ({"recommendation_id": None}, "recommendation_id: required"),
    ({"recommendation_id": "  "}, "recommendation_id: required"),
    ({"recommendation_id": {"a": 1}}, "recommendation_id: must be a string"),
    ({"user_id": None}, "user_id: required"),
    ({"user_id": ["u"]}, "user_id: must be a string"),
    ({"interaction_type": None}, "interaction_type: required"),
    ({"interaction_type": "purchase"}, "interaction_type: must be one of"),
    ({"interaction_value": "abc"}, "interaction_value: must be a finite number"),
    ({"interaction_value": "Infinity"}, "interaction_value: must be a finite number"),
    ({"interaction_type": "rate"}, "interaction_value: required for rate"),
    ({"interaction_type": "rate", "interaction_value": 6}, "interaction_value: rate must be 1..5"),
    ({"interaction_type": "rate", "interaction_value": 0}, "interaction_value: rate must be 1..5"),
    ({"interaction_type": "view", "interaction_value": -1}, "interaction_value: view seconds must be >= 0"),
    ({"timestamp": None}, "timestamp: required"),
    ({"timestamp": "yesterday"}, "timestamp: not an ISO-8601 time"),
    ({"timestamp": "1999-12-31T23:59:59Z"}, "timestamp: before 2000-01-01"),
    ({"timestamp": "2025-07-02T00:00:01Z"}, "timestamp: more than 1 day in the future"),
    ({"context": "not an object"}, "context: must be an object"),
    ({"context": {"position": -1}}, "context.position: must be >= 0"),
    ({"context": {"position": 1.5}}, "context.position: must be an integer"),
    ({"context": {"position": "top"}}, "context.position: must be a finite number"),
    ({"context": {"propensity": 0}}, "context.propensity: must be > 0"),
    ({"context": {"propensity": 1.5}}, "context.propensity: must be <= 1"),
    ({"context": {"session_id": {"x": 1}}}, "context.session_id: must be a string"),
]


@pytest.mark.parametrize(("change", "reason"), INVALID_INTERACTIONS)
def test_interaction_rules(change: dict[str, Any], reason: str | None) -> None:
    records, reasons = check("interactions", interaction(**change))
    if reason is None:
        assert records.height == 1 and reasons == []
    else:
        assert records.height == 0
        assert len(reasons) == 1 and reasons[0].startswith(reason)


INVALID_RECOMMENDATIONS = [
    ({"recommendation_id": None}, "recommendation_id: required"),
    ({"assessment_id": None}, "assessment_id: required"),
    ({"category": None}, "category: required"),
    ({"confidence_score": None}, "confidence_score: required"),
    ({"confidence_score": 1.2}, "confidence_score: must be <= 1"),
    ({"confidence_score": -0.1}, "confidence_score: must be >= 0"),
    ({"priority": "urgent"}, "priority: must be one of"),
    ({"roi_potential": "lots"}, "roi_potential: must be a finite number"),
    ({"estimated_monthly_savings": -5}, "estimated_monthly_savings: must be >= 0"),
    ({"estimated_cost": -1}, "estimated_cost: must be >= 0"),
    ({"implementation_effort": "huge"}, "implementation_effort: must be one of"),
    ({"implementation_time_days": -2}, "implementation_time_days: must be >= 0"),
    ({"risk_level": "extreme"}, "risk_level: must be one of"),
    ({"cloud_provider": "oracle"}, "cloud_provider: must be one of"),
    ({"services": "ec2"}, "services: must be a list of strings"),
    ({"tags": [1, 2]}, "tags: must be a list of strings"),
    ({"benefits": {"a": "b"}}, "benefits: must be a list of strings"),
    ({"risks": [["nested"]]}, "risks: must be a list of strings"),
    ({"created_at": "soon"}, "created_at: not an ISO-8601 time"),
]


@pytest.mark.parametrize(("change", "reason"), INVALID_RECOMMENDATIONS)
def test_recommendation_rules(change: dict[str, Any], reason: str) -> None:
    records, reasons = check("recommendations", recommendation(**change))
    assert records.height == 0
    assert len(reasons) == 1 and reasons[0].startswith(reason)


INVALID_ASSESSMENTS = [
    ({"assessment_id": None}, "assessment_id: required"),
    ({"company_size": "huge"}, "company_size: must be one of"),
    ({"monthly_budget": -1}, "monthly_budget: must be >= 0"),
    ({"current_monthly_spend": "x"}, "current_monthly_spend: must be a finite number"),
    ({"priorities": [0.5]}, "priorities: must be an object"),
    ({"priorities": {"security": "high"}}, "priorities: values must be numbers"),
    ({"priorities": {"security": 1.5}}, "priorities: weights must be in 0..1"),
    ({"priorities": {"security": -0.1}}, "priorities: weights must be in 0..1"),
    ({"compliance_requirements": "SOC2"}, "compliance_requirements: must be a list of strings"),
    ({"cloud_providers": [1]}, "cloud_providers: must be a list of strings"),
    ({"workload_types": 3}, "workload_types: must be a list of strings"),
    ({"created_at": "later"}, "created_at: not an ISO-8601 time"),
]


@pytest.mark.parametrize(("change", "reason"), INVALID_ASSESSMENTS)
def test_assessment_rules(change: dict[str, Any], reason: str) -> None:
    records, reasons = check("assessments", assessment(**change))
    assert records.height == 0
    assert len(reasons) == 1 and reasons[0].startswith(reason)


def test_valid_interaction_is_stored_typed() -> None:
    record = interaction(
        user_id=42,
        interaction_type="  VIEW ",
        interaction_value="30",
        assessment_id=None,
        context={"session_id": "s-9", "position": 3, "propensity": 0.25, "assessment_id": "asm-7", "ab": [1]},
        campaign="spring",
        score={"a": 1},
    )
    records, reasons = check("interactions", record)
    assert reasons == []
    row = records.row(0, named=True)
    assert row["user_id"] == "42"
    assert row["interaction_type"] == "view"
    assert row["interaction_value"] == 30.0
    assert row["assessment_id"] == "asm-7"  # taken from context when not at the top level
    assert (row["session_id"], row["position"], row["propensity"]) == ("s-9", 3, 0.25)
    assert json.loads(row["context"])["ab"] == [1]  # unknown context keys kept
    assert json.loads(row["extra"]) == {"campaign": "spring", "score": {"a": 1}}
    assert row["timestamp"] == datetime(2025, 6, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2025-06-01T12:00:00Z", datetime(2025, 6, 1, 12, tzinfo=UTC)),
        ("2025-06-01T14:00:00+02:00", datetime(2025, 6, 1, 12, tzinfo=UTC)),
        ("2025-06-01T12:00:00", datetime(2025, 6, 1, 12, tzinfo=UTC)),  # no zone = UTC
        ("2025-06-01 12:00:00.250", datetime(2025, 6, 1, 12, 0, 0, 250000, tzinfo=UTC)),
        (1748779200, datetime(2025, 6, 1, 12, tzinfo=UTC)),  # epoch seconds
        (1748779200500, datetime(2025, 6, 1, 12, 0, 0, 500000, tzinfo=UTC)),  # epoch ms (>= 1e11)
        ("1748779200", datetime(2025, 6, 1, 12, tzinfo=UTC)),
    ],
)
def test_timestamp_forms(given: Any, expected: datetime) -> None:
    records, reasons = check("interactions", interaction(timestamp=given))
    assert reasons == []
    assert records["timestamp"][0] == expected


def test_derived_event_id_is_deterministic_and_content_based() -> None:
    first, _ = check("interactions", interaction(event_id=None))
    again, _ = check("interactions", interaction(event_id=None))
    other, _ = check("interactions", interaction(event_id=None, interaction_type="save"))
    assert first["event_id"][0] == again["event_id"][0]
    assert first["event_id"][0].startswith("d-")
    assert other["event_id"][0] != first["event_id"][0]


def test_catalog_extra_fields_kept_and_lists_typed() -> None:
    records, reasons = check("recommendations", recommendation(owner_team="platform", services=["ec2", "s3"]))
    assert reasons == []
    row = records.row(0, named=True)
    assert row["services"] == ["ec2", "s3"]
    assert json.loads(row["extra"]) == {"owner_team": "platform"}


def test_assessment_priorities_kept_as_json_object() -> None:
    records, reasons = check("assessments", assessment(priorities={"security": 1, "monitoring": 0.25}))
    assert reasons == []
    assert json.loads(records["priorities"][0]) == {"security": 1, "monitoring": 0.25}


def test_parse_errors_from_the_reader_are_the_reason() -> None:
    frame = chunk_of([interaction()]).with_columns(
        pl.lit("invalid JSON").alias("error"), pl.lit(None, dtype=pl.String).alias("json")
    )
    result = validate("interactions", frame, DEFAULT_POLICY, now=NOW)
    assert result.records.height == 0
    assert result.rejects["reason"].to_list() == ["invalid JSON"]


_NAMES = ["a", "ab", "abc", "b", "context", "con", "event_id", "x_y"]
_KEYS = st.one_of(
    st.sampled_from([*_NAMES, "", "abd", "contexts", "a\\b", 'q"uote', "é", "a b"]), st.text(max_size=6)
)
_JSON = st.recursive(
    st.one_of(st.none(), st.integers(), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=12,
)


@given(
    st.lists(st.dictionaries(_KEYS, _JSON, max_size=5), min_size=1, max_size=4),
    st.sets(st.sampled_from(_NAMES), min_size=1),
    st.sampled_from([(",", ":"), (", ", ": "), (" , ", " : ")]),
    st.booleans(),
)
def test_unknown_key_pattern_matches_exactly_the_keys_outside_the_names(
    objects: list[dict[str, Any]], known: set[str], separators: tuple[str, str], ascii_only: bool
) -> None:
    """One regex scan gives the answer of extracting every key (at any depth) and looking it up."""
    texts = [json.dumps(item, separators=separators, ensure_ascii=ascii_only) for item in objects]
    extracted = {key for text in texts for key in re.findall(KEY_PATTERN, text)}
    expected = any(key not in known for key in extracted)
    assert pl.Series(texts).str.contains(unknown_key_pattern(frozenset(known))).any() == expected


ID_FIELDS: list[tuple[RecordKind, Any, str]] = [
    ("interactions", interaction, "event_id"),
    ("interactions", interaction, "recommendation_id"),
    ("interactions", interaction, "user_id"),
    ("interactions", interaction, "assessment_id"),
    ("recommendations", recommendation, "recommendation_id"),
    ("recommendations", recommendation, "assessment_id"),
    ("assessments", assessment, "assessment_id"),
    ("assessments", assessment, "user_id"),
]


@pytest.mark.parametrize(("kind", "build", "field"), ID_FIELDS)
@pytest.mark.parametrize("value", [True, False, 1.5, -0.25, 1e-3, [1], ["a"], {"a": 1}])
def test_an_id_is_a_string_or_an_integer_nothing_else(
    kind: RecordKind, build: Any, field: str, value: Any
) -> None:
    """``"recommendation_id": true`` was stored as ``"true"`` and ``1.5`` as ``"1.5"``."""
    records, reasons = check(kind, build(**{field: value}))
    assert records.height == 0
    assert reasons == [f"{field}: must be a string or an integer"]


@pytest.mark.parametrize(("kind", "build", "field"), ID_FIELDS)
@pytest.mark.parametrize(
    ("value", "stored"),
    [("x-1", "x-1"), (42, "42"), (-7, "-7"), (42.0, "42"), ("true", "true"), ("1.5", "1.5"), (" 9 ", " 9 ")],
)
def test_ids_that_are_strings_or_integers_are_kept(
    kind: RecordKind, build: Any, field: str, value: Any, stored: str
) -> None:
    records, reasons = check(kind, build(**{field: value}))
    assert reasons == []
    assert records[field].to_list() == [stored]


@pytest.mark.parametrize("value", [True, 2.5])
def test_the_context_assessment_id_follows_the_id_rule(value: Any) -> None:
    records, reasons = check(
        "interactions", interaction(assessment_id=None, context={"assessment_id": value})
    )
    assert records.height == 0 and reasons == ["context.assessment_id: must be a string or an integer"]
    records, reasons = check("interactions", interaction(assessment_id=None, context={"assessment_id": 12}))
    assert reasons == [] and records["assessment_id"].to_list() == ["12"]


def test_only_the_rows_with_a_bad_id_are_rejected() -> None:
    rows = [
        interaction(event_id=f"e-{i}", user_id=value) for i, value in enumerate(["u", True, 3, 0.5, "false"])
    ]
    result = validate("interactions", chunk_of(rows), DEFAULT_POLICY, now=NOW)
    assert result.records["user_id"].to_list() == ["u", "3", "false"]
    assert result.rejects["input_position"].to_list() == [2, 4]


ROWS_OF_EACH_KIND: dict[str, Any] = {
    "interactions": interaction,
    "recommendations": recommendation,
    "assessments": assessment,
    "impressions": impression,
}
ROW_NAMES = {
    "interactions": "an interaction row",
    "recommendations": "a recommendation row",
    "assessments": "an assessment row",
    "impressions": "an impression row",
}


@pytest.mark.parametrize("target", ["interactions", "recommendations", "assessments", "impressions"])
@pytest.mark.parametrize("given", ["interactions", "recommendations", "assessments", "impressions"])
def test_a_row_of_another_kind_is_named(target: RecordKind, given: str) -> None:
    """The catalog guard: a recommendations file ingested as assessments had every row "updated"."""
    records, reasons = check(target, ROWS_OF_EACH_KIND[given]())
    if given == target:
        assert reasons == [] and records.height == (3 if target == "impressions" else 1)  # a row per item
    else:
        assert records.height == 0 and reasons == [f"looks like {ROW_NAMES[given]}"]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"recommendation_id": "r3", "assessment_id": "a1", "category": "security"}, "recommendation"),
        (
            {"recommendation_id": "r3", "category": "cost", "confidence_score": "", "title": ""},
            "recommendation",
        ),
        ({"recommendation_id": "r3", "assessment_id": "a1", "interaction_type": "click"}, "interaction"),
        ({"assessment_id": "a1", "user_id": "u1", "interaction_type": "view", "timestamp": 1}, "interaction"),
    ],
)
def test_a_partial_row_of_another_kind_cannot_overwrite_an_assessment(
    record: dict[str, Any], reason: str
) -> None:
    """A recommendations file with a blank cell is still not a file of assessments."""
    records, reasons = check("assessments", record)
    assert records.height == 0 and reasons == [f"looks like {ROW_NAMES[reason + 's']}"]


@pytest.mark.parametrize(
    ("kind", "record", "reason"),
    [
        # an assessment with only the field every kind has is still an assessment
        ("assessments", {"assessment_id": "a-1"}, None),
        # a recommendation without its assessment_id is not an assessment in disguise, just invalid
        ("recommendations", recommendation(assessment_id=None), "assessment_id: required"),
        # an interaction that carries catalog fields as extras is an interaction
        ("interactions", interaction(category="security", confidence_score=0.5), None),
        ("interactions", interaction(company_size="small"), None),
        # a catalog row keeps its own kind when a field of another kind is in it as an extra
        ("assessments", assessment(recommendation_id="r-1"), None),
        ("recommendations", recommendation(user_id="u-1", company_size="small"), None),
    ],
)
def test_the_guard_leaves_rows_of_their_own_kind_alone(
    kind: RecordKind, record: dict[str, Any], reason: str | None
) -> None:
    _, reasons = check(kind, record)
    assert reasons == ([] if reason is None else [reason])


def test_the_guard_is_off_for_rank_batches() -> None:
    from recctl.records import validate_objects

    result = validate_objects(
        "recommendations", [recommendation(user_id="u", interaction_type="click", timestamp=1)]
    )
    assert result.rejects.height == 0


# -- impressions ------------------------------------------------------------------------------------
def item(slot: int = 0, **overrides: Any) -> dict[str, Any]:
    """An item of a served list at position ``slot`` (overrides replace fields; None removes one)."""
    record = {"recommendation_id": f"rec-{slot}", "position": slot, **overrides}
    return {k: v for k, v in record.items() if v is not None}


INVALID_IMPRESSIONS = [
    ({"request_id": None}, "request_id: required"),
    ({"request_id": ""}, "request_id: required"),
    ({"request_id": True}, "request_id: must be a string or an integer"),
    ({"request_id": 1.5}, "request_id: must be a string or an integer"),
    ({"request_id": ["q"]}, "request_id: must be a string or an integer"),
    ({"timestamp": None}, "timestamp: required"),
    ({"timestamp": "yesterday"}, "timestamp: not an ISO-8601 time or epoch number"),
    ({"timestamp": "1999-12-31T23:59:59Z"}, "timestamp: before 2000-01-01"),
    ({"timestamp": "2025-07-03T00:00:00Z"}, "timestamp: more than 1 day in the future"),
    ({"assessment_id": None}, "assessment_id: required"),
    ({"assessment_id": False}, "assessment_id: must be a string or an integer"),
    ({"user_id": {"id": 1}}, "user_id: must be a string"),
    ({"session_id": [1]}, "session_id: must be a string"),
    ({"model_version": {"v": 1}}, "model_version: must be a string"),
    ({"variant": ["a"]}, "variant: must be a string"),
    ({"policy": {"name": "x"}}, "policy: must be a string"),
    ({"items": None}, "items: required"),
    ({"items": []}, "items: must not be empty"),
    ({"items": {"recommendation_id": "r"}}, "items: must be a list of objects"),
    ({"items": "not json"}, "items: must be a list of objects"),
    ({"items": [item(0), "rec-1"]}, "items[1]: not a JSON object"),
    ({"items": [item(0, recommendation_id=None)]}, "items[0].recommendation_id: required"),
    (
        {"items": [item(0, recommendation_id=True)]},
        "items[0].recommendation_id: must be a string or an integer",
    ),
    (
        {"items": [item(0, recommendation_id=2.5)]},
        "items[0].recommendation_id: must be a string or an integer",
    ),
    ({"items": [item(0), item(1, position=None)]}, "items[1].position: required"),
    ({"items": [item(0, position=-1)]}, "items[0].position: must be >= 0"),
    ({"items": [item(0, position=1.5)]}, "items[0].position: must be an integer"),
    ({"items": [item(0, position="top")]}, "items[0].position: must be a finite number"),
    (
        {"items": [item(0), item(1), item(0)]},
        "items: position 0 is given twice (positions are unique in a list)",
    ),
    ({"items": [item(0, propensity=0)]}, "items[0].propensity: must be > 0"),
    ({"items": [item(0, propensity=1.01)]}, "items[0].propensity: must be <= 1"),
    ({"items": [item(0, prefix_propensity=-0.5)]}, "items[0].prefix_propensity: must be > 0"),
    ({"items": [item(0, prefix_propensity=2)]}, "items[0].prefix_propensity: must be <= 1"),
    ({"items": [item(0, team=["a"])]}, "items[0].team: must be a string"),
    # the first bad item of the list names the reason
    ({"items": [item(0), item(1, position=-1), item(2, propensity=5)]}, "items[1].position: must be >= 0"),
]


@pytest.mark.parametrize(("change", "reason"), INVALID_IMPRESSIONS)
def test_impression_rules(change: dict[str, Any], reason: str) -> None:
    records, reasons = check("impressions", {**impression(), **change})
    assert records.height == 0 and len(reasons) == 1 and reasons[0].startswith(reason), reasons


def test_valid_impression_is_stored_one_row_per_item() -> None:
    record = impression(
        request_id=12,
        policy=" Epsilon-Greedy ",
        variant="b",
        page="home",
        items=[item(2, propensity=1, team="x", score=0.5), item(0, prefix_propensity="0.25"), item(7)],
    )
    records, reasons = check("impressions", record)
    assert reasons == []
    assert records.columns == list(SCHEMAS["impressions"])
    assert records.select(
        "request_id", "recommendation_id", "position", "propensity", "prefix_propensity", "team"
    ).rows() == [
        ("12", "rec-2", 2, 1.0, None, "x"),
        ("12", "rec-0", 0, None, 0.25, None),
        ("12", "rec-7", 7, None, None, None),
    ]  # the items in the order given
    first = records.row(0, named=True)
    assert (first["policy"], first["variant"], first["user_id"]) == ("epsilon-greedy", "b", "user-1")
    assert json.loads(first["extra"]) == {"page": "home"} and json.loads(first["item_extra"]) == {
        "score": 0.5
    }
    assert records["item_extra"][1] is None
    assert first["timestamp"] == datetime(2025, 6, 1, 12, tzinfo=UTC)
    no_policy, _ = check("impressions", impression(policy=None))
    assert no_policy["policy"].unique().to_list() == ["deterministic"]
    other_policy, _ = check("impressions", impression(policy="my-bandit"))
    assert other_policy["policy"].unique().to_list() == ["my-bandit"]


def test_impression_items_may_be_json_text() -> None:
    """A CSV cell holds the items as JSON text: the same list as a JSON value."""
    as_value, _ = check("impressions", impression())
    as_text, reasons = check("impressions", impression(items=json.dumps(impression()["items"])))
    assert reasons == [] and as_text.equals(as_value)


def test_impressions_repeated_in_a_chunk_are_counted_once() -> None:
    rows = [
        impression(request_id="a"),
        impression(request_id="b"),
        impression(request_id="a", items=[item(5)]),
    ]
    result = validate(
        "impressions", chunk_of([*rows, impression(request_id="c", items=[])]), DEFAULT_POLICY, now=NOW
    )
    assert result.duplicates == 1 and result.rejects.height == 1
    assert result.records["request_id"].to_list() == ["a"] * 3 + ["b"] * 3
    assert 5 not in result.records["position"].to_list()  # the first list of a request_id wins


def test_an_item_field_name_at_the_top_of_a_list_is_kept_as_extra() -> None:
    """Item field names are known inside items only: at a list's top level they are unknown fields."""
    records, reasons = check("impressions", impression(position=3, team="x"))
    assert reasons == [] and json.loads(records["extra"][0]) == {"position": 3, "team": "x"}
    records, _ = check("impressions", impression(items=[item(0, score=1)]))
    assert records["extra"][0] is None and json.loads(records["item_extra"][0]) == {"score": 1}


# Backslashes, quotes, control characters, non-BMP characters: what JSON escapes (after a letter:
# blank text counts as missing).
_escaped_text = st.text(alphabet=st.sampled_from(list('a\\"\t\n\x01é😀/u')), max_size=8).map("x".__add__)


@settings(max_examples=40, deadline=None)
@given(value=_escaped_text, plain=st.booleans())
def test_escaped_text_in_nested_values_is_stored_as_given(value: str, plain: bool) -> None:
    # A row without escapes beside one with them: the reader's fast route and the exact one meet.
    other = "plain" if plain else value
    interactions = [
        {
            "recommendation_id": "r1",
            "user_id": "u",
            "interaction_type": "click",
            "timestamp": "2025-09-01T00:00:00Z",
            "context": {"session_id": text, "variant": text, "note": text},
        }
        for text in (value, other)
    ]
    checked = validate("interactions", chunk_of(interactions), DEFAULT_POLICY)
    assert checked.rejects.is_empty(), checked.rejects["reason"].to_list()
    assert checked.records["session_id"].to_list() == [value, other]
    assert [json.loads(text)["note"] for text in checked.records["context"]] == [value, other]

    lists = [
        {
            "request_id": f"q{number}",
            "timestamp": "2025-09-01T00:00:00Z",
            "assessment_id": "a",
            "items": [
                {"recommendation_id": text, "position": 0, "note": text},
                {"recommendation_id": "r", "position": 1},
            ],
        }
        for number, text in enumerate((value, other))
    ]
    checked = validate("impressions", chunk_of(lists), DEFAULT_POLICY)
    assert checked.rejects.is_empty(), checked.rejects["reason"].to_list()
    assert checked.records["recommendation_id"].to_list() == [value, "r", other, "r"]
    assert json.loads(checked.records["item_extra"][0]) == {"note": value}

    catalog = [
        {"recommendation_id": f"r{n}", "assessment_id": "a", "category": "cost", "confidence_score": 0.5,
         "services": [text, "x"]}
        for n, text in enumerate((value, other))
    ]  # fmt: skip
    checked = validate("recommendations", chunk_of(catalog), DEFAULT_POLICY)
    assert checked.rejects.is_empty(), checked.rejects["reason"].to_list()
    assert checked.records["services"].to_list() == [[value, "x"], [other, "x"]]

    assessments = [
        {"assessment_id": f"a{n}", "priorities": {text: 0.5}} for n, text in enumerate((value, other))
    ]
    checked = validate("assessments", chunk_of(assessments), DEFAULT_POLICY)
    assert checked.rejects.is_empty(), checked.rejects["reason"].to_list()
    assert [json.loads(text) for text in checked.records["priorities"]] == [{value: 0.5}, {other: 0.5}]


BIG = 123456789012345678901234567890  # past 64 bits: polars' JSON-path lookup makes it a float


def lines(rows: list[Any]) -> pl.DataFrame:
    """A chunk of the rows' JSON lines exactly as the NDJSON reader hands them on (not re-written)."""
    return lines_chunk([row if isinstance(row, str) else json.dumps(row) for row in rows])


def test_a_nested_value_read_again_for_its_escapes_keeps_its_integers_and_its_keys() -> None:
    row = interaction(context={"request_id": BIG, "note": "a\\b", 'key "quoted"': 1})
    checked = validate("interactions", lines([row]), DEFAULT_POLICY)
    assert checked.rejects.is_empty(), checked.rejects["reason"].to_list()
    assert checked.records["request_id"].to_list() == [str(BIG)]
    assert json.loads(checked.records["context"][0]) == row["context"]


def test_an_escape_in_one_list_changes_nothing_in_another() -> None:
    plain = impression(request_id="q1", items=[{"recommendation_id": BIG, "position": 0}])
    escaped = impression(request_id="q2", items=[{"recommendation_id": "r", "position": 0, "team": "t\\x"}])
    alone = validate("impressions", lines([plain]), DEFAULT_POLICY).records
    together = validate("impressions", lines([plain, escaped]), DEFAULT_POLICY).records
    assert alone["recommendation_id"].to_list() == [str(BIG)]
    assert together["recommendation_id"].to_list() == [str(BIG), "r"]
    assert together["team"].to_list() == [None, "t\\x"]


def test_an_escape_elsewhere_in_the_row_does_not_change_how_a_value_is_written() -> None:
    from recctl.records import validate_objects

    objects = [assessment(industry="a\\b", priorities={"cost": 1.0}), assessment(priorities={"cost": 1.0})]
    texts = validate_objects("assessments", objects).records["priorities"].to_list()
    parsed = validate_objects("assessments", objects, keep_extra=False).records["priorities"].to_list()
    assert texts == parsed and texts[0] == texts[1]


@pytest.mark.parametrize(
    ("kind", "row", "reason"),
    [
        ("interactions", interaction(context={"session_id": "\ud83d"}), "context: must be an object"),
        ("recommendations", recommendation(tags=["ok", "\ud83d"]), "tags: must be a list of strings"),
    ],
)
def test_half_a_surrogate_pair_in_a_nested_value_is_refused_not_dropped(
    kind: Any, row: Any, reason: str
) -> None:
    line = json.dumps(row)  # ASCII: the lone surrogate is written as its escape
    checked = validate(kind, lines([line]), DEFAULT_POLICY)
    assert checked.rejects["reason"].to_list() == [reason]
