"""The benchmark's data: the sample (cached between runs) and what each run builds from it.

``<work>/sample-a<assessments>-s<seed>/`` holds the three NDJSON files of ``recctl sample`` and a
``params.json`` written last, so a half-written sample is never reused. Everything else (stores,
exports, models, input files for rank) lives in ``<work>/run/``, emptied at the start of each run:
it is made by the code under test and must not outlive a change to that code.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from bench.measure import log, run_child

SAMPLE_START = datetime(2025, 9, 1, tzinfo=UTC)
SAMPLE_DAYS = 60
CATALOGS = ("assessments", "recommendations")


def recctl(*args: str | Path) -> list[str | Path]:
    """The recctl command line, run by this interpreter (the project's venv under ``make bench``)."""
    return [sys.executable, "-m", "recctl", *args]


@dataclass(frozen=True)
class Workspace:
    root: Path
    assessments: int
    seed: int

    @property
    def params(self) -> dict[str, Any]:
        return {
            "assessments": self.assessments,
            "seed": self.seed,
            "start": SAMPLE_START.date().isoformat(),
            "days": SAMPLE_DAYS,
        }

    @property
    def sample_dir(self) -> Path:
        return self.root / f"sample-a{self.assessments}-s{self.seed}"

    def sample_file(self, kind: str) -> Path:
        return self.sample_dir / f"{kind}.ndjson"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    def scratch(self, name: str) -> Path:
        """A fresh, empty directory under the run directory."""
        path = self.run_dir / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    @property
    def store(self) -> Path:
        """The file store with all of the sample (interactions and both catalogs)."""
        return self.run_dir / "store"

    @property
    def training_set(self) -> Path:
        return self.run_dir / "training-set"

    @property
    def model(self) -> Path:
        return self.run_dir / "model" / "ranker.txt"

    @property
    def window(self) -> list[str]:
        """``--since/--until`` covering the whole sample (its dates are fixed)."""
        until = SAMPLE_START + timedelta(days=SAMPLE_DAYS + 1)
        return ["--since", SAMPLE_START.date().isoformat(), "--until", until.date().isoformat()]

    # -- the sample --------------------------------------------------------------------------------
    def ensure_sample(self) -> dict[str, Any]:
        """Generate the sample unless the same parameters already made it; its summary."""
        marker = self.sample_dir / "params.json"
        if marker.exists():
            recorded = json.loads(marker.read_text())
            files_there = all(self.sample_file(kind).exists() for kind in (*CATALOGS, "interactions"))
            if recorded.get("params") == self.params and files_there:
                log(f"reusing the sample in {self.sample_dir}")
                return dict(recorded["summary"])
        from recctl.sample import generate_sample

        log(
            f"generating the sample ({self.assessments:,} assessments, seed {self.seed}) in {self.sample_dir}"
        )
        marker.unlink(missing_ok=True)
        summary = generate_sample(
            self.sample_dir,
            assessments=self.assessments,
            seed=self.seed,
            start=SAMPLE_START,
            days=SAMPLE_DAYS,
        )
        recorded = {
            "params": self.params,
            "summary": {
                "assessments": summary.assessments,
                "recommendations": summary.recommendations,
                "interactions": summary.interactions,
                "users": summary.users,
            },
        }
        marker.write_text(json.dumps(recorded, indent=2) + "\n")
        return dict(recorded["summary"])

    def interactions_prefix(self, lines: int) -> Path:
        """The first ``lines`` interactions of the sample as a file of their own."""
        path = self.run_dir / f"interactions-{lines}.ndjson"
        if not path.exists():
            with open(self.sample_file("interactions"), "rb") as source, open(path, "wb") as out:
                out.writelines(islice(source, lines))
        return path

    def warm_page_cache(self) -> None:
        """Read the input files once so that no figure pays for the first read from disk."""
        for kind in (*CATALOGS, "interactions"):
            with open(self.sample_file(kind), "rb") as handle:
                while handle.read(1 << 24):
                    pass

    # -- artefacts made by recctl (kept for the later figures) -------------------------------------
    def adopt(self, made: Path, target: Path) -> None:
        """Keep ``made`` (a figure's last output) as ``target`` unless ``target`` exists already."""
        if target.exists() or not made.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        made.rename(target)

    def ensure_store(self) -> Path:
        """The file store with interactions and catalogs (ingested now if no figure made it)."""
        if not (self.store / "interactions").exists():
            log("ingesting the interactions into the shared file store")
            run_child(
                recctl(
                    "--store", self.store, "-q", "ingest", "interactions", self.sample_file("interactions")
                )
            )
        for kind in CATALOGS:
            if not (self.store / kind).exists():
                log(f"ingesting the {kind} catalog into the shared file store")
                run_child(recctl("--store", self.store, "-q", "ingest", kind, self.sample_file(kind)))
        return self.store

    def ensure_training_set(self) -> Path:
        if not (self.training_set / "training_set.parquet").exists():
            store = self.ensure_store()
            log("exporting the training set")
            run_child(recctl("--store", store, "-q", "export", *self.window, "--out", self.training_set))
        return self.training_set

    def ensure_model(self, rounds: int) -> Path:
        if not self.model.exists():
            data = self.ensure_training_set()
            log("training the model for rank")
            run_child(recctl("-q", "train", *train_args(data, rounds), "--model", self.model))
        return self.model


def train_args(data: Path, rounds: int) -> list[str | Path]:
    """One fixed training run: every group trains (no split, so bare LightGBM gets the same matrix)."""
    return [
        "--data",
        data,
        "--validation-split",
        "0",
        "--num-boost-round",
        str(rounds),
        "--early-stopping-rounds",
        "0",
    ]


def rank_batches(workspace: Workspace, count: int, size: int) -> list[str]:
    """``count`` JSON batches (one line each) of ``size`` recommendations from the sample's catalog.

    Batch ``i`` takes the next ``size`` catalog rows and the assessment of the first of them (a
    catalog has 6 to 14 rows per assessment, so batches span assessments; rank keys every row to
    the batch's assessment anyway).
    """
    needed = count * size
    with open(workspace.sample_file("recommendations"), "rb") as handle:
        recommendations = [json.loads(line) for line in islice(handle, needed)]
    if len(recommendations) < needed:
        raise RuntimeError(f"the sample has {len(recommendations)} recommendations, {needed} needed")
    wanted = {recommendation["assessment_id"] for recommendation in recommendations[::size]}
    assessments: dict[str, Any] = {}
    with open(workspace.sample_file("assessments"), "rb") as handle:
        for line in handle:
            assessment = json.loads(line)
            if assessment["assessment_id"] in wanted:
                assessments[assessment["assessment_id"]] = assessment
                if len(assessments) == len(wanted):
                    break
    batches = []
    for start in range(0, needed, size):
        items = recommendations[start : start + size]
        assessment = assessments[items[0]["assessment_id"]]
        batch = {"assessment": assessment, "user_id": assessment["user_id"], "recommendations": items}
        batches.append(json.dumps(batch, ensure_ascii=False))
    return batches
