"""Which directories are stores: the marker, stores of earlier versions, and everything else refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import recommendation, stored_count, write_ndjson

from recctl.errors import NotAStoreError, UnknownStoreError
from recctl.ingestion import ingest
from recctl.stores import check_location, open_store


def test_the_first_write_marks_a_new_directory_as_a_store(tmp_path: Path) -> None:
    store = open_store(tmp_path / "new")
    assert not (tmp_path / "new").exists()  # nothing is created by opening alone
    ingest(store, "recommendations", [str(write_ndjson(tmp_path / "r.ndjson", [recommendation()]))])
    store.close()
    assert (tmp_path / "new" / ".recctl-store").is_file()
    assert stored_count(open_store(tmp_path / "new", must_exist=True), "recommendations") == 1


def test_create_makes_the_store_at_once(tmp_path: Path) -> None:
    open_store(tmp_path / "a" / "b", create=True).close()
    assert (tmp_path / "a" / "b" / ".recctl-store").is_file()
    open_store(tmp_path / "a" / "b", must_exist=True).close()


def test_a_directory_of_other_files_is_never_a_store(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    for options in ({}, {"create": True}, {"must_exist": True}):
        with pytest.raises(NotAStoreError, match="is a directory but not a recctl store"):
            open_store(tmp_path / "photos", **options)
    assert [p.name for p in (tmp_path / "photos").iterdir()] == ["cat.jpg"]


def test_a_store_being_created_by_another_process_is_not_other_files(tmp_path: Path) -> None:
    # Another process has written its marker's temporary file (recctl.atomic names it
    # .<name>.<pid>.<random>.tmp) and not yet renamed it into place.
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "..recctl-store.4242.0badf00d.tmp").write_text('{"recctl_store": 1}\n')
    open_store(tmp_path / "store", create=True).close()
    assert (tmp_path / "store" / ".recctl-store").is_file()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "..recctl-store.4242.0badf00d.tmp").write_text("")
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(NotAStoreError, match="is a directory but not a recctl store"):
        open_store(tmp_path / "other", create=True)


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_must_exist_refuses_a_missing_or_empty_directory(tmp_path: Path, state: str) -> None:
    if state == "empty":
        (tmp_path / "s").mkdir()
    with pytest.raises(NotAStoreError, match="no store at"):
        open_store(tmp_path / "s", must_exist=True)


@pytest.mark.parametrize(
    "location", ["mongo://h/db", "postgres://u:p@h/db", "s3://bucket/x", "file:///tmp/x"]
)
def test_unknown_uri_schemes_are_usage_errors(location: str) -> None:
    with pytest.raises(UnknownStoreError, match="unknown store URI scheme") as caught:
        open_store(location)
    assert caught.value.exit_code == 2
    assert ":p@" not in str(caught.value)


@pytest.mark.parametrize(
    "location", ["mongodb://h/db", "mongodb+srv://c.example.net/db", "data", "./a:b", "C:\\data"]
)
def test_paths_and_mongodb_uris_pass_the_check(location: str) -> None:
    check_location(location)
