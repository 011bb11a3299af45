"""Validation of interactions, recommendations and assessments, vectorised with polars.

Each ``validate_*`` function takes a :class:`~recctl.formats.RawChunk` frame and returns the valid
rows in the stored (canonical) shape plus the rejected rows with one reason each. Nothing is looped
over per row: every rule is a polars expression over the whole chunk.

Values are read from the record's JSON with JSON-path lookups, so a number given as a string
(``"42.5"``, as every CSV cell is) is accepted as that number, and an integer id is stored as its
decimal text. Nested values (``context``, ``priorities``, lists) may be real JSON or, in CSV, JSON
text in a cell. Unknown top-level fields are kept as a JSON object in the ``extra`` column; an
unknown field whose value is ``null`` is the same as an absent one.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import polars as pl

from recctl.jsontext import dumps_text
from recctl.labels import DEFAULT_POLICY, INTERACTION_TYPES, LabelPolicy

RecordKind = Literal["interactions", "recommendations", "assessments"]
RECORD_KINDS: tuple[RecordKind, ...] = ("interactions", "recommendations", "assessments")

EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(days=1)

UTC_MS = pl.Datetime("ms", "UTC")
STRING_LIST = pl.List(pl.String)

INTERACTION_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "recommendation_id": pl.String(),
    "user_id": pl.String(),
    "assessment_id": pl.String(),
    "interaction_type": pl.String(),
    "interaction_value": pl.Float64(),
    "timestamp": UTC_MS,
    "session_id": pl.String(),
    "position": pl.Int64(),
    "propensity": pl.Float64(),
    "model_version": pl.String(),
    "variant": pl.String(),
    "context": pl.String(),
    "label": pl.Float64(),
    "extra": pl.String(),
}
"""Stored interactions. ``context`` and ``extra`` are JSON object text; ``session_id`` ..
``variant`` are copies of the ``context`` keys of the same name, typed."""

RECOMMENDATION_SCHEMA: dict[str, pl.DataType] = {
    "recommendation_id": pl.String(),
    "assessment_id": pl.String(),
    "category": pl.String(),
    "confidence_score": pl.Float64(),
    "title": pl.String(),
    "description": pl.String(),
    "priority": pl.String(),
    "roi_potential": pl.Float64(),
    "estimated_monthly_savings": pl.Float64(),
    "estimated_cost": pl.Float64(),
    "implementation_effort": pl.String(),
    "implementation_time_days": pl.Float64(),
    "risk_level": pl.String(),
    "cloud_provider": pl.String(),
    "services": STRING_LIST,
    "tags": STRING_LIST,
    "benefits": STRING_LIST,
    "risks": STRING_LIST,
    "agent_name": pl.String(),
    "created_at": UTC_MS,
    "extra": pl.String(),
}

ASSESSMENT_SCHEMA: dict[str, pl.DataType] = {
    "assessment_id": pl.String(),
    "user_id": pl.String(),
    "company_size": pl.String(),
    "industry": pl.String(),
    "monthly_budget": pl.Float64(),
    "current_monthly_spend": pl.Float64(),
    "priorities": pl.String(),
    "compliance_requirements": STRING_LIST,
    "cloud_providers": STRING_LIST,
    "workload_types": STRING_LIST,
    "created_at": UTC_MS,
    "extra": pl.String(),
}
"""Stored assessments. ``priorities`` is JSON object text: category -> weight in 0..1."""

SCHEMAS: dict[RecordKind, dict[str, pl.DataType]] = {
    "interactions": INTERACTION_SCHEMA,
    "recommendations": RECOMMENDATION_SCHEMA,
    "assessments": ASSESSMENT_SCHEMA,
}
KEYS: dict[RecordKind, str] = {
    "interactions": "event_id",
    "recommendations": "recommendation_id",
    "assessments": "assessment_id",
}
REQUIRED: dict[RecordKind, tuple[str, ...]] = {
    "interactions": ("recommendation_id", "user_id", "interaction_type", "timestamp"),
    "recommendations": ("recommendation_id", "assessment_id", "category", "confidence_score"),
    "assessments": ("assessment_id",),
}
"""The fields a record of each kind must have."""
_ROW_NAMES: dict[RecordKind, str] = {
    "interactions": "an interaction row",
    "recommendations": "a recommendation row",
    "assessments": "an assessment row",
}
# Fields only an assessment has: what tells one apart when its one required field is shared.
_ASSESSMENT_ONLY = ("company_size", "industry", "monthly_budget", "current_monthly_spend", "priorities")

PRIORITIES = ("critical", "high", "medium", "low")
LEVELS = ("low", "medium", "high")
CLOUD_PROVIDERS = ("aws", "azure", "gcp", "multi", "other")
USUAL_CATEGORIES = (
    "cost_optimization",
    "security",
    "performance",
    "scalability",
    "reliability",
    "compliance",
    "architecture",
    "monitoring",
)
"""The usual recommendation categories; the set is open, any other is valid too."""
COMPANY_SIZES = ("startup", "small", "medium", "large", "enterprise")
CONTEXT_FIELDS = ("session_id", "position", "propensity", "model_version", "variant", "assessment_id")
FLATTENED_FIELDS: dict[RecordKind, dict[str, tuple[str, ...] | None]] = {
    "interactions": {"context": ("position", "propensity")},
    "recommendations": {},
    "assessments": {"priorities": None},
}
"""Object fields that CSV and Parquet may give flattened (``context.session_id``, ``priorities.security``),
with the keys whose cell text is a number (None: all of them)."""

REJECTS_SCHEMA: dict[str, pl.DataType] = {
    "input_position": pl.Int64(),
    "raw": pl.String(),
    "reason": pl.String(),
}

_JSON_STRING = r'"(?:[^"\\]|\\.)*"'
_JSON_NUMBER = r"-?[0-9][0-9.eE+-]*"
_KEY_PATTERN = r'[{,]\s*"((?:[^"\\]|\\.)*)"\s*:'  # an object key: the text after `{` or `,`
_STRING_LIST_RE = rf"^\[(?:{_JSON_STRING}(?:,{_JSON_STRING})*)?\]$"
_NUMBER_OBJECT_RE = rf"^\{{(?:{_JSON_STRING}:{_JSON_NUMBER}(?:,{_JSON_STRING}:{_JSON_NUMBER})*)?\}}$"


_INTERACTION_FIELDS = (
    "event_id",
    "recommendation_id",
    "user_id",
    "interaction_type",
    "interaction_value",
    "timestamp",
    "assessment_id",
    "context",
)


@dataclass(frozen=True)
class ValidationResult:
    """Valid rows in the stored shape, and rejected rows with their reasons."""

    records: pl.DataFrame
    rejects: pl.DataFrame


class _Rules:
    """Builds typed columns and their error reasons for one chunk.

    Every check appends a ``(column, reason)`` pair; a row's reason is the first failing check in
    the order the checks were added (the field order of the schemas).
    """

    def __init__(
        self,
        chunk: pl.DataFrame,
        top_level: Sequence[str],
        *,
        keep_extra: bool = True,
        overrides: Mapping[str, pl.Series] | None = None,
    ) -> None:
        self.keep_extra = keep_extra
        self.top_level = set(top_level)
        self.overridden = set(overrides or ())
        chunk, texts = checked_objects(chunk, top_level)
        if overrides:  # values the caller sets, as if each record held them (text, like every field)
            texts = texts.with_columns(values.alias(f"__top__{name}") for name, values in overrides.items())
        self.chunk = chunk
        self.texts = texts
        self.frame = chunk.hstack(texts).lazy()
        # Columns derived in three levels: 0 reads the chunk's texts, 1 reads level 0, 2 reads level 1.
        # Each level becomes one plan node (not one per column), which keeps small chunks cheap.
        self.derived: list[dict[str, pl.Expr]] = [{}, {}, {}]
        self.read_already: dict[tuple[str, str], str] = {}  # (object column, key) -> column of its text
        self.errors: list[pl.Expr] = []
        self.typed: dict[str, pl.Expr] = {}
        # Eager text of the object columns (and of the keys read from them), for checks that need
        # the JSON itself rather than the text of a value (is this id a string or a boolean?).
        self.objects: dict[str, pl.Series] = {}

    # -- reading raw values -------------------------------------------------------------------
    def text(self, name: str, path: str | None = None, source: str = "json") -> str:
        """Add the raw text of ``$.path`` as column ``__<name>``; blank text counts as missing."""
        column = f"__{name}"
        path = path or name
        if source == "json" and path in self.top_level:
            value = pl.col(f"__top__{path}")
        elif (source, path) in self.read_already:
            value = pl.col(self.read_already[source, path])
        else:
            value = pl.col(source).str.json_path_match(f"$.{path}")
        self.derived[0][column] = pl.when(value.str.strip_chars().str.len_bytes() > 0).then(value)
        return column

    def check(self, bad: pl.Expr, reason: str) -> None:
        self.errors.append(pl.when(bad).then(pl.lit(reason)))

    # -- the kind of the record ------------------------------------------------------------------
    def guard(self, kind: RecordKind) -> None:
        """Reject a row that is a record of another kind as ``looks like a <kind> row``.

        For a catalog ``kind``, a row looks like a record of kind O when it holds two of the fields
        O requires that ``kind`` does not know (one, if O requires only one such field), present
        or not the rest. Otherwise (interactions, or O = assessments, whose only required field
        every kind has), it looks like O when it has every field O requires, one of the fields
        only O has (of those it requires, else of :data:`_ASSESSMENT_ONLY`), and lacks a field
        ``kind`` requires. So an interactions or recommendations file ingested as assessments is
        rejected row by row instead of overwriting the catalog, even with blank cells. Checked
        first: the reason names the mistake, not a symptom.
        Interactions are only checked on rows that lack a required field (the others are fine).
        """
        own = REQUIRED[kind]
        catalog = kind != "interactions"
        json_text = self.chunk["json"]

        def lacks_own(rows: pl.Series | None = None) -> pl.Series:
            texts = [self.texts[f"__top__{name}"] for name in own]
            if rows is not None:
                texts = [text.gather(rows) for text in texts]
            return pl.select(pl.any_horizontal(_blank(text) for text in texts)).to_series()

        plans = []
        for other in RECORD_KINDS:
            if other == kind:
                continue
            fields = set(SCHEMAS[kind])
            unknown_required = tuple(name for name in REQUIRED[other] if name not in fields)
            signature = unknown_required or tuple(name for name in _ASSESSMENT_ONLY if name not in fields)
            plans.append((other, unknown_required, signature))
        # Which rows to look at: for interactions only those lacking a required field (the others
        # are interactions, whatever else they hold); then only rows that name a key of some
        # signature, found by a literal scan (ten times a regex's speed). An exact read of the
        # fields follows for those, usually none.
        if catalog:
            where = pl.int_range(0, json_text.len(), eager=True, dtype=pl.UInt32)
            texts = json_text
        else:
            where = (json_text.is_not_null() & lacks_own()).arg_true()
            texts = json_text.gather(where)
        named = pl.select(
            pl.any_horizontal(
                texts.str.contains(f'"{name}"', literal=True).fill_null(False)
                for _, _, signature in plans
                for name in signature
            )
        ).to_series()
        where = where.filter(named)
        if where.is_empty():
            return
        candidates = pl.Series([False] * json_text.len(), dtype=pl.Boolean).scatter(where, True)
        needed = sorted({name for other, _, signature in plans for name in (*REQUIRED[other], *signature)})
        values = top_level_texts(json_text.filter(candidates), needed)
        present = {name: ~_blank(values[f"__top__{name}"]) for name in needed}
        lacking = lacks_own(where)
        reason = pl.Series([None] * values.height, dtype=pl.String)
        for other, unknown_required, signature in plans:
            if catalog and unknown_required:
                # Two of the other kind's own required fields (one, if it has only one) tell, even
                # when the row misses some: a recommendations file with a blank confidence_score
                # must not overwrite assessments. One such field alone may be an extra.
                named_fields = pl.sum_horizontal(present[name].cast(pl.Int32) for name in unknown_required)
                looks = pl.select(named_fields >= min(2, len(unknown_required))).to_series()
            else:
                has_required = pl.select(
                    pl.all_horizontal(present[name] for name in REQUIRED[other])
                ).to_series()
                has_signature = pl.select(pl.any_horizontal(present[name] for name in signature)).to_series()
                looks = has_required & has_signature & lacking
            reason = pl.select(
                pl.when(reason.is_null() & looks)
                .then(pl.lit(f"looks like {_ROW_NAMES[other]}"))
                .otherwise(reason)
            ).to_series()
        if reason.null_count() == reason.len():
            return
        everywhere = pl.Series([None] * json_text.len(), dtype=pl.String).scatter(
            candidates.arg_true(), reason
        )
        self.frame = self.frame.with_columns(everywhere.alias("__wrong_kind"))
        self.errors.append(pl.col("__wrong_kind"))

    # -- typed fields ---------------------------------------------------------------------------
    def string(
        self,
        name: str,
        *,
        required: bool = False,
        path: str | None = None,
        source: str = "json",
        identifier: bool = False,
    ) -> None:
        """A text field. An ``identifier`` takes a string or an integer (stored as its decimal
        text) and nothing else: a boolean or a non-integral number is rejected, not turned into
        ``"true"`` or ``"1.5"``."""
        raw = pl.col(self.text(name, path, source))
        wanted = "a string or an integer" if identifier else "a string"
        if required:
            self.check(raw.is_null(), f"{name}: required")
        self.check(
            raw.str.contains(r"^\s*[\[{]") & raw.str.json_path_match("$").is_not_null(),
            f"{name}: must be {wanted}",
        )
        if identifier:
            self._check_identifier(name, path or name, source)
        self.typed[name] = raw

    def _check_identifier(self, name: str, key: str, source: str) -> None:
        if source == "json":
            if key in self.overridden or key not in self.top_level:
                return  # a value the caller set (as text), not one the record gave
            objects, values = self.chunk["json"], self.texts[f"__top__{key}"]
        else:
            objects = self.objects[source]
            read = self.objects.get(f"{source}.{key}")
            values = objects.str.json_path_match(f"$.{key}") if read is None else read
        not_an_id = non_id_values(objects, values, key)
        if not_an_id is not None:
            column = f"__{name}__not_an_id"
            self.frame = self.frame.with_columns(not_an_id.alias(column))
            self.check(pl.col(column), f"{name}: must be a string or an integer")

    def enum(self, name: str, allowed: Sequence[str], *, required: bool = False) -> None:
        column = self.text(name)
        raw = pl.col(column)
        self.derived[1][f"{column}__value"] = raw.str.strip_chars().str.to_lowercase()
        value = pl.col(f"{column}__value")
        if required:
            self.check(raw.is_null(), f"{name}: required")
        self.check(
            raw.is_not_null() & ~value.is_in(list(allowed)), f"{name}: must be one of {'|'.join(allowed)}"
        )
        self.typed[name] = value

    def number(
        self,
        name: str,
        *,
        required: bool = False,
        low: float | None = None,
        high: float | None = None,
        low_exclusive: bool = False,
        path: str | None = None,
        source: str = "json",
        label: str | None = None,
    ) -> pl.Expr:
        label = label or name
        column = self.text(label.replace(".", "__"), path or name, source)
        raw = pl.col(column)
        # Cast once into its own column: the checks below and the typed value all read it.
        self.derived[1][f"{column}__number"] = raw.str.strip_chars().cast(pl.Float64, strict=False)
        value = pl.col(f"{column}__number")
        if required:
            self.check(raw.is_null(), f"{label}: required")
        self.check(
            raw.is_not_null() & (value.is_null() | ~value.is_finite()), f"{label}: must be a finite number"
        )
        if low is not None:
            too_low = value <= low if low_exclusive else value < low
            self.check(too_low, f"{label}: must be {'>' if low_exclusive else '>='} {low:g}")
        if high is not None:
            self.check(value > high, f"{label}: must be <= {high:g}")
        return value

    def string_list(self, name: str) -> None:
        column = self.text(name)
        # The canonical text and its check get their own columns: the check and the typed value read both.
        canonical, valid = pl.col(f"{column}__json"), pl.col(f"{column}__valid")
        self.derived[1][f"{column}__json"] = pl.col(column).str.json_path_match("$")
        self.derived[2][f"{column}__valid"] = canonical.str.contains(_STRING_LIST_RE)
        self.check(
            pl.col(f"__{name}").is_not_null() & ~valid.fill_null(False), f"{name}: must be a list of strings"
        )
        self.typed[name] = pl.when(valid).then(canonical).str.json_decode(STRING_LIST)

    def json_object(self, name: str, keys: Sequence[str] = ()) -> str:
        """Validate top-level ``name`` as a JSON object; returns the column holding its text.

        ``keys`` of the object are read in the same pass (for :meth:`text` with ``source`` = the
        returned column). When every value is an object this is one ``read_ndjson`` over them; if
        any is not, the exact route below names the bad rows.
        """
        column = f"__{name}__object"
        values = self.texts[f"__top__{name}"]
        present = values.is_not_null() & (values.str.strip_chars().str.len_bytes() > 0)
        schema: dict[str, pl.DataType] = {key: pl.String() for key in keys} or {"\x00probe": pl.String()}
        parsed = _read_objects(values.filter(present), schema) if present.any() else None
        nothing = pl.repeat(None, values.len(), dtype=pl.String, eager=True)
        if parsed is not None or not present.any():
            self.objects[column] = values.zip_with(present, nothing).alias(column)
            self.frame = self.frame.with_columns(self.objects[column])
            if parsed is not None and keys:
                spread = _spread(parsed.rename({key: f"{column}.{key}" for key in keys}), present)
                self.frame = self.frame.with_columns(spread.get_columns())
                self.read_already.update({(column, key): f"{column}.{key}" for key in keys})
                self.objects.update({name: spread[name] for name in spread.columns})
            return column
        # Computed now (not as a derived column): keys of the object are read from it at level 0.
        canonical = values.str.json_path_match("$")
        is_object = canonical.str.starts_with("{").fill_null(False)
        self.objects[column] = canonical.zip_with(is_object, nothing).alias(column)
        self.frame = self.frame.with_columns(self.objects[column])
        raw = pl.col(self.text(name))
        self.check(raw.is_not_null() & pl.col(column).is_null(), f"{name}: must be an object")
        return column

    def timestamp(self, name: str, *, required: bool = False, now: datetime | None = None) -> None:
        raw = pl.col(self.text(name))
        # Parsed once into its own column: the checks below would each run the parser again.
        self.derived[1][f"__{name}__parsed"] = parse_timestamp(raw)
        value = pl.col(f"__{name}__parsed")
        if required:
            self.check(raw.is_null(), f"{name}: required")
        self.check(raw.is_not_null() & value.is_null(), f"{name}: not an ISO-8601 time or epoch number")
        if now is not None:
            self.check(value < pl.lit(EARLIEST_TIMESTAMP).cast(UTC_MS), f"{name}: before 2000-01-01")
            self.check(
                value > pl.lit(now + MAX_FUTURE).cast(UTC_MS), f"{name}: more than 1 day in the future"
            )
        self.typed[name] = value

    def extra(self, known: Sequence[str]) -> None:
        """Unknown top-level fields as JSON text (skipped, left null, when ``keep_extra`` is off)."""
        if not self.keep_extra:
            return
        self.frame = self.frame.with_columns(extra_fields(self.chunk["json"], set(known)).alias("extra"))
        self.typed["extra"] = pl.col("extra")

    # -- result -------------------------------------------------------------------------------------
    def result(self, schema: dict[str, pl.DataType]) -> ValidationResult:
        """Evaluate every check and typed column in one lazy pass, then split valid from rejected."""
        reason = pl.coalesce(pl.col("error"), *self.errors) if self.errors else pl.col("error")
        typed = [
            self.typed.get(name, pl.lit(None)).cast(dtype).alias(f"__typed__{name}")
            for name, dtype in schema.items()
        ]
        frame = self.frame
        for columns in self.derived:
            if columns:
                frame = frame.with_columns(expr.alias(name) for name, expr in columns.items())
        checked = frame.select("input_position", "raw", reason.alias("__reason"), *typed).collect()
        rejects = checked.filter(pl.col("__reason").is_not_null()).select(
            "input_position", "raw", pl.col("__reason").alias("reason")
        )
        records = checked.filter(pl.col("__reason").is_null()).select(
            pl.col(f"__typed__{name}").alias(name) for name in schema
        )
        return ValidationResult(records, rejects)


def checked_objects(chunk: pl.DataFrame, fields: Sequence[str] = ()) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Mark rows that are not one JSON object, and read the top-level ``fields`` as text.

    Returns ``chunk`` (with ``json`` null and ``error`` set for every row that is not one JSON
    object) and the :func:`top_level_texts` of the good rows. Readers hand NDJSON lines over
    unchecked; when every line is fine this costs the one ``read_ndjson`` that reading the fields
    needs anyway. Only a chunk with a bad line pays for a line-by-line look that names it.
    """
    schema: dict[str, pl.DataType] = {field: pl.String() for field in fields} or {"\x00probe": pl.String()}
    json_text = chunk["json"]
    present = json_text.is_not_null()
    if not present.any() or (parsed := _read_objects(json_text.filter(present), schema)) is None:
        canonical = json_text.str.json_path_match("$")
        is_object = json_text.str.strip_chars_start().str.starts_with("{") & canonical.str.starts_with("{")
        problem = (
            pl.DataFrame({"json": json_text, "canonical": canonical, "is_object": is_object})
            .select(
                pl.when(pl.col("json").is_null())
                .then(None)
                .when(pl.col("canonical").is_null())
                .then(pl.lit("invalid JSON"))
                .when(~pl.col("is_object").fill_null(False))
                .then(pl.lit("not a JSON object"))
            )
            .to_series()
        )
        chunk = chunk.with_columns(
            pl.coalesce(pl.col("error"), problem).alias("error"),
            pl.when(problem.is_null()).then(pl.col("json")).alias("json"),
        )
        return chunk, top_level_texts(chunk["json"], fields)
    return chunk, _spread(parsed.rename({field: f"__top__{field}" for field in fields}), present)


# Text that a JSON boolean or a JSON number other than an integer could be read as (``true``,
# ``1.5``, ``1e+22``). An integer reads as digits, and digits are an id whatever their JSON type
# was, so they do not match (one regex: it runs on every id of every row).
_MAYBE_NOT_AN_ID = r"^(?:true|false|-?inf|NaN|-?[0-9]+[.eE+-][0-9.eE+-]*)$"


def non_id_values(objects: pl.Series, values: pl.Series, key: str) -> pl.Series | None:
    """Per row, whether ``key`` of the JSON object in ``objects`` is a boolean or a number that is
    not an integer (so not an id); None when no row is.

    ``values`` is the key's text as the JSON reader gives it: a string and a boolean (or number)
    of the same spelling read alike, so only the rows whose text could be a boolean or a
    non-integral number are parsed again, with typed probes (a string never fits them). That is
    rarely any row: ids are seldom ``"true"`` or ``"1.5"``.
    """
    suspect = values.str.contains(_MAYBE_NOT_AN_ID).fill_null(False)
    if not suspect.any():
        return None
    rows = objects.filter(suspect)
    body = (rows.str.join("\n").item() or "").encode()
    try:
        boolean = pl.read_ndjson(io.BytesIO(body), schema={key: pl.Boolean()}, ignore_errors=True)[key]
        number = pl.read_ndjson(io.BytesIO(body), schema={key: pl.Float64()}, ignore_errors=True)[key]
        if boolean.len() != rows.len() or number.len() != rows.len():
            raise ValueError("row count changed")
    except (pl.exceptions.PolarsError, ValueError):
        typed = [json.loads(text).get(key) for text in rows.to_list()]  # rare: exact, row by row
        boolean = pl.Series([v if isinstance(v, bool) else None for v in typed], dtype=pl.Boolean)
        number = pl.Series(
            [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None for v in typed],
            dtype=pl.Float64,
        )
    bad = boolean.is_not_null() | (number.is_not_null() & (~number.is_finite() | (number != number.floor())))
    return suspect.scatter(suspect.arg_true(), bad.fill_null(False))


def _blank(text: pl.Series) -> pl.Series:
    """Where a field's text is missing: null or only white space (what :meth:`_Rules.text` drops)."""
    return (text.is_null() | (text.str.strip_chars().str.len_bytes() == 0)).fill_null(True)


def _read_objects(json_text: pl.Series, schema: dict[str, pl.DataType]) -> pl.DataFrame | None:
    """One ``read_ndjson`` over the texts (one object each), or None if polars refuses any of them."""
    body = json_text.str.join("\n").item() or ""
    try:
        parsed = pl.read_ndjson(io.BytesIO(body.encode()), schema=schema)
    except pl.exceptions.PolarsError:
        return None
    return parsed if parsed.height == json_text.len() else None


def top_level_texts(json_text: pl.Series, fields: Sequence[str]) -> pl.DataFrame:
    """Columns ``__top__<field>``: each field's value as text, all fields from one parse.

    Strings come unquoted, numbers as written, objects and arrays as JSON text; absent or null
    values are null, and so is every field of a row whose ``json`` is null. One
    ``read_ndjson`` over the chunk costs about as much as a single JSON-path lookup per field.
    """
    names = {field: f"__top__{field}" for field in fields}
    valid = json_text.is_not_null()
    schema: dict[str, pl.DataType] = {field: pl.String() for field in fields}
    parsed = _read_objects(json_text.filter(valid), schema) if valid.any() else pl.DataFrame(schema=schema)
    if parsed is None:
        # The reader refused something the path lookups accept: take the slower, exact route.
        return pl.DataFrame({names[f]: json_text.str.json_path_match(f"$.{f}") for f in fields})
    return _spread(parsed.rename(names), valid)


def _spread(parsed: pl.DataFrame, valid: pl.Series) -> pl.DataFrame:
    """Rows of ``parsed`` (one per true value of ``valid``) placed at those positions, nulls elsewhere."""
    if parsed.height == valid.len():
        return parsed
    positions = pl.DataFrame({"__row": valid.arg_true().cast(pl.Int64)}).hstack(parsed)
    return (
        pl.DataFrame({"__row": pl.int_range(0, valid.len(), eager=True, dtype=pl.Int64)})
        .join(positions, on="__row", how="left", maintain_order="left")
        .drop("__row")
    )


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_timestamp(raw: pl.Expr) -> pl.Expr:
    """UTC milliseconds from ISO-8601 text (no zone = UTC) or epoch seconds / milliseconds (>= 1e11)."""
    return raw.map_batches(parse_timestamps, return_dtype=UTC_MS)


_ZONED_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%:z")
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


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
    result = epoch_ms
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


def extra_fields(json_text: pl.Series, known: set[str]) -> pl.Series:
    """Per row, a JSON object of the top-level fields not in ``known`` (null when there are none).

    Vectorised through polars' JSON decoder. When the unknown fields of a chunk have conflicting
    types across rows (which polars cannot put in one column), the chunk falls back to ``json``.
    """
    if json_text.len() == 0:
        return pl.Series("extra", [], dtype=pl.String)
    # Cheap pre-check on the text: when no key at any depth is outside the known names, no row has
    # unknown top-level fields and the full decode below can be skipped. One regex scan, no
    # extraction (extracting every key took ten times as long).
    if not json_text.str.contains(unknown_key_pattern(frozenset(known | set(CONTEXT_FIELDS)))).any():
        return pl.Series("extra", [None] * json_text.len(), dtype=pl.String)
    try:
        decoded = json_text.str.json_decode(infer_schema_length=None)
    except pl.exceptions.PolarsError:
        return _extra_fields_slow(json_text, known)
    if not isinstance(decoded.dtype, pl.Struct):
        return pl.Series("extra", [None] * json_text.len(), dtype=pl.String)
    # Columns by position, never pl.col(name): a key may be "*" or "^...$", which pl.col expands.
    unknown = [index for index, field in enumerate(decoded.dtype.fields) if field.name not in known]
    if not unknown:
        return pl.Series("extra", [None] * json_text.len(), dtype=pl.String)
    members = decoded.struct.unnest().select(pl.nth(unknown))
    pieces = [
        pl.when(pl.nth(index).is_not_null()).then(
            pl.struct(pl.nth(index)).struct.json_encode().str.strip_prefix("{").str.strip_suffix("}")
        )
        for index in range(len(unknown))
    ]
    joined = pl.concat_str(pieces, separator=",", ignore_nulls=True)
    return members.select(
        pl.when(joined.str.len_bytes() > 0)
        .then(pl.concat_str(pl.lit("{"), joined, pl.lit("}")))
        .alias("extra")
    ).to_series()


@functools.cache
def unknown_key_pattern(known: frozenset[str]) -> str:
    """A regex matching an object key (``"name":`` after ``{`` or ``,``) whose name is not in ``known``.

    The regex has no lookahead, so "not one of these names" is spelled out over the names' trie:
    at each point the key may end early, take a character no name continues with, or follow a
    name. A key written with escapes counts as unknown (the caller then decodes and finds out).
    """
    if not all(name.isidentifier() for name in known):
        raise ValueError("known names must be identifiers")
    trie: dict[str, Any] = {}
    for name in known:
        node = trie
        for char in name:
            node = node.setdefault(char, {})
        node[""] = {}  # the end of a name
    any_char = r'(?:[^"\\]|\\.)'

    def rest(node: dict[str, Any]) -> str:
        continuations = sorted(char for char in node if char)
        options = [f"{char}{rest(node[char])}" for char in continuations]
        options.append(rf'(?:[^"\\{"".join(continuations)}]|\\.){any_char}*')  # leaves every name
        if "" not in node:
            options.append("")  # ends before a name does
        return "(?:" + "|".join(options) + ")"

    return rf'[{{,]\s*"{rest(trie)}"\s*:'


def _extra_fields_slow(json_text: pl.Series, known: set[str]) -> pl.Series:
    # Fallback for chunks whose unknown fields mix types; polars has no per-row dynamic-key decode.
    values = []
    for text in json_text.to_list():
        unknown = (
            {k: v for k, v in json.loads(text).items() if k not in known and v is not None} if text else {}
        )
        values.append(json.dumps(unknown, ensure_ascii=False, separators=(",", ":")) if unknown else None)
    return pl.Series("extra", values, dtype=pl.String)


def derive_event_ids(keys: pl.DataFrame) -> pl.Series:
    """Deterministic event ids for interactions that came without one.

    The id is ``d-`` + the first 24 hex digits of BLAKE2b over recommendation_id, user_id,
    interaction_type, timestamp (UTC ms), interaction_value and context.session_id. hashlib is used
    row by row on purpose: polars' own hash is documented as unstable across versions, and these ids
    must stay the same across upgrades so that re-ingesting an old log adds nothing.
    """
    joined = keys.select(
        pl.concat_str(
            [
                pl.col("recommendation_id"),
                pl.col("user_id"),
                pl.col("interaction_type"),
                pl.col("timestamp").dt.epoch("ms").cast(pl.String),
                pl.col("interaction_value").map_batches(_format_floats, return_dtype=pl.String).fill_null(""),
                pl.col("session_id").fill_null(""),
            ],
            separator="\x1f",
        )
    ).to_series()
    return pl.Series(
        "event_id",
        ["d-" + hashlib.blake2b(key.encode(), digest_size=12).hexdigest() for key in joined.to_list()],
        dtype=pl.String,
    )


def _format_floats(values: pl.Series) -> pl.Series:
    """Shortest round-trip text of each float (Python's repr), stable across polars versions."""
    return pl.Series([None if v is None else repr(float(v)) for v in values.to_list()], dtype=pl.String)


def validate_interactions(
    chunk: pl.DataFrame,
    policy: LabelPolicy,
    *,
    now: datetime | None = None,
    overrides: Mapping[str, pl.Series] | None = None,
    guard: bool = True,
) -> ValidationResult:
    """Validate interaction records; the stored ``label`` comes from the label policy."""
    now = now or datetime.now(UTC)
    rules = _Rules(chunk, _INTERACTION_FIELDS, overrides=overrides)
    if guard:
        rules.guard("interactions")
    rules.string("event_id", identifier=True)
    rules.string("recommendation_id", required=True, identifier=True)
    rules.string("user_id", required=True, identifier=True)
    rules.enum("interaction_type", INTERACTION_TYPES, required=True)
    interaction_type = rules.typed["interaction_type"]
    value = rules.number("interaction_value")
    rules.check(
        (interaction_type == "rate") & value.is_null() & pl.col("__interaction_value").is_null(),
        "interaction_value: required for rate (1..5 stars)",
    )
    rules.check(
        (interaction_type == "rate") & ((value < 1) | (value > 5)),
        "interaction_value: rate must be 1..5 stars",
    )
    rules.check((interaction_type == "view") & (value < 0), "interaction_value: view seconds must be >= 0")
    rules.typed["interaction_value"] = value
    rules.timestamp("timestamp", required=True, now=now)
    context = rules.json_object("context", CONTEXT_FIELDS)
    rules.typed["context"] = pl.col(context)
    rules.string("context.session_id", path="session_id", source=context)
    rules.typed["session_id"] = rules.typed.pop("context.session_id")
    # The stored column is Int64: a slot number past 2^53 is rejected, and nulled so the cast holds.
    position = rules.number("position", source=context, low=0, high=2**53, label="context.position")
    rules.check(
        position.is_not_null() & (position != position.floor()), "context.position: must be an integer"
    )
    rules.typed["position"] = pl.when(position.is_finite() & (position.abs() <= 2**53)).then(position)
    rules.typed["propensity"] = rules.number(
        "propensity", source=context, low=0, low_exclusive=True, high=1, label="context.propensity"
    )
    for name in ("model_version", "variant"):
        rules.string(f"context.{name}", path=name, source=context)
        rules.typed[name] = rules.typed.pop(f"context.{name}")
    rules.string("assessment_id", identifier=True)
    rules.string("context.assessment_id", path="assessment_id", source=context, identifier=True)
    rules.typed["assessment_id"] = pl.coalesce(
        rules.typed["assessment_id"], rules.typed.pop("context.assessment_id")
    )
    rules.typed["label"] = policy.label_expr(interaction_type, value)
    rules.extra([*_INTERACTION_FIELDS, "label"])
    result = rules.result(INTERACTION_SCHEMA)
    return ValidationResult(_fill_event_ids(result.records), result.rejects)


def _fill_event_ids(records: pl.DataFrame) -> pl.DataFrame:
    missing = records["event_id"].is_null()
    if not missing.any():
        return records
    derived = derive_event_ids(records.filter(missing))
    return records.with_columns(records["event_id"].scatter(missing.arg_true(), derived))


def validate_recommendations(
    chunk: pl.DataFrame,
    *,
    now: datetime | None = None,
    keep_extra: bool = True,
    overrides: Mapping[str, pl.Series] | None = None,
    guard: bool = True,
) -> ValidationResult:
    """Validate recommendation catalog records."""
    fields = [name for name in RECOMMENDATION_SCHEMA if name != "extra"]
    rules = _Rules(chunk, fields, keep_extra=keep_extra, overrides=overrides)
    if guard:
        rules.guard("recommendations")
    rules.string("recommendation_id", required=True, identifier=True)
    rules.string("assessment_id", required=True, identifier=True)
    rules.string("category", required=True)
    rules.typed["category"] = rules.typed["category"].str.strip_chars().str.to_lowercase()
    rules.typed["confidence_score"] = rules.number("confidence_score", required=True, low=0, high=1)
    rules.string("title")
    rules.string("description")
    rules.enum("priority", PRIORITIES)
    rules.typed["roi_potential"] = rules.number("roi_potential")
    rules.typed["estimated_monthly_savings"] = rules.number("estimated_monthly_savings", low=0)
    rules.typed["estimated_cost"] = rules.number("estimated_cost", low=0)
    rules.enum("implementation_effort", LEVELS)
    rules.typed["implementation_time_days"] = rules.number("implementation_time_days", low=0)
    rules.enum("risk_level", LEVELS)
    rules.enum("cloud_provider", CLOUD_PROVIDERS)
    for name in ("services", "tags", "benefits", "risks"):
        rules.string_list(name)
    rules.string("agent_name")
    rules.timestamp("created_at")
    rules.extra(list(RECOMMENDATION_SCHEMA))
    return rules.result(RECOMMENDATION_SCHEMA)


def validate_assessments(
    chunk: pl.DataFrame,
    *,
    now: datetime | None = None,
    keep_extra: bool = True,
    overrides: Mapping[str, pl.Series] | None = None,
    guard: bool = True,
) -> ValidationResult:
    """Validate assessment catalog records."""
    fields = [name for name in ASSESSMENT_SCHEMA if name != "extra"]
    rules = _Rules(chunk, fields, keep_extra=keep_extra, overrides=overrides)
    if guard:
        rules.guard("assessments")
    rules.string("assessment_id", required=True, identifier=True)
    rules.string("user_id", identifier=True)
    rules.enum("company_size", COMPANY_SIZES)
    rules.string("industry")
    rules.typed["monthly_budget"] = rules.number("monthly_budget", low=0)
    rules.typed["current_monthly_spend"] = rules.number("current_monthly_spend", low=0)
    priorities = pl.col(rules.json_object("priorities")).str.json_path_match("$")  # compact, for the checks
    weights = priorities.str.extract_all(rf":({_JSON_NUMBER})").list.eval(
        pl.element().str.strip_prefix(":").cast(pl.Float64, strict=False)
    )
    flat_numbers = priorities.str.contains(_NUMBER_OBJECT_RE)
    rules.check(priorities.is_not_null() & ~flat_numbers, "priorities: values must be numbers")
    rules.check(
        priorities.is_not_null() & ((weights.list.min() < 0) | (weights.list.max() > 1)),
        "priorities: weights must be in 0..1",
    )
    rules.typed["priorities"] = priorities
    for name in ("compliance_requirements", "cloud_providers", "workload_types"):
        rules.string_list(name)
    rules.typed["cloud_providers"] = rules.typed["cloud_providers"].list.eval(pl.element().str.to_lowercase())
    rules.timestamp("created_at")
    rules.extra(list(ASSESSMENT_SCHEMA))
    return rules.result(ASSESSMENT_SCHEMA)


def validate(
    kind: RecordKind,
    chunk: pl.DataFrame,
    policy: LabelPolicy,
    *,
    now: datetime | None = None,
    keep_extra: bool = True,
    overrides: Mapping[str, pl.Series] | None = None,
    guard: bool = True,
) -> ValidationResult:
    """Validate a chunk of records of ``kind``.

    ``keep_extra=False`` skips collecting unknown fields (for catalogs, when the caller keeps the
    original objects anyway, as ``rank`` does). ``overrides`` gives top-level values, as text,
    that replace the records' own: ``rank`` keys every row to its batch this way. ``guard``
    rejects rows that are records of another kind (``looks like a recommendation row``), the
    protection against ingesting the wrong file (see :meth:`_Rules.guard`).
    """
    if kind == "interactions":
        return validate_interactions(chunk, policy, now=now, overrides=overrides, guard=guard)
    if kind == "recommendations":
        return validate_recommendations(
            chunk, now=now, keep_extra=keep_extra, overrides=overrides, guard=guard
        )
    return validate_assessments(chunk, now=now, keep_extra=keep_extra, overrides=overrides, guard=guard)


def validate_objects(
    kind: RecordKind,
    objects: Sequence[Any],
    policy: LabelPolicy | None = None,
    *,
    now: datetime | None = None,
    keep_extra: bool = True,
    overrides: Mapping[str, Sequence[str]] | None = None,
) -> ValidationResult:
    """Validate already-parsed JSON values (a rank batch, say); ``input_position`` is the list index.

    Each value is serialised once (compact, :func:`recctl.jsontext.dumps_text`): a batch is small,
    and going through the same validation as ``ingest`` keeps one definition of what a valid record
    is. A value that is not an object is rejected with the reason ``not a JSON object``. The guard
    against records of another kind is for files (``ingest``) and is off here.
    """
    raw = pl.Series("raw", [dumps_text(item) for item in objects], dtype=pl.String)
    is_object = pl.col("raw").str.starts_with("{")  # the text is our own compact JSON: no need to re-parse
    chunk = pl.DataFrame({"raw": raw}).select(
        pl.int_range(0, pl.len(), dtype=pl.Int64).alias("input_position"),
        "raw",
        pl.when(is_object).then(pl.col("raw")).alias("json"),
        pl.when(is_object).then(None).otherwise(pl.lit("not a JSON object")).cast(pl.String).alias("error"),
    )
    series = {name: pl.Series(name, values, dtype=pl.String) for name, values in (overrides or {}).items()}
    return validate(
        kind, chunk, policy or DEFAULT_POLICY, now=now, keep_extra=keep_extra, overrides=series, guard=False
    )
