"""Records: what each kind stores, and the validation that turns input into stored rows.

- :mod:`~recctl.records.schema`: the record kinds (:data:`KINDS`: columns, key, required
  fields), the vocabularies of valid values and the rejects' columns;
- :mod:`~recctl.records.validation`: the rules of each kind (one ``validate_*`` function per kind)
  and :func:`validate`, which dispatches on the kind;
- :mod:`~recctl.records.rules`: the engine those functions state their rules to, vectorised
  with polars (every rule is an expression over the whole chunk);
- :mod:`~recctl.records.scan`: reading the records' JSON text (top-level fields, unknown fields);
- :mod:`~recctl.records.timestamps`: record times as UTC milliseconds.

Adding a record kind is adding its name to :data:`RecordKind`, its entry to :data:`KINDS`
(its columns, key and required fields, and whether it is an insert-only log or a catalog) and
its ``validate_<kind>`` function, called from :func:`validate`. The stores keep a log
(interactions, impressions) insert-only and a catalog updated by key.
"""

from __future__ import annotations

from recctl.records.rules import EARLIEST_TIMESTAMP, MAX_FUTURE, ValidationResult
from recctl.records.scan import (
    checked_objects,
    extra_fields,
    non_id_values,
    top_level_texts,
    unknown_key_pattern,
)
from recctl.records.schema import (
    ASSESSMENT_SCHEMA,
    CLOUD_PROVIDERS,
    COMPANY_SIZES,
    CONTEXT_FIELDS,
    FLATTENED_FIELDS,
    IMPRESSION_POLICIES,
    IMPRESSION_SCHEMA,
    INTERACTION_SCHEMA,
    INTERACTION_TYPES,
    KEYS,
    KINDS,
    LEVELS,
    PRIORITIES,
    PRIORITY_CATEGORIES,
    RECOMMENDATION_SCHEMA,
    RECORD_KINDS,
    REQUIRED,
    SCHEMAS,
    STRING_LIST,
    USUAL_CATEGORIES,
    UTC_MS,
    KindSchema,
    RecordKind,
)
from recctl.records.timestamps import as_utc, parse_timestamp, parse_timestamps
from recctl.records.validation import (
    derive_event_ids,
    validate,
    validate_assessments,
    validate_impressions,
    validate_interactions,
    validate_objects,
    validate_recommendations,
)

__all__ = [
    "ASSESSMENT_SCHEMA",
    "CLOUD_PROVIDERS",
    "COMPANY_SIZES",
    "CONTEXT_FIELDS",
    "EARLIEST_TIMESTAMP",
    "FLATTENED_FIELDS",
    "IMPRESSION_POLICIES",
    "IMPRESSION_SCHEMA",
    "INTERACTION_SCHEMA",
    "INTERACTION_TYPES",
    "KEYS",
    "KINDS",
    "LEVELS",
    "MAX_FUTURE",
    "PRIORITIES",
    "PRIORITY_CATEGORIES",
    "RECOMMENDATION_SCHEMA",
    "RECORD_KINDS",
    "REQUIRED",
    "SCHEMAS",
    "STRING_LIST",
    "USUAL_CATEGORIES",
    "UTC_MS",
    "KindSchema",
    "RecordKind",
    "ValidationResult",
    "as_utc",
    "checked_objects",
    "derive_event_ids",
    "extra_fields",
    "non_id_values",
    "parse_timestamp",
    "parse_timestamps",
    "top_level_texts",
    "unknown_key_pattern",
    "validate",
    "validate_assessments",
    "validate_impressions",
    "validate_interactions",
    "validate_objects",
    "validate_recommendations",
]
