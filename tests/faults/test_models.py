"""Broken model bundles make ``evaluate`` and ``train --evaluate-only`` exit 1 with one clear line;
concurrent ``train`` runs on one --model path never leave a torn bundle.

The broken bundles are run as real processes: LightGBM reports some model errors by aborting the
process from native code, which an in-process runner would not show.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pytest
from builders import SAMPLE_DATA, SAMPLE_WINDOW

import recctl.atomic
import recctl.model
from faults.processes import start
from recctl.features import FEATURE_NAMES
from recctl.model import load_bundle, meta_path_for, save_bundle


def other_features_model(path: Path, _text: str) -> None:
    rng = np.random.default_rng(0)
    data = lightgbm.Dataset(
        rng.random((100, 3)), label=rng.integers(0, 3, 100), group=[10] * 10, feature_name=["a", "b", "c"]
    )
    params = {"objective": "lambdarank", "verbosity": -1, "num_threads": 1, "min_data_in_leaf": 5}
    text = lightgbm.train(params, data, num_boost_round=2).model_to_string()
    save_bundle(text, {"feature_names": ["a", "b", "c"], "model_version": "other"}, path)


def corrupt_a_tree(path: Path, text: str) -> None:
    """Keep every marker a quick check looks for; break the numbers of one tree."""
    start_of_tree = text.index("Tree=1\n")
    leaves = text.index("leaf_value=", start_of_tree)
    path.write_text(text[:leaves] + "leaf_value=1 2 x\n" + text[text.index("\n", leaves) + 1 :])


def drop_a_tree(path: Path, text: str) -> None:
    path.write_text(text[: text.index("Tree=1\n")] + text[text.index("Tree=2\n") :])


DAMAGES: dict[str, tuple[Callable[[Path, str], None], str]] = {
    "missing": (lambda path, text: path.unlink(), "no model at"),
    "empty": (lambda path, text: path.write_text(""), "not a complete LightGBM text model"),
    "truncated": (lambda path, text: path.write_text(text[: len(text) // 2]), "not a complete LightGBM"),
    "truncated to one line": (lambda path, text: path.write_text("tree\n"), "not a complete LightGBM"),
    "binary garbage": (lambda path, text: path.write_bytes(os.urandom(4096)), "cannot read model"),
    "garbage with the markers": (
        lambda path, text: path.write_text("tree\n\x01\x02 garbage\nend of trees\n"),
        "does not match",
    ),
    "a corrupted tree": (corrupt_a_tree, "does not match"),
    "a tree removed": (drop_a_tree, "does not match"),
    "a directory": (lambda path, text: (path.unlink(), path.mkdir()), "is a directory, not a model file"),
    "other feature set": (other_features_model, "trained on other features"),
    "missing meta": (lambda path, text: meta_path_for(path).unlink(), "has no meta file"),
    "empty meta": (lambda path, text: meta_path_for(path).write_text(""), "cannot read model meta"),
    "garbage meta": (
        lambda path, text: meta_path_for(path).write_bytes(b"\xff\x00{"),
        "cannot read model meta",
    ),
    "meta without features": (lambda path, text: meta_path_for(path).write_text("{}"), "no feature_names"),
}


@pytest.fixture(scope="module")
def broken_bundles(sample_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each damage done to a copy of the sample model's bundle."""
    text = sample_model.read_text()
    folder = tmp_path_factory.mktemp("broken")
    bundles = {}
    for number, (name, (damage, _)) in enumerate(DAMAGES.items()):
        path = folder / f"broken-{number}" / "ranker.txt"
        save_bundle(text, json.loads(meta_path_for(sample_model).read_text()), path)
        damage(path, text)
        bundles[name] = path
    return bundles


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {p.name: (p.read_bytes() if p.is_file() else None) for p in sorted(folder.iterdir())}


# Both commands read the model before the data, so a broken bundle costs no data load.


@pytest.mark.parametrize("command", ["evaluate", "train --evaluate-only"])
def test_broken_bundles_exit_1_with_one_line(
    command: str, sample_store: Path, broken_bundles: dict[str, Path]
) -> None:
    names = list(DAMAGES)
    before = {name: snapshot(broken_bundles[name].parent) for name in names}
    processes = {}
    for name in names:
        args = ["-q", "--store", str(sample_store), *command.split(), *SAMPLE_WINDOW]
        processes[name] = start([*args, "--model", str(broken_bundles[name])])
    failures = []
    for name, process in processes.items():
        out, err = process.communicate(timeout=120)
        expected = DAMAGES[name][1]
        lines = err.strip().splitlines()
        ok = (
            process.returncode == 1
            and out == ""
            and len(lines) == 1
            and lines[0].startswith("Error: ")
            and expected in lines[0]
        )
        if not ok:
            failures.append(f"{name}: exit {process.returncode}, stderr ...{err[-300:]!r}")
        assert snapshot(broken_bundles[name].parent) == before[name], f"{name}: the bundle was changed"
    assert not failures, "\n".join(failures)


# -- concurrent writers -----------------------------------------------------------------------------
def consistent(model: Path) -> dict[str, Any]:
    """The bundle at ``model`` loads, and its meta describes exactly this model text."""
    bundle = load_bundle(model)
    text = model.read_text()
    assert bundle.meta["model_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert bundle.meta["model_version"] == recctl.model.model_version(text)
    return bundle.meta


def test_parallel_trainings_leave_one_whole_bundle(sample_store: Path, tmp_path: Path) -> None:
    model = tmp_path / "models" / "ranker.txt"
    versions = set()
    for round_ in range(2):
        processes = [
            start(
                [
                    *("-q", "--store", str(sample_store), "train", *SAMPLE_WINDOW, "--model", str(model)),
                    *("--num-boost-round", str(5 + 10 * number + round_), "--early-stopping-rounds", "0"),
                ]
            )
            for number in range(3)
        ]
        for process in processes:
            _, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
        versions.add(consistent(model)["model_version"])
        assert sorted(p.name for p in model.parent.iterdir()) == ["ranker.meta.json", "ranker.txt"]
    assert len(versions) == 2  # each round replaced the bundle with one of its own


class SlowReplace:
    """``os.replace`` that, in the chosen threads, pauses between a bundle's meta and its model."""

    def __init__(self, pause: float) -> None:
        self.pause = pause
        self.slow_threads: set[int] = set()
        self._replace = os.replace

    def __call__(self, source: Any, destination: Any) -> None:
        self._replace(source, destination)
        if str(destination).endswith(".meta.json") and threading.get_ident() in self.slow_threads:
            time.sleep(self.pause)


def tiny_bundle(tag: int) -> tuple[str, dict[str, Any]]:
    rng = np.random.default_rng(tag)
    data = lightgbm.Dataset(
        rng.random((60, 2)), label=rng.integers(0, 3, 60), group=[6] * 10, feature_name=["a", "b"]
    )
    params = {"objective": "lambdarank", "verbosity": -1, "num_threads": 1, "min_data_in_leaf": 3}
    text = lightgbm.train(params, data, num_boost_round=1 + tag).model_to_string()
    return text, {"feature_names": ["a", "b"], "model_version": recctl.model.model_version(text)}


def test_a_save_is_atomic_for_other_writers_and_readers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Writer A pauses between its meta and its model; writer B and a reader run in the pause."""
    slow = SlowReplace(pause=0.3)
    monkeypatch.setattr(recctl.atomic.os, "replace", slow)
    path = tmp_path / "ranker.txt"
    save_bundle(*tiny_bundle(0), path)
    first, second = tiny_bundle(1), tiny_bundle(2)
    seen: list[dict[str, Any]] = []

    def slow_writer() -> None:
        slow.slow_threads.add(threading.get_ident())
        save_bundle(*first, path)

    writer = threading.Thread(target=slow_writer)
    writer.start()
    time.sleep(0.1)  # A has replaced its meta and is pausing before its model
    reader = threading.Thread(target=lambda: seen.append(consistent(path)))
    reader.start()
    save_bundle(*second, path)
    writer.join()
    reader.join()
    # The reader got a whole bundle (A's or B's), never A's meta beside the old model; B, which
    # started after A, is what stays.
    assert len(seen) == 1
    assert seen[0]["model_version"] in {
        recctl.model.model_version(first[0]),
        recctl.model.model_version(second[0]),
    }
    assert consistent(path)["model_version"] == recctl.model.model_version(second[0])


# -- rank falls back on every broken bundle ---------------------------------------------------------
def multiclass_model(path: Path, good_model: Path) -> None:
    """A sound LightGBM model with the ranker's features and hash, but 3 scores per row."""
    rng = np.random.default_rng(1)
    data = lightgbm.Dataset(
        rng.random((300, len(FEATURE_NAMES))), label=rng.integers(0, 3, 300), feature_name=list(FEATURE_NAMES)
    )
    params = {"objective": "multiclass", "num_class": 3, "verbosity": -1, "num_threads": 1}
    text = lightgbm.train(params, data, num_boost_round=3).model_to_string()
    save_bundle(text, json.loads(meta_path_for(good_model).read_text()), path)


@pytest.mark.slow
def test_rank_falls_back_on_broken_bundles(
    broken_bundles: dict[str, Path], sample_model: Path, tmp_path: Path
) -> None:
    """Every damage: rank answers by confidence (exit 0, one warning); --require-model exits 1."""
    batch = str(SAMPLE_DATA / "rank_batch.json")
    unhashed = tmp_path / "unhashed" / "ranker.txt"
    save_bundle(sample_model.read_text(), json.loads(meta_path_for(sample_model).read_text()), unhashed)
    meta = json.loads(meta_path_for(unhashed).read_text())
    del meta["model_sha256"]
    meta_path_for(unhashed).write_text(json.dumps(meta))
    corrupt_a_tree(unhashed, sample_model.read_text())
    multiclass = tmp_path / "multiclass" / "ranker.txt"
    multiclass_model(multiclass, sample_model)
    bundles = {
        **broken_bundles,
        "a corrupted tree and no model_sha256": unhashed,
        "a multiclass model (3 scores per row)": multiclass,
    }
    runs = {
        (name, require): start(
            ["rank", batch, "--model", str(path), *(["--require-model"] if require else [])]
        )
        for name, path in bundles.items()
        for require in (False, True)
    }
    failures = []
    for (name, require), process in runs.items():
        out, err = process.communicate(timeout=120)
        lines = err.strip().splitlines()
        if require:
            ok = process.returncode == 1 and out == "" and len(lines) == 1 and lines[0].startswith("Error: ")
        else:
            document = json.loads(out) if process.returncode == 0 and out else {}
            ok = (
                document.get("summary", {}).get("ml_ranking_applied") is False
                and len(lines) == 1
                and lines[0].startswith("warning: ")
                and len(document["recommendations"]) == 11
            )
        if not ok:
            failures.append(f"{name} (require={require}): exit {process.returncode}, stderr {err[-300:]!r}")
    assert not failures, "\n".join(failures)
