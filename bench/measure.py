"""Timing primitives: a child process's wall time and peak RSS, medians, and the result record."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

TargetKind = Literal["ratio_max", "value_max", "value_min"]


def log(message: str) -> None:
    """Progress on stderr (stdout carries the table)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ChildRun:
    """One child process: wall time from spawn to exit, its own peak RSS, and what it printed."""

    seconds: float
    peak_rss_mb: float
    stdout: bytes
    cpu_seconds: float = 0.0
    """User + system CPU time of the child: less sensitive than wall time to other load."""


# Runs the command and reports its rusage. It stands between this process and the command because
# on Linux a child's ru_maxrss starts at the RSS of the process it was forked from (this one grows
# to hundreds of MB), and a small parent also makes the fork itself cheap and the same for all.
_LAUNCHER = """
import json, os, subprocess, sys, time
report, *command = sys.argv[1:]
start = time.perf_counter()
child = subprocess.Popen(command)
_, status, usage = os.wait4(child.pid, 0)
seconds = time.perf_counter() - start
cpu = usage.ru_utime + usage.ru_stime
with open(report, "w") as handle:
    json.dump([seconds, os.waitstatus_to_exitcode(status), usage.ru_maxrss, cpu], handle)
"""


def run_child(
    command: Sequence[str | Path],
    *,
    stdin: Path | None = None,
    capture: bool = False,
    cwd: Path | None = None,
) -> ChildRun:
    """Run ``command``: its wall time (spawn to exit), peak RSS and CPU time, from ``os.wait4``.

    A small launcher process (``python -S``) spawns the command and measures it, so the figures
    do not include this process's size. stdout goes to /dev/null unless ``capture``; stderr goes to
    a temporary file, shown if the command fails.
    """
    args = [str(part) for part in command]
    with (
        open(stdin, "rb") if stdin else open(os.devnull, "rb") as source,
        tempfile.TemporaryFile() if capture else open(os.devnull, "wb") as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r", suffix=".json") as report,
    ):
        launcher = [sys.executable, "-S", "-c", _LAUNCHER, report.name, *args]
        subprocess.run(launcher, stdin=source, stdout=out, stderr=err, cwd=cwd, check=False)
        text = report.read()
        seconds, code, maxrss_kib, cpu_seconds = json.loads(text) if text else (0.0, -1, 0, 0.0)
        if code != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"{' '.join(args)} exited with {code}:\n{tail}")
        printed = b""
        if capture:
            out.seek(0)
            printed = out.read()
    # ru_maxrss is in KiB on Linux
    return ChildRun(seconds, maxrss_kib / 1024, printed, cpu_seconds)


def time_call(function: Callable[[], Any]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


@dataclass
class Result:
    """One row of the table (and of bench-results.json)."""

    figure: str
    unit: str
    target: float
    target_kind: TargetKind
    samples: list[float] = field(default_factory=list)
    baseline_samples: list[float] = field(default_factory=list)
    baseline_name: str | None = None
    peak_rss_mb: float | None = None
    baseline_peak_rss_mb: float | None = None
    cpu_samples: list[float] = field(default_factory=list)
    baseline_cpu_samples: list[float] = field(default_factory=list)
    available: bool = True
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, mine: ChildRun, theirs: ChildRun | None = None) -> None:
        """One run of each side, both child processes: wall time, CPU time and peak RSS."""
        self.samples.append(mine.seconds)
        self.cpu_samples.append(mine.cpu_seconds)
        self.peak_rss_mb = max(self.peak_rss_mb or 0.0, mine.peak_rss_mb)
        if theirs is not None:
            self.baseline_samples.append(theirs.seconds)
            self.baseline_cpu_samples.append(theirs.cpu_seconds)
            self.baseline_peak_rss_mb = max(self.baseline_peak_rss_mb or 0.0, theirs.peak_rss_mb)

    @property
    def value(self) -> float | None:
        return median(self.samples) if self.samples else None

    @property
    def baseline(self) -> float | None:
        return median(self.baseline_samples) if self.baseline_samples else None

    @property
    def ratio(self) -> float | None:
        value, baseline = self.value, self.baseline
        if value is None or not baseline:
            return None
        return value / baseline

    @property
    def met(self) -> bool | None:
        if not self.available or self.value is None:
            return None
        if self.target_kind == "ratio_max":
            return self.ratio is not None and self.ratio <= self.target
        if self.target_kind == "value_max":
            return self.value <= self.target
        return self.value >= self.target

    @property
    def target_text(self) -> str:
        if self.target_kind == "ratio_max":
            return f"<= {self.target:g}x"
        sign = "<=" if self.target_kind == "value_max" else ">="
        return f"{sign} {self.target:,g} {self.unit}"

    def as_json(self) -> dict[str, Any]:
        record = asdict(self)
        record.update(
            value=self.value,
            baseline=self.baseline,
            ratio=self.ratio,
            target_text=self.target_text,
            met=self.met,
            runs=len(self.samples),
            cpu_seconds=median(self.cpu_samples) if self.cpu_samples else None,
            baseline_cpu_seconds=median(self.baseline_cpu_samples) if self.baseline_cpu_samples else None,
            baseline_runs=len(self.baseline_samples),
        )
        return record


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "memory_gib": _memory_gib(),
        "load_average_at_start": os.getloadavg(),
    }
    try:
        from importlib.metadata import version

        info["versions"] = {
            name: version(name) for name in ("recctl", "polars", "numpy", "lightgbm", "pymongo", "pyarrow")
        }
    except Exception:  # version info is nice to have, never worth failing for
        pass
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None
