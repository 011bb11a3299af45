"""What the tests build on: the committed sample data, one way to run the CLI, and small valid
records (keyword arguments replace or add fields; None removes one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from typer.testing import CliRunner

from recctl.cli import app

# The committed sample data set (what `make demo` ingests) and the window its dates fall in.
SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"
SAMPLE_WINDOW = ("--since", "2025-09-01", "--until", "2025-11-01")
RECORD_KINDS = ("assessments", "recommendations", "impressions", "interactions")

# The learning parameters of LightGBM's lambdarank example (tests/data/lightgbm_lambdarank/train.conf),
# shared by the tests that reproduce its figures and by the MQ2008 check.
LAMBDARANK_EXAMPLE_CONF: dict[str, float | int] = {
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "min_sum_hessian_in_leaf": 5.0,
    "bagging_fraction": 0.9,
    "bagging_freq": 1,
    "feature_fraction": 1.0,
    "max_bin": 255,
}


class Ran(NamedTuple):
    """How an in-process ``recctl`` run ended: unpacks as ``code, out, err``."""

    exit_code: int
    stdout: str
    stderr: str


def run(*args: str, input: str | bytes | None = None, columns: int = 80) -> Ran:
    """``recctl *args`` in this process (Typer's runner), stdin from ``input``, stdout and stderr
    kept apart. The terminal is ``columns`` wide whatever the terminal running the tests is (80 is
    what a pipe gets). An exception that escapes the command is raised here: the command would
    have ended in a traceback, which no exit code stands for."""
    result = CliRunner().invoke(
        app, list(args), input=input, env={"COLUMNS": str(columns)}, catch_exceptions=False
    )
    return Ran(result.exit_code, result.stdout, result.stderr)


class Training(NamedTuple):
    """A ``recctl train --json`` run: the bundle it wrote, its JSON summary and its report (stderr)."""

    model: Path
    summary: dict[str, Any]
    report: str


def stored_count(store: Any, kind: str) -> int:
    """How many records of ``kind`` ``store`` holds (as its reads see them)."""
    from recctl.records import KEYS

    return int(store.read(kind, columns=[KEYS[kind]]).height)


def write_ndjson(path: Path, rows: list[dict[str, Any] | str]) -> Path:
    """Rows as NDJSON lines (a str row is written as it is, e.g. a broken line)."""
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def interaction(**overrides: Any) -> dict[str, Any]:
    """A valid interaction record; keyword arguments replace or add fields (None removes one)."""
    record: dict[str, Any] = {
        "event_id": "e-1",
        "recommendation_id": "rec-1",
        "user_id": "user-1",
        "assessment_id": "asm-1",
        "interaction_type": "click",
        "timestamp": "2025-06-01T12:00:00Z",
        "context": {"session_id": "s-1", "position": 0, "propensity": 0.5},
    }
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not None}


def recommendation(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "recommendation_id": "rec-1",
        "assessment_id": "asm-1",
        "category": "security",
        "confidence_score": 0.7,
        "title": "Enable MFA",
        "priority": "high",
        "roi_potential": 1.5,
        "estimated_monthly_savings": 100.0,
        "estimated_cost": 50.0,
        "implementation_effort": "low",
        "implementation_time_days": 3,
        "risk_level": "low",
        "cloud_provider": "aws",
        "services": ["iam"],
        "tags": ["identity"],
        "created_at": "2025-05-01T00:00:00Z",
    }
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not None}


def assessment(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "assessment_id": "asm-1",
        "user_id": "user-1",
        "company_size": "small",
        "industry": "fintech",
        "monthly_budget": 10000,
        "current_monthly_spend": 8000,
        "priorities": {"cost_optimization": 0.8, "security": 0.6},
        "compliance_requirements": ["SOC2"],
        "cloud_providers": ["aws"],
        "workload_types": ["web"],
        "created_at": "2025-05-01T00:00:00Z",
    }
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not None}


def grouped(sizes: list[int], *, with_time: bool = True) -> Any:
    """An LtrData of groups ``q0``, ``q1``, ... with ``sizes`` rows, one feature ``x`` (the row
    number), grades 0, 1, 2, 0, ... and (``with_time``) group k's event time 2025-01-01 + k days."""
    import numpy as np

    from recctl.ltrdata import LtrData

    rows = sum(sizes)
    starts = np.repeat(np.arange(len(sizes)), sizes)
    return LtrData(
        features=np.arange(rows, dtype=np.float64).reshape(rows, 1),
        feature_names=["x"],
        grades=(np.arange(rows) % 3).astype(np.int32),
        group_sizes=np.array(sizes, dtype=np.int64),
        query_ids=np.array([f"q{i}" for i in range(len(sizes))]),
        confidence_score=None,
        event_time=(np.datetime64("2025-01-01") + starts * np.timedelta64(1, "D")).astype("datetime64[ms]")
        if with_time
        else None,
        source="test",
    )


def impression(**overrides: Any) -> dict[str, Any]:
    """A valid impression record (one served list of three items at positions 0, 1, 2); keyword
    arguments replace or add fields (None removes one), ``items`` included."""
    record: dict[str, Any] = {
        "request_id": "req-1",
        "timestamp": "2025-06-01T12:00:00Z",
        "assessment_id": "asm-1",
        "user_id": "user-1",
        "session_id": "s-1",
        "model_version": "m-1",
        "policy": "plackett-luce",
        "items": [
            {"recommendation_id": f"rec-{i}", "position": i, "propensity": 0.5, "prefix_propensity": 0.5}
            for i in range(3)
        ],
    }
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not None}


def chunk_of(texts: list[str]) -> Any:
    """A reader's chunk (``input_position``, ``raw``, ``json``, ``error``) of JSON lines, numbered from 1."""
    import polars as pl

    return pl.DataFrame(
        {
            "input_position": pl.int_range(1, len(texts) + 1, eager=True, dtype=pl.Int64),
            "raw": texts,
            "json": texts,
            "error": pl.Series([None] * len(texts), dtype=pl.String),
        }
    )
