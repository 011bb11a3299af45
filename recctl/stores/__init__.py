"""Stores: a Parquet directory (the default) or MongoDB, behind one interface (DESIGN §5)."""

from __future__ import annotations

import re
from pathlib import Path

from recctl.stores.base import Store, WriteResult

__all__ = ["Store", "WriteResult", "is_mongo_uri", "open_store", "redact"]

_MONGO_SCHEMES = ("mongodb://", "mongodb+srv://")
_PASSWORD_IN_URI = re.compile(r"(mongodb(?:\+srv)?://[^:/@\s]*:)([^@\s]*)(@)")


def is_mongo_uri(location: str) -> bool:
    return location.startswith(_MONGO_SCHEMES)


def redact(text: str) -> str:
    """``text`` with the password of every MongoDB URI in it replaced by ``***``."""
    return _PASSWORD_IN_URI.sub(r"\1***\3", text)


def open_store(location: str | Path, *, timeout_ms: int = 5000) -> Store:
    """Open the store at ``location``: a directory path, or a ``mongodb://`` / ``mongodb+srv://`` URI.

    A directory is created on first write. A MongoDB that cannot be reached raises
    :class:`~recctl.errors.StoreError` within about ``timeout_ms``.
    """
    location = str(location)
    if is_mongo_uri(location):
        from recctl.stores.mongo import MongoStore

        return MongoStore(location, timeout_ms=timeout_ms)
    from recctl.stores.files import FileStore

    return FileStore(Path(location))
