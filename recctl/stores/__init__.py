"""Stores: a Parquet directory (the default) or MongoDB, behind one interface.

:func:`open_store` is the one place that decides which kind a location is. Importing this package
is cheap (the CLI masks URIs in its error messages with :func:`redact`): the interface in
:mod:`recctl.stores.base`, which needs polars, is loaded when first asked for.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from recctl.stores.base import InteractionFilter, Store, WriteResult

__all__ = [
    "InteractionFilter",
    "Store",
    "WriteResult",
    "check_location",
    "is_mongo_uri",
    "open_store",
    "redact",
    "uri_secrets",
]
_INTERFACE = ("InteractionFilter", "Store", "WriteResult")

_MONGO_SCHEMES = ("mongodb://", "mongodb+srv://")
# A URI scheme as RFC 3986 spells it; a Windows drive ("C:\\data") has no "//" and is a path.
_URI_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_PASSWORD_IN_URI = re.compile(r"(mongodb(?:\+srv)?://[^:/@\s]*:)([^@\s]*)(@)")
# Secrets a URI can also hold in its options: a TLS key file's password (tlsCertificateKeyFilePassword,
# or any option named ...password) and an AWS session token in authMechanismProperties.
_SECRET_OPTIONS = (
    re.compile(r"([?&;][^=&;\s]*password=)([^&;\s]*)", re.IGNORECASE),
    re.compile(r"(AWS_SESSION_TOKEN(?::|%3A))([^,&;\s]*)", re.IGNORECASE),
)


def is_mongo_uri(location: str) -> bool:
    return location.startswith(_MONGO_SCHEMES)


def redact(text: str) -> str:
    """``text`` with the secrets of every MongoDB URI in it replaced by ``***``: the password, a
    TLS key file password and an AWS session token."""
    text = _PASSWORD_IN_URI.sub(r"\1***\3", text)
    for pattern in _SECRET_OPTIONS:
        # a URI written at the end of a clause ("... at <uri>: why") keeps its colon
        text = pattern.sub(
            lambda match: match.group(1) + "***" + (":" if match.group(2).endswith(":") else ""), text
        )
    return text


def uri_secrets(uri: str) -> list[str]:
    """The secrets in ``uri``, as written and percent-decoded, longest first (to mask them
    wherever a driver message repeats them outside a URI)."""
    found = [match.group(2) for match in _PASSWORD_IN_URI.finditer(uri)]
    found += [
        match.group(2).removesuffix(":") for pattern in _SECRET_OPTIONS for match in pattern.finditer(uri)
    ]
    values = {text for value in found if value for text in (value, unquote(value))}
    return sorted(values, key=len, reverse=True)


def check_location(location: str | Path) -> None:
    """Raise :class:`~recctl.errors.UnknownStoreError` when ``location`` is a URI that is not
    ``mongodb://`` or ``mongodb+srv://`` (``mongo://``, ``postgres://``, ``http://``, ...).

    Cheap and offline: the syntax only. The message names the scheme, never the rest of the URI
    (which may hold a password).
    """
    text = str(location)
    scheme = _URI_SCHEME.match(text)
    if scheme is not None and not is_mongo_uri(text):
        from recctl.errors import UnknownStoreError

        raise UnknownStoreError(
            f"unknown store URI scheme '{scheme.group(1)}://': a store is a directory path or a "
            "mongodb:// / mongodb+srv:// URI"
        )


def open_store(
    location: str | Path, *, create: bool = False, must_exist: bool = False, timeout_ms: int = 5000
) -> Store:
    """Open the store at ``location``: a directory path, or a ``mongodb://`` / ``mongodb+srv://`` URI.

    A directory is a store when it holds recctl's marker file or one of its data directories
    (``interactions/``, ``recommendations/``, ``assessments/``; stores made before the marker
    existed). A missing or empty directory is a new, empty store: with ``create`` it is made (with
    the marker) at once, else on the first write; with ``must_exist`` it is an error instead. A
    directory holding anything else is never taken for a store
    (:class:`~recctl.errors.NotAStoreError`), and a URI of another scheme raises
    :class:`~recctl.errors.UnknownStoreError`. A MongoDB that cannot be reached raises
    :class:`~recctl.errors.StoreError` within about ``timeout_ms``.
    """
    check_location(location)
    location = str(location)
    if is_mongo_uri(location):
        from recctl.stores.mongo import MongoStore

        return MongoStore(location, timeout_ms=timeout_ms)
    from recctl.stores.files import FileStore

    return FileStore(Path(location), create=create, must_exist=must_exist)


def __getattr__(name: str) -> Any:
    if name in _INTERFACE:
        from recctl.stores import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
