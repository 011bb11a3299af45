"""The stored keys of a log, for telling new records from duplicates without a scan.

A directory store checks every write against every key stored before (``event_id``,
``request_id``). A hash set of the stored strings, built per write, costs time in proportion to
the store; here each key is kept once as its 64-bit hash in sorted runs (one per write, merged
when there are many), and a batch is looked up by binary search. Only keys whose hash is found
are then compared as strings, so an ingest of new records pays a hash per key and a search, and
a batch of repeats pays what an exact comparison costs anyway.

The hashes are polars' own, which are stable within one process (all this index needs; it is
never written to disk).
"""

from __future__ import annotations

import numpy as np
import polars as pl

MAX_RUNS = 8
"""Sorted runs kept before they are merged into one."""


def key_hashes(keys: pl.Series) -> np.ndarray:
    """64-bit hashes of ``keys`` (equal keys, equal hashes)."""
    return keys.hash(seed=0).to_numpy()


def may_repeat(keys: pl.Series) -> bool:
    """False when no two of ``keys`` are equal (their hashes all differ); True when some may be."""
    hashes = np.sort(key_hashes(keys))
    return bool((hashes[1:] == hashes[:-1]).any())


class KeyIndex:
    """The keys of one log stored so far: :meth:`add` them as they are written, ask :meth:`contains`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._keys: list[pl.Series] = []
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(keys) for keys in self._keys)

    def add(self, keys: pl.Series) -> None:
        """Remember ``keys`` (already unique among themselves and new to the index)."""
        if keys.is_empty():
            return
        self._keys.append(keys.rename(self.name))
        self._runs.append(np.sort(key_hashes(keys)))
        if len(self._runs) > MAX_RUNS:
            self._runs = [np.sort(np.concatenate(self._runs))]

    def contains(self, keys: pl.Series) -> pl.Series:
        """Per key of ``keys``, whether it is stored (exact: a shared hash is checked on the text)."""
        hashes = key_hashes(keys)
        order = np.argsort(hashes)  # sorted needles: the searches walk each run in order
        needles = hashes[order]
        found_sorted = np.zeros(len(hashes), dtype=bool)
        for run in self._runs:
            where = np.searchsorted(run, needles).clip(max=len(run) - 1)
            found_sorted |= run[where] == needles
        maybe = np.empty(len(hashes), dtype=bool)
        maybe[order] = found_sorted
        if not maybe.any():
            return pl.Series(self.name, maybe)
        candidates = keys.filter(pl.Series(maybe))
        stored = pl.concat(self._keys)
        shared = stored.filter(stored.is_in(candidates.implode()))  # a hash set of the few candidates
        found = candidates.is_in(shared.implode())
        return pl.Series(self.name, maybe).scatter(np.flatnonzero(maybe), found)
