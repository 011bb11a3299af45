"""Record times: parsing ISO-8601 text and epoch numbers into UTC milliseconds, vectorised.

A time without a zone is UTC; an epoch number is seconds, or milliseconds from 1e11 on (a
seconds count that large is past the year 5000). Text that is neither is null, which the rules
turn into ``not an ISO-8601 time or epoch number``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from recctl.records.schema import UTC_MS


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_timestamp(raw: pl.Expr) -> pl.Expr:
    """UTC milliseconds from ISO-8601 text (no zone = UTC) or epoch seconds / milliseconds (>= 1e11)."""
    return raw.map_batches(parse_timestamps, return_dtype=UTC_MS)


_ZONED_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%:z")
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


# The form nearly every record uses (``2025-09-19T17:29:03Z``, ``...03.250Z``): a valid date and
# time of day in UTC. The rest of the chain would give these the same instant through its first
# format, after rewriting ``Z`` as ``+00:00`` (two regex replaces over every value); see
# tests/test_timestamps_fast.py.
_COMMON_UTC_RE = (
    r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?Z$"
)


def _common_utc(text: pl.Series, parsed: pl.Series) -> pl.Series:
    """``parsed`` with the values still null that are in the common UTC form parsed (one format,
    no rewriting); a date that does not exist (February 30) stays null for the general chain."""
    common = pl.select(pl.when(parsed.is_null()).then(text.str.contains(_COMMON_UTC_RE))).to_series()
    if not common.any():
        return parsed
    indices = common.arg_true()
    moments = (
        text.gather(indices)
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", strict=False, time_unit="ms")
        .dt.replace_time_zone("UTC")
    )
    return parsed.scatter(indices, moments.cast(UTC_MS))


def parse_timestamps(raw: pl.Series) -> pl.Series:
    """The work of :func:`parse_timestamp` on a Series: each format is tried only on the values
    that the earlier ones left unparsed, so a column in one format is parsed once."""
    text = raw.str.strip_chars()
    epoch = text.cast(pl.Float64, strict=False)
    epoch_ms = (
        pl.select(
            pl.when(epoch.abs() >= 1e11)
            .then(epoch)
            .otherwise(epoch * 1000.0)
            # strict=False: when/then casts every row, also those out of range that it then drops
            .pipe(
                lambda ms: pl.when(epoch.is_finite() & (ms.abs() < 1e15)).then(
                    ms.round(0).cast(pl.Int64, strict=False)
                )
            )
        )
        .to_series()
        .cast(UTC_MS)
    )
    result = _common_utc(text, epoch_ms)
    zoned = None
    for fmt in (*_ZONED_FORMATS, *_NAIVE_FORMATS):
        todo = result.is_null() & text.is_not_null()
        if not todo.any():
            break
        indices = todo.arg_true()
        values = text.gather(indices)
        if fmt in _ZONED_FORMATS:
            if zoned is None:
                zoned = text.str.replace(r"[Zz]$", "+00:00").str.replace(r"([+-]\d{2})(\d{2})$", "$1:$2")
            parsed = zoned.gather(indices).str.to_datetime(fmt, strict=False, time_unit="ms", time_zone="UTC")
        else:
            parsed = values.str.to_datetime(fmt, strict=False, time_unit="ms").dt.replace_time_zone("UTC")
        result = result.scatter(indices, parsed.cast(UTC_MS))
    return result.alias(raw.name)
