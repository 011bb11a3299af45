"""Shortcuts of validation give exactly what the general code gives.

Each shortcut (common timestamps parsed with one format, string lists that need no rewriting, a
served list's items read in the same parse as its other fields) is switched off here and the
results compared: rows, reasons and values must be the same.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pytest
from builders import chunk_of
from hypothesis import given, settings
from hypothesis import strategies as st

from recctl.records import rules, timestamps, validate_objects

NEVER = r"[^\s\S]"  # a regex no text matches: every list takes the general route


def _without_common_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timestamps, "_common_utc", lambda text, parsed: parsed)


digits = st.integers(0, 99).map(lambda n: f"{n:02d}")
common_times = st.builds(
    lambda year, month, day, hour, minute, second, fraction, zone: (
        f"{year:04d}-{month}-{day}T{hour}:{minute}:{second}{fraction}{zone}"
    ),
    st.integers(0, 9999),
    digits,
    digits,
    digits,
    digits,
    digits,
    st.sampled_from(["", ".5", ".123", ".123456789", ".1234567891", "."]),
    st.sampled_from(["Z", "z", "+00:00", "", " "]),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(common_times, st.none(), st.sampled_from(["1700000000", " 2025-01-01T00:00:00Z"]))))
def test_common_timestamps_parse_as_the_general_chain(values: list[str | None]) -> None:
    texts = pl.Series(values, dtype=pl.String)
    fast = timestamps.parse_timestamps(texts)
    with pytest.MonkeyPatch.context() as patch:
        _without_common_utc(patch)
        general = timestamps.parse_timestamps(texts)
    assert fast.cast(pl.Int64).to_list() == general.cast(pl.Int64).to_list()


def test_common_timestamps_reach_the_fast_path() -> None:
    texts = pl.Series(["2025-09-19T17:29:03Z", "2025-02-30T00:00:00Z", "2024-02-29T23:59:59.5Z"])
    common = timestamps._common_utc(texts, pl.Series([None, None, None], dtype=timestamps.UTC_MS))
    assert common.cast(pl.Int64).to_list() == [1758302943000, None, 1709251199500]


# Strings with what JSON escapes, control characters, non-BMP characters and backslashes.
strings = st.text(alphabet=st.sampled_from(list('ab "\\/\n\t\x01é😀\u2028')), max_size=6)
list_values = st.one_of(
    st.lists(strings, max_size=4),
    st.lists(strings, max_size=3).map(json.dumps),  # JSON text in a string, as a CSV cell holds it
    st.lists(strings, max_size=3).map(lambda items: json.dumps(items, separators=(",", ":"))),
    st.sampled_from(
        ['[ "a" ]', '["\\q"]', '["\\ud800"]', '["\\ud83d\\ude00"]', "[1, 2]", "[]", "nope", "[[]]"]
    ),
    st.lists(st.one_of(st.integers(), st.none(), st.lists(strings, max_size=1)), min_size=1, max_size=2),
)


def _records(values: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "recommendation_id": f"r{i}",
            "assessment_id": "a",
            "category": "cost",
            "confidence_score": 0.5,
            "services": value,
            "tags": value,
        }
        for i, value in enumerate(values)
    ]


def _outcome(records: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    checked = validate_objects("recommendations", records, keep_extra=False)
    return checked.records.select("services", "tags").rows(), checked.rejects.select(
        "input_position", "reason"
    ).rows()


@settings(max_examples=40, deadline=None)
@given(st.lists(list_values, min_size=1, max_size=6))
def test_string_lists_validate_as_the_general_route(values: list[Any]) -> None:
    records = _records(values)
    fast = _outcome(records)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rules, "PLAIN_STRING_LIST_RE", NEVER)
        general = _outcome(records)
    assert fast == general


def test_plain_string_lists_skip_the_rewrite() -> None:
    plain = pl.Series(['["a", "b"]', '["a","b"]', "[]", '["\\u00e9\\n"]'])
    other = pl.Series(['[ "a"]', '["\\q"]', '["\\ud800"]', "[1]", '["a",  "b"]', '["\x01"]'])
    assert plain.str.contains(rules.PLAIN_STRING_LIST_RE).all()
    assert not other.str.contains(rules.PLAIN_STRING_LIST_RE).any()


# Items as a JSON file gives them, and the odd ones: not objects, nulls, repeats, strings of JSON,
# unknown item fields, a field given twice.
item_values = st.one_of(
    st.fixed_dictionaries(
        {"recommendation_id": st.sampled_from(["r1", "r2", 7, True, 1.5]), "position": st.integers(-1, 3)},
        optional={
            "propensity": st.sampled_from([0.5, 1, 0, "0.25", None]),
            "team": st.sampled_from(["A", 3, None]),
            "note": strings,
        },
    ),
    st.sampled_from([None, 1, "x", [], {}]),
)
items_values = st.one_of(
    st.lists(item_values, max_size=4),
    st.lists(item_values, max_size=2).map(json.dumps),  # JSON text in a string
    st.sampled_from([None, "", "nope", {}, 3]),
)


def _lines(values: list[Any]) -> pl.DataFrame:
    texts = [
        json.dumps(
            {"request_id": f"q{i % 3}", "timestamp": "2025-09-01T00:00:00Z", "assessment_id": "a"}
            | ({} if value is None else {"items": value}),
            ensure_ascii=False,
        )
        for i, value in enumerate(values)
    ]
    return chunk_of(texts)


@settings(max_examples=60, deadline=None)
@given(st.lists(items_values, min_size=1, max_size=6))
def test_items_read_with_the_lists_validate_as_the_general_route(values: list[Any]) -> None:
    from recctl.labels import DEFAULT_POLICY
    from recctl.records import scan, validate

    chunk = _lines(values)
    fast = validate("impressions", chunk, DEFAULT_POLICY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rules, "fields_with_lists", lambda *args: None)
        general = validate("impressions", chunk, DEFAULT_POLICY)
    assert fast.records.rows() == general.records.rows()
    assert fast.rejects.rows() == general.rejects.rows()
    assert fast.duplicates == general.duplicates
    assert scan.LIST_GIVEN not in str(fast.records.rows())


def test_items_of_a_json_file_are_read_with_the_lists() -> None:
    from recctl.records import scan

    chunk = _lines(
        [[{"recommendation_id": "r1", "position": 0}], [{"recommendation_id": "r2", "position": 1}]]
    )
    read = scan.fields_with_lists(chunk, ["request_id", "items"], ["items"])
    assert read is not None
    texts, elements = read
    assert texts["__top__items"].to_list() == [scan.LIST_GIVEN] * 2
    assert elements["items"].to_list() == [
        ['{"recommendation_id": "r1", "position": 0}'],
        ['{"recommendation_id": "r2", "position": 1}'],
    ]
