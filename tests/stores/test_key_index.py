"""The stored-key index of the directory store: the same answers as an exact ``is_in``."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recctl.stores import key_index
from recctl.stores.key_index import KeyIndex, may_repeat

keys = st.lists(st.text(alphabet="abcde", min_size=0, max_size=3), max_size=40)


def _exact(stored: list[list[str]], asked: list[str]) -> list[bool]:
    everything = {key for run in stored for key in run}
    return [key in everything for key in asked]


def _index(runs: list[list[str]]) -> KeyIndex:
    index = KeyIndex("event_id")
    for run in runs:
        series = pl.Series(run, dtype=pl.String).unique(maintain_order=True)
        index.add(series.filter(~index.contains(series)))
    return index


@settings(max_examples=60, deadline=None)
@given(runs=st.lists(keys, max_size=12), asked=keys)
def test_contains_is_exact(runs: list[list[str]], asked: list[str]) -> None:
    index = _index(runs)
    found = index.contains(pl.Series(asked, dtype=pl.String)).to_list()
    assert found == _exact(runs, asked)
    assert len(index) == len({key for run in runs for key in run})


@settings(max_examples=40, deadline=None)
@given(runs=st.lists(keys, max_size=12), asked=keys)
def test_shared_hashes_are_told_apart_by_the_text(runs: list[list[str]], asked: list[str]) -> None:
    # Four hash values for every key: most lookups find a hash that another key has.
    real = key_index.key_hashes
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(key_index, "key_hashes", lambda series: real(series) % np.uint64(4))
        index = _index(runs)
        found = index.contains(pl.Series(asked, dtype=pl.String)).to_list()
    assert found == _exact(runs, asked)


@given(asked=keys)
def test_may_repeat_never_misses_a_repeat(asked: list[str]) -> None:
    series = pl.Series(asked, dtype=pl.String)
    if series.n_unique() < series.len():
        assert may_repeat(series)
    else:
        assert not may_repeat(series)  # 64-bit hashes of a few short keys do not collide
