"""Tests of the data simulator behind ``recctl sample`` (recctl/sample.py)."""

from __future__ import annotations

import gzip
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recctl import sample
from recctl.records import USUAL_CATEGORIES
from recctl.sample import SampleSummary, generate_sample

START = datetime(2025, 9, 1, tzinfo=UTC)
DAYS = 60
FILES = ("assessments.ndjson", "recommendations.ndjson", "interactions.ndjson", "impressions.ndjson")
INTERACTION_TYPES = {"view", "click", "implement", "save", "share", "rate", "dismiss"}
CATEGORIES = set(USUAL_CATEGORIES)
PRIORITY_KEYS = ["cost_optimization", "security", "performance", "scalability", "reliability", "compliance"]
ISO_SECONDS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"
ISO_MILLISECONDS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleSummary]:
    """The default data set (300 assessments, seed 0), generated once for the module."""
    out_dir = tmp_path_factory.mktemp("sample")
    return out_dir, generate_sample(out_dir, assessments=300, seed=0)


@pytest.fixture(scope="module")
def frames(sample_dir: tuple[Path, SampleSummary]) -> dict[str, pl.DataFrame]:
    out_dir, _ = sample_dir
    return {name.split(".")[0]: pl.read_ndjson(out_dir / name, infer_schema_length=None) for name in FILES}


@pytest.fixture(scope="module")
def interactions(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Interactions with the normalised type, the assessment id from either place, and the default label."""
    rows = frames["interactions"].with_columns(
        kind=pl.col("interaction_type").str.strip_chars().str.to_lowercase(),
        any_assessment_id=pl.coalesce("assessment_id", pl.col("context").struct.field("assessment_id")),
        position=pl.col("context").struct.field("position"),
    )
    label = (
        pl.when(pl.col("kind") == "implement")
        .then(1.0)
        .when(pl.col("kind") == "save")
        .then(0.8)
        .when(pl.col("kind") == "rate")
        .then(pl.col("interaction_value") / 5)
        .when(pl.col("kind") == "share")
        .then(0.6)
        .when(pl.col("kind") == "click")
        .then(0.4)
        .when(pl.col("kind") == "view")
        .then(0.1 + 0.3 * pl.col("interaction_value").clip(upper_bound=60) / 60)
        .otherwise(0.0)
    )
    return rows.with_columns(label=label)


@pytest.fixture(scope="module")
def pairs(frames: dict[str, pl.DataFrame], interactions: pl.DataFrame) -> pl.DataFrame:
    """One row per (assessment, recommendation) with the pair label (0 when never touched)."""
    per_recommendation = interactions.group_by("recommendation_id").agg(
        pl.col("label").max(),
        dismissed=(pl.col("kind") == "dismiss").any(),
        implemented=(pl.col("kind") == "implement").any(),
    )
    per_recommendation = per_recommendation.with_columns(
        label=pl.when(pl.col("dismissed") & (pl.col("label") < 0.4)).then(0.0).otherwise(pl.col("label"))
    )
    return (
        frames["recommendations"]
        .join(frames["assessments"], on="assessment_id")
        .join(per_recommendation, on="recommendation_id", how="left")
        .with_columns(pl.col("label").fill_null(0.0), pl.col("implemented").fill_null(False))
        .with_columns(
            category_weight=pl.coalesce(
                [
                    pl.when(pl.col("category") == key).then(pl.col("priorities").struct.field(key))
                    for key in PRIORITY_KEYS
                ]
            )
        )
    )


def _generate_bytes(out_dir: Path, **kwargs: object) -> list[bytes]:
    summary = generate_sample(out_dir, **kwargs)  # type: ignore[arg-type]
    return [path.read_bytes() for path in summary.paths]


# --- determinism, files and summary -------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_another_seed_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sample, "BLOCK_ASSESSMENTS", 40)  # several blocks, as a large run has
    first = _generate_bytes(tmp_path / "a", assessments=100, seed=7)
    again = _generate_bytes(tmp_path / "b", assessments=100, seed=7)
    other = _generate_bytes(tmp_path / "c", assessments=100, seed=8)
    assert first == again
    assert all(len(content) > 0 for content in first)
    assert all(mine != theirs for mine, theirs in zip(first, other, strict=True))


def test_gzip_output_is_reproducible_and_holds_the_same_lines(tmp_path: Path) -> None:
    plain = _generate_bytes(tmp_path / "plain", assessments=30, seed=2)
    packed = _generate_bytes(tmp_path / "gz", assessments=30, seed=2, compress=True)
    packed_again = _generate_bytes(tmp_path / "gz2", assessments=30, seed=2, compress=True)
    assert sorted(p.name for p in (tmp_path / "gz").iterdir()) == sorted(f"{name}.gz" for name in FILES)
    assert packed == packed_again
    assert [gzip.decompress(content) for content in packed] == plain


def test_summary_counts_match_the_files(sample_dir: tuple[Path, SampleSummary]) -> None:
    out_dir, summary = sample_dir
    assert summary.paths == tuple(out_dir / name for name in FILES)
    line_counts = [path.read_bytes().count(b"\n") for path in summary.paths]
    assert line_counts == [
        summary.assessments,
        summary.recommendations,
        summary.interactions,
        summary.impressions,
    ]
    assert summary.assessments == 300 and summary.policy == "deterministic" and summary.truth_path is None
    assessments = pl.read_ndjson(summary.assessments_path)
    assert assessments["user_id"].n_unique() == summary.users
    # Default size: a few thousand interactions, one served list per session, a few MB.
    assert 4_000 <= summary.interactions <= 12_000
    assert 1.5 * summary.assessments < summary.impressions < 3.5 * summary.assessments
    assert sum(path.stat().st_size for path in summary.paths) < 7_500_000
    as_json = summary.as_json()
    assert as_json["impressions"] == summary.impressions
    assert as_json["impressions_path"] == str(out_dir / "impressions.ndjson")
    # Nothing but the four files (temporary files renamed into place).
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(FILES)


def test_existing_files_are_replaced(tmp_path: Path) -> None:
    generate_sample(tmp_path, assessments=40, seed=1)
    summary = generate_sample(tmp_path, assessments=5, seed=1)
    assert summary.assessments_path.read_bytes().count(b"\n") == 5


def test_a_failed_run_leaves_the_previous_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sample, "BLOCK_ASSESSMENTS", 10)
    before = _generate_bytes(tmp_path, assessments=12, seed=4)

    def interrupt(done: int, total: int) -> None:
        if done >= 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_sample(tmp_path, assessments=30, seed=5, progress=interrupt)
    assert [(tmp_path / name).read_bytes() for name in FILES] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)  # no temporary files left


def test_progress_reports_every_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sample, "BLOCK_ASSESSMENTS", 10)
    calls: list[tuple[int, int]] = []
    generate_sample(tmp_path, assessments=25, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 25), (10, 25), (20, 25), (25, 25)]


def test_zero_assessments_writes_empty_files(tmp_path: Path) -> None:
    summary = generate_sample(tmp_path, assessments=0)
    counts = (summary.assessments, summary.recommendations, summary.interactions, summary.impressions)
    assert counts == (0, 0, 0, 0) and summary.users == 0
    assert [path.read_bytes() for path in summary.paths] == [b"", b"", b"", b""]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"assessments": -1},
        {"seed": -3},
        {"days": 0},
        {"recommendations_per_assessment": (0, 5)},
        {"recommendations_per_assessment": (8, 6)},
        {"recommendations_per_assessment": (5, 101)},
        {"sessions_per_assessment": (0, 2)},
        {"sessions_per_assessment": (2, 5)},
        {"explore": "epsilon-greedy"},
        {"temperature": 0.0},
        {"temperature": float("nan")},
        {"examination": "flat"},
        {"examination": [1.0, 0.0]},
        {"examination": []},
    ],
)
def test_out_of_range_arguments_are_refused(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        generate_sample(tmp_path / "out", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


# --- every row is valid under the record rules --------------------------------------------


def test_assessments_follow_the_record_rules(frames: dict[str, pl.DataFrame]) -> None:
    assessments = frames["assessments"]
    assert assessments.columns == [
        "assessment_id",
        "user_id",
        "company_size",
        "industry",
        "monthly_budget",
        "current_monthly_spend",
        "priorities",
        "compliance_requirements",
        "cloud_providers",
        "workload_types",
        "created_at",
    ]
    assert assessments.null_count().sum_horizontal().item() == 0
    assert assessments["assessment_id"].is_unique().all()
    assert assessments["assessment_id"].str.contains(r"^asm-\d{6}$").all()
    assert assessments["user_id"].str.contains(r"^user-\d{4,}$").all()
    assert set(assessments["company_size"]) <= {"startup", "small", "medium", "large", "enterprise"}
    assert (assessments["monthly_budget"] >= 0).all() and (assessments["current_monthly_spend"] >= 0).all()
    weights = assessments["priorities"].struct.unnest()
    assert weights.columns == PRIORITY_KEYS
    assert ((weights.to_numpy() >= 0) & (weights.to_numpy() <= 1)).all()
    assert weights.to_numpy().std() > 0.1
    assert set(assessments["cloud_providers"].explode()) <= {"aws", "azure", "gcp"}
    assert (assessments["cloud_providers"].list.len() >= 1).all()
    assert set(assessments["compliance_requirements"].explode().drop_nulls()) <= {
        "SOC2",
        "HIPAA",
        "PCI-DSS",
        "GDPR",
        "ISO27001",
    }
    assert (assessments["workload_types"].list.len() >= 1).all()
    created = assessments["created_at"]
    assert created.str.contains(ISO_SECONDS).all()
    created_at = created.str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC")
    assert created_at.min() >= START and created_at.max() < START + timedelta(days=DAYS)
    owned = assessments.group_by("user_id").len()["len"]
    assert owned.min() >= 1 and owned.max() <= 3 and owned.max() > 1


def test_recommendations_follow_the_record_rules(frames: dict[str, pl.DataFrame]) -> None:
    recommendations = frames["recommendations"]
    assert recommendations.null_count().sum_horizontal().item() == 0
    assert recommendations["recommendation_id"].is_unique().all()
    assert recommendations["recommendation_id"].str.contains(r"^rec-\d{6}-\d{2}$").all()
    assert set(recommendations["assessment_id"]) == set(frames["assessments"]["assessment_id"])
    per_assessment = recommendations.group_by("assessment_id").len()["len"]
    assert per_assessment.min() >= 6 and per_assessment.max() <= 14
    assert set(recommendations["category"]) == CATEGORIES
    confidence = recommendations["confidence_score"]
    assert ((confidence > 0) & (confidence < 1)).all()
    assert (confidence.round(4) == confidence).all()
    assert confidence.n_unique() > 1000
    assert set(recommendations["priority"]) == {"critical", "high", "medium", "low"}
    for column in ("implementation_effort", "risk_level"):
        assert set(recommendations[column]) == {"low", "medium", "high"}
    assert set(recommendations["cloud_provider"]) == {"aws", "azure", "gcp", "multi", "other"}
    assert recommendations["roi_potential"].is_finite().all()
    for column in ("estimated_monthly_savings", "estimated_cost", "implementation_time_days"):
        assert (recommendations[column] >= 0).all()
    for column in ("services", "tags", "benefits", "risks"):
        assert recommendations[column].dtype == pl.List(pl.String)
        assert (recommendations[column].list.len() >= 1).all()
    assert (recommendations["title"].str.len_chars() > 5).all()
    assert (recommendations["description"].str.len_chars() < 200).all()
    assert recommendations["created_at"].str.contains(ISO_SECONDS).all()


def test_interactions_follow_the_record_rules(
    sample_dir: tuple[Path, SampleSummary], frames: dict[str, pl.DataFrame], interactions: pl.DataFrame
) -> None:
    out_dir, _ = sample_dir
    raw = (out_dir / "interactions.ndjson").read_bytes()
    assert b"null" not in raw  # optional fields are left out, never written as null
    assert set(interactions["kind"]) == INTERACTION_TYPES
    catalog_ids = frames["recommendations"]["recommendation_id"].implode()
    assert interactions["recommendation_id"].is_in(catalog_ids).all()

    event_ids = interactions["event_id"].drop_nulls()
    assert event_ids.str.contains(r"^evt-[0-9a-f]{16}$").all() and event_ids.is_unique().all()
    assert 0.6 < len(event_ids) / interactions.height < 0.8

    top_level = interactions["assessment_id"].is_not_null()
    in_context = interactions["context"].struct.field("assessment_id").is_not_null()
    assert (top_level ^ in_context).all()  # exactly one place per row
    assert 0.4 < top_level.mean() < 0.6  # type: ignore[operator]
    owners = (
        frames["recommendations"]
        .join(frames["assessments"], on="assessment_id")
        .select("recommendation_id", owner_assessment="assessment_id", owner_user="user_id")
    )
    checked = interactions.join(owners, on="recommendation_id")
    assert (checked["any_assessment_id"] == checked["owner_assessment"]).all()
    assert (checked["user_id"] == checked["owner_user"]).all()

    untidy = interactions["interaction_type"] != interactions["kind"]
    assert 0.005 < untidy.mean() < 0.05  # type: ignore[operator]

    value = interactions["interaction_value"]
    is_view, is_rate = interactions["kind"] == "view", interactions["kind"] == "rate"
    assert value.filter(is_view).is_not_null().all() and (value.filter(is_view) >= 0).all()
    stars = value.filter(is_rate)
    assert stars.is_not_null().all() and stars.is_in([1.0, 2.0, 3.0, 4.0, 5.0]).all()
    assert value.filter(~is_view & ~is_rate).is_null().all()
    assert b'"interaction_value":4,' in raw or b'"interaction_value":3,' in raw  # stars are integers

    timestamps = interactions["timestamp"]
    assert timestamps.str.contains(ISO_MILLISECONDS).all()
    moments = timestamps.str.to_datetime("%Y-%m-%dT%H:%M:%S%.3fZ", time_zone="UTC")
    assert moments.min() >= START and moments.max() < START + timedelta(days=DAYS)
    assert moments.dt.millisecond().n_unique() > 100  # real millisecond precision
    # Every interaction comes after the recommendation it is about was created.
    timed = interactions.join(
        frames["recommendations"].select("recommendation_id", created_at="created_at"), on="recommendation_id"
    ).select(
        event=pl.col("timestamp").str.to_datetime("%Y-%m-%dT%H:%M:%S%.3fZ", time_zone="UTC"),
        created=pl.col("created_at").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC"),
    )
    assert timed.height == interactions.height
    shown_after_creation = timed["event"] > timed["created"]
    assert shown_after_creation.all()

    context = interactions["context"].struct.unnest()
    assert context["session_id"].is_not_null().all()
    assert (context["position"] >= 0).all()
    # The deterministic policy put every item where it was with probability 1.
    assert (context["propensity"] == 1.0).all()
    assert 0.75 < context["request_id"].is_not_null().mean() < 0.85  # type: ignore[operator]
    assert set(context["model_version"]) == {"confidence-v1"} and set(context["variant"]) == {"control"}
    sessions = interactions.group_by("any_assessment_id").agg(
        pl.col("context").struct.field("session_id").n_unique().alias("sessions")
    )["sessions"]
    assert sessions.min() >= 1 and sessions.max() <= 4 and sessions.mean() > 1.5  # type: ignore[operator]


def test_position_is_the_rank_by_confidence(
    interactions: pl.DataFrame, frames: dict[str, pl.DataFrame]
) -> None:
    ranked = frames["recommendations"].with_columns(
        expected=pl.col("confidence_score").rank("ordinal", descending=True).over("assessment_id") - 1
    )
    shown = interactions.select("recommendation_id", "position").unique()
    joined = shown.join(ranked, on="recommendation_id")
    assert joined.height == shown.height
    # Ties in confidence are broken by catalog order; none should change the rank here.
    assert (joined["position"] == joined["expected"]).all()


def test_every_row_passes_recctl_ingest_validation(sample_dir: tuple[Path, SampleSummary]) -> None:
    """The generated files go through recctl's own ingest validation without a single reject."""
    from recctl import formats, labels, records
    from recctl.records.schema import KINDS

    out_dir, summary = sample_dir
    policy = labels.load_policy(None)
    now = START + timedelta(days=DAYS + 1)
    checked = [
        ("assessments", summary.assessments),
        ("recommendations", summary.recommendations),
        ("interactions", summary.interactions),
        ("impressions", summary.impressions),
    ]
    for kind, expected in checked:
        valid, rejected, event_ids = 0, 0, []
        for chunk in formats.read_records(str(out_dir / f"{kind}.ndjson")):
            result = records.validate(kind, chunk.rows, policy, now=now)
            # A served list is stored as one row per item: count lists by their key.
            valid += (
                result.records[KINDS[kind].key].n_unique() if KINDS[kind].items else result.records.height
            )
            rejected += result.rejects.height
            if kind == "interactions":
                event_ids.append(result.records["event_id"])
        assert (valid, rejected) == (expected, 0), kind
        if event_ids:  # given and derived ids never collide: re-ingest adds nothing, ingest loses nothing
            assert pl.concat(event_ids).is_unique().all()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    assessments=st.integers(1, 25),
    seed=st.integers(0, 2**32),
    start=st.datetimes(datetime(2001, 1, 1), datetime(2030, 1, 1)),
    days=st.integers(1, 90),
    smallest_list=st.integers(1, 20),
    extra_list=st.integers(0, 20),
    sessions=st.tuples(st.integers(1, 4), st.integers(0, 3)),
    explore=st.sampled_from([None, "plackett-luce"]),
)
def test_any_arguments_keep_every_row_inside_the_window(
    assessments: int,
    seed: int,
    start: datetime,
    days: int,
    smallest_list: int,
    extra_list: int,
    sessions: tuple[int, int],
    explore: str | None,
) -> None:
    first_sessions = sessions[0]
    with tempfile.TemporaryDirectory() as out:
        summary = generate_sample(
            Path(out),
            assessments=assessments,
            seed=seed,
            start=start,  # naive: taken as UTC
            days=days,
            recommendations_per_assessment=(smallest_list, smallest_list + extra_list),
            sessions_per_assessment=(first_sessions, min(4, first_sessions + sessions[1])),
            explore=explore,
        )
        lines = summary.interactions_path.read_text().splitlines()
        items = _impression_items(summary.impressions_path)
        recommendations = pl.read_ndjson(summary.recommendations_path)
        assessments_frame = pl.read_ndjson(summary.assessments_path)
    assert summary.assessments == assessments == assessments_frame.height
    per_list = recommendations.group_by("assessment_id").len()["len"]
    assert per_list.min() >= smallest_list and per_list.max() <= smallest_list + extra_list
    window_start = start.replace(tzinfo=UTC)
    window_end = window_start + timedelta(days=days)
    stamps = [json.loads(line)["timestamp"] for line in lines[:50]]
    stamps += assessments_frame["created_at"].to_list() + recommendations["created_at"].to_list()
    stamps += items["timestamp"].unique().to_list()
    # Every session is served its whole list, with propensities in (0, 1] (estimated past 14 items).
    _check_served_lists(items, recommendations, summary.impressions)
    for stamp in stamps:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        assert window_start <= moment < window_end
    if lines:
        moments = (
            pl.Series(lines)
            .str.json_path_match("$.timestamp")
            .str.to_datetime("%Y-%m-%dT%H:%M:%S%.3fZ", time_zone="UTC")
        )
        assert moments.min() >= window_start and moments.max() < window_end


# --- the simulation: position bias and a signal beyond confidence --------------------------------


def test_clicks_show_position_bias_and_views_do_not(interactions: pl.DataFrame) -> None:
    # Every list has at least 6 items and every first screen at least 6 slots, so slots 0 and 5
    # are on screen (viewed) equally often; only clicks show that users look at the top more.
    views = interactions.filter(pl.col("kind") == "view")["position"]
    assert int((views == 0).sum()) == int((views == 5).sum()) > 0
    clicks = interactions.filter(pl.col("kind") == "click")["position"]
    assert int((clicks == 0).sum()) > 1.5 * int((clicks == 5).sum()) > 0


def test_confidence_is_a_noisy_view_of_what_users_value(
    pairs: pl.DataFrame, interactions: pl.DataFrame, frames: dict[str, pl.DataFrame]
) -> None:
    # Pair labels: confidence helps (it also decided the position, hence the exposure) but is far from 1.
    label_correlation = pairs.select(pl.corr("confidence_score", "label", method="spearman")).item()
    assert 0.1 < label_correlation < 0.7
    # Clicks per view do not depend on the position, only on the hidden utility: confidence must be
    # related to them, but weakly (about 0.2 here; about 0.6 if confidence were the utility, 0 if random).
    click_through = (
        interactions.group_by("recommendation_id")
        .agg(views=(pl.col("kind") == "view").sum(), clicks=(pl.col("kind") == "click").sum())
        .filter(pl.col("views") > 0)
        .join(frames["recommendations"], on="recommendation_id")
        .select(pl.corr("confidence_score", pl.col("clicks") / pl.col("views"), method="spearman"))
        .item()
    )
    assert 0.12 < click_through < 0.45


def test_users_implement_more_of_what_they_prioritise(pairs: pl.DataFrame) -> None:
    weighted = pairs.filter(pl.col("category_weight").is_not_null())
    high = weighted.filter(pl.col("category_weight") >= 0.7)["implemented"].mean()
    low = weighted.filter(pl.col("category_weight") <= 0.3)["implemented"].mean()
    assert high > 2 * low  # type: ignore[operator]


def test_small_companies_avoid_high_effort(pairs: pl.DataFrame) -> None:
    small = pairs.filter(pl.col("company_size").is_in(["startup", "small"]))
    by_effort = small.group_by("implementation_effort").agg(pl.col("label").mean())
    mean_label = dict(by_effort.iter_rows())
    assert mean_label["low"] > 1.3 * mean_label["high"]


def _ndcg_at(frame: pl.DataFrame, score: str, k: int) -> float:
    """Mean NDCG@k over assessments (gain 2^grade - 1; a group with no relevant item scores 1)."""
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    values = []
    for _, group in frame.group_by("assessment_id"):
        grades = group["grade"].to_numpy()
        shown = grades[np.argsort(-group[score].to_numpy(), kind="stable")][:k]
        best = np.sort(grades)[::-1][:k]
        ideal = ((2.0**best - 1) * discount[: len(best)]).sum()
        values.append(1.0 if ideal == 0 else ((2.0**shown - 1) * discount[: len(shown)]).sum() / ideal)
    return float(np.mean(values))


def test_a_ranker_trained_on_interactions_beats_confidence_order(pairs: pl.DataFrame) -> None:
    """A model trained on the sample beats the confidence baseline on held-out lists."""
    import lightgbm

    sizes = {"startup": 0, "small": 1, "medium": 2, "large": 3, "enterprise": 4}
    data = pairs.sort("assessment_id", "recommendation_id").with_columns(
        grade=(4 * pl.col("label") + 0.5).floor().cast(pl.Int32),
        category_code=pl.col("category").cast(pl.Categorical).to_physical(),
        effort=pl.col("implementation_effort").replace_strict({"low": 0, "medium": 1, "high": 2}),
        size=pl.col("company_size").replace_strict(sizes),
        provider_match=pl.col("cloud_providers").list.contains(pl.col("cloud_provider")).cast(pl.Int8),
        compliance_overlap=pl.col("tags").list.set_intersection("compliance_requirements").list.len(),
        savings_share=pl.col("estimated_monthly_savings") / pl.col("current_monthly_spend"),
        confidence_rank=pl.col("confidence_score").rank("ordinal", descending=True).over("assessment_id"),
        **{key: pl.col("priorities").struct.field(key) for key in PRIORITY_KEYS},
    )
    features = [
        "confidence_score",
        "confidence_rank",
        "roi_potential",
        "category_code",
        "category_weight",
        "effort",
        "size",
        "provider_match",
        "compliance_overlap",
        "savings_share",
        *PRIORITY_KEYS,
    ]
    held_out_ids = data["assessment_id"].unique().sort().sample(fraction=0.25, seed=1).implode()
    held_out = data.filter(pl.col("assessment_id").is_in(held_out_ids))
    train = data.filter(~pl.col("assessment_id").is_in(held_out_ids))
    group_sizes = train.group_by("assessment_id", maintain_order=True).len()["len"].to_numpy()
    model = lightgbm.train(
        {"objective": "lambdarank", "verbose": -1, "learning_rate": 0.05, "num_leaves": 15, "seed": 0},
        lightgbm.Dataset(train[features].to_numpy(), train["grade"].to_numpy(), group=group_sizes),
        num_boost_round=150,
    )
    held_out = held_out.with_columns(model_score=pl.Series(model.predict(held_out[features].to_numpy())))
    model_ndcg = _ndcg_at(held_out, "model_score", 5)
    baseline_ndcg = _ndcg_at(held_out, "confidence_score", 5)
    assert model_ndcg > baseline_ndcg + 0.03, (model_ndcg, baseline_ndcg)


def test_without_overwrite_a_non_empty_directory_is_refused_before_any_work(tmp_path: Path) -> None:
    from recctl.errors import OutputExistsError

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="is not empty"):
        generate_sample(tmp_path, assessments=5, overwrite=False)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert generate_sample(tmp_path / "new", assessments=5, overwrite=False).assessments == 5


# --- impressions: the served lists, and what links interactions to them --------------------------


def _impression_items(path: Path) -> pl.DataFrame:
    """One row per served item, the list's fields repeated (as recctl stores impressions)."""
    lists = pl.read_ndjson(path, infer_schema_length=None)
    return lists.explode("items").with_columns(pl.col("items").struct.unnest()).drop("items")


@pytest.fixture(scope="module")
def explored(tmp_path_factory: pytest.TempPathFactory) -> tuple[SampleSummary, dict[str, pl.DataFrame]]:
    """A sample served by Plackett-Luce around the confidence order, with its truth."""
    out_dir = tmp_path_factory.mktemp("explored")
    summary = generate_sample(
        out_dir, assessments=300, seed=3, explore="plackett-luce", truth=out_dir / "truth" / "truth.ndjson"
    )
    assert summary.truth_path is not None
    frames = {
        "recommendations": pl.read_ndjson(summary.recommendations_path),
        "interactions": pl.read_ndjson(summary.interactions_path, infer_schema_length=None),
        "items": _impression_items(summary.impressions_path),
        "truth": pl.read_ndjson(summary.truth_path),
    }
    return summary, frames


def _check_served_lists(items: pl.DataFrame, recommendations: pl.DataFrame, lists: int) -> None:
    assert items["request_id"].n_unique() == lists
    assert items.null_count().sum_horizontal().item() == 0
    assert items["request_id"].str.contains(r"^req-\d{6}-[1-4]$").all()
    assert items["timestamp"].str.contains(ISO_MILLISECONDS).all()
    # Every list shows all of its assessment's recommendations, each once, at positions 0..n-1.
    catalog = recommendations.group_by("assessment_id").agg(catalog=pl.col("recommendation_id").sort())
    per_list = (
        items.group_by("request_id", "assessment_id")
        .agg(shown=pl.col("recommendation_id").sort(), positions=pl.col("position").sort(), n=pl.len())
        .join(catalog, on="assessment_id")
    )
    assert per_list.height == lists
    assert (per_list["shown"] == per_list["catalog"]).all()
    assert per_list.select(pl.col("positions") == pl.int_ranges(0, "n")).to_series().all()
    for column in ("propensity", "prefix_propensity"):
        assert ((items[column] > 0) & (items[column] <= 1)).all()


def test_impressions_are_the_deterministic_lists_served(
    sample_dir: tuple[Path, SampleSummary], frames: dict[str, pl.DataFrame], interactions: pl.DataFrame
) -> None:
    out_dir, summary = sample_dir
    raw = (out_dir / "impressions.ndjson").read_bytes()
    assert b"null" not in raw
    items = _impression_items(out_dir / "impressions.ndjson")
    _check_served_lists(items, frames["recommendations"], summary.impressions)
    assert set(items["policy"]) == {"deterministic"}
    assert (items["propensity"] == 1.0).all() and (items["prefix_propensity"] == 1.0).all()
    assert set(items["model_version"]) == {"confidence-v1"} and set(items["variant"]) == {"control"}
    # In confidence order, the order the interactions' positions give.
    ranked = frames["recommendations"].select(
        "recommendation_id",
        expected=pl.col("confidence_score").rank("ordinal", descending=True).over("assessment_id") - 1,
    )
    assert (
        (items.join(ranked, on="recommendation_id").select(pl.col("position") == pl.col("expected")))
        .to_series()
        .all()
    )
    # The list belongs to the assessment's user; its session is the one its interactions name.
    owners = frames["assessments"].select("assessment_id", owner="user_id")
    assert (
        (items.join(owners, on="assessment_id").select(pl.col("user_id") == pl.col("owner")))
        .to_series()
        .all()
    )
    sessions = set(interactions["context"].struct.field("session_id"))
    assert sessions <= set(items["session_id"])


def _linked(interactions: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """Interactions that name a list, joined to that list's row for their recommendation."""
    named = interactions.with_columns(
        request_id=pl.col("context").struct.field("request_id"),
        session_id=pl.col("context").struct.field("session_id"),
        position=pl.col("context").struct.field("position"),
        propensity=pl.col("context").struct.field("propensity"),
    ).filter(pl.col("request_id").is_not_null())
    return named.join(
        items.select(
            "request_id",
            "recommendation_id",
            list_timestamp="timestamp",
            list_session="session_id",
            list_position="position",
            list_propensity="propensity",
        ),
        on=["request_id", "recommendation_id"],
        how="left",
    )


def test_every_named_list_holds_the_interaction_and_was_served_before_it(
    explored: tuple[SampleSummary, dict[str, pl.DataFrame]],
) -> None:
    _, frames = explored
    interactions, items = frames["interactions"], frames["items"]
    linked = _linked(interactions, items)
    assert 0.75 < linked.height / interactions.height < 0.85
    assert linked["list_position"].is_not_null().all()  # the list contains the recommendation
    served = linked["list_timestamp"].str.to_datetime(time_zone="UTC")
    happened = linked["timestamp"].str.to_datetime(time_zone="UTC")
    assert (served <= happened).all()
    assert (linked["session_id"] == linked["list_session"]).all()
    assert (linked["position"] == linked["list_position"]).all()
    assert (linked["propensity"] == linked["list_propensity"]).all()


def test_interactions_without_a_request_id_are_linked_by_time_to_their_own_list(
    explored: tuple[SampleSummary, dict[str, pl.DataFrame]],
) -> None:
    """The rule for an interaction without a request_id (the newest list of its assessment, at or
    before it, that holds its recommendation) finds its own session's list almost always."""
    _, frames = explored
    lists = (
        frames["items"]
        .select(
            "request_id",
            "assessment_id",
            "session_id",
            served=pl.col("timestamp").str.to_datetime(time_zone="UTC"),
        )
        .unique()
        .sort("served")
    )
    unnamed = (
        frames["interactions"]
        .filter(pl.col("context").struct.field("request_id").is_null())
        .select(
            assessment_id=pl.coalesce("assessment_id", pl.col("context").struct.field("assessment_id")),
            session_id=pl.col("context").struct.field("session_id"),
            at=pl.col("timestamp").str.to_datetime(time_zone="UTC"),
        )
        .sort("at")
    )
    assert unnamed.height > 0
    newest = unnamed.join_asof(
        lists.rename({"session_id": "list_session"}),
        left_on="at",
        right_on="served",
        by="assessment_id",
        check_sortedness=False,
    )
    assert newest["list_session"].is_not_null().all()
    assert (newest["list_session"] == newest["session_id"]).mean() > 0.97  # type: ignore[operator]


def test_views_are_page_views_with_one_dwell_time_per_page(
    interactions: pl.DataFrame, frames: dict[str, pl.DataFrame]
) -> None:
    views = interactions.filter(pl.col("kind") == "view").with_columns(
        session_id=pl.col("context").struct.field("session_id")
    )
    list_size = frames["recommendations"].group_by("assessment_id").len("n")
    pages = (
        views.group_by("session_id", "any_assessment_id")
        .agg(
            positions=pl.col("position").sort(),
            dwell=pl.col("interaction_value").n_unique(),
            seconds=pl.col("interaction_value").first(),
            slots=pl.len(),
        )
        .join(list_size, left_on="any_assessment_id", right_on="assessment_id")
    )
    assert (pages["dwell"] == 1).all()  # the same dwell time for every item on a page
    # The first slots, none skipped.
    assert pages.select(pl.col("positions") == pl.int_ranges(0, "slots")).to_series().all()
    short = pages.filter(pl.col("n") <= 6)
    assert (short["slots"] == short["n"]).all()  # a short list fits on the first screen
    assert pages["slots"].is_between(6, 10).all()
    assert pages["slots"].filter(pages["n"] >= 10).n_unique() == 5  # 6..10 slots, whatever the list
    assert pages["seconds"].n_unique() > 200  # a dwell time per page, not one for all


def test_explored_lists_carry_their_exact_propensities(
    explored: tuple[SampleSummary, dict[str, pl.DataFrame]],
) -> None:
    from recctl import propensities

    summary, frames = explored
    items, recommendations = frames["items"], frames["recommendations"]
    _check_served_lists(items, recommendations, summary.impressions)
    assert summary.policy == "plackett-luce" and set(items["policy"]) == {"plackett-luce"}
    # Randomised: most lists differ from the confidence order, yet stay close to it.
    ranked = recommendations.select(
        "recommendation_id",
        confidence_rank=pl.col("confidence_score").rank("ordinal", descending=True).over("assessment_id") - 1,
    )
    joined = items.join(ranked, on="recommendation_id")
    moved = joined.group_by("request_id").agg((pl.col("position") != pl.col("confidence_rank")).any())
    assert moved["position"].mean() > 0.8  # type: ignore[operator]
    assert joined.select(pl.corr("position", "confidence_rank", method="spearman")).item() > 0.35

    checked = 0
    for (assessment_id,), served in joined.sort("request_id", "position").group_by("assessment_id"):
        catalog = recommendations.filter(pl.col("assessment_id") == assessment_id).sort("recommendation_id")
        logits = (catalog["confidence_score"].to_numpy() / sample.DEFAULT_TEMPERATURE)[None, :]
        marginals = propensities.marginal_propensities(logits, exact_up_to=14)[0]
        # What a list position can hold sums to 1 over the assessment's items, and so does each item.
        np.testing.assert_allclose(marginals.sum(axis=0), 1.0, atol=1e-9)
        np.testing.assert_allclose(marginals.sum(axis=1), 1.0, atol=1e-9)
        index = {rid: i for i, rid in enumerate(catalog["recommendation_id"])}
        for _, one_list in served.group_by("request_id"):
            item = np.array([index[rid] for rid in one_list["recommendation_id"]])
            position = one_list["position"].to_numpy()
            np.testing.assert_allclose(
                one_list["propensity"].to_numpy(), marginals[item, position], rtol=1e-5
            )
            prefix = propensities.prefix_propensities(logits, item[np.argsort(position)][None, :])[0]
            np.testing.assert_allclose(one_list["prefix_propensity"].to_numpy(), prefix[position], rtol=1e-5)
            checked += 1
    assert checked == summary.impressions


def test_explored_lists_are_drawn_as_their_propensities_say(
    explored: tuple[SampleSummary, dict[str, pl.DataFrame]],
) -> None:
    """The lists follow the distribution their propensities describe: for the confidence leader of
    each assessment, E[1{served first} / P(first)] = 1 per list (the inverse-propensity identity)."""
    _, frames = explored
    top = frames["items"].join(
        frames["recommendations"]
        .filter(pl.col("confidence_score") == pl.col("confidence_score").max().over("assessment_id"))
        .select("recommendation_id"),
        on="recommendation_id",
    )
    first = top.filter(pl.col("position") == 0)
    assert 0.15 < first.height / top.height < 0.6  # more often than at random (1 in 6 to 14), not always
    identity = first["propensity"].pow(-1).sum() / top.height
    assert 0.85 < identity < 1.15


def test_the_policy_propensity_never_depends_on_examination(tmp_path: Path) -> None:
    default = generate_sample(tmp_path / "a", assessments=40, seed=9, explore="plackett-luce")
    cliff = generate_sample(
        tmp_path / "b", assessments=40, seed=9, explore="plackett-luce", examination="cliff"
    )
    assert default.impressions_path.read_bytes() == cliff.impressions_path.read_bytes()
    assert default.interactions_path.read_bytes() != cliff.interactions_path.read_bytes()


# --- the truth and the examination curve -----------------------------------------------------------


def test_truth_gives_every_recommendation_its_utility_and_grade(
    explored: tuple[SampleSummary, dict[str, pl.DataFrame]],
) -> None:
    summary, frames = explored
    truth, recommendations = frames["truth"], frames["recommendations"]
    assert truth.columns == ["recommendation_id", "assessment_id", "utility", "grade"]
    assert truth.height == recommendations.height
    assert set(truth["recommendation_id"]) == set(recommendations["recommendation_id"])
    assert truth.select(pl.corr("utility", "grade", method="spearman")).item() > 0.95
    by_grade = (
        truth.group_by("grade").agg(low=pl.col("utility").min(), high=pl.col("utility").max()).sort("grade")
    )
    assert by_grade["grade"].to_list() == [0, 1, 2, 3, 4]
    assert (by_grade["high"].head(4) < by_grade["low"].tail(4)).all()  # cut points, in order
    shares = truth["grade"].value_counts(normalize=True).sort("grade")["proportion"]
    assert (shares > 0.04).all() and (shares < 0.45).all()
    # The truth is what users act on: implemented recommendations have higher grades.
    implemented = frames["interactions"].filter(
        pl.col("interaction_type").str.strip_chars().str.to_lowercase() == "implement"
    )["recommendation_id"]
    mean_grade = truth.group_by(pl.col("recommendation_id").is_in(implemented.implode())).agg(
        pl.col("grade").mean()
    )
    grades = dict(mean_grade.iter_rows())
    assert grades[True] > grades[False] + 0.8
    # The examination curve beside it: positions 0..13, absolute and relative to slot 0.
    assert summary.truth_path is not None
    curve = json.loads(sample.truth_examination_path(summary.truth_path).read_text())
    assert curve["curve"] == "(1 + p) ** -0.6"
    assert [row["position"] for row in curve["positions"]] == list(range(14))
    expected = (1.0 + np.arange(14)) ** -0.6
    np.testing.assert_allclose([row["examination"] for row in curve["positions"]], expected)
    np.testing.assert_allclose([row["relative"] for row in curve["positions"]], expected)


def test_truth_path_naming(tmp_path: Path) -> None:
    assert sample.truth_examination_path(tmp_path / "truth.ndjson") == tmp_path / "truth.examination.json"
    assert sample.truth_examination_path(tmp_path / "truth") == tmp_path / "truth.examination.json"
    summary = generate_sample(
        tmp_path / "out", assessments=3, examination=[0.8, 0.4], truth=tmp_path / "t.ndjson"
    )
    curve = json.loads((tmp_path / "t.examination.json").read_text())
    assert [row["examination"] for row in curve["positions"]][:3] == [0.8, 0.4, 0.4]
    assert [row["relative"] for row in curve["positions"]][:3] == [1.0, 0.5, 0.5]
    assert summary.truth_path == tmp_path / "t.ndjson"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILES)  # the truth is not in --out


def test_examination_curves() -> None:
    positions = np.arange(8)
    np.testing.assert_allclose(
        sample.ExaminationCurve.parse("default").at(positions), (1.0 + positions) ** -0.6
    )
    np.testing.assert_allclose(
        sample.ExaminationCurve.parse("steep").at(positions), (1.0 + positions) ** -1.2
    )
    assert sample.ExaminationCurve.parse(" Cliff ").at(positions).tolist() == [1.0] * 4 + [0.1] * 4
    assert sample.ExaminationCurve.parse((1.0, 0.5)).at(positions).tolist() == [1.0] + [0.5] * 7
    for bad in ("flat", "1.0,x", "0.5,1.5", "0", ""):
        with pytest.raises(ValueError, match="examination"):
            sample.ExaminationCurve.parse(bad)


def _clicks_per_slot(summary: SampleSummary, slots: int) -> np.ndarray:
    clicks = (
        pl.read_ndjson(summary.interactions_path, infer_schema_length=None)
        .filter(pl.col("interaction_type").str.strip_chars().str.to_lowercase() == "click")
        .select(pl.col("context").struct.field("position"))
        .to_series()
    )
    return np.bincount(clicks.to_numpy(), minlength=slots)[:slots].astype(float)


def test_the_examination_curve_sets_the_click_rate_of_each_slot(tmp_path: Path) -> None:
    """Same seed, same lists and users: only the examination curve differs, so clicks per slot scale
    by the ratio of the curves (cliff: as many clicks at slots 0-3 as if all were examined, a tenth after)."""
    runs = {
        name: generate_sample(
            tmp_path / name, assessments=1500, seed=11, explore="plackett-luce", examination=name
        )
        for name in ("default", "steep", "cliff")
    }
    clicks = {name: _clicks_per_slot(summary, 10) for name, summary in runs.items()}
    positions = np.arange(10)
    for name in ("steep", "cliff"):
        expected = sample.ExaminationCurve.parse(name).at(positions) / (1.0 + positions) ** -0.6
        np.testing.assert_allclose(clicks[name] / clicks["default"], expected, rtol=0.25)
    cliff = clicks["cliff"]
    assert cliff[3] > 4 * cliff[4] and cliff[0] > 5 * cliff[5]
    assert clicks["default"][5] > 2 * cliff[5]
    assert clicks["steep"][0] == pytest.approx(clicks["default"][0], rel=0.05)  # slot 0 is always examined


def test_lists_past_the_exact_cap_log_monte_carlo_propensities(tmp_path: Path) -> None:
    from recctl import propensities

    summary = generate_sample(
        tmp_path, assessments=4, seed=2, recommendations_per_assessment=(15, 15), explore="plackett-luce"
    )
    items = _impression_items(summary.impressions_path).join(
        pl.read_ndjson(summary.recommendations_path).select("recommendation_id", "confidence_score"),
        on="recommendation_id",
    )
    for _, served in items.sort("recommendation_id").group_by("request_id"):
        logits = (served["confidence_score"].to_numpy() / sample.DEFAULT_TEMPERATURE)[None, :]
        exact = propensities.marginal_propensities(logits, exact_up_to=15)[0]
        logged = served["propensity"].to_numpy()
        # 2,000 draws: a standard error of at most 0.011, floored at 1 / 2000 where no draw placed it.
        np.testing.assert_allclose(logged, exact[np.arange(15), served["position"].to_numpy()], atol=0.05)
        assert (logged >= 1 / 2000).all()
