"""Shared fixtures: isolation from the user's files, and one ``store`` fixture run on both stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ("mongo_server",)

STORE_KINDS = ("files", "mongo")


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
