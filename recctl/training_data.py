"""The data ``train`` and ``evaluate`` work on, with where it came from.

:func:`data_from_store` builds a window's training set from a store, in memory, by the same code
as an export; :func:`data_from_path` reads a learning-to-rank file or directory
(:func:`recctl.ltrdata.load_ltr`). The :class:`TrainingData` keeps the source and the export's
manifest for the report and the model's meta.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recctl import defaults
from recctl.labels import DEFAULT_POLICY

if TYPE_CHECKING:
    import polars as pl

    from recctl.dataset import TimeWindow
    from recctl.labels import LabelPolicy
    from recctl.ltrdata import LtrData
    from recctl.stores.base import Store


@dataclass
class TrainingData:
    """What train/evaluate work on, with where it came from (for the report and the meta file)."""

    data: LtrData
    source: str
    retrieved: int
    manifest: dict[str, Any] = field(default_factory=dict)
    click_log: pl.DataFrame | None = None
    """The items shown in the window's lists and whether each was clicked (a bias curve's data);
    None without served lists."""

    @cached_property
    def feature_coverage(self) -> dict[str, dict[str, Any]]:
        """Per feature group: features, share of values present, features with none
        (:func:`recctl.features.feature_coverage`)."""
        from recctl.features import feature_coverage

        rows = max(self.data.num_rows, 1)
        present = np.count_nonzero(~np.isnan(self.data.features), axis=0) / rows
        return feature_coverage(dict(zip(self.data.feature_names, present.tolist(), strict=True)))

    def without_features(self, names: list[str]) -> TrainingData:
        """The same data without the feature columns ``names`` (recorded as ``excluded_features``)."""
        if not names:
            return self
        kept = self.data.without_features(names)
        if not kept.feature_names:
            from recctl.errors import InputError

            raise InputError("every feature would be left out; a model needs at least one")
        manifest = {**self.manifest, "excluded_features": names}
        return TrainingData(kept, self.source, self.retrieved, manifest, self.click_log)

    @property
    def excluded_features(self) -> list[str]:
        """The features left out of :attr:`data` (:meth:`without_features`)."""
        return list(self.manifest.get("excluded_features", []))

    @property
    def empty_feature_groups(self) -> list[str]:
        from recctl.features import empty_feature_groups

        return empty_feature_groups(self.feature_coverage)


def data_from_store(
    store: Store,
    window: TimeWindow,
    *,
    policy: LabelPolicy = DEFAULT_POLICY,
    min_interactions: int = defaults.MIN_INTERACTIONS,
    attribution_hours: float = defaults.ATTRIBUTION_HOURS,
    progress: Callable[[str], None] | None = None,
) -> TrainingData:
    """The training set of ``window`` built from the store, in memory, by the same code as an export
    (:func:`recctl.dataset.build_training_set`, which says what ``policy``, ``min_interactions``
    and ``attribution_hours`` do); ``progress`` is called with a short message at each step."""
    from recctl.dataset import build_training_set
    from recctl.features import FEATURE_NAMES
    from recctl.ltrdata import ltr_from_frame

    training = build_training_set(
        store,
        window,
        policy=policy,
        min_interactions=min_interactions,
        attribution_hours=attribution_hours,
        progress=progress,
    )
    data = ltr_from_frame(training.frame, feature_cols=list(FEATURE_NAMES), source=store.description)
    return TrainingData(
        data,
        store.description,
        int(training.manifest["pairs_before_left_out"]),
        training.manifest,
        training.click_log,
    )


def data_from_path(
    path: str | Path,
    *,
    label_col: str = "grade",
    group_col: str = "query_id",
    feature_cols: list[str] | None = None,
    num_features: int | None = None,
) -> TrainingData:
    """A learning-to-rank set read from a file or directory: a recctl export, Parquet, or LibSVM
    (:func:`recctl.ltrdata.load_ltr` says what the arguments do)."""
    from recctl.ltrdata import load_ltr

    data = load_ltr(
        path, label_col=label_col, group_col=group_col, feature_cols=feature_cols, num_features=num_features
    )
    return TrainingData(data, str(path), len(data.grades))
