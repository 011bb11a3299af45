"""``recctl export`` in bounded memory: the training set built one bucket of assessments at a time.

A window of more than twice :data:`~recctl.dataset.INTERACTIONS_PER_BUCKET` interactions is
exported in ``B = ceil(interactions / INTERACTIONS_PER_BUCKET)`` buckets of about that many each.
Every record goes to the bucket of the assessment whose groups it belongs to
(:func:`recctl.buckets.bucket_of`, a stable hash), each bucket is assembled by the same code as a
window held in memory (:func:`recctl.dataset.assemble`), and the buckets' rows are written one after
the other. Peak memory follows the bucket, not the window; the
rest lives in a scratch folder beside the output, removed at the end.

Which assessment a record belongs to:

- a served list (all its items) and an assessment: its own ``assessment_id``;
- a catalog recommendation: its ``assessment_id``, and also the bucket of every list that shows it
  when that list is another assessment's (a copy, so the list finds it);
- an interaction: the assessment of the list its ``request_id`` names, when that list is stored and
  shows its recommendation; else its recommendation's assessment (the catalog's). An interaction
  whose recommendation is not in the catalog is an orphan, counted and not used, as in memory.

Finding a recommendation's assessment, or a named list's, is a join of two logs too large for
memory, so it is done as a hash join on disk: both sides are spilled by the hash of the key, and
joined one part at a time. The export's rows, manifest and fingerprint are those of the same window
built in memory (:func:`recctl.dataset.build_training_set`); the tests hold both to that.
"""

from __future__ import annotations

import functools
import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl

from recctl import defaults
from recctl.atomic import write_atomically, write_text_atomically
from recctl.buckets import bucket_of
from recctl.dataset import (
    GROUP,
    IMPRESSION_COLUMNS,
    INTERACTION_COLUMNS,
    INTERACTIONS_PER_BUCKET,
    LINKING_COLUMNS,
    OutputPathError,
    TimeWindow,
    TooFewInteractionsError,
    _describe,
    _whole_group_slices,
    assemble,
    bucket_count,
    build_training_set,
    combined_fingerprint,
    output_paths,
    write_training_set,
)
from recctl.errors import InputError, InsufficientDataError
from recctl.features import FEATURE_NAMES, empty_feature_groups, feature_coverage
from recctl.labels import DEFAULT_POLICY, LabelPolicy
from recctl.records import SCHEMAS
from recctl.stores.base import LOG_ORDER, Store

_ITEM_KEYS = ["request_id", "assessment_id", "recommendation_id"]


@dataclass
class Exported:
    """What :func:`export_training_set` wrote: the manifest (as in ``manifest.json``), the data path
    (the file, or the directory of a partitioned export) and the manifest's path."""

    manifest: dict[str, Any]
    data_path: Path
    manifest_path: Path


def export_training_set(
    store: Store,
    window: TimeWindow,
    out: Path,
    *,
    policy: LabelPolicy = DEFAULT_POLICY,
    min_interactions: int = defaults.MIN_INTERACTIONS,
    attribution_hours: float = defaults.ATTRIBUTION_HOURS,
    partitions: int = 1,
    interactions_per_bucket: int = INTERACTIONS_PER_BUCKET,
    progress: Callable[[str], None] | None = None,
) -> Exported:
    """Build the window's training set and write it to ``out`` (as
    :func:`~recctl.dataset.write_training_set` lays it out), in memory when the window holds at most
    twice ``interactions_per_bucket`` interactions, else bucket by bucket (see the module docstring).

    Raises what :func:`~recctl.dataset.build_training_set` raises, for the same windows.
    """
    step = progress or (lambda _message: None)
    output_paths(out)
    if partitions > 1 and out.suffix == ".parquet":
        raise OutputPathError(out, reason="a partitioned export is a directory, not one .parquet file")
    step("counting interactions")
    count = sum(
        batch.height
        for batch in store.read_batches(
            "interactions", since=window.since, until=window.until, columns=["timestamp"]
        )
    )
    if count < min_interactions:
        raise TooFewInteractionsError(count, min_interactions, window)
    buckets = bucket_count(count, interactions_per_bucket)
    if buckets == 1:
        training = build_training_set(
            store,
            window,
            policy=policy,
            min_interactions=min_interactions,
            attribution_hours=attribution_hours,
            progress=progress,
            interactions_per_bucket=interactions_per_bucket,
        )
        data_path, manifest_path = write_training_set(training, out, partitions=partitions)
        return Exported(training.manifest, data_path, manifest_path)
    data_path, _ = output_paths(out)
    try:
        data_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(
            out, reason=f"cannot create {data_path.parent}: {exc.strerror or exc}"
        ) from None
    with tempfile.TemporaryDirectory(prefix=".recctl-export-", dir=data_path.parent) as scratch:
        job = _BucketedExport(store, window, Path(scratch), buckets, policy, attribution_hours, step)
        manifest = job.run()
        return _write(job, manifest, out, partitions)


class _Spill:
    """Frames spilled to Arrow IPC files by bucket: ``<root>/<name>/<bucket>/<n>.arrow`` (IPC: written
    and read back at about the speed of a copy, which Parquet's encoding is not)."""

    def __init__(self, root: Path, name: str, schema: dict[str, pl.DataType]) -> None:
        self.folder = root / name
        self.schema = schema
        self._written = 0

    def add(self, frame: pl.DataFrame, buckets: pl.Series) -> None:
        """Spill the rows of ``frame``, each to its bucket in ``buckets`` (one per row)."""
        if frame.is_empty():
            return
        tagged = frame.with_columns(buckets.alias("__bucket"))
        for (bucket,), part in tagged.partition_by("__bucket", as_dict=True, maintain_order=True).items():
            folder = self.folder / f"{bucket:05d}"
            folder.mkdir(parents=True, exist_ok=True)
            part.drop("__bucket").write_ipc(folder / f"{self._written:07d}.arrow", compression="lz4")
            self._written += 1

    def read(self, bucket: int) -> pl.DataFrame:
        """Every row spilled to ``bucket``, in the order spilled."""
        files = sorted((self.folder / f"{bucket:05d}").glob("*.arrow"))
        if not files:
            return pl.DataFrame(schema=self.schema)
        return pl.concat([pl.read_ipc(path) for path in files])


@dataclass
class _BucketedExport:
    store: Store
    window: TimeWindow
    scratch: Path
    buckets: int
    policy: LabelPolicy
    attribution_hours: float
    step: Callable[[str], None]
    outputs: list[Path] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)
    group_sizes: list[pl.Series] = field(default_factory=list)

    def run(self) -> dict[str, Any]:
        schemas = {kind: SCHEMAS[kind] for kind in ("interactions", "impressions")}
        interaction_columns = [
            c for c in (*INTERACTION_COLUMNS, *LINKING_COLUMNS) if c in schemas["interactions"]
        ]
        of = functools.partial(_Spill, self.scratch)
        catalog_map = of("catalog_by_rec", {"recommendation_id": pl.String(), "__catalog": pl.String()})
        by_rec = of("interactions_by_rec", {c: schemas["interactions"][c] for c in interaction_columns})
        items_by_rec = of("items_by_rec", {c: pl.String() for c in _ITEM_KEYS})
        items_by_request = of("items_by_request", {c: pl.String() for c in _ITEM_KEYS})
        lists = of("lists", {c: schemas["impressions"][c] for c in IMPRESSION_COLUMNS})

        self.step("spilling the catalog, interactions and served lists by recommendation")
        for batch in self.store.read_batches(
            "recommendations", columns=["recommendation_id", "assessment_id"]
        ):
            catalog_map.add(
                batch.rename({"assessment_id": "__catalog"}), self._hash(batch["recommendation_id"])
            )
        for batch in self.store.read_batches(
            "interactions", since=self.window.since, until=self.window.until, columns=interaction_columns
        ):
            by_rec.add(batch, self._hash(batch["recommendation_id"]))
        since = self.window.since - timedelta(hours=self.attribution_hours) if self.window.since else None
        for batch in self.store.read_batches(
            "impressions", since=since, until=self.window.until, columns=IMPRESSION_COLUMNS
        ):
            items = batch.select(_ITEM_KEYS)
            items_by_rec.add(items, self._hash(batch["recommendation_id"]))
            items_by_request.add(items, self._hash(batch["request_id"]))
            lists.add(batch, self._hash(batch["assessment_id"]))

        self.step("finding each interaction's assessment")
        named = of("named_by_request", {**by_rec.schema, "__catalog": pl.String()})
        homed = of("interactions", {**by_rec.schema, "__catalog": pl.String()})
        orphans = 0
        crossing: list[pl.DataFrame] = []  # items of a list of another assessment than their recommendation's
        for bucket in range(self.buckets):
            catalog = catalog_map.read(bucket).unique("recommendation_id", keep="first")
            joined = by_rec.read(bucket).join(catalog, on="recommendation_id", how="left")
            orphans += joined["__catalog"].null_count()
            known = joined.filter(pl.col("__catalog").is_not_null())
            naming = known["request_id"].is_not_null()
            named.add(known.filter(naming), self._hash(known.filter(naming)["request_id"]))
            others = known.filter(~naming)
            homed.add(others, self._hash(others["__catalog"]))
            items = items_by_rec.read(bucket).join(catalog, on="recommendation_id", how="inner")
            crossing.append(
                items.filter(pl.col("__catalog") != pl.col("assessment_id")).select(
                    "recommendation_id", "__catalog", self._hash(pl.col("assessment_id")).alias("__target")
                )
            )
        for bucket in range(self.buckets):
            shown = items_by_request.read(bucket).unique(["request_id", "recommendation_id"], keep="first")
            rows = named.read(bucket).join(
                shown.rename({"assessment_id": "__list_assessment"}),
                on=["request_id", "recommendation_id"],
                how="left",
            )
            home = rows.select(pl.coalesce("__list_assessment", "__catalog")).to_series()
            homed.add(rows.drop("__list_assessment"), self._hash(home))
        copies = pl.concat(crossing).unique()

        self.step("spilling the catalogs by assessment")
        recommendations = of("recommendations", SCHEMAS["recommendations"])
        for batch in self.store.read_batches("recommendations"):
            recommendations.add(batch, self._hash(batch["assessment_id"]))
            shared = batch.join(
                copies.select("recommendation_id", "__target"), on="recommendation_id", how="inner"
            )
            recommendations.add(shared.drop("__target"), shared["__target"])
        assessments = of("assessments", SCHEMAS["assessments"])
        wanted = copies.select(pl.col("__catalog").alias("assessment_id"), "__target").unique()
        for batch in self.store.read_batches("assessments"):
            assessments.add(batch, self._hash(batch["assessment_id"]))
            shared = batch.join(wanted, on="assessment_id", how="inner")
            assessments.add(shared.drop("__target"), shared["__target"])

        totals = _Totals(orphans=orphans)
        ids = of("group_ids", {GROUP: pl.String(), "is_list": pl.Boolean()})

        def collect_ids(list_ids: pl.Series, assessment_ids: pl.Series) -> None:
            frame = pl.concat(
                [
                    list_ids.cast(pl.String).to_frame(GROUP).with_columns(is_list=pl.lit(True)),
                    assessment_ids.cast(pl.String).to_frame(GROUP).with_columns(is_list=pl.lit(False)),
                ]
            )
            ids.add(frame, self._hash(frame[GROUP]))

        for bucket in range(self.buckets):
            self.step(f"building bucket {bucket + 1} of {self.buckets}")
            training = assemble(
                homed.read(bucket).drop("__catalog").sort(*LOG_ORDER["interactions"]),
                recommendations.read(bucket).unique("recommendation_id", keep="first", maintain_order=True),
                assessments.read(bucket).unique("assessment_id", keep="first", maintain_order=True),
                policy=self.policy,
                impressions=lists.read(bucket).sort(*LOG_ORDER["impressions"]),
                lists_since=self.window.since,
                attribution_hours=self.attribution_hours,
                group_ids=collect_ids,
            )
            totals.add(training.frame, training.manifest)
            if training.frame.is_empty():
                continue
            path = self.scratch / "out" / f"{bucket:05d}.arrow"
            path.parent.mkdir(exist_ok=True)
            training.frame.write_ipc(path, compression="lz4")
            self.outputs.append(path)
            self.heights.append(training.frame.height)
            self.group_sizes.append(training.frame.group_by(GROUP, maintain_order=True).len()["len"])
        for bucket in range(self.buckets):
            both = ids.read(bucket).group_by(GROUP).agg(pl.col("is_list").n_unique().alias("kinds"))
            shared = both.filter(pl.col("kinds") > 1)
            if shared.height:
                raise InputError(
                    f"{shared.height:,} or more served list id(s) are also assessment ids "
                    f"(e.g. {shared[GROUP][0]!r}); a list's request_id must not be an assessment_id"
                )
        if totals.rows == 0:
            raise InsufficientDataError(
                f"no usable query group in the window {_describe(self.window)}: "
                f"{totals.groups['seen']:,} groups seen, left out {dict(totals.left_out)}, "
                f"{totals.orphans:,} orphan interactions"
            )
        return totals.manifest(self.buckets, self.window, self.store.description)

    def _hash(self, ids: pl.Series | pl.Expr) -> Any:
        if isinstance(ids, pl.Expr):
            return ids.map_batches(lambda column: bucket_of(column, self.buckets), return_dtype=pl.UInt32)
        return bucket_of(ids, self.buckets)


@dataclass
class _Totals:
    """The manifest of the whole window, summed over its buckets."""

    orphans: int
    first: dict[str, Any] | None = None
    rows: int = 0
    pairs: int = 0
    interactions: int = 0
    linked: int = 0
    unlinked: int = 0
    groups: dict[str, Any] = field(
        default_factory=lambda: {"seen": 0, "kept": 0, "lists": 0, "assessments": 0}
    )
    left_out: Counter[str] = field(default_factory=Counter)
    impressions: Counter[str] = field(default_factory=Counter)
    grades: Counter[str] = field(default_factory=Counter)
    present: Counter[str] = field(default_factory=Counter)
    prints: list[str] = field(default_factory=list)

    def add(self, frame: pl.DataFrame, manifest: dict[str, Any]) -> None:
        self.first = self.first or manifest
        self.rows += manifest["rows"]
        self.pairs += manifest["pairs_before_left_out"]
        self.interactions += manifest["interactions"]
        self.orphans += manifest["orphan_interactions"]
        self.linked += manifest["linked_interactions"]
        self.unlinked += manifest["unlinked_interactions"]
        for key in ("seen", "kept", "lists", "assessments"):
            self.groups[key] += manifest["groups"][key]
        self.left_out.update(manifest["groups"]["left_out"])
        for key in ("lists", "list_groups_seen", "assessments_with_lists", "list_items_not_in_catalog"):
            self.impressions[key] += manifest["impressions"][key]
        self.grades.update(manifest["grade_counts"])
        if frame.height:
            self.prints.append(manifest["data_fingerprint"])
        counts = frame.select(pl.col(name).fill_nan(None).is_not_null().sum() for name in FEATURE_NAMES)
        self.present.update({name: int(value) for name, value in counts.row(0, named=True).items()})

    def manifest(self, buckets: int, window: TimeWindow, source: str) -> dict[str, Any]:
        assert self.first is not None
        first = self.first
        shares = {name: (self.present[name] / self.rows if self.rows else 0.0) for name in FEATURE_NAMES}
        coverage = feature_coverage(shares)
        left_out = {key: self.left_out[key] for key in first["groups"]["left_out"]}
        return {
            **{key: first[key] for key in ("recctl_version", "feature_set_version", "feature_names")},
            "label_policy": first["label_policy"],
            "label_policy_hash": first["label_policy_hash"],
            "rows": self.rows,
            "pairs_before_left_out": self.pairs,
            "groups": {**self.groups, "left_out": left_out},
            "interactions": self.interactions + self.orphans,
            "orphan_interactions": self.orphans,
            "linked_interactions": self.linked,
            "unlinked_interactions": self.unlinked,
            "impressions": {
                **{
                    key: self.impressions[key]
                    for key in ("lists", "list_groups_seen", "assessments_with_lists")
                },
                "list_items_not_in_catalog": self.impressions["list_items_not_in_catalog"],
                "attribution_hours": first["impressions"]["attribution_hours"],
            },
            "grade_counts": {grade: self.grades[grade] for grade in sorted(self.grades, key=int)},
            "feature_coverage": coverage,
            "empty_feature_groups": empty_feature_groups(coverage),
            "data_fingerprint": combined_fingerprint(self.prints),
            "buckets": buckets,
            "time_window": window.as_json(),
            "source": source,
        }


def _write(job: _BucketedExport, manifest: dict[str, Any], out: Path, partitions: int) -> Exported:
    """The buckets' rows as ``out`` lays them out, streamed file by file, and the manifest."""
    import numpy as np
    import pyarrow.parquet as pq

    data_path, manifest_path = output_paths(out)
    if partitions == 1:
        targets = [(data_path, 0, manifest["rows"])]
    else:
        sizes = pl.concat(job.group_sizes)
        stand_in = pl.DataFrame({GROUP: np.repeat(np.arange(sizes.len()), sizes.to_numpy())})
        cuts, start = [], 0
        for piece in _whole_group_slices(stand_in, partitions):
            cuts.append((start, start + piece.height))
            start += piece.height
        targets = [
            (data_path.parent / f"part-{number:05d}.parquet", begin, end)
            for number, (begin, end) in enumerate(cuts)
        ]

    def rows_between(begin: int, end: int) -> Iterator[pl.DataFrame]:
        offset = 0
        for path, height in zip(job.outputs, job.heights, strict=True):
            if offset + height > begin and offset < end:
                frame = pl.read_ipc(path)
                yield frame.slice(max(begin - offset, 0), min(end, offset + height) - max(begin, offset))
            offset += height

    def write_piece(begin: int, end: int, temporary: Path) -> None:
        writer: pq.ParquetWriter | None = None
        try:
            for frame in rows_between(begin, end):
                table = frame.to_arrow()
                writer = writer or pq.ParquetWriter(temporary, table.schema, compression="zstd")
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()

    for path, begin, end in targets:
        write_atomically(path, functools.partial(write_piece, begin, end))
    names = [path.name for path, _, _ in targets]
    on_disk = {**manifest, "data_file": names[0] if partitions == 1 else None, "data_files": names}
    write_text_atomically(manifest_path, json.dumps(on_disk, indent=2) + "\n")
    if out.suffix != ".parquet":
        for stale in [data_path.parent / "training_set.parquet", *data_path.parent.glob("part-*.parquet")]:
            if stale.name not in names:
                stale.unlink(missing_ok=True)
    return Exported(manifest, data_path if partitions == 1 else data_path.parent, manifest_path)
