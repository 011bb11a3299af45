"""Shared fixtures: isolation from the user's files, one ``store`` fixture run on both stores, the
committed sample data in a store and a model trained on it (each made once per session), and
LightGBM's lambdarank example (shipped compressed in ``tests/data``)."""

from __future__ import annotations

import hashlib
import json
import lzma
import shutil
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from builders import RECORD_KINDS, SAMPLE_DATA, SAMPLE_WINDOW, Training, run

pytest_plugins = ("mongo_server",)

STORE_KINDS = ("files", "mongo")
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own directory, whatever RECCTL_STORE says outside."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECCTL_STORE", raising=False)


@pytest.fixture(params=STORE_KINDS)
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store location of each kind: a directory path, or a MongoDB URI with its own database."""
    if request.param == "files":
        return str(tmp_path / "store")
    return str(request.getfixturevalue("mongo_uri"))


@pytest.fixture
def store(store_location: str) -> Iterator[Any]:
    from recctl.stores import open_store

    opened = open_store(store_location)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def lightgbm_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with LightGBM's lambdarank example as LightGBM ships it: ``rank.train``,
    ``rank.test`` and their ``.query`` files (decompressed from ``tests/data/lightgbm_lambdarank``)."""
    source = TEST_DATA / "lightgbm_lambdarank"
    folder = tmp_path_factory.mktemp("lightgbm_lambdarank")
    for name in ("rank.train", "rank.test"):
        with lzma.open(source / f"{name}.xz") as packed, (folder / name).open("wb") as unpacked:
            shutil.copyfileobj(packed, unpacked)
        shutil.copyfile(source / f"{name}.query", folder / f"{name}.query")
    return folder


@contextmanager
def _isolated_in(folder: Path) -> Iterator[None]:
    """As ``_isolated``, for session fixtures (made before any test's own directory exists)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.delenv("RECCTL_STORE", raising=False)
        yield


def _contents(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` by relative path, with the SHA-256 of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _shared_unchanged(folder: Path, before: dict[str, str], fixture: str) -> None:
    changed = sorted(set(before.items()) ^ set(_contents(folder).items()))
    assert not changed, f"a test changed the shared {fixture} (copy it to write): {changed[:5]}"


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A file store holding the committed sample data (``sample_data/*.ndjson``, all valid),
    ingested once for the session. Shared, so read-only: a test that writes copies it first
    (``shutil.copytree``); the session fails at its end if the store was changed."""
    from recctl.ingestion import ingest
    from recctl.stores import open_store

    root = tmp_path_factory.mktemp("sample") / "store"
    with _isolated_in(root.parent), closing(open_store(root)) as store:
        for kind in RECORD_KINDS:
            assert ingest(store, kind, [str(SAMPLE_DATA / f"{kind}.ndjson")]).rejected == 0, kind
    before = _contents(root)
    yield root
    _shared_unchanged(root, before, "sample_store")


@pytest.fixture(scope="session")
def sample_training(sample_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Training]:
    """``recctl train`` on ``sample_store`` over ``SAMPLE_WINDOW`` with every other option at its
    default, run once for the session. The bundle is shared, so read-only (copy it to change it)."""
    model = tmp_path_factory.mktemp("sample-model") / "ranker.txt"
    with _isolated_in(model.parent):
        code, out, err = run(
            "--store", str(sample_store), "train", *SAMPLE_WINDOW, "--model", str(model), "--json"
        )
    assert code == 0, err
    before = _contents(model.parent)
    yield Training(model, json.loads(out), err)
    _shared_unchanged(model.parent, before, "sample_model")


@pytest.fixture(scope="session")
def sample_model(sample_training: Training) -> Path:
    """The model file of ``sample_training`` (its meta beside it, ``ranker.meta.json``)."""
    return sample_training.model
