"""recctl: a learning-to-rank toolkit for recommendation feedback loops.

The Python API mirrors the command line; each command is a thin client of these:

=================  ==================================================================================
command            Python
=================  ==================================================================================
``--store``        :func:`open_store` (a directory or a ``mongodb://`` URI) -> :class:`Store`
``ingest``         :func:`ingest` (store, kind, paths) -> :class:`IngestSummary`
``sample``         :func:`generate_sample`
``export``         :func:`build_training_set` (store, :class:`TimeWindow`) -> :class:`TrainingSet`, which
                   :func:`write_training_set` writes
``train``          :func:`data_from_store` (that training set as arrays: :class:`TrainingData`) or
                   :func:`data_from_path` (a file), :func:`train_model` (:class:`TrainOptions`)
                   -> :class:`TrainResult`, :func:`save_model` -> :class:`ModelBundle`
``evaluate``       :func:`evaluate` (model path, :class:`TrainingData`) -> :class:`Evaluation`
``rank``           :class:`Ranker` (model path); its ``rank(batches, options)`` with :class:`RankOptions`
``stats``          :func:`recommendation_stats`, :func:`user_history`
=================  ==================================================================================

Labels come from a :class:`LabelPolicy` (:data:`DEFAULT_POLICY`, or :func:`load_policy` of a TOML
file). Failures the caller can act on raise :class:`RecctlError` subclasses, with messages in the
library's own terms ("at least 100 are needed"); the commands add the flag a value came from
("(--min-interactions)"). The README's
"Python API" section has a worked example: ingest, train, evaluate and rank (``tests/test_api.py``
runs it).

Heavy modules (polars, pyarrow, pymongo, lightgbm) load on first use of a name, not on
``import recctl``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from recctl._version import __version__

if TYPE_CHECKING:
    from recctl.dataset import TimeWindow, TrainingSet, build_training_set, write_training_set
    from recctl.errors import RecctlError
    from recctl.evaluation import Evaluation, evaluate
    from recctl.ingestion import IngestSummary, ingest
    from recctl.labels import DEFAULT_POLICY, LabelPolicy, load_policy
    from recctl.model import ModelBundle
    from recctl.provenance import save_model
    from recctl.ranking import Ranker, RankOptions
    from recctl.sample import generate_sample
    from recctl.stats import recommendation_stats, user_history
    from recctl.stores import Store, open_store
    from recctl.training import TrainOptions, TrainResult, train_model
    from recctl.training_data import TrainingData, data_from_path, data_from_store

__all__ = [
    "DEFAULT_POLICY",
    "Evaluation",
    "IngestSummary",
    "LabelPolicy",
    "ModelBundle",
    "RankOptions",
    "Ranker",
    "RecctlError",
    "Store",
    "TimeWindow",
    "TrainOptions",
    "TrainResult",
    "TrainingData",
    "TrainingSet",
    "__version__",
    "build_training_set",
    "data_from_path",
    "data_from_store",
    "evaluate",
    "generate_sample",
    "ingest",
    "load_policy",
    "open_store",
    "recommendation_stats",
    "save_model",
    "train_model",
    "user_history",
    "write_training_set",
]

_LAZY = {
    "DEFAULT_POLICY": "recctl.labels",
    "LabelPolicy": "recctl.labels",
    "load_policy": "recctl.labels",
    "IngestSummary": "recctl.ingestion",
    "ingest": "recctl.ingestion",
    "RecctlError": "recctl.errors",
    "Store": "recctl.stores",
    "open_store": "recctl.stores",
    "generate_sample": "recctl.sample",
    "recommendation_stats": "recctl.stats",
    "user_history": "recctl.stats",
    "TimeWindow": "recctl.dataset",
    "TrainingSet": "recctl.dataset",
    "build_training_set": "recctl.dataset",
    "write_training_set": "recctl.dataset",
    "TrainingData": "recctl.training_data",
    "TrainOptions": "recctl.training",
    "TrainResult": "recctl.training",
    "data_from_path": "recctl.training_data",
    "data_from_store": "recctl.training_data",
    "train_model": "recctl.training",
    "save_model": "recctl.provenance",
    "Evaluation": "recctl.evaluation",
    "evaluate": "recctl.evaluation",
    "ModelBundle": "recctl.model",
    "Ranker": "recctl.ranking",
    "RankOptions": "recctl.ranking",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'recctl' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    # Bound here, so the next look-up finds it without calling this again.
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
