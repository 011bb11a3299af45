"""An export built bucket by bucket is the export built in memory: same rows, order, manifest and
fingerprint, whatever the number of buckets; both stores read their records in batches exactly once."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from builders import assessment, impression, interaction, recommendation, write_ndjson
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from recctl.bucketed_export import export_training_set
from recctl.buckets import bucket_of, fnv1a64
from recctl.dataset import TimeWindow, build_training_set, write_training_set
from recctl.errors import InputError
from recctl.ingestion import ingest

SEPTEMBER_OCTOBER = TimeWindow.resolve(since=datetime(2025, 9, 1), until=datetime(2025, 11, 1))


def test_the_hash_is_fnv_1a_64() -> None:
    # The published FNV-1a 64 test vectors (and a character beyond ASCII, hashed as its UTF-8 bytes).
    ids = pl.Series(["", "a", "foobar", "é", None])
    assert fnv1a64(ids).tolist() == [
        0xCBF29CE484222325,
        0xAF63DC4C8601EC8C,
        0x85944171F73967E8,
        fnv1a64(pl.Series([b"\xc3\xa9".decode()])).tolist()[0],
        0xCBF29CE484222325,
    ]
    assert bucket_of(ids, 7)[-1] == 0  # a null id is bucket 0


@settings(max_examples=50, deadline=None)
@given(ids=st.lists(st.text(max_size=30), max_size=60), buckets=st.integers(1, 40), cut=st.integers(0, 60))
def test_a_bucket_depends_on_the_id_alone(ids: list[str], buckets: int, cut: int) -> None:
    whole = bucket_of(pl.Series(ids, dtype=pl.String), buckets).to_list()
    pieces = [
        bucket_of(pl.Series(part, dtype=pl.String), buckets).to_list() for part in (ids[:cut], ids[cut:])
    ]
    assert whole == pieces[0] + pieces[1]
    assert all(0 <= bucket < buckets for bucket in whole)
    assert whole == [bucket_of(pl.Series([one]), buckets)[0] for one in ids]


@pytest.mark.parametrize("per_bucket", [3000])
def test_the_sample_exported_in_buckets_equals_the_export_in_memory(
    sample_store: Path, tmp_path: Path, per_bucket: int
) -> None:
    from recctl.stores import open_store

    store = open_store(str(sample_store))
    in_memory = build_training_set(store, SEPTEMBER_OCTOBER, interactions_per_bucket=per_bucket)
    exported = export_training_set(
        store, SEPTEMBER_OCTOBER, tmp_path / "one", interactions_per_bucket=per_bucket
    )
    parts = export_training_set(
        store, SEPTEMBER_OCTOBER, tmp_path / "parts", interactions_per_bucket=per_bucket, partitions=3
    )
    assert exported.manifest["buckets"] == -(-8346 // per_bucket) > 1
    assert_frame_equal(pl.read_parquet(exported.data_path), in_memory.frame)
    assert exported.manifest == in_memory.manifest  # the fingerprint, coverage and counts included
    write_training_set(in_memory, tmp_path / "memory-parts", partitions=3)
    assert parts.data_path == tmp_path / "parts" and parts.manifest == in_memory.manifest
    for name in ("part-00000.parquet", "part-00001.parquet", "part-00002.parquet"):
        assert_frame_equal(
            pl.read_parquet(tmp_path / "parts" / name), pl.read_parquet(tmp_path / "memory-parts" / name)
        )
    assert not list(tmp_path.glob("*/.recctl-export-*"))  # the scratch folder is gone


def cross_assessment_world(tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    """Twenty-four assessments whose lists also show another assessment's recommendation, interactions
    that name those lists, some with no list, some orphans: every rule that crosses buckets."""
    recommendations, assessments, lists, interactions = [], [], [], []
    for a in range(24):
        assessments.append(assessment(assessment_id=f"asm-{a}", user_id=f"user-{a % 7}"))
        for r in range(4):
            recommendations.append(
                recommendation(
                    recommendation_id=f"rec-{a}-{r}",
                    assessment_id=f"asm-{a}",
                    confidence_score=0.2 + 0.15 * r,
                    category=("security", "cost_optimization", "performance")[r % 3],
                )
            )
        other = (a * 7 + 3) % 24
        items = [f"rec-{a}-0", f"rec-{a}-1", f"rec-{other}-2", f"rec-{a}-3"]
        if a % 3 == 0:  # no lists: the assessment is one group of its catalog
            items = []
        else:
            lists.append(
                impression(
                    request_id=f"req-{a}",
                    assessment_id=f"asm-{a}",
                    user_id=f"user-{a % 7}",
                    timestamp=f"2025-09-{1 + a % 20:02d}T10:00:00Z",
                    items=[{"recommendation_id": rec, "position": i} for i, rec in enumerate(items)],
                )
            )
        for n, (rec, kind) in enumerate(
            [
                (f"rec-{a}-1", "click"),
                (f"rec-{other}-2", "implement"),
                (f"rec-{a}-0", "view"),
                (f"missing-{a}", "click"),
            ]
        ):
            context: dict[str, Any] = {"session_id": "s"}
            if items and n < 2:
                context["request_id"] = f"req-{a}"  # names the list, also for the other assessment's item
            interactions.append(
                interaction(
                    event_id=f"e-{a}-{n}",
                    recommendation_id=rec,
                    user_id=f"user-{a % 7}",
                    assessment_id=None,
                    interaction_type=kind,
                    timestamp=f"2025-09-{1 + a % 20:02d}T10:{10 + n:02d}:00Z",
                    context=context,
                )
            )
    return {
        "assessments": assessments,
        "recommendations": recommendations,
        "impressions": lists,
        "interactions": interactions,
    }


def fill(store: Any, tmp_path: Path, world: dict[str, list[dict[str, Any]]]) -> None:
    for kind, records in world.items():
        summary = ingest(store, kind, [str(write_ndjson(tmp_path / f"{kind}.ndjson", records))])
        assert summary.rejected == 0, (kind, summary.reject_reasons)


def test_cross_assessment_lists_and_named_links_survive_buckets(store: Any, tmp_path: Path) -> None:
    fill(store, tmp_path, cross_assessment_world(tmp_path))
    window = TimeWindow.resolve(since=datetime(2025, 8, 1), until=datetime(2025, 11, 1))
    for per_bucket in (12, 10_000):
        in_memory = build_training_set(store, window, min_interactions=10, interactions_per_bucket=per_bucket)
        exported = export_training_set(
            store,
            window,
            tmp_path / f"out-{per_bucket}",
            min_interactions=10,
            interactions_per_bucket=per_bucket,
        )
        assert_frame_equal(pl.read_parquet(exported.data_path), in_memory.frame)
        assert exported.manifest == in_memory.manifest
        assert in_memory.manifest["orphan_interactions"] == 24
        assert in_memory.manifest["groups"]["assessments"] > 0 and in_memory.manifest["groups"]["lists"] > 0
    crossed = in_memory.frame.filter(
        pl.col("recommendation_id").str.extract(r"rec-(\d+)-")
        != pl.col("assessment_id").str.extract(r"asm-(\d+)")
    )
    assert crossed.height > 0 and crossed["label"].max() > 0  # the named implement of another's item counted


def test_a_list_id_that_is_an_assessment_id_is_refused_across_buckets(store: Any, tmp_path: Path) -> None:
    world = cross_assessment_world(tmp_path)
    world["impressions"][0]["request_id"] = "asm-3"  # asm-3 has no lists: it is an assessment group
    for record in world["interactions"]:
        if record.get("context", {}).get("request_id") == "req-1":
            record["context"]["request_id"] = "asm-3"
    fill(store, tmp_path, world)
    window = TimeWindow.resolve(since=datetime(2025, 8, 1), until=datetime(2025, 11, 1))
    with pytest.raises(InputError, match="also assessment ids"):
        build_training_set(store, window, min_interactions=10)
    with pytest.raises(InputError, match="also assessment ids"):
        export_training_set(store, window, tmp_path / "out", min_interactions=10, interactions_per_bucket=20)


@pytest.mark.parametrize("kind", ["interactions", "impressions", "recommendations", "assessments"])
def test_batches_hold_every_record_once(store: Any, tmp_path: Path, kind: str) -> None:
    world = cross_assessment_world(tmp_path)
    for n, record in enumerate(world["interactions"]):  # runs of one millisecond longer than a batch
        record["timestamp"] = f"2025-09-0{1 + n // 30}T10:00:00Z"
    fill(store, tmp_path, world)
    window = {"since": datetime(2025, 9, 2), "until": datetime(2025, 9, 4)} if kind == "interactions" else {}
    whole = store.read(kind, **window)
    key = {"interactions": ["event_id"], "impressions": ["request_id", "position"]}.get(
        kind, [whole.columns[0]]
    )
    batches = list(store.read_batches(kind, batch_rows=7, **window))
    assert len(batches) > 1 or whole.height <= 7
    assert_frame_equal(pl.concat(batches).sort(key), whole.sort(key))
    if kind == "impressions":  # a list is never split between batches
        owners = [set(batch["request_id"]) for batch in batches]
        assert sum(len(o) for o in owners) == len(set().union(*owners))
