"""``--store`` misreads are errors, never an empty store: a directory of other files, an unknown URI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import SAMPLE_WINDOW, interaction, run, write_ndjson

READERS = [["stats"], ["history", "user-1"], ["export", *SAMPLE_WINDOW], ["train", *SAMPLE_WINDOW]]


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("Error:")]


@pytest.fixture
def etc_like(tmp_path: Path) -> Path:
    """A directory that exists and holds things, none of them a recctl store (like /etc)."""
    folder = tmp_path / "etc"
    (folder / "ssh").mkdir(parents=True)
    (folder / "hosts").write_text("127.0.0.1 localhost\n")
    return folder


@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_a_directory_that_is_not_a_store_is_exit_1(
    etc_like: Path, tmp_path: Path, command: list[str]
) -> None:
    """``--store /etc stats`` said "No recommendation matches" (exit 0), ``train`` "only 0" (exit 3)."""
    model = ["--model", str(tmp_path / "m.txt")] if command[0] == "train" else []
    code, _, err = run("--store", str(etc_like), *command, *model)
    assert code == 1, (command, err)
    errors = error_lines(err)
    assert len(errors) == 1 and errors[0].startswith(
        f"Error: {etc_like} is a directory but not a recctl store"
    )
    assert "--store" in errors[0]
    assert sorted(p.name for p in etc_like.iterdir()) == ["hosts", "ssh"]  # nothing written there
    assert not (tmp_path / "m.txt").exists()


@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_an_empty_directory_is_no_store_for_readers(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = run("--store", str(tmp_path / "empty"), *command)
    assert code == 1 and error_lines(err)[0].startswith(f"Error: no store at {tmp_path / 'empty'}")


def test_ingest_refuses_a_directory_of_other_files(etc_like: Path, tmp_path: Path) -> None:
    source = write_ndjson(tmp_path / "in.ndjson", [interaction()])
    code, _, err = run("--store", str(etc_like), "ingest", "interactions", str(source))
    assert code == 1 and err.startswith(f"Error: {etc_like} is a directory but not a recctl store")
    assert sorted(p.name for p in etc_like.iterdir()) == ["hosts", "ssh"]


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_ingest_creates_a_store_in_a_missing_or_empty_directory(tmp_path: Path, kind: str) -> None:
    location = tmp_path / "new"
    if kind == "empty":
        location.mkdir()
    source = write_ndjson(tmp_path / "in.ndjson", [interaction(), "{broken"])
    code, out, err = run("--store", str(location), "ingest", "interactions", str(source), "--json")
    assert code == 0, err
    assert json.loads(out)["inserted"] == 1
    assert (location / ".recctl-store").is_file()
    assert run("--store", str(location), "stats", "--format", "json")[0] == 0  # and it reads as a store


def test_a_store_made_before_the_marker_still_opens(tmp_path: Path) -> None:
    location = tmp_path / "old"
    source = write_ndjson(tmp_path / "in.ndjson", [interaction()])
    assert run("--store", str(location), "ingest", "interactions", str(source))[0] == 0
    (location / ".recctl-store").unlink()  # as an earlier recctl left it: data directories, no marker
    code, out, err = run("--store", str(location), "stats", "--format", "json")
    assert code == 0, err
    assert json.loads(out)[0]["total_interactions"] == 1
    code, out, _ = run("--store", str(location), "ingest", "interactions", str(source), "--json")
    assert code == 0 and json.loads(out)["duplicates"] == 1


@pytest.mark.parametrize(
    "uri",
    [
        "mongo://127.0.0.1:27017/prod",
        "postgres://user:hunter2@db/recctl",
        "http://example.com/store",
        "MONGO+SRV://cluster0.example.net/x",
    ],
)
@pytest.mark.parametrize("command", [["ingest", "interactions", "-"], ["stats"], ["train", *SAMPLE_WINDOW]])
def test_an_unknown_uri_scheme_is_a_usage_error(tmp_path: Path, uri: str, command: list[str]) -> None:
    """``--store mongo://...`` created a local directory named ``mongo:``."""
    code, out, err = run("--store", uri, *command)
    assert code == 2, err
    scheme = uri.split("://")[0]
    assert error_lines(err) == [
        f"Error: --store: unknown store URI scheme '{scheme}://': a store is a directory path or a "
        "mongodb:// / mongodb+srv:// URI"
    ]
    assert "hunter2" not in err + out
    assert list(tmp_path.iterdir()) == []  # no directory named "mongo:" (or anything else)
