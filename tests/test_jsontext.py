"""orjson on the rank path gives exactly the json module's values, and refuses what rank refuses."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recctl.jsontext import MAX_NESTING, UNSURE, BatchError, dumps, dumps_text, parse_json, try_loads

integers = st.one_of(
    st.integers(-(2**53), 2**53),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30, -(10**40)]),
    st.integers(-(10**60), 10**60),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    integers,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),  # includes lone surrogates, control characters, quotes
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


def exact(value: Any) -> str:
    """A text that tells apart 1 and 1.0, 0.0 and -0.0, and every float (shortest repr)."""
    return json.dumps(value, sort_keys=True)


# Nested values up to 30 leaves: drawing one can take a second when the machine stalls, which is
# not the code under test (the health check failed CI once on that).
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(values, st.sampled_from(["compact", "spaced", "ascii", "indented"]))
def test_parse_equals_json_module(value: Any, style: str) -> None:
    text = {
        "compact": lambda: json.dumps(value, separators=(",", ":"), ensure_ascii=False),
        "spaced": lambda: json.dumps(value, ensure_ascii=False),
        "ascii": lambda: json.dumps(value),
        "indented": lambda: json.dumps(value, indent=2),
    }[style]()
    expected = json.loads(text)
    if _lone_surrogate_in(expected):  # valid JSON, but not text that UTF-8 can carry
        with pytest.raises(BatchError, match="not valid Unicode"):
            parse_json(text.encode("utf-8", "surrogatepass"))
    else:
        assert exact(parse_json(text.encode("utf-8", "surrogatepass"))) == exact(expected)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(values)
def test_dumps_round_trips(value: Any) -> None:
    written = dumps(value)
    assert b"\n" not in written  # one line per document in --ndjson output
    assert exact(json.loads(written)) == exact(value)
    assert exact(json.loads(dumps_text(value))) == exact(value)


@pytest.mark.parametrize(
    "text",
    [
        b'{"id": 12345678901234567890123}',  # orjson would read a float
        b"[-9223372036854775809, 18446744073709551616]",
        b'{"s": "\\ud800"}',  # a lone surrogate escape: orjson refuses, json accepts
        b"[1e400]",
        b"[NaN]",
        b"\xff",
    ],
)
def test_unsure_cases_go_to_the_json_module(text: bytes) -> None:
    assert try_loads(text) is UNSURE


def test_long_integers_keep_their_value() -> None:
    document = parse_json(
        b'{"a": [12345678901234567890123, -9223372036854775809], "b": "1234567890123456789"}'
    )
    assert document == {"a": [12345678901234567890123, -9223372036854775809], "b": "1234567890123456789"}
    assert isinstance(document["a"][0], int)
    assert json.loads(dumps(document)) == document


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b'{"recommendations": [{"x": 1e999}]}', "recommendations[0].x: must be a finite number, got 1e999"),
        (b'{"a": {"b": [1, -Infinity]}}', "a.b[1]: must be a finite number, got -Infinity"),
        (b"[NaN]", "$[0]: must be a finite number, got NaN"),
        (b'{"a": 1', "$: invalid JSON"),
        (b"1" * 5000, "$: invalid JSON: Exceeds the limit"),
    ],
)
def test_refused_text_names_the_path(text: bytes, message: str) -> None:
    with pytest.raises(BatchError, match=re.escape(message)):
        parse_json(text)


def test_lone_surrogates_are_refused_with_their_path_and_pairs_are_kept() -> None:
    with pytest.raises(BatchError, match=re.escape("recommendations[1].t: not valid Unicode")):
        parse_json(b'{"recommendations": [{"t": "ok"}, {"t": "a\\ud800b"}]}')
    with pytest.raises(BatchError, match=re.escape("$: not valid Unicode")):
        parse_json(b'{"\\udc00": 1}')
    assert parse_json(b'{"t": "\\ud83d\\ude00", "n": 12345678901234567890}') == {
        "t": "\U0001f600",
        "n": 12345678901234567890,
    }
    written = dumps({"s": "a\ud800b"})  # a value from elsewhere: written as its escape
    assert written.isascii() and json.loads(written) == {"s": "a\ud800b"}


def _lone_surrogate_in(value: Any) -> bool:
    text = json.dumps(value, ensure_ascii=False)
    return any(0xD800 <= ord(char) <= 0xDFFF for char in text)


@pytest.mark.parametrize("exact_path", [False, True])  # orjson, or the json module (a 19-digit number)
def test_nesting_is_limited_on_both_paths(exact_path: bool) -> None:
    number = "1234567890123456789" if exact_path else "1"
    deepest = "[" * MAX_NESTING + number + "]" * MAX_NESTING
    assert _depth(parse_json(deepest)) == MAX_NESTING
    too_deep = "[" * (MAX_NESTING + 1) + number + "]" * (MAX_NESTING + 1)
    with pytest.raises(BatchError, match=f"nested deeper than {MAX_NESTING} levels"):
        parse_json(too_deep)
    with pytest.raises(BatchError, match=f"nested deeper than {MAX_NESTING} levels"):
        parse_json('{"a":' * 5000 + "1" + "}" * 5000)  # past what either parser takes at all
    assert json.loads(dumps(parse_json(deepest))) == json.loads(deepest)  # orjson writes only 254 levels
    assert json.loads(dumps_text(parse_json(deepest))) == json.loads(deepest)


def test_brackets_in_strings_are_not_nesting() -> None:
    assert parse_json(json.dumps({"s": "[" * 2000, "t": ["{" * 600]})) == {"s": "[" * 2000, "t": ["{" * 600]}


def _depth(value: Any) -> int:
    """Levels of a list of a list of ... (iterative: pytest's own stack is deep)."""
    depth = 0
    while isinstance(value, list):
        depth, value = depth + 1, value[0]
    return depth
