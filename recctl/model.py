"""The model bundle: a LightGBM text model plus a ``.meta.json`` beside it.

``<name>.txt`` (by default ``models/recommendation_ranker.txt``, :data:`recctl.defaults.DEFAULT_MODEL_PATH`)
holds the model in LightGBM's text format (never pickle); ``<name>.meta.json`` holds what produced it:
feature names and feature-set version, label policy hash, parameters, best iteration, metrics,
baseline metrics, data fingerprint, library versions and creation time, and the sha256 of the model
text (``model_sha256``). Both
files are written under temporary names and renamed into place, the meta file first, so a reader
never sees a model without its meta. Saving holds an exclusive ``flock`` on the model's directory
and loading a shared one, so concurrent saves to one path never leave one save's meta beside
another's model, and a reader never reads such a pair.

A model text whose sha256 is not its meta's ``model_sha256`` (truncated, corrupted, or replaced)
is refused before LightGBM parses it: LightGBM aborts the whole process on some malformed trees.

A model that fails a quality gate is written beside the current one as ``*.rejected.txt`` (with
``*.rejected.meta.json``) and the current model is left untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recctl.atomic import why_unwritable, write_text_atomically
from recctl.errors import ModelError, first_line

if TYPE_CHECKING:
    import lightgbm


def meta_path_for(model_path: Path) -> Path:
    """``x/name.txt`` -> ``x/name.meta.json``."""
    return model_path.with_name(f"{model_path.stem}.meta.json")


def rejected_path_for(model_path: Path) -> Path:
    """``x/name.txt`` -> ``x/name.rejected.txt``."""
    return model_path.with_name(f"{model_path.stem}.rejected{model_path.suffix or '.txt'}")


@dataclass(frozen=True)
class ModelBundle:
    """A loaded model: its LightGBM text, its meta data and where it came from."""

    model_text: str
    meta: dict[str, Any]
    path: Path

    @property
    def feature_names(self) -> list[str]:
        return list(self.meta.get("feature_names", []))

    @property
    def version(self) -> str:
        """A short id for the model: its meta's ``model_version``."""
        return str(self.meta.get("model_version", "unknown"))

    def booster(self) -> lightgbm.Booster:
        """The LightGBM booster (imports lightgbm)."""
        import lightgbm

        try:
            return lightgbm.Booster(model_str=self.model_text)
        except lightgbm.basic.LightGBMError as exc:
            raise ModelError(f"{self.path}: not a readable LightGBM model ({first_line(exc)})") from None


def check_destination(model_path: Path) -> None:
    """Raise :class:`ModelError` unless a bundle can be saved at ``model_path``.

    Cheap, so a command checks it before its work: the model file (and its meta and
    ``*.rejected.*`` siblings) must not be directories, and the nearest folder that exists on
    the way there must be a folder recctl can create files in (tried with a probe file, removed
    at once: permission bits do not tell, e.g. for root or on a read-only mount). Nothing else is
    created.
    """
    rejected = rejected_path_for(model_path)
    for path in (model_path, meta_path_for(model_path), rejected, meta_path_for(rejected)):
        if path.is_dir():
            raise ModelError(
                f"{path} is a directory; name the model file to write, e.g. {path / 'ranker.txt'}"
            )
    reason = why_unwritable(model_path)
    if reason is not None:
        raise ModelError(f"cannot write {model_path}: {reason}")


def save_bundle(model_text: str, meta: dict[str, Any], model_path: Path) -> ModelBundle:
    """Write the model and its meta (plus ``model_sha256``) atomically; returns the bundle written."""
    meta = {**meta, "model_sha256": _sha256(model_text)}
    model_path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(model_path.parent, exclusive=True):
        write_text_atomically(meta_path_for(model_path), json.dumps(meta, indent=2, sort_keys=True) + "\n")
        write_text_atomically(model_path, model_text)
    return ModelBundle(model_text, meta, model_path)


def load_bundle(
    model_path: Path,
    *,
    expected_features: list[str] | None = None,
    known_features: Sequence[str] | None = None,
) -> ModelBundle:
    """Read a bundle, checking it is complete and (when given) trained on ``expected_features``
    exactly, or on features that are all among ``known_features`` (a model trained with some
    features left out; the caller then computes the model's :attr:`ModelBundle.feature_names`)
    and, when its meta names a feature-set version, of this recctl's.

    Raises :class:`ModelError` with a one-line reason for a missing, empty, truncated or foreign
    model file, a missing or unreadable meta file, or feature names that do not match.
    """
    meta_path = meta_path_for(model_path)
    with _locked(model_path.parent, exclusive=False):
        try:
            model_text = model_path.read_text(encoding="utf-8")
        except IsADirectoryError:
            raise ModelError(f"{model_path} is a directory, not a model file") from None
        except FileNotFoundError:
            raise ModelError(f"no model at {model_path} (train one with `recctl train`)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelError(f"cannot read model {model_path}: {first_line(exc)}") from None
        if not model_text.startswith("tree\n") or "end of trees" not in model_text:
            raise ModelError(
                f"{model_path} is not a complete LightGBM text model (empty, truncated or another format)"
            )
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"model {model_path} has no meta file {meta_path.name}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"cannot read model meta {meta_path}: {first_line(exc)}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("feature_names"), list):
        raise ModelError(f"model meta {meta_path} has no feature_names list")
    expected_sha256 = meta.get("model_sha256")
    if not isinstance(expected_sha256, str):
        # Without the hash a damaged tree would reach LightGBM, which aborts the process on some.
        raise ModelError(f"model meta {meta_path} has no model_sha256 (was it written by `recctl train`?)")
    if expected_sha256 != _sha256(model_text):
        raise ModelError(
            f"{model_path} does not match its meta {meta_path.name} (corrupted, or replaced without it)"
        )
    model_features = _model_text_features(model_text)
    if model_features is not None and model_features != meta["feature_names"]:
        raise ModelError(f"{model_path} and {meta_path.name} disagree on the feature names")
    bundle = ModelBundle(model_text, meta, model_path)
    if expected_features is not None and bundle.feature_names != list(expected_features):
        raise ModelError(describe_feature_mismatch(model_path, bundle.feature_names, list(expected_features)))
    if known_features is not None:
        from recctl.features import FEATURE_SET_VERSION

        known = set(known_features)
        if not bundle.feature_names or any(name not in known for name in bundle.feature_names):
            raise ModelError(
                describe_feature_mismatch(model_path, bundle.feature_names, list(known_features))
            )
        recorded = bundle.meta.get("feature_set_version")
        if recorded is not None and recorded != FEATURE_SET_VERSION:
            raise ModelError(
                f"model {model_path} was trained on feature set {recorded!r}, "
                f"this recctl computes {FEATURE_SET_VERSION!r}; retrain it with this recctl"
            )
    return bundle


def describe_feature_mismatch(model_path: Path, model_features: list[str], expected: list[str]) -> str:
    """One line saying how the model's features differ from the ones at hand."""
    missing = [name for name in expected if name not in model_features]
    extra = [name for name in model_features if name not in expected]
    detail = []
    if missing:
        detail.append(f"lacks {len(missing)} (e.g. {', '.join(missing[:3])})")
    if extra:
        detail.append(f"has {len(extra)} unknown (e.g. {', '.join(extra[:3])})")
    if not detail:
        detail.append("has them in another order")
    return (
        f"model {model_path} was trained on other features than these data: it {' and '.join(detail)}; "
        "retrain it with this recctl"
    )


def model_version(model_text: str) -> str:
    """A content id for a model: the first 12 hex digits of the sha256 of its text."""
    return hashlib.sha256(model_text.encode()).hexdigest()[:12]


def _model_text_features(model_text: str) -> list[str] | None:
    for line in model_text.splitlines()[:50]:
        if line.startswith("feature_names="):
            return line.removeprefix("feature_names=").split(" ")
    return None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@contextlib.contextmanager
def _locked(folder: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold a ``flock`` on ``folder`` (exclusive for saving a bundle, shared for reading one).

    Without a folder there is nothing to read; where directories cannot be locked, go unlocked.
    """
    try:
        descriptor: int | None = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        descriptor = None
    try:
        if descriptor is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(descriptor, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        if descriptor is not None:
            os.close(descriptor)  # releases the lock
