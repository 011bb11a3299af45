"""Fuzzing ``recctl rank``: whatever comes in, a documented exit code and never a traceback.

For JSON input: exit 0 with a permutation of the input recommendations, or exit 1 with one
``Error: <json path>: ...`` line. For ``--ndjson``: every non-blank line gives exactly one output
line or one ``Error: line N`` line, and the exit code says whether any failed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from builders import run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MISSING = Path("/nonexistent/ranker.txt")  # fallback ranking: no model needed for the input paths

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
field_values = st.one_of(scalars, st.lists(st.text(max_size=6), max_size=3), json_values)
recommendations = st.fixed_dictionaries(
    {},
    optional={
        "recommendation_id": st.one_of(st.text(min_size=1, max_size=8), field_values),
        "category": st.one_of(
            st.sampled_from(["security", "cost_optimization", "performance"]), field_values
        ),
        "confidence_score": st.one_of(st.floats(0, 1), field_values),
        "services": field_values,
        "tags": field_values,
        "priority": st.one_of(st.sampled_from(["high", "low"]), field_values),
        "cloud_provider": st.one_of(st.sampled_from(["aws", "gcp"]), field_values),
        "roi_potential": field_values,
        "extra": json_values,
    },
)
documents = st.one_of(
    st.lists(st.one_of(recommendations, json_values), max_size=6),
    st.fixed_dictionaries(
        {"recommendations": st.one_of(st.lists(recommendations, max_size=6), json_values)},
        optional={
            "assessment": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "priorities": json_values,
                        "monthly_budget": field_values,
                        "cloud_providers": field_values,
                    },
                ),
            )
        },
    ),
    json_values,
)


def rank(payload: bytes, *options: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``recctl rank`` on ``payload``; an exception that escapes
    rank (a traceback for the user) is raised."""
    return run("rank", "--model", str(MISSING), *options, input=payload)


def check_single(payload: bytes, document: Any = None) -> None:
    code, out, err = rank(payload)
    assert "Traceback" not in err
    assert code in (0, 1), (code, err)
    if code == 0:
        result = json.loads(out)
        if isinstance(document, dict) and isinstance(document.get("recommendations"), list):
            given_ids = sorted(json.dumps(r, sort_keys=True) for r in document["recommendations"])
            returned = [
                {k: v for k, v in r.items() if k not in ("ml_score", "rank")}
                for r in result["recommendations"]
            ]
            assert sorted(json.dumps(r, sort_keys=True) for r in returned) == given_ids
    else:
        errors = [line for line in err.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, err


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents)
def test_generated_documents(document: Any) -> None:
    check_single(json.dumps(document).encode(), document)


@settings(max_examples=60, deadline=None)
@given(payload=st.binary(max_size=300))
def test_random_bytes(payload: bytes) -> None:
    check_single(payload)


def test_hostile_inputs() -> None:
    good = {"recommendation_id": "a", "category": "security", "confidence_score": 0.5}
    cases = [
        b"\xef\xbb\xbf" + json.dumps([good]).encode(),  # BOM
        json.dumps([good]).replace(",", ",\r\n").encode(),  # CRLF inside
        b'[{"recommendation_id": "a", "category": "security", "confidence_score": NaN}]',
        b'[{"recommendation_id": "a", "category": "security", "confidence_score": Infinity}]',
        b'[{"recommendation_id": "a", "recommendation_id": "b", "category": "x", "confidence_score": 0.1}]',
        ("[" * 5000 + "]" * 5000).encode(),  # deep nesting
        json.dumps([{**good, "title": "x" * 10_000_000}]).encode(),  # a 10 MB string
        b'[{"recommendation_id": "\xff\xfe", "category": "x", "confidence_score": 0.1}]',  # invalid UTF-8
        b"",
        b"   ",
        b"null",
    ]
    for payload in cases:
        check_single(payload)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.one_of(documents.map(json.dumps), st.text(max_size=40)), max_size=8))
def test_ndjson_accounts_for_every_line(lines: list[str]) -> None:
    payload = "\n".join(line.replace("\n", " ").replace("\r", " ") for line in lines) + "\n"
    code, out, err = rank(payload.encode(), "--ndjson")
    assert "Traceback" not in err
    # Blank as rank reads bytes: ASCII whitespace only (str.strip would also take "\x1f" for space).
    non_blank = [line for line in payload.encode().split(b"\n") if line and not line.isspace()]
    written = [line for line in out.split("\n") if line]  # not splitlines: U+2028 may be in a value
    failed = [line for line in err.splitlines() if line.startswith("Error: line ")]
    assert len(written) + len(failed) == len(non_blank), (payload, out, err)
    assert code == (1 if failed else 0)
    for line in written:
        assert "summary" in json.loads(line)
