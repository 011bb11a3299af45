"""What every figure gets: the workspace and how many times to repeat things."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.data import Workspace


@dataclass
class Context:
    workspace: Workspace
    runs: int = 3
    """Repeats of each big figure (median reported)."""
    cold_runs: int = 9
    """Repeats of each side of the cold-start figure."""
    train_rounds: int = 200
    rank_lines: int = 5_000
    batch_size: int = 20
    shared: dict[str, Any] = field(default_factory=dict)
    """Values one figure leaves for a later one (the cold start, for the warm throughput)."""
