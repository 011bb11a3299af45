"""What a stored record of each kind is: its columns and their types, its key, its required fields.

:data:`KINDS` has one entry per record kind; :data:`SCHEMAS`, :data:`KEYS`, :data:`REQUIRED`,
:data:`ROW_NAMES` and :data:`FLATTENED_FIELDS` are its columns, by kind, for the code that needs
only one of them. The rules that check a record of a kind are its ``validate_*`` function in
:mod:`recctl.records.validation`.

Also here: the vocabularies of valid values (``interaction_type``, ``priority``, the levels,
``cloud_provider``, ``company_size``), as tuples in their natural order, which the feature
definitions and the data simulator derive their own forms from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import polars as pl

RecordKind = Literal["interactions", "recommendations", "assessments", "impressions"]

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
    "request_id": pl.String(),
    "position": pl.Int64(),
    "propensity": pl.Float64(),
    "model_version": pl.String(),
    "variant": pl.String(),
    "context": pl.String(),
    "label": pl.Float64(),
    "extra": pl.String(),
}
"""Stored interactions. ``context`` and ``extra`` are JSON object text; ``session_id`` ..
``variant`` (``request_id`` included: the served list the interaction came from) are copies of
the ``context`` keys of the same name, typed."""

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

IMPRESSION_SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "timestamp": UTC_MS,
    "assessment_id": pl.String(),
    "user_id": pl.String(),
    "session_id": pl.String(),
    "model_version": pl.String(),
    "variant": pl.String(),
    "policy": pl.String(),
    "recommendation_id": pl.String(),
    "position": pl.Int64(),
    "propensity": pl.Float64(),
    "prefix_propensity": pl.Float64(),
    "team": pl.String(),
    "extra": pl.String(),
    "item_extra": pl.String(),
}
"""Stored impressions (served lists): one row per item shown, with its list's fields repeated.
``policy`` is never null (``deterministic`` when the record named none); ``extra`` holds the list's
unknown fields and ``item_extra`` the item's, as JSON object text."""
IMPRESSION_LIST_FIELDS = (
    "request_id",
    "timestamp",
    "assessment_id",
    "user_id",
    "session_id",
    "model_version",
    "variant",
    "policy",
)
"""The typed fields of a served list, besides its ``items``."""
IMPRESSION_ITEM_FIELDS = ("recommendation_id", "position", "propensity", "prefix_propensity", "team")
"""The typed fields of one item of a served list."""


@dataclass(frozen=True)
class KindSchema:
    """One record kind as stored: its columns, key and required fields.

    ``log`` says how the kind is kept: an insert-only log (interactions, impressions), where a
    record whose key is already stored is a duplicate, or a catalog (False), where it replaces the
    stored record. ``items`` names the list field whose elements become the stored rows (an
    impression is one record per served list, stored one row per item, with the list's fields
    repeated); None when a record is one row. ``row_name`` names a record of the kind in a
    rejection (``looks like an interaction row``); ``flattened`` gives the object fields that CSV
    and Parquet may give flattened (``context.session_id``, ``priorities.security``), with the
    keys whose cell text is a number (None: all of them).
    """

    columns: dict[str, pl.DataType]
    key: str
    required: tuple[str, ...]
    row_name: str
    flattened: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    log: bool = False
    items: str | None = None


KINDS: dict[RecordKind, KindSchema] = {
    "interactions": KindSchema(
        INTERACTION_SCHEMA,
        key="event_id",
        required=("recommendation_id", "user_id", "interaction_type", "timestamp"),
        row_name="an interaction row",
        flattened={"context": ("position", "propensity")},
        log=True,
    ),
    "recommendations": KindSchema(
        RECOMMENDATION_SCHEMA,
        key="recommendation_id",
        required=("recommendation_id", "assessment_id", "category", "confidence_score"),
        row_name="a recommendation row",
    ),
    "assessments": KindSchema(
        ASSESSMENT_SCHEMA,
        key="assessment_id",
        required=("assessment_id",),
        row_name="an assessment row",
        flattened={"priorities": None},
    ),
    "impressions": KindSchema(
        IMPRESSION_SCHEMA,
        key="request_id",
        required=("request_id", "timestamp", "assessment_id", "items"),
        row_name="an impression row",
        log=True,
        items="items",
    ),
}
"""Every record kind, in the order recctl lists them."""

RECORD_KINDS: tuple[RecordKind, ...] = tuple(KINDS)
SCHEMAS: dict[RecordKind, dict[str, pl.DataType]] = {kind: spec.columns for kind, spec in KINDS.items()}
KEYS: dict[RecordKind, str] = {kind: spec.key for kind, spec in KINDS.items()}
REQUIRED: dict[RecordKind, tuple[str, ...]] = {kind: spec.required for kind, spec in KINDS.items()}
"""The fields a record of each kind must have."""
ROW_NAMES: dict[RecordKind, str] = {kind: spec.row_name for kind, spec in KINDS.items()}
FLATTENED_FIELDS: dict[RecordKind, dict[str, tuple[str, ...] | None]] = {
    kind: spec.flattened for kind, spec in KINDS.items()
}
"""Object fields that CSV and Parquet may give flattened (``context.session_id``, ``priorities.security``),
with the keys whose cell text is a number (None: all of them)."""
# Fields only an assessment has: what tells one apart when its one required field is shared.
ASSESSMENT_ONLY = ("company_size", "industry", "monthly_budget", "current_monthly_spend", "priorities")

INTERACTION_TYPES = ("view", "click", "implement", "save", "share", "rate", "dismiss")
CLICK_TYPES = ("click", "save", "implement", "share", "rate")
"""Interaction types that count as a click on a shown item: each needs a click in the product.
A view (logged for everything on the page) and a dismissal are not evidence of examination."""
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
PRIORITY_CATEGORIES = USUAL_CATEGORIES[:6]
"""The categories an assessment's ``priorities`` usually weigh (any other key is valid too)."""
COMPANY_SIZES = ("startup", "small", "medium", "large", "enterprise")
CONTEXT_FIELDS = (
    "session_id",
    "request_id",
    "position",
    "propensity",
    "model_version",
    "variant",
    "assessment_id",
)
IMPRESSION_POLICIES = ("deterministic", "plackett-luce", "epsilon-greedy", "team-draft")
"""The logging policies recctl knows by name; an impression may name any other (stored as given).
``deterministic`` is the policy of a record that names none."""
