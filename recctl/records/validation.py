"""The rules of each record kind: one ``validate_*`` function per kind, and :func:`validate`.

Each ``validate_*`` function takes a :class:`~recctl.formats.RawChunk` frame and returns the valid
rows in the stored (canonical) shape of :mod:`recctl.records.schema` plus the rejected rows with
one reason each, by stating its kind's rules to a :class:`~recctl.records.rules.Rules` engine in
the field order of the schema (a row's reason is its first failing rule).

Values are read from the record's JSON with JSON-path lookups, so a number given as a string
(``"42.5"``, as every CSV cell is) is accepted as that number, and an integer id is stored as its
decimal text. Nested values (``context``, ``priorities``, lists) may be real JSON or, in CSV, JSON
text in a cell. Unknown top-level fields are kept as a JSON object in the ``extra`` column; an
unknown field whose value is ``null`` is the same as an absent one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, assert_never, overload

import polars as pl

from recctl.jsontext import dumps_text
from recctl.labels import DEFAULT_POLICY, LabelPolicy
from recctl.records.rules import Rules, ValidationResult
from recctl.records.scan import JSON_NUMBER, NUMBER_OBJECT_RE, ParsedFields, fields_of_objects, read_objects
from recctl.records.schema import (
    ASSESSMENT_SCHEMA,
    CLOUD_PROVIDERS,
    COMPANY_SIZES,
    CONTEXT_FIELDS,
    IMPRESSION_ITEM_FIELDS,
    IMPRESSION_LIST_FIELDS,
    IMPRESSION_POLICIES,
    IMPRESSION_SCHEMA,
    INTERACTION_SCHEMA,
    INTERACTION_TYPES,
    LEVELS,
    PRIORITIES,
    RECOMMENDATION_SCHEMA,
    SCHEMAS,
    RecordKind,
)

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
        ["d-" + hashlib.blake2b(key, digest_size=12).hexdigest() for key in joined.cast(pl.Binary).to_list()],
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
    rules = Rules(chunk, _INTERACTION_FIELDS, overrides=overrides)
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
    rules.string("context.request_id", path="request_id", source=context, identifier=True)
    rules.typed["request_id"] = rules.typed.pop("context.request_id")
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
    parsed: ParsedFields | None = None,
) -> ValidationResult:
    """Validate recommendation catalog records (``parsed``: their fields already read, see
    :class:`~recctl.records.rules.Rules`)."""
    fields = [name for name in RECOMMENDATION_SCHEMA if name != "extra"]
    rules = Rules(chunk, fields, keep_extra=keep_extra, overrides=overrides, parsed=parsed)
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
    parsed: ParsedFields | None = None,
) -> ValidationResult:
    """Validate assessment catalog records (``parsed`` as for :func:`validate_recommendations`)."""
    fields = [name for name in ASSESSMENT_SCHEMA if name != "extra"]
    rules = Rules(chunk, fields, keep_extra=keep_extra, overrides=overrides, parsed=parsed)
    if guard:
        rules.guard("assessments")
    rules.string("assessment_id", required=True, identifier=True)
    rules.string("user_id", identifier=True)
    rules.enum("company_size", COMPANY_SIZES)
    rules.string("industry")
    rules.typed["monthly_budget"] = rules.number("monthly_budget", low=0)
    rules.typed["current_monthly_spend"] = rules.number("current_monthly_spend", low=0)
    priorities = pl.col(rules.json_object("priorities")).str.json_path_match("$")  # compact, for the checks
    weights = priorities.str.extract_all(rf":({JSON_NUMBER})").list.eval(
        pl.element().str.strip_prefix(":").cast(pl.Float64, strict=False)
    )
    flat_numbers = priorities.str.contains(NUMBER_OBJECT_RE)
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


_IMPRESSION_FIELDS = (*IMPRESSION_LIST_FIELDS, "items")
_ITEM_FIELDS = IMPRESSION_ITEM_FIELDS
_ITEM_SCHEMA: dict[str, pl.DataType] = {
    **{name: IMPRESSION_SCHEMA[name] for name in _ITEM_FIELDS},
    "extra": pl.String(),
    "__item_row": pl.Int64(),
}
_LIST_SCHEMA: dict[str, pl.DataType] = {
    **{name: IMPRESSION_SCHEMA[name] for name in _IMPRESSION_FIELDS if name != "items"},
    "extra": pl.String(),
    "__list_row": pl.Int64(),
}


def validate_impressions(
    chunk: pl.DataFrame, *, now: datetime | None = None, guard: bool = True
) -> ValidationResult:
    """Validate impression records (served lists); the valid ones come back one row per item.

    A list is valid when its own fields are and so is every item: ``recommendation_id`` an id,
    ``position`` an integer >= 0 given once in the list, ``propensity`` and ``prefix_propensity`` in
    (0, 1], ``team`` a string. A list with a bad item is rejected whole, the reason naming the
    first such item (``items[2].position: must be >= 0``). ``policy`` is stored lowercase,
    ``deterministic`` when absent. Unknown list fields go to ``extra``, unknown item fields to
    ``item_extra``. Rows keep the input order (list after list, each list's items as given). A list
    repeating the ``request_id`` of an earlier valid list of the chunk is left out and counted in
    ``duplicates``.
    """
    now = now or datetime.now(UTC)
    # The item fields are read at the top level too, only to know that no list has one there.
    rules = Rules(chunk, [*_IMPRESSION_FIELDS, *_ITEM_FIELDS], element_lists=("items",))
    if guard:
        rules.guard("impressions")
    rules.string("request_id", required=True, identifier=True)
    rules.timestamp("timestamp", required=True, now=now)
    rules.string("assessment_id", required=True, identifier=True)
    rules.string("user_id", identifier=True)
    for name in ("session_id", "model_version", "variant", "policy"):
        rules.string(name)
    rules.typed["policy"] = (
        rules.typed["policy"].str.strip_chars().str.to_lowercase().fill_null(IMPRESSION_POLICIES[0])
    )
    rules.check(pl.col(rules.text("items")).is_null(), "items: required")
    items = _items(rules.texts["__top__items"], rules.elements.get("items"))
    rules.reasons("items", items.reasons)
    rules.typed["__list_row"] = pl.int_range(0, pl.len(), dtype=pl.Int64)
    # The items' field names are known inside a list, so a list whose fields are all known skips
    # the search for unknown ones, unless an item field name is also at its top level.
    at_top = any(rules.texts[f"__top__{name}"].is_not_null().any() for name in _ITEM_FIELDS)
    rules.extra(_IMPRESSION_FIELDS, nested=() if at_top else _ITEM_FIELDS)
    lists = rules.result(_LIST_SCHEMA)
    first = lists.records["request_id"].is_first_distinct()
    kept = lists.records.filter(first)
    records = (
        kept.rename({"extra": "__list_extra"})
        .join(items.rows, on="__list_row", how="inner")
        .sort("__list_row", "__item_row")
        .select(
            pl.col("__list_extra").alias("extra") if name == "extra" else pl.col(name)
            for name in IMPRESSION_SCHEMA
        )
    )
    return ValidationResult(records, lists.rejects, duplicates=lists.records.height - kept.height)


@dataclass(frozen=True)
class _Items:
    reasons: pl.Series
    """Per list (row of the chunk), the first problem of its ``items``; null when there is none."""
    rows: pl.DataFrame
    """The valid items, typed (``extra`` renamed ``item_extra``), with ``__list_row`` and ``__item_row``
    (their order in the chunk)."""


def _items(texts: pl.Series, read: pl.Series | None = None) -> _Items:
    """Check the ``items`` of every list of a chunk, all items of all lists as one frame.

    ``read``: every list's elements, already read with the records' other fields (then ``texts``
    only tells which lists have items). Otherwise every item's JSON text is read out of its
    list's array by one ``read_ndjson``. The items then go through the same rule engine as a
    chunk of records, whose reasons are mapped back to their lists (``items[i].<reason>``) and
    to the first bad item of each.
    """
    present = texts.is_not_null() & (texts.str.strip_chars().str.len_bytes() > 0)
    if read is not None:
        elements: pl.Series | None = read.filter(present)
    else:
        # Usually every list's items are array text already (how a JSON file gives them): one
        # parse takes them apart. Otherwise (CSV cells, strings, broken text) each is read first.
        arrays = texts.filter(present)
        elements = _elements(arrays) if arrays.str.strip_chars_start().str.starts_with("[").all() else None
    if elements is not None:
        is_list = present
    else:
        canonical = texts.str.json_path_match("$")
        is_list = canonical.str.starts_with("[").fill_null(False)
        elements = _elements(canonical.filter(is_list), exact=True)
    per_list = pl.DataFrame(
        {"__list_row": is_list.arg_true().cast(pl.Int64), "__element": elements}
    ).with_columns(pl.int_ranges(0, pl.col("__element").list.len(), dtype=pl.Int64).alias("__index"))
    exploded = per_list.explode("__element", "__index").filter(pl.col("__index").is_not_null())
    exploded = exploded.with_columns(pl.int_range(0, pl.len(), dtype=pl.Int64).alias("__item_row"))
    element = pl.col("__element")
    # An object element is JSON text written by polars' reader (valid); a string element that
    # merely starts with "{" is found out by the item rules' own parse ("invalid JSON").
    is_object = element.str.starts_with("{")
    item_chunk = exploded.select(
        pl.col("__item_row").alias("input_position"),
        element.alias("raw"),
        pl.when(is_object).then(element).alias("json"),
        pl.when(is_object.fill_null(False)).then(None).otherwise(pl.lit("not a JSON object")).alias("error"),
    )
    checked = _validate_items(item_chunk)
    located = checked.rejects.join(
        exploded.select("__item_row", "__list_row", "__index"),
        left_on="input_position",
        right_on="__item_row",
    ).sort("__list_row", "__index")
    field_reason = pl.col("reason").str.contains(r"^[A-Za-z_]+: ")
    item_reasons = located.group_by("__list_row", maintain_order=True).agg(
        pl.when(field_reason)
        .then(pl.format("items[{}].{}", pl.col("__index"), pl.col("reason")))
        .otherwise(pl.format("items[{}]: {}", pl.col("__index"), pl.col("reason")))
        .first()
        .alias("__reason")
    )
    valid = checked.records.join(
        exploded.select("__item_row", "__list_row"), on="__item_row", how="inner", maintain_order="left"
    )
    repeated = (
        valid.filter(pl.col("position").is_duplicated().over("__list_row"))
        .group_by("__list_row")
        .agg(pl.col("position").min())
        .select(
            "__list_row",
            pl.format("items: position {} is given twice (positions are unique in a list)", "position").alias(
                "__reason"
            ),
        )
    )
    sizes = per_list.select("__list_row", pl.col("__element").list.len().alias("__size"))
    rows = pl.DataFrame({"__list_row": pl.int_range(0, texts.len(), eager=True, dtype=pl.Int64)})
    reasons = (
        rows.join(sizes, on="__list_row", how="left", maintain_order="left")
        .join(item_reasons, on="__list_row", how="left", maintain_order="left")
        .join(repeated.rename({"__reason": "__repeated"}), on="__list_row", how="left", maintain_order="left")
        .select(
            pl.when(pl.Series(present & ~is_list))
            .then(pl.lit("items: must be a list of objects"))
            .when(pl.col("__size") == 0)
            .then(pl.lit("items: must not be empty"))
            .otherwise(pl.coalesce("__reason", "__repeated"))
        )
        .to_series()
    )
    return _Items(reasons, valid.rename({"extra": "item_extra"}))


@overload
def _elements(arrays: pl.Series, *, exact: Literal[True]) -> pl.Series: ...
@overload
def _elements(arrays: pl.Series, *, exact: bool = False) -> pl.Series | None: ...
def _elements(arrays: pl.Series, *, exact: bool = False) -> pl.Series | None:
    """Each JSON array's elements as text (objects as JSON text, strings unquoted), by one parse.

    An array holding a backslash or a control character is read with Python's ``json`` instead
    (polars would write an element back without its escapes: see
    :func:`~recctl.records.scan.with_exact_nested`). When polars' reader refuses a text, or such an
    array is not JSON, None; with ``exact`` (every text is known to be a JSON array) every array
    is then read list by list.
    """
    if not arrays.len():
        return pl.Series([], dtype=pl.List(pl.String))
    escaped = arrays.str.contains(r"[\\\x00-\x1f]").fill_null(False)
    plain = arrays.filter(~escaped)
    schema: dict[str, pl.DataType] = {"items": pl.List(pl.String)}
    parsed = read_objects(('{"items":' + plain + "}").rename("json"), schema) if plain.len() else None
    if plain.len() and parsed is None:
        return _exact_elements(arrays) if exact else None
    try:
        by_hand = _exact_elements(arrays.filter(escaped))
    except (ValueError, TypeError, RecursionError):
        if not exact:
            return None
        raise
    if parsed is None:
        return by_hand
    rows = pl.concat(
        [
            pl.DataFrame({"__at": (~escaped).arg_true(), "__items": parsed["items"]}),
            pl.DataFrame({"__at": escaped.arg_true(), "__items": by_hand}),
        ]
    )
    return rows.sort("__at")["__items"]


def _exact_elements(arrays: pl.Series) -> pl.Series:
    """:func:`_elements` list by list, with Python's ``json`` (rare: the arrays polars cannot read
    as they are)."""
    values = [
        [item if isinstance(item, str) else dumps_text(item) for item in json.loads(text)]
        for text in arrays.to_list()
    ]
    return pl.Series(values, dtype=pl.List(pl.String))


def _validate_items(chunk: pl.DataFrame) -> ValidationResult:
    """The rules of one item of an impression's ``items``, over the items of a chunk."""
    rules = Rules(chunk, _ITEM_FIELDS)
    rules.string("recommendation_id", required=True, identifier=True)
    # The stored column is Int64: a slot number past 2^53 is rejected, and nulled so the cast holds.
    position = rules.number("position", required=True, low=0, high=2**53)
    rules.check(position.is_not_null() & (position != position.floor()), "position: must be an integer")
    rules.typed["position"] = pl.when(position.is_finite() & (position.abs() <= 2**53)).then(position)
    for name in ("propensity", "prefix_propensity"):
        rules.typed[name] = rules.number(name, low=0, low_exclusive=True, high=1)
    rules.string("team")
    rules.typed["__item_row"] = pl.col("input_position")
    rules.extra(_ITEM_FIELDS)
    return rules.result(_ITEM_SCHEMA)


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
    protection against ingesting the wrong file (see :meth:`Rules.guard`).
    """
    match kind:
        case "interactions":
            return validate_interactions(chunk, policy, now=now, overrides=overrides, guard=guard)
        case "recommendations":
            return validate_recommendations(
                chunk, now=now, keep_extra=keep_extra, overrides=overrides, guard=guard
            )
        case "assessments":
            return validate_assessments(
                chunk, now=now, keep_extra=keep_extra, overrides=overrides, guard=guard
            )
        case "impressions":
            return validate_impressions(chunk, now=now, guard=guard)
        case _:  # a kind added to RecordKind without a validator: mypy says so here
            assert_never(kind)


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

    The values go through the same rules as ``ingest``, which keeps one definition of what a valid
    record is. Catalog records without their unknown fields (``keep_extra=False``, as ``rank``
    asks) are read from the objects themselves (:func:`~recctl.records.scan.fields_of_objects`);
    otherwise each value is serialised once (compact, :func:`recctl.jsontext.dumps_text`) and read
    as text. Both give the same rows and reasons; a rejected row's ``raw`` is its compact JSON. A
    value that is not an object is rejected with the reason ``not a JSON object``. The guard
    against records of another kind is for files (``ingest``) and is off here.
    """
    series = {name: pl.Series(name, values, dtype=pl.String) for name, values in (overrides or {}).items()}
    parsed = None
    if not keep_extra and kind in ("recommendations", "assessments"):
        parsed = fields_of_objects(objects, SCHEMAS[kind], skip=series)
    if parsed is None:
        return _validate_texts(kind, objects, policy, now=now, keep_extra=keep_extra, overrides=series)
    chunk = pl.DataFrame(
        {
            "input_position": pl.int_range(0, len(objects), eager=True, dtype=pl.Int64),
            **{
                name: pl.repeat(None, len(objects), dtype=pl.String, eager=True)
                for name in ("raw", "json", "error")
            },
        }
    )
    validator = validate_recommendations if kind == "recommendations" else validate_assessments
    result = validator(chunk, now=now, keep_extra=False, overrides=series, guard=False, parsed=parsed)
    if result.rejects.is_empty():
        return result
    raw = [dumps_text(objects[position]) for position in result.rejects["input_position"].to_list()]
    rejects = result.rejects.with_columns(pl.Series("raw", raw, dtype=pl.String))
    return ValidationResult(result.records, rejects, result.duplicates)


def _validate_texts(
    kind: RecordKind,
    objects: Sequence[Any],
    policy: LabelPolicy | None,
    *,
    now: datetime | None,
    keep_extra: bool,
    overrides: Mapping[str, pl.Series],
) -> ValidationResult:
    """:func:`validate_objects` by the objects' compact JSON text, read as ``ingest`` reads a file."""
    raw = pl.Series("raw", [dumps_text(item) for item in objects], dtype=pl.String)
    is_object = pl.col("raw").str.starts_with("{")  # the text is our own compact JSON: no need to re-parse
    chunk = pl.DataFrame({"raw": raw}).select(
        pl.int_range(0, pl.len(), dtype=pl.Int64).alias("input_position"),
        "raw",
        pl.when(is_object).then(pl.col("raw")).alias("json"),
        pl.when(is_object).then(None).otherwise(pl.lit("not a JSON object")).cast(pl.String).alias("error"),
    )
    return validate(
        kind,
        chunk,
        policy or DEFAULT_POLICY,
        now=now,
        keep_extra=keep_extra,
        overrides=overrides,
        guard=False,
    )
