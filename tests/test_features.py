"""The feature definition: registry, hand-checked values, and training/serving parity."""

from __future__ import annotations

import json
import math
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from builders import SAMPLE_DATA, assessment, recommendation

from recctl.dataset import TimeWindow, build_training_set
from recctl.features import (
    FEATURE_NAMES,
    FEATURES,
    candidates,
    compute_features,
    registry_table,
)
from recctl.records import validate_objects
from recctl.stores import open_store


def features_of(
    recommendations: list[dict[str, Any]], context: dict[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """The features of one list as ``rank`` computes them: every recommendation with ``context``."""
    recs = validate_objects(
        "recommendations", recommendations, overrides={"assessment_id": ["list"] * len(recommendations)}
    )
    contexts = [context] if context else []
    asm = validate_objects("assessments", contexts, overrides={"assessment_id": ["list"] * len(contexts)})
    assert recs.rejects.is_empty() and asm.rejects.is_empty()
    frame = compute_features(candidates(recs.records, asm.records))
    return {row["recommendation_id"]: row for row in frame.iter_rows(named=True)}


def test_registry_is_complete_and_unique() -> None:
    assert len(FEATURES) >= 50
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert {f.group for f in FEATURES} == {"recommendation", "assessment", "cross", "list"}
    assert all(f.meaning and not f.meaning.endswith(".") for f in FEATURES)
    assert registry_table().height == len(FEATURES)


def test_hand_checked_group() -> None:
    context = assessment(
        priorities={"cost_optimization": 0.9, "security": 0.3, "monitoring": 0.5},
        cloud_providers=["aws", "gcp"],
        compliance_requirements=["SOC2", "HIPAA"],
        monthly_budget=1000,
        current_monthly_spend=500,
        company_size="startup",
    )
    recs = [
        recommendation(
            recommendation_id="a",
            category="cost_optimization",
            confidence_score=0.6,
            cloud_provider="aws",
            estimated_monthly_savings=100,
            estimated_cost=250,
            implementation_effort="high",
            tags=["soc2", "cost"],
        ),
        recommendation(
            recommendation_id="b",
            category="security",
            confidence_score=0.9,
            cloud_provider="azure",
            tags=["HIPAA", "SOC2"],
        ),
        recommendation(
            recommendation_id="c",
            category="monitoring",
            confidence_score=0.6,
            cloud_provider="multi",
            tags=None,
        ),
        recommendation(
            recommendation_id="d",
            category="security",
            confidence_score=0.2,
            cloud_provider=None,
            roi_potential=None,
        ),
    ]
    values = features_of(recs, context)
    a, b, c, d = (values[k] for k in "abcd")
    assert (a["own_category_priority"], b["own_category_priority"], c["own_category_priority"]) == (
        0.9,
        0.3,
        0.5,
    )
    assert (a["own_category_is_top_priority"], b["own_category_is_top_priority"]) == (1.0, 0.0)
    assert (a["provider_match"], b["provider_match"], c["provider_match"]) == (1.0, 0.0, 1.0)
    assert d["provider_match"] is None and d["provider_aws"] is None  # missing stays missing
    assert (a["compliance_overlap"], b["compliance_overlap"]) == (1.0, 2.0)
    assert c["compliance_overlap"] is None  # no tags: unknown, not 0
    assert (b["confidence_rank"], a["confidence_rank"], c["confidence_rank"], d["confidence_rank"]) == (
        1,
        2,
        2,
        4,
    )
    assert b["confidence_gap_to_best"] == 0.0 and a["confidence_gap_to_best"] == pytest.approx(0.3)
    scores = [0.6, 0.9, 0.6, 0.2]
    mean = sum(scores) / 4
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / 4)
    assert a["confidence_zscore"] == pytest.approx((0.6 - mean) / std)
    assert (b["category_siblings"], d["category_siblings"], a["category_siblings"]) == (1.0, 1.0, 0.0)
    assert b["category_share"] == 0.5 and a["list_size"] == 4.0
    assert a["cost_to_budget"] == 0.25 and a["savings_to_spend"] == 0.2 and a["payback_months"] == 2.5
    assert a["effort_for_size"] == 2.0  # high effort (2) for a startup (size 0): 2 * 4 / 4
    assert a["category_cost_optimization"] == 1.0 and a["category_security"] == 0.0
    assert a["security_priority"] == 0.3 and a["reliability_priority"] is None


def test_priority_keys_are_data_not_patterns() -> None:
    """Keys with quotes or polars pattern characters are ordinary categories."""
    context = assessment(priorities={"it's": 0.9, "*": 0.2, "^security$": 0.4, "security": 0.1})
    recs = [
        recommendation(recommendation_id="a", category="it's"),
        recommendation(recommendation_id="b", category="*"),
        recommendation(recommendation_id="c", category="security"),
    ]
    values = features_of(recs, context)
    assert [values[k]["own_category_priority"] for k in "abc"] == [0.9, 0.2, 0.1]
    assert values["a"]["own_category_is_top_priority"] == 1.0


def test_no_assessment_gives_missing_context_not_zero() -> None:
    values = features_of([recommendation(recommendation_id="a"), recommendation(recommendation_id="b")], None)
    row = values["a"]
    for name in ("company_size_level", "own_category_priority", "provider_match", "cost_to_budget"):
        assert row[name] is None, name
    assert row["confidence_score"] == 0.7


def test_row_order_and_other_groups_do_not_change_values() -> None:
    recs = validate_objects(
        "recommendations",
        [
            recommendation(recommendation_id=f"r{i}", confidence_score=i / 10, roi_potential=i * 1.1)
            for i in range(7)
        ],
    ).records
    context = validate_objects("assessments", [assessment()]).records
    alone = compute_features(candidates(recs, context)).sort("recommendation_id")
    others = recs.with_columns(pl.lit("asm-other").alias("assessment_id"), pl.col("recommendation_id") + "x")
    mixed = pl.concat([others, recs.reverse()])
    together = compute_features(candidates(mixed, context)).filter(pl.col("query_id") == "asm-1")
    assert together.sort("recommendation_id").select(FEATURE_NAMES).equals(alone.select(FEATURE_NAMES))


def sample_rows() -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The sample's recommendations (as JSON objects, the way a rank batch gives them) and its
    assessments by id."""
    recommendations = [
        json.loads(line) for line in (SAMPLE_DATA / "recommendations.ndjson").read_text().splitlines()
    ]
    assessments = {
        row["assessment_id"]: row
        for row in map(json.loads, (SAMPLE_DATA / "assessments.ndjson").read_text().splitlines())
    }
    return recommendations, assessments


def served_lists(exported: pl.DataFrame) -> list[tuple[str, str]]:
    """Every 25th query group of an export (a served list, by request_id) with its assessment:
    a rank batch is that assessment's recommendations, which its served lists show in some order."""
    lists = exported.select("query_id", "assessment_id").unique(maintain_order=True)
    assert lists["query_id"].is_unique().all()  # one assessment per list
    return list(lists.gather_every(25).iter_rows())


def test_rank_batch_features_equal_the_export_bit_for_bit(sample_store: Path) -> None:
    """Training/serving parity: a rank-style batch of JSON objects gives the export's exact values."""
    window = TimeWindow.resolve(since=datetime(2025, 9, 1), until=datetime(2025, 11, 1))
    with closing(open_store(sample_store)) as store:
        exported = build_training_set(store, window).frame
    recommendations, assessments = sample_rows()
    groups = served_lists(exported)
    assert len(groups) >= 10
    for group, assessment_id in groups:
        batch = [rec for rec in recommendations if rec["assessment_id"] == assessment_id]
        batch.reverse()  # a rank batch comes in any order
        served = features_of(batch, assessments[assessment_id])
        expected = exported.filter(pl.col("query_id") == group)
        assert set(expected["recommendation_id"]) == set(served)  # the list showed them all
        for row in expected.iter_rows(named=True):
            got = served[row["recommendation_id"]]
            for name in FEATURE_NAMES:
                want, have = row[name], got[name]
                assert (want is None and have is None) or (
                    want is not None and have is not None and want.hex() == have.hex()
                ), (group, row["recommendation_id"], name, want, have)


def test_rank_scores_equal_the_model_on_the_exported_rows(sample_store: Path, sample_model: Path) -> None:
    """The same parity through ``recctl rank``'s own path: the Ranker's ``ml_score`` of each
    recommendation is LightGBM's prediction on that recommendation's exported feature row."""
    import lightgbm

    from recctl.ranking import Ranker, RankOptions

    window = TimeWindow.resolve(since=datetime(2025, 9, 1), until=datetime(2025, 11, 1))
    with closing(open_store(sample_store)) as store:
        exported = build_training_set(store, window).frame
    booster = lightgbm.Booster(model_file=str(sample_model))
    recommendations, assessments = sample_rows()
    groups = served_lists(exported)
    batches = [
        {
            "assessment": assessments[assessment_id],
            "recommendations": [
                rec for rec in reversed(recommendations) if rec["assessment_id"] == assessment_id
            ],
        }
        for _, assessment_id in groups
    ]
    ranked = Ranker(sample_model, require_model=True).rank(batches, RankOptions(diversity=False))
    assert len(ranked) == len(groups) >= 10
    for (group, _), answer in zip(groups, ranked, strict=True):
        expected = exported.filter(pl.col("query_id") == group)
        predicted = booster.predict(expected.select(FEATURE_NAMES).to_numpy())
        want = dict(zip(expected["recommendation_id"], predicted.tolist(), strict=True))
        got = {item["recommendation_id"]: item["ml_score"] for item in answer["recommendations"]}
        assert got == want, group


def test_feature_coverage_by_group() -> None:
    from recctl.features import empty_feature_groups, empty_group_warning, feature_coverage

    coverage = feature_coverage(
        {"confidence_score": 1.0, "roi_potential": 0.5, "provider_match": 0.0, "f7": 1.0}
    )
    assert coverage == {
        "recommendation": {"features": 2, "coverage": 0.75, "empty_features": []},
        "cross": {"features": 1, "coverage": 0.0, "empty_features": ["provider_match"]},
        "other": {"features": 1, "coverage": 1.0, "empty_features": []},
    }
    assert empty_feature_groups(coverage) == ["cross"]
    assert empty_group_warning("cross", coverage).startswith("all 1 cross features are missing in every row")
