"""Shared fixtures: isolation from the user's files, one ``store`` fixture run on both stores, and
LightGBM's lambdarank example (shipped compressed in ``tests/data``)."""

from __future__ import annotations

import lzma
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
