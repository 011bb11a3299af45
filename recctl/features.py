"""The model's features: defined once, used by export, train and rank.

Input is a *candidates* frame: one row per (query group, recommendation) with

- ``query_id`` (the query group, i.e. the assessment the list belongs to),
- the recommendation's stored columns (:data:`recctl.records.RECOMMENDATION_SCHEMA`),
- the assessment's stored columns prefixed with ``asm_`` (null when the assessment is unknown).

:func:`compute_features` adds one Float64 column per registered feature. Rows are processed in
(``query_id``, ``recommendation_id``) order whatever order they come in, so within-list statistics
(ranks, z-scores) sum the same numbers in the same order on every path and the values are
bit-identical between an export of many groups and a rank batch of one. Missing inputs give NaN,
never a silent 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import polars as pl

from recctl.errors import InputError
from recctl.records import (
    ASSESSMENT_SCHEMA,
    CLOUD_PROVIDERS,
    COMPANY_SIZES,
    LEVELS,
    PRIORITIES,
    PRIORITY_CATEGORIES,
    RECOMMENDATION_SCHEMA,
    USUAL_CATEGORIES,
)

FEATURE_SET_VERSION = "recctl-fs-1"

# The ordinal value of each level: low 0, medium 1, high 2; priorities low 0 .. critical 3;
# company sizes startup 0 .. enterprise 4.
LEVEL_ORDINALS = {name: float(i) for i, name in enumerate(LEVELS)}
PRIORITY_ORDINALS = {name: float(i) for i, name in enumerate(reversed(PRIORITIES))}
COMPANY_SIZE_ORDINALS = {name: float(i) for i, name in enumerate(COMPANY_SIZES)}
GROUP = "query_id"


@dataclass(frozen=True)
class Feature:
    """One model feature: its column name, group, meaning and polars expression."""

    name: str
    group: str
    meaning: str
    build: Callable[[], pl.Expr]


def _col(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.Float64)


def _log1p(name: str) -> pl.Expr:
    return _col(name).log1p()


def _ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """numerator / denominator, NaN when the denominator is 0 or either side is missing."""
    return pl.when(denominator != 0).then(numerator / denominator).otherwise(float("nan"))


def _level(name: str, levels: dict[str, float]) -> pl.Expr:
    return pl.col(name).replace_strict(levels, default=None, return_dtype=pl.Float64)


def _one_hot(name: str, value: str) -> pl.Expr:
    return pl.when(pl.col(name).is_null()).then(None).otherwise((pl.col(name) == value).cast(pl.Float64))


def _list_len(name: str) -> pl.Expr:
    return pl.col(name).list.len().cast(pl.Float64)


def _rank_in_list(value: pl.Expr) -> pl.Expr:
    """1 = the largest value in the list; ties share the best rank; missing stays missing."""
    return value.rank(method="min", descending=True).over(GROUP).cast(pl.Float64)


def _zscore_in_list(value: pl.Expr) -> pl.Expr:
    """(value - list mean) / list std (population); 0 when every value in the list is equal."""
    mean = value.mean().over(GROUP)
    std = value.std(ddof=0).over(GROUP)
    return pl.when(value.is_null()).then(None).when(std > 0).then((value - mean) / std).otherwise(0.0)


def _own_category_priority() -> pl.Expr:
    return pl.col("__own_category_priority")


def _registry() -> list[Feature]:
    rec, asm, cross, within = "recommendation", "assessment", "cross", "list"
    effort = _level("implementation_effort", LEVEL_ORDINALS)
    size = _level("asm_company_size", COMPANY_SIZE_ORDINALS)
    features = [
        Feature(
            "confidence_score",
            rec,
            "the old system's confidence in the recommendation (0..1)",
            lambda: _col("confidence_score"),
        ),
        Feature("roi_potential", rec, "estimated return on investment", lambda: _col("roi_potential")),
        Feature(
            "log_monthly_savings",
            rec,
            "log(1 + estimated monthly savings)",
            lambda: _log1p("estimated_monthly_savings"),
        ),
        Feature("log_cost", rec, "log(1 + estimated one-off cost)", lambda: _log1p("estimated_cost")),
        Feature(
            "payback_months",
            rec,
            "estimated cost / monthly savings (NaN without savings)",
            lambda: _ratio(_col("estimated_cost"), _col("estimated_monthly_savings")),
        ),
        Feature(
            "implementation_time_days", rec, "days to implement", lambda: _col("implementation_time_days")
        ),
        Feature("effort_level", rec, "implementation effort: low 0, medium 1, high 2", lambda: effort),
        Feature(
            "risk_level", rec, "risk: low 0, medium 1, high 2", lambda: _level("risk_level", LEVEL_ORDINALS)
        ),
        Feature(
            "priority_level",
            rec,
            "priority: low 0, medium 1, high 2, critical 3",
            lambda: _level("priority", PRIORITY_ORDINALS),
        ),
        Feature("services_count", rec, "how many cloud services it touches", lambda: _list_len("services")),
        Feature("tags_count", rec, "how many tags it has", lambda: _list_len("tags")),
        Feature("benefits_count", rec, "how many benefits it lists", lambda: _list_len("benefits")),
        Feature("risks_count", rec, "how many risks it lists", lambda: _list_len("risks")),
        Feature(
            "description_length",
            rec,
            "characters in the description",
            lambda: pl.col("description").str.len_chars().cast(pl.Float64),
        ),
    ]
    features += [
        Feature(f"category_{c}", rec, f"1 if the category is {c}", partial(_one_hot, "category", c))
        for c in USUAL_CATEGORIES
    ]
    features += [
        Feature(
            f"provider_{p}", rec, f"1 if the cloud provider is {p}", partial(_one_hot, "cloud_provider", p)
        )
        for p in CLOUD_PROVIDERS
    ]
    features += [
        Feature("company_size_level", asm, "company size: startup 0 .. enterprise 4", lambda: size),
        Feature("log_monthly_budget", asm, "log(1 + monthly budget)", lambda: _log1p("asm_monthly_budget")),
        Feature(
            "log_current_spend",
            asm,
            "log(1 + current monthly spend)",
            lambda: _log1p("asm_current_monthly_spend"),
        ),
        Feature(
            "spend_to_budget",
            asm,
            "current monthly spend / monthly budget",
            lambda: _ratio(_col("asm_current_monthly_spend"), _col("asm_monthly_budget")),
        ),
    ]
    features += [
        Feature(
            f"{c}_priority",
            asm,
            f"the assessment's priority weight for {c} (0..1)",
            partial(pl.col, f"__priority_{c}"),
        )
        for c in PRIORITY_CATEGORIES
    ]
    features += [
        Feature(
            "compliance_requirements_count",
            asm,
            "how many compliance frameworks the assessment needs",
            lambda: _list_len("asm_compliance_requirements"),
        ),
        Feature(
            "cloud_providers_count",
            asm,
            "how many cloud providers the assessment uses",
            lambda: _list_len("asm_cloud_providers"),
        ),
        Feature(
            "workload_types_count",
            asm,
            "how many workload types the assessment runs",
            lambda: _list_len("asm_workload_types"),
        ),
        Feature(
            "own_category_priority",
            cross,
            "the assessment's priority weight for this recommendation's category",
            _own_category_priority,
        ),
        Feature(
            "own_category_is_top_priority",
            cross,
            "1 if its category has the assessment's highest weight",
            lambda: (
                pl.when(_own_category_priority().is_null())
                .then(None)
                .otherwise((_own_category_priority() >= pl.col("__top_priority")).cast(pl.Float64))
            ),
        ),
        Feature(
            "provider_match",
            cross,
            "1 if the assessment uses its cloud provider ('multi': uses two or more)",
            lambda: pl.col("__provider_match"),
        ),
        Feature(
            "compliance_overlap",
            cross,
            "how many of the assessment's compliance frameworks it names in its tags",
            lambda: pl.col("__compliance_overlap"),
        ),
        Feature(
            "compliance_relevant",
            cross,
            "1 if it is a security/compliance item and the assessment needs compliance",
            lambda: (
                pl.when(pl.col("asm_compliance_requirements").is_null())
                .then(None)
                .otherwise(
                    (
                        pl.col("category").is_in(["security", "compliance"])
                        & (pl.col("asm_compliance_requirements").list.len() > 0)
                    ).cast(pl.Float64)
                )
            ),
        ),
        Feature(
            "cost_to_budget",
            cross,
            "estimated cost / monthly budget",
            lambda: _ratio(_col("estimated_cost"), _col("asm_monthly_budget")),
        ),
        Feature(
            "savings_to_spend",
            cross,
            "monthly savings / current monthly spend",
            lambda: _ratio(_col("estimated_monthly_savings"), _col("asm_current_monthly_spend")),
        ),
        Feature(
            "savings_to_budget",
            cross,
            "monthly savings / monthly budget",
            lambda: _ratio(_col("estimated_monthly_savings"), _col("asm_monthly_budget")),
        ),
        Feature(
            "effort_for_size",
            cross,
            "effort level weighted by how small the company is: effort * (4 - size) / 4",
            lambda: effort * (4.0 - size) / 4.0,
        ),
        Feature(
            "list_size",
            within,
            "how many recommendations the list has",
            lambda: pl.len().over(GROUP).cast(pl.Float64),
        ),
        Feature(
            "confidence_rank",
            within,
            "rank of confidence_score in the list (1 = highest)",
            lambda: _rank_in_list(_col("confidence_score")),
        ),
        Feature(
            "confidence_zscore",
            within,
            "z-score of confidence_score within the list",
            lambda: _zscore_in_list(_col("confidence_score")),
        ),
        Feature(
            "confidence_gap_to_best",
            within,
            "highest confidence in the list minus this one",
            lambda: _col("confidence_score").max().over(GROUP) - _col("confidence_score"),
        ),
        Feature(
            "roi_rank",
            within,
            "rank of roi_potential in the list (1 = highest)",
            lambda: _rank_in_list(_col("roi_potential")),
        ),
        Feature(
            "roi_zscore",
            within,
            "z-score of roi_potential within the list",
            lambda: _zscore_in_list(_col("roi_potential")),
        ),
        Feature(
            "savings_rank",
            within,
            "rank of monthly savings in the list (1 = highest)",
            lambda: _rank_in_list(_col("estimated_monthly_savings")),
        ),
        Feature(
            "savings_zscore",
            within,
            "z-score of monthly savings within the list",
            lambda: _zscore_in_list(_col("estimated_monthly_savings")),
        ),
        Feature(
            "cost_rank",
            within,
            "rank of estimated cost in the list (1 = most expensive)",
            lambda: _rank_in_list(_col("estimated_cost")),
        ),
        Feature(
            "priority_rank",
            within,
            "rank of priority level in the list (1 = most urgent)",
            lambda: _rank_in_list(_level("priority", PRIORITY_ORDINALS)),
        ),
        Feature(
            "effort_rank",
            within,
            "rank of effort level in the list (1 = most effort)",
            lambda: _rank_in_list(effort),
        ),
        Feature(
            "own_priority_rank",
            within,
            "rank of own_category_priority in the list (1 = best fit)",
            lambda: _rank_in_list(_own_category_priority()),
        ),
        Feature(
            "category_siblings",
            within,
            "how many other recommendations in the list share its category",
            lambda: (pl.len().over(GROUP, "category") - 1).cast(pl.Float64),
        ),
        Feature(
            "category_share",
            within,
            "share of the list in its category",
            lambda: pl.len().over(GROUP, "category").cast(pl.Float64) / pl.len().over(GROUP).cast(pl.Float64),
        ),
    ]
    return features


FEATURES: tuple[Feature, ...] = tuple(_registry())
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
FEATURE_GROUPS: dict[str, str] = {f.name: f.group for f in FEATURES}

FEATURE_GROUP_NAMES: tuple[str, ...] = tuple(dict.fromkeys(FEATURE_GROUPS.values()))
"""The feature groups, in registry order (``recctl features`` lists each feature's)."""


class UnknownFeatureError(InputError):
    """Names that are neither a feature nor a feature group; ``message(flag)`` names the option."""

    def __init__(self, unknown: list[str], available: Sequence[str]) -> None:
        self.unknown = unknown
        self.available = list(available)
        super().__init__(self.message())

    def message(self, flag: Callable[[str], str] | None = None) -> str:
        import difflib

        hints = []
        for name in self.unknown:
            close = difflib.get_close_matches(name, [*self.available, *FEATURE_GROUP_NAMES], n=1, cutoff=0.75)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        subject = f"{flag('exclude_features')}: " if flag else ""
        return (
            f"{subject}unknown feature or group {', '.join(hints)}; the groups are "
            f"{', '.join(FEATURE_GROUP_NAMES)} (`recctl features` lists the features)"
        )


def excluded_features(requests: Iterable[str], available: Sequence[str] = FEATURE_NAMES) -> list[str]:
    """The features of ``available`` that ``requests`` name, in ``available``'s order.

    Each request is a feature name, or a group of the registry (``recommendation``, ``list``, ...),
    which names its features among ``available``; several may be given comma-separated. Raises
    :class:`UnknownFeatureError` for a request that is neither.

    >>> excluded_features(["confidence_score", "assessment"])[:3]
    ['confidence_score', 'company_size_level', 'log_monthly_budget']
    """
    wanted = {part.strip() for request in requests for part in request.split(",") if part.strip()}
    unknown = sorted(name for name in wanted if name not in available and name not in FEATURE_GROUP_NAMES)
    if unknown:
        raise UnknownFeatureError(unknown, available)
    return [name for name in available if name in wanted or FEATURE_GROUPS.get(name) in wanted]


CANDIDATE_COLUMNS: dict[str, pl.DataType] = {
    GROUP: pl.String(),
    **RECOMMENDATION_SCHEMA,
    **{f"asm_{name}": dtype for name, dtype in ASSESSMENT_SCHEMA.items()},
}


def candidates(
    recommendations: pl.DataFrame, assessments: pl.DataFrame, query_id: pl.Expr | None = None
) -> pl.DataFrame:
    """Join each recommendation with its assessment (prefixed ``asm_``) into the candidates frame.

    ``query_id`` defaults to the recommendation's ``assessment_id``. A recommendation whose
    assessment is not in ``assessments`` keeps null assessment columns (its features become NaN).
    """
    context = assessments.select(pl.all().name.prefix("asm_")).unique(subset="asm_assessment_id", keep="last")
    joined = recommendations.join(
        context, left_on="assessment_id", right_on="asm_assessment_id", how="left", maintain_order="left"
    ).with_columns(pl.col("assessment_id").alias("asm_assessment_id"))
    return joined.with_columns(
        (query_id if query_id is not None else pl.col("assessment_id")).alias(GROUP)
    ).select([pl.col(name).cast(dtype) for name, dtype in CANDIDATE_COLUMNS.items()])


def _priority_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Helper columns from ``asm_priorities``: a weight per key, the own-category weight, the top weight.

    Every distinct priorities text is decoded once (a list shares one assessment), then joined back.
    Keys are data: columns for keys other than the usual ones get numbered names, so that a key
    like ``*`` or ``^x$`` is never read by polars as a column pattern.
    """
    texts = frame.select(pl.col("asm_priorities").unique()).filter(pl.col("asm_priorities").is_not_null())
    decoded: dict[str, pl.Series] = {}
    if texts.height:
        members = texts["asm_priorities"].str.json_decode(infer_schema_length=None).struct.unnest()
        decoded = {
            key: column.cast(pl.Float64)
            for key, column in zip(members.columns, members.get_columns(), strict=True)
        }
    keys = sorted(set(PRIORITY_CATEGORIES) | set(decoded))
    names = {
        key: f"__priority_{key}" if key in PRIORITY_CATEGORIES else f"__priority_#{number}"
        for number, key in enumerate(keys)
    }
    missing = pl.Series([None] * texts.height, dtype=pl.Float64)
    weights = texts.with_columns(decoded.get(key, missing).alias(names[key]) for key in keys)
    joined = frame.join(weights, on="asm_priorities", how="left", maintain_order="left", nulls_equal=False)
    own = pl.lit(None, dtype=pl.Float64)
    for key in keys:
        own = pl.when(pl.col("category") == pl.lit(key)).then(pl.col(names[key])).otherwise(own)
    return joined.with_columns(
        own.alias("__own_category_priority"),
        pl.max_horizontal([pl.col(name) for name in names.values()]).alias("__top_priority"),
    )


def _match_columns(frame: pl.DataFrame) -> pl.DataFrame:
    providers = pl.col("asm_cloud_providers")
    provider_match = (
        pl.when(providers.is_null() | pl.col("cloud_provider").is_null())
        .then(None)
        .when(pl.col("cloud_provider") == "multi")
        .then((providers.list.len() >= 2).cast(pl.Float64))
        .otherwise(providers.list.contains(pl.col("cloud_provider")).cast(pl.Float64))
    )
    required = pl.col("asm_compliance_requirements").list.eval(pl.element().str.to_lowercase())
    tags = pl.col("tags").list.eval(pl.element().str.to_lowercase())
    overlap = (
        pl.when(pl.col("asm_compliance_requirements").is_null())
        .then(None)
        .otherwise(required.list.set_intersection(tags).list.len())
        .cast(pl.Float64)
    )
    return frame.with_columns(provider_match.alias("__provider_match"), overlap.alias("__compliance_overlap"))


def compute_features(candidate_rows: pl.DataFrame) -> pl.DataFrame:
    """``candidate_rows`` (see :data:`CANDIDATE_COLUMNS`) with one Float64 column per feature added.

    Row order is kept. Values do not depend on the row order or on which other groups are in the
    frame: a single rank batch and a full export give bit-identical features for the same list.
    """
    # Rebuilding the frame from its Series materialises broadcast (scalar) columns, e.g. from joining
    # one assessment row: polars divides by a scalar column via its reciprocal, off by an ulp at times.
    materialised = pl.DataFrame(candidate_rows.get_columns())
    ordered = materialised.with_row_index("__input_row").sort(GROUP, "recommendation_id", "__input_row")
    ordered = _match_columns(_priority_columns(ordered))
    computed = ordered.with_columns(
        [f.build().cast(pl.Float64).fill_nan(None).alias(f.name) for f in FEATURES]
    )
    helpers = [c for c in computed.columns if c.startswith("__") and c != "__input_row"]
    return computed.drop(helpers).sort("__input_row").drop("__input_row")


def feature_matrix(features: pl.DataFrame, names: Sequence[str] = FEATURE_NAMES) -> pl.DataFrame:
    """Just the feature columns ``names`` (default: all, in registry order), missing values as NaN,
    for LightGBM: a model trained on some of the features gets exactly those, in its order."""
    return features.select([pl.col(name).fill_null(float("nan")) for name in names])


def registry_table() -> pl.DataFrame:
    """The registry as a frame: name, group, meaning."""
    return pl.DataFrame(
        {
            "name": [f.name for f in FEATURES],
            "group": [f.group for f in FEATURES],
            "meaning": [f.meaning for f in FEATURES],
        }
    )


_EMPTY_GROUP_CAUSES = {
    "assessment": "no group's assessment is in the catalog (are the assessments ingested?)",
    "cross": "they need the groups' assessments",
}


def feature_coverage(present: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """Per feature group, how much of it the data holds.

    ``present`` maps each feature to the share of rows where it has a value (not null, not NaN).
    Returns ``{group: {"features": n, "coverage": share of the group's cells with a value,
    "empty_features": [names with no value in any row]}}``, groups in registry order; a
    feature the registry does not define (``--data`` sets) counts in group ``other``.

    >>> feature_coverage({"confidence_score": 1.0, "roi_potential": 0.5, "x": 0.0})["recommendation"]
    {'features': 2, 'coverage': 0.75, 'empty_features': []}
    """
    groups: dict[str, list[str]] = {}
    for name in present:
        groups.setdefault(FEATURE_GROUPS.get(name, "other"), []).append(name)
    order = [*dict.fromkeys(FEATURE_GROUPS.values()), "other"]
    return {
        group: {
            "features": len(groups[group]),
            "coverage": round(sum(present[name] for name in groups[group]) / len(groups[group]), 4),
            "empty_features": [name for name in groups[group] if present[name] == 0],
        }
        for group in order
        if group in groups
    }


def empty_feature_groups(coverage: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The groups of :func:`feature_coverage` with no value in any row of any of their features."""
    return [group for group, info in coverage.items() if info["features"] and info["coverage"] == 0]


def empty_group_warning(group: str, coverage: Mapping[str, Mapping[str, Any]]) -> str:
    """One line saying that ``group`` is empty, and the likely cause when there is a usual one."""
    cause = _EMPTY_GROUP_CAUSES.get(group)
    line = f"all {coverage[group]['features']} {group} features are missing in every row"
    return f"{line}: {cause}" if cause else line


def present_shares(frame: pl.DataFrame, names: list[str]) -> dict[str, float]:
    """Share of the rows of ``frame`` where each feature column in ``names`` has a value."""
    if frame.height == 0:
        return dict.fromkeys(names, 0.0)
    shares = frame.select(pl.col(name).fill_nan(None).is_not_null().mean() for name in names)
    return {name: float(value) for name, value in shares.row(0, named=True).items()}
