"""Stable buckets of ids: which piece of a large job a record goes to.

A bucket is ``FNV-1a 64(utf-8 bytes of the id) mod buckets``: the same id lands in the same
bucket on every machine, in every run and in every version of recctl and its libraries (polars'
own hash is documented as unstable across versions, so it is not used). A null id is bucket 0.
Computed with numpy over the ids' Arrow buffers, one vectorised step per byte position.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def fnv1a64(ids: pl.Series) -> np.ndarray:
    """FNV-1a 64 of each id's UTF-8 bytes (uint64); a null id hashes as the empty string."""
    array = ids.cast(pl.String).fill_null("").to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.cast(pa.large_string())
    count = len(array)
    hashes = np.full(count, _FNV_OFFSET, dtype=np.uint64)
    if count == 0:
        return hashes
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[array.offset : array.offset + count + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(1, np.uint8)
    data = np.append(data, np.uint8(0))  # a safe byte to read past the last id (never hashed)
    lengths = np.diff(offsets)
    with np.errstate(over="ignore"):  # the multiplication is meant to wrap around 2^64
        for start in range(0, count, _ROWS_AT_ONCE):
            rows = slice(start, start + _ROWS_AT_ONCE)
            width = int(lengths[rows].max(initial=0))
            # the ids' bytes as a (position, row) matrix, so that each step reads one row of it
            at = offsets[:-1][rows][None, :] + np.arange(width)[:, None]
            inside = np.arange(width)[:, None] < lengths[rows][None, :]
            matrix = data[np.where(inside, at, len(data) - 1)].astype(np.uint64)
            chunk = hashes[rows]
            for position in range(width):
                mixed = (chunk ^ matrix[position]) * _FNV_PRIME
                chunk = np.where(inside[position], mixed, chunk)
            hashes[rows] = chunk
    return hashes


_ROWS_AT_ONCE = 1 << 16


def bucket_of(ids: pl.Series, buckets: int) -> pl.Series:
    """The bucket (0 .. ``buckets`` - 1) of each id, as a UInt32 Series named ``__bucket``.

    Ids usually repeat (an assessment's id on each of its interactions): each distinct id is
    hashed once and the buckets joined back.
    """
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    if buckets == 1:
        return pl.Series("__bucket", np.zeros(ids.len(), dtype=np.uint32))
    ids = ids.cast(pl.String)
    distinct = ids.unique()
    if distinct.len() * 2 < ids.len():
        table = pl.DataFrame({"id": distinct, "__bucket": _buckets(distinct, buckets)})
        found = ids.to_frame("id").join(table, on="id", how="left", nulls_equal=True, maintain_order="left")
        return found["__bucket"].set(ids.is_null(), 0)
    return pl.Series("__bucket", _buckets(ids, buckets)).set(ids.is_null(), 0)


def _buckets(ids: pl.Series, buckets: int) -> np.ndarray:
    return (fnv1a64(ids) % np.uint64(buckets)).astype(np.uint32)
