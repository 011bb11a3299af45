"""orjson on the rank path gives exactly the json module's values, and refuses what rank refuses."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recctl.jsontext import UNSURE, dumps, dumps_text, try_loads
from recctl.ranking import BatchError, parse_json

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


@given(values, st.sampled_from(["compact", "spaced", "ascii", "indented"]))
def test_parse_equals_json_module(value: Any, style: str) -> None:
    text = {
        "compact": lambda: json.dumps(value, separators=(",", ":"), ensure_ascii=False),
        "spaced": lambda: json.dumps(value, ensure_ascii=False),
        "ascii": lambda: json.dumps(value),
        "indented": lambda: json.dumps(value, indent=2),
    }[style]()
    assert exact(parse_json(text.encode("utf-8", "surrogatepass"))) == exact(json.loads(text))


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


def test_lone_surrogate_survives_as_an_escape() -> None:
    document = parse_json(b'{"s": "a\\ud800b"}')
    written = dumps(document)
    assert written.isascii() and json.loads(written) == {"s": "a\ud800b"}
