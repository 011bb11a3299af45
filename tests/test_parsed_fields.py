"""Catalog records read from parsed objects validate exactly as their JSON text does.

``validate_objects`` (what ``rank`` calls) reads the fields of parsed recommendations and
assessments from the objects themselves; the general route writes each object as JSON and reads
the text back. Both must keep the same rows, with the same values, and reject the same rows with
the same reasons, whatever the values' types.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recctl.records import ASSESSMENT_SCHEMA, RECOMMENDATION_SCHEMA, validate_objects
from recctl.records.scan import fields_of_objects
from recctl.records.validation import _validate_texts

texts = st.one_of(
    st.text(alphabet=st.sampled_from(list('aZ 0.5e-"\\/\n\t\x01é😀[]{}:,')), max_size=8),
    st.sampled_from(
        [
            "",
            " ",
            "42.5",
            "1e400",
            "true",
            "null",
            "[1]",
            '["a"]',
            "{}",
            "High",
            "AWS",
            "2025-09-19T17:29:03Z",
        ]
    ),
)
numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -0.0, 5.0, 0.5, 1e16, 1e-7, 2**53 + 1, 1.5, 1700000000]),
)
scalars = st.one_of(st.none(), st.booleans(), texts, numbers)
values = st.one_of(
    scalars,
    st.lists(texts, max_size=3),
    st.lists(scalars, max_size=3),
    st.dictionaries(st.sampled_from(["security", "cost_optimization", "x"]), scalars, max_size=3),
)
MISSING = object()


def _objects(schema: dict[str, pl.DataType], typical: dict[str, Any]) -> st.SearchStrategy[list[Any]]:
    """Lists of objects: each field typical, missing or anything; now and then a non-object."""
    fields = [name for name in schema if name != "extra"]

    def build(choices: list[Any]) -> dict[str, Any]:
        return {name: value for name, value in zip(fields, choices, strict=True) if value is not MISSING}

    one = st.tuples(
        *(st.one_of(st.just(typical.get(name)), st.just(MISSING), values) for name in fields)
    ).map(lambda choices: build(list(choices)))
    odd = st.sampled_from([[], "x", 3, None])  # the text route then (checked by the records' tests)
    return st.lists(st.one_of(*[one] * 9, odd), max_size=6)


RECOMMENDATION = {
    "recommendation_id": "rec-1",
    "category": "security",
    "confidence_score": 0.8,
    "priority": "high",
    "estimated_cost": 12,
    "implementation_time_days": 5,
    "cloud_provider": "aws",
    "services": ["IAM", "KMS"],
    "tags": [],
    "created_at": "2025-09-19T17:29:03Z",
}
ASSESSMENT = {
    "assessment_id": "asm-1",
    "company_size": "small",
    "monthly_budget": 1000.5,
    "priorities": {"security": 1.0, "cost_optimization": 0.25},
    "cloud_providers": ["AWS", "gcp"],
    "created_at": "2025-09-19T17:26:49Z",
}


def _same(kind: Any, objects: list[Any], overrides: dict[str, list[str]] | None) -> None:
    parsed = validate_objects(kind, objects, keep_extra=False, overrides=overrides)
    series = {name: pl.Series(name, column, dtype=pl.String) for name, column in (overrides or {}).items()}
    text = _validate_texts(kind, objects, None, now=None, keep_extra=False, overrides=series)
    assert parsed.rejects.to_dicts() == text.rejects.to_dicts()
    assert parsed.records.schema == text.records.schema
    assert parsed.records.equals(text.records)  # NaN-free: equal values, nulls in the same places


@settings(max_examples=60, deadline=None)
@given(_objects(RECOMMENDATION_SCHEMA, RECOMMENDATION), st.booleans())
def test_recommendations_from_objects_validate_as_their_text(objects: list[Any], keyed: bool) -> None:
    overrides = {"assessment_id": [f"b{i}" for i in range(len(objects))]} if keyed else None
    _same("recommendations", objects, overrides)


@settings(max_examples=40, deadline=None)
@given(_objects(ASSESSMENT_SCHEMA, ASSESSMENT), st.booleans())
def test_assessments_from_objects_validate_as_their_text(objects: list[Any], keyed: bool) -> None:
    overrides = {"assessment_id": [f"b{i}" for i in range(len(objects))]} if keyed else None
    _same("assessments", objects, overrides)


def test_typical_records_take_the_shortcuts() -> None:
    """Strings, numbers and lists of strings are taken from the objects as they are; only a field
    holding something else (here an object) is read as JSON text."""
    read = fields_of_objects([RECOMMENDATION, {**RECOMMENDATION, "title": "x"}], RECOMMENDATION_SCHEMA)
    assert read is not None
    assert set(read.lists) == {"services", "tags"}  # benefits and risks: missing, null texts
    assert read.texts["__top__benefits"].to_list() == [None, None]
    assert read.lists["services"].to_list() == [["IAM", "KMS"], ["IAM", "KMS"]]
    assert read.texts["__top__implementation_time_days"].to_list() == ["5", "5"]
    assert read.objects == {}
    odd = fields_of_objects([{**RECOMMENDATION, "title": {"a": 1}}], RECOMMENDATION_SCHEMA)
    assert odd is not None and set(odd.objects) == {"title"}
    assert fields_of_objects([RECOMMENDATION, "not an object"], RECOMMENDATION_SCHEMA) is None


def test_a_rejected_object_keeps_its_json_as_raw() -> None:
    checked = validate_objects(
        "recommendations",
        [{**RECOMMENDATION, "confidence_score": 2}],
        keep_extra=False,
        overrides={"assessment_id": ["b0"]},
    )
    raw = (
        '{"recommendation_id":"rec-1","category":"security","confidence_score":2,"priority":"high",'
        '"estimated_cost":12,"implementation_time_days":5,"cloud_provider":"aws","services":["IAM","KMS"],'
        '"tags":[],"created_at":"2025-09-19T17:29:03Z"}'
    )
    assert checked.rejects.to_dicts() == [
        {"input_position": 0, "raw": raw, "reason": "confidence_score: must be <= 1"}
    ]


@pytest.mark.parametrize("value", [["\t"], ["a\\b"], {"k": "\u0001"}])
def test_a_nested_value_holding_an_escape_is_read_exactly_from_objects_and_from_text(value: Any) -> None:
    # polars writes such a value back without its escapes (no JSON at all for a tab): both routes
    # must still see an array or an object there, not an id.
    objects = [{**RECOMMENDATION, "recommendation_id": value}]
    for keep_extra in (True, False):
        checked = validate_objects("recommendations", objects, keep_extra=keep_extra)
        assert checked.rejects["reason"].to_list() == ["recommendation_id: must be a string or an integer"]
