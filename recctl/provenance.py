"""What a saved model records about its training: the ``.meta.json`` beside the model.

:func:`model_meta` gathers the parameters, best iteration, metrics and baseline, the features it
uses (and those left out), the position correction and its bias curve, the data's source,
coverage and fingerprint, library versions and creation time; :func:`save_model` writes
it with the model (:mod:`recctl.model` holds the bundle's file I/O). The groups the model was
trained and validated on are listed by query id (:func:`training_groups_meta`), compressed, so
that an evaluation can find them again in other data.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from recctl.ltrdata import LtrData
    from recctl.model import ModelBundle
    from recctl.training import TrainResult
    from recctl.training_data import TrainingData


def model_meta(
    result: TrainResult,
    training: TrainingData,
    *,
    model_text: str,
    status: str,
    gate_failures: list[str],
) -> dict[str, Any]:
    """The ``.meta.json`` of a trained model."""
    from recctl.features import FEATURE_NAMES, FEATURE_SET_VERSION
    from recctl.model import model_version

    manifest = training.manifest
    registry = set(FEATURE_NAMES)
    uses_recctl_features = all(name in registry for name in training.data.feature_names)
    return {
        "model_version": model_version(model_text),
        "status": status,
        "gate_failures": gate_failures,
        "feature_names": training.data.feature_names,
        "feature_set_version": FEATURE_SET_VERSION if uses_recctl_features else None,
        "excluded_features": training.excluded_features,
        "debias": result.debias,
        "label_policy_hash": manifest.get("label_policy_hash"),
        "params": result.params,
        "best_iteration": result.best_iteration,
        "splits": result.splits,
        "split": result.split,
        "groups": {"train": result.train_groups, "valid": result.valid_groups},
        "examples": len(training.data.grades),
        "metrics": result.metrics,
        "baseline": result.baseline,
        "top_features": [list(item) for item in result.top_features],
        "training_groups": result.training_groups,
        "data_source": training.source,
        "feature_coverage": training.feature_coverage,
        "empty_feature_groups": training.empty_feature_groups,
        "data_fingerprint": manifest.get("data_fingerprint") or _array_fingerprint(training.data),
        "time_window": manifest.get("time_window"),
        "library_versions": library_versions(),
        "created_at": utc_now(),
    }


def save_model(
    result: TrainResult,
    training: TrainingData,
    model_path: str | Path,
    *,
    gate_failures: Sequence[str] = (),
) -> ModelBundle:
    """Write a trained model and its meta to ``model_path``, or beside it as ``*.rejected.txt``
    when it failed quality gates (``gate_failures``, as the meta records them); returns the bundle
    written. The model at ``model_path`` is then left as it was."""
    from recctl.model import rejected_path_for, save_bundle

    model_path = Path(model_path)
    model_text = result.model_text()
    status = "gate_failed" if gate_failures else "trained"
    failures = list(gate_failures)
    meta = model_meta(result, training, model_text=model_text, status=status, gate_failures=failures)
    return save_bundle(model_text, meta, rejected_path_for(model_path) if gate_failures else model_path)


QUERY_ID_ENCODING = 'zlib+base64 of NDJSON {"id": query_id}, sorted'


def encode_query_ids(ids: npt.NDArray[Any]) -> str:
    """Query ids as compact text for the meta (sorted, so equal sets give equal text)."""
    import base64
    import zlib

    import polars as pl

    text = pl.DataFrame({"id": pl.Series(ids).cast(pl.String)}).sort("id").write_ndjson()
    return base64.b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")


def decode_query_ids(text: str) -> Any:
    """The ids of :func:`encode_query_ids` as a polars String Series; ValueError when not such text."""
    import base64
    import binascii
    import io
    import zlib

    import polars as pl

    try:
        raw = zlib.decompress(base64.b64decode(text.encode("ascii"), validate=True))
        if not raw.strip():
            return pl.Series("id", [], dtype=pl.String)
        return pl.read_ndjson(io.BytesIO(raw), schema={"id": pl.String})["id"]
    except (binascii.Error, zlib.error, UnicodeError, pl.exceptions.PolarsError) as exc:
        raise ValueError(f"not a list of query ids ({exc})") from None


def training_groups_meta(train: LtrData, valid: LtrData) -> dict[str, Any]:
    """What the meta records of the groups a model learned from, for ``evaluate`` to find them again.

    ``train``/``valid``: group counts; ``event_time``: the ``event_time`` (newest interaction) of
    the oldest and of the newest group; ``fingerprint``: sha256 of all their ids, sorted; ``ids``:
    each part's ids (:func:`encode_query_ids`); ``assessments``: each part's split keys (the
    assessments its groups belong to, encoded the same way) when the data have them, so that a
    later list of an assessment trained on is known as such. Without query ids (LibSVM with a
    ``.query`` file) ``fingerprint`` and ``ids`` are None.
    """
    import hashlib

    recorded: dict[str, Any] = {"train": train.num_groups, "valid": valid.num_groups, "event_time": None}
    times = [part.event_time for part in (train, valid) if part.event_time is not None and part.num_rows]
    if times:
        recorded["event_time"] = {
            "first": f"{min(t.min() for t in times).astype('datetime64[ms]')}Z",
            "last": f"{max(t.max() for t in times).astype('datetime64[ms]')}Z",
        }
    if train.split_keys is not None and valid.split_keys is not None:
        recorded["assessments"] = {
            "train": encode_query_ids(np.unique(train.split_keys.astype(str))),
            "valid": encode_query_ids(np.unique(valid.split_keys.astype(str))),
        }
    if train.query_ids is None or valid.query_ids is None:
        return {**recorded, "fingerprint": None, "ids": None}
    every_id = encode_query_ids(np.concatenate([train.query_ids, valid.query_ids]))
    return {
        **recorded,
        "fingerprint": "sha256:" + hashlib.sha256(every_id.encode()).hexdigest(),
        "ids_encoding": QUERY_ID_ENCODING,
        "ids": {"train": encode_query_ids(train.query_ids), "valid": encode_query_ids(valid.query_ids)},
    }


def _array_fingerprint(data: LtrData) -> str:
    import hashlib

    digest = hashlib.sha256()
    for array in (data.features, data.grades, data.group_sizes):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update("\x1f".join(data.feature_names).encode())
    return "sha256:" + digest.hexdigest()


def library_versions() -> dict[str, str]:
    import lightgbm
    import polars

    from recctl._version import __version__

    return {
        "recctl": __version__,
        "lightgbm": lightgbm.__version__,
        "numpy": np.__version__,
        "polars": polars.__version__,
        "python": platform.python_version(),
    }


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
