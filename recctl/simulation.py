"""The feedback loop, simulated: serve, react, ingest, retrain, round after round.

Round 0 serves the lists of rank without a model (the old confidence order, with rank's MMR and
exploration); every later round is served by the model trained on everything logged before it.
In each round new assessments arrive (the next slice of one simulated world, so its users come
back across rounds), recctl's ranker serves their lists exactly as ``recctl rank`` would, the
simulator's users react (:func:`recctl.sample.generate_sample`), the round's files are ingested
into the store (impressions included), the round is measured, and a new model is trained on the
store's whole history with train's options.

What a round is judged by:

- ``ctr``: clicked items / items shown over the round's served lists (a click, save, implement,
  share or rate linked to the list counts as a click of that item);
- ``implementation_rate``: implemented items / clicked items (the stats' definition);
- ``diversity_discounted``: the mean over the round's lists of their rank-discounted intra-list
  diversity, in the order served;
- ``true_ndcg@10``: the mean NDCG@10 of the served lists against the users' hidden grades (the
  simulator's truth, never seen by the model).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recctl import defaults

if TYPE_CHECKING:
    from recctl.ranking import RankOptions
    from recctl.records import RecordKind
    from recctl.stores.base import Store
    from recctl.training import TrainOptions

EXPECTED: dict[str, tuple[float, float]] = {
    "true_ndcg@10": (0.62, 0.85),
    "ctr": (0.28, 0.42),
    "implementation_rate": (0.18, 0.28),
    "diversity_discounted": (0.35, 0.70),
}
"""The original system's promised improvements, (before, after) the learned ranking."""

ROUND_KINDS: tuple[RecordKind, ...] = ("assessments", "recommendations", "impressions", "interactions")
"""The record kinds of a round, in the order they are ingested (catalogs before what refers to them)."""

ROUNDS_FILE = "rounds.ndjson"
"""One JSON line per finished round, written as each round ends."""


@dataclass(frozen=True)
class SimulationOptions:
    """A simulated loop: ``rounds`` + 1 rounds (0..rounds) of ``assessments_per_round`` each, in
    consecutive windows of ``days_per_round`` days from ``start``, all drawn from the world of
    ``seed``; served with ``rank`` options, retrained with ``train`` options."""

    rounds: int
    assessments_per_round: int
    seed: int = 0
    days_per_round: int = 7
    start: datetime = defaults.SAMPLE_START
    examination: str = "default"
    rank: RankOptions | None = None
    train: TrainOptions | None = None
    min_interactions: int = defaults.MIN_INTERACTIONS

    def __post_init__(self) -> None:
        if self.rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {self.rounds}")
        if self.assessments_per_round < 1:
            raise ValueError(f"assessments per round must be >= 1, got {self.assessments_per_round}")
        if self.days_per_round < 1:
            raise ValueError(f"days per round must be >= 1, got {self.days_per_round}")

    def window(self, number: int) -> tuple[datetime, datetime]:
        """Round ``number``'s ``[since, until)``."""
        since = self.start + timedelta(days=number * self.days_per_round)
        return since, since + timedelta(days=self.days_per_round)


@dataclass(frozen=True)
class RoundResult:
    """One round's figures (module docstring), the model that served it, and the report of the
    model trained after it (None after the last round)."""

    round: int
    lists: int
    items_shown: int
    clicks: int
    implementations: int
    ctr: float | None
    implementation_rate: float | None
    diversity_discounted: float | None
    true_ndcg_at_10: float | None
    model_version: str | None
    seconds: float
    training: dict[str, Any] | None = field(default=None)

    def as_json(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "ctr": self.ctr,
            "implementation_rate": self.implementation_rate,
            "diversity_discounted": self.diversity_discounted,
            "true_ndcg@10": self.true_ndcg_at_10,
            "model_version": self.model_version,
            "lists": self.lists,
            "items_shown": self.items_shown,
            "clicks": self.clicks,
            "implementations": self.implementations,
            "seconds": round(self.seconds, 3),
            "training": self.training,
        }


def clear_earlier_run(out_dir: Path) -> None:
    """Remove what an earlier :func:`simulate` wrote into ``out_dir`` (its rounds, models, rounds
    file and the store it made there), so a new run does not train on the old one's records.
    Nothing else in ``out_dir`` is touched."""
    import shutil

    if not out_dir.is_dir():
        return
    for path in [*out_dir.glob("round-*"), out_dir / "models", out_dir / "store"]:
        if path.is_dir():
            shutil.rmtree(path)
    (out_dir / ROUNDS_FILE).unlink(missing_ok=True)


def simulate(
    store: Store,
    out_dir: Path,
    options: SimulationOptions,
    *,
    progress: Callable[[int, str], None] | None = None,
) -> Iterator[RoundResult]:
    """Run the loop of ``options``, ingesting into ``store``; yield each round as it ends.

    ``out_dir`` gets each round's files (``round-N/``: the four record files, the truth and
    the rejects, if any), the models (``models/round-N.txt``, trained after round N) and
    :data:`ROUNDS_FILE`, appended as each round ends (so an interrupted run keeps its finished
    rounds). ``progress(round, step)`` is called at each step. The same options and seed give
    the same rounds.
    """
    import time

    out_dir.mkdir(parents=True, exist_ok=True)
    rounds_path = out_dir / ROUNDS_FILE
    rounds_path.write_bytes(b"")
    model: Path | None = None
    for number in range(options.rounds + 1):
        began = time.perf_counter()
        if progress is not None:
            progress(number, "serving and simulating")
        round_dir = out_dir / f"round-{number}"
        serving_version = _serve_round(round_dir, options, number, model)
        if progress is not None:
            progress(number, "ingesting")
        _ingest_round(store, round_dir)
        if progress is not None:
            progress(number, "measuring")
        figures = measure_round(store, options.window(number), round_dir / "truth.ndjson")
        training = None
        if number < options.rounds:
            if progress is not None:
                progress(number, "training")
            model = out_dir / "models" / f"round-{number}.txt"
            training = _retrain(store, options, number, model)
            if training.get("status") != "trained":
                model = None  # too little data: the next round is served without a model
        result = RoundResult(
            round=number,
            model_version=serving_version,
            seconds=time.perf_counter() - began,
            training=training,
            **figures,
        )
        with rounds_path.open("ab") as rounds_file:
            rounds_file.write(json.dumps(result.as_json()).encode() + b"\n")
        yield result


def _serve_round(round_dir: Path, options: SimulationOptions, number: int, model: Path | None) -> str | None:
    """Simulate round ``number``'s assessments, served by ``model`` (None: no model); its version."""
    from recctl.model import load_bundle
    from recctl.sample import CONFIDENCE, RankerServing, generate_sample

    since, _ = options.window(number)
    serve = RankerServing(policies=(("all", str(model) if model else CONFIDENCE),), options=options.rank)
    per_round = options.assessments_per_round
    generate_sample(
        round_dir,
        assessments=per_round,
        seed=options.seed,
        start=since,
        days=options.days_per_round,
        examination=options.examination,
        truth=round_dir / "truth.ndjson",
        serve=serve,
        first_assessment=number * per_round,
        world_assessments=(options.rounds + 1) * per_round,
    )
    bundle = load_bundle(model) if model is not None else None
    return bundle.version if bundle is not None else None


def _ingest_round(store: Store, round_dir: Path) -> None:
    from recctl.ingestion import ingest

    for kind in ROUND_KINDS:
        ingest(
            store,
            kind,
            [str(round_dir / f"{kind}.ndjson")],
            rejects_path=round_dir / f"{kind}.rejects.ndjson",
        )


def measure_round(store: Store, window: tuple[datetime, datetime], truth: Path) -> dict[str, Any]:
    """The figures of the lists served in ``window`` (module docstring), graded by ``truth``
    (a grades file: ``recommendation_id``, ``grade``)."""
    import polars as pl

    from recctl.evaluation import read_judgments
    from recctl.experiment import list_outcomes, served_items_from_store
    from recctl.metrics import ndcg

    since, until = window
    items, catalog, _ = served_items_from_store(store, since=since, until=until)
    lists = list_outcomes(items, catalog)
    shown, clicks, implementations = (
        int(lists[name].sum()) for name in ("items", "clicks", "implementations")
    )
    graded = items.join(
        read_judgments(truth).grades, on="recommendation_id", how="left", maintain_order="left"
    ).with_columns(pl.col("grade").fill_null(0))
    sizes = lists["items"].to_numpy()
    true_ndcg = None
    if len(sizes):
        served_order = -np.arange(graded.height, dtype=np.float64)  # each list's first slot scores highest
        true_ndcg = ndcg(graded["grade"].to_numpy(), served_order, sizes, 10).mean
    diversity = lists["diversity_discounted"].cast(pl.Float64).mean() if lists.height else None
    return {
        "lists": lists.height,
        "items_shown": shown,
        "clicks": clicks,
        "implementations": implementations,
        "ctr": clicks / shown if shown else None,
        "implementation_rate": implementations / clicks if clicks else None,
        "diversity_discounted": float(diversity) if isinstance(diversity, float) else None,
        "true_ndcg_at_10": float(true_ndcg) if true_ndcg is not None else None,
    }


def _retrain(store: Store, options: SimulationOptions, number: int, model: Path) -> dict[str, Any]:
    """Train on every round up to ``number`` and save to ``model``; the training report
    (``status`` ``trained``, or ``insufficient_data`` with the reason)."""
    from recctl.dataset import TimeWindow
    from recctl.debias import with_window_curve
    from recctl.errors import InsufficientDataError
    from recctl.provenance import save_model
    from recctl.training import TrainOptions, train_model
    from recctl.training_data import data_from_store

    _, until = options.window(number)
    try:
        training = data_from_store(
            store, TimeWindow(options.start, until), min_interactions=options.min_interactions
        )
        train_options, _ = with_window_curve(options.train or TrainOptions(), training.click_log)
        result = train_model(training.data, train_options)
    except InsufficientDataError as exc:
        return {"status": "insufficient_data", "reason": exc.message()}
    saved = save_model(result, training, model)
    return {
        "status": "trained",
        "model_path": str(saved.path),
        "model_version": saved.version,
        "examples": int(training.data.num_rows),
        "groups": int(training.data.num_groups),
        "best_iteration": result.best_iteration,
        "metrics": result.metrics,
        "baseline": result.baseline,
        "debias": result.debias.get("method"),
        "top_features": [list(item) for item in result.top_features[:5]],
    }
