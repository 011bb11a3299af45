"""recctl: a learning-to-rank toolkit for recommendation feedback loops.

The Python API mirrors the command line::

    from recctl import open_store, ingest
    store = open_store("./recctl-data")
    summary = ingest(store, "interactions", ["events.ndjson"])

Heavy modules (polars, pyarrow, pymongo) load on first use of a name, not on ``import recctl``.
"""

from __future__ import annotations

import importlib
from typing import Any

from recctl._version import __version__

__all__ = [
    "DEFAULT_POLICY",
    "IngestSummary",
    "LabelPolicy",
    "RecctlError",
    "Store",
    "__version__",
    "generate_sample",
    "ingest",
    "load_policy",
    "open_store",
    "recommendation_stats",
    "user_history",
]

_LAZY = {
    "DEFAULT_POLICY": "recctl.labels",
    "LabelPolicy": "recctl.labels",
    "load_policy": "recctl.labels",
    "IngestSummary": "recctl.ingest",
    "ingest": "recctl.ingest",
    "RecctlError": "recctl.errors",
    "Store": "recctl.stores",
    "open_store": "recctl.stores",
    "generate_sample": "recctl.sample",
    "recommendation_stats": "recctl.stats",
    "user_history": "recctl.stats",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'recctl' has no attribute {name!r}")
