"""Writing a file so that readers see the old one or the new one, never half of either."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write`` on a hidden temporary file beside ``path``, then rename it into place.

    The rename is atomic on one filesystem; a failure leaves ``path`` as it was and removes the
    temporary file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str) -> None:
    """:func:`write_atomically` for UTF-8 text."""
    write_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def why_unwritable(path: Path) -> str | None:
    """Why no file can be created at ``path`` (None when one can), judged by the nearest folder
    that exists on the way there: it must be a folder that accepts a new file, tried with a probe
    file removed at once (permission bits do not tell, e.g. for root or on a read-only mount).
    Nothing else is created. Cheap, so commands call it before their work."""
    import tempfile

    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, not a directory"
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".recctl-probe-", dir=folder)
    except OSError as exc:
        return f"cannot create files in {folder} ({exc.strerror or exc})"
    os.close(descriptor)
    os.unlink(probe)
    return None
