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

from recctl import defaults
from recctl.errors import RecctlError

if TYPE_CHECKING:
    import polars as pl

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


MARKER_FILE = ".recctl-simulation"
"""Written into ``--out`` by :func:`simulate`: what marks a folder as one an earlier run wrote."""


def _written_by_a_run(out_dir: Path) -> list[Path]:
    """The paths of ``out_dir`` a run writes: ``round-<N>/``, ``models/``, ``store/``, the rounds file."""
    names = [path for path in out_dir.glob("round-*") if path.name.removeprefix("round-").isdigit()]
    return [
        *names,
        *(out_dir / name for name in ("models", "store", ROUNDS_FILE) if (out_dir / name).exists()),
    ]


def clear_earlier_run(out_dir: Path) -> None:
    """Remove what an earlier :func:`simulate` wrote into ``out_dir`` (its rounds, models, rounds
    file and the store it made there), so a new run does not train on the old one's records.

    Only a folder an earlier run marked (:data:`MARKER_FILE`) is cleared; nothing else in it is
    touched. A folder holding such names without the mark is refused
    (:class:`~recctl.errors.OutputExistsError`): they are somebody else's.
    """
    import shutil

    from recctl.errors import OutputExistsError

    if not out_dir.is_dir():
        return
    ours = _written_by_a_run(out_dir)
    if not ours:
        return
    if not (out_dir / MARKER_FILE).is_file():
        names = ", ".join(sorted(path.name for path in ours))
        raise OutputExistsError(f"{out_dir} holds {names}, which no simulation wrote: choose another --out")
    for path in ours:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def check_empty_store(store: Store) -> None:
    """:class:`~recctl.errors.InputError` unless ``store`` holds no record: a simulated world's
    ids (``asm-000001``, ...) would replace real catalog rows and its dates overlap real ones."""
    from recctl.errors import InputError
    from recctl.records import KEYS

    for kind in ROUND_KINDS:
        if store.read(kind, columns=[KEYS[kind]]).height:
            raise InputError(
                f"{store.description} already holds {kind}: simulate into a new or empty store "
                "(its simulated ids and dates would mix with what is there)"
            )


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
    (out_dir / MARKER_FILE).write_text("written by recctl simulate\n")
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
            try:
                training = _retrain(store, options, number, model)
            except RecctlError as exc:  # e.g. a LightGBM parameter it refuses: the round is kept
                failed = {"status": "error", "reason": exc.message()}
                _append_round(rounds_path, number, serving_version, began, failed, figures)
                raise
            if training.get("status") != "trained":
                model = None  # too little data: the next round is served without a model
        yield _append_round(rounds_path, number, serving_version, began, training, figures)


def _append_round(
    rounds_path: Path,
    number: int,
    serving_version: str | None,
    began: float,
    training: dict[str, Any] | None,
    figures: dict[str, Any],
) -> RoundResult:
    """The round's result, appended to the rounds file."""
    import time

    result = RoundResult(
        round=number,
        model_version=serving_version,
        seconds=time.perf_counter() - began,
        training=training,
        **figures,
    )
    with rounds_path.open("ab") as rounds_file:
        rounds_file.write(json.dumps(result.as_json()).encode() + b"\n")
    return result


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

    from recctl.experiment import list_outcomes, served_items_from_store

    since, until = window
    items, catalog, _ = served_items_from_store(store, since=since, until=until)
    lists = list_outcomes(items, catalog)
    shown, clicks, implementations = (
        int(lists[name].sum()) for name in ("items", "clicks", "implementations")
    )
    truth_schema = {"recommendation_id": pl.String, "assessment_id": pl.String, "grade": pl.Int64}
    true_ndcg = true_ndcg_at_10(items, pl.read_ndjson(truth, schema=truth_schema)) if lists.height else None
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


def true_ndcg_at_10(items: pl.DataFrame, truth: pl.DataFrame) -> float:
    """Mean NDCG@10 of served lists against hidden grades: ``items`` one row per shown item
    (``request_id``, ``recommendation_id``, lists contiguous in slot order), ``truth`` every
    candidate's ``grade`` and ``assessment_id``. The ideal is over every candidate of the list's
    assessment, so a list cut short (``--top-k``) is judged against what it could have shown;
    gain 2^grade - 1, discount 1/log2(slot + 2), a list with nothing relevant to show scores 1
    (LightGBM's convention, as ``evaluate``)."""
    import polars as pl

    discount = 1.0 / (pl.col("slot") + 2).cast(pl.Float64).log(2)
    gain = (2.0 ** pl.col("grade").cast(pl.Float64)) - 1.0
    served = (
        items.select("request_id", "recommendation_id")
        .join(truth, on="recommendation_id", how="left", maintain_order="left")
        .with_columns(pl.col("grade").fill_null(0), pl.int_range(pl.len()).over("request_id").alias("slot"))
    )
    dcg = served.group_by("request_id", maintain_order=True).agg(
        (gain * discount).filter(pl.col("slot") < 10).sum().alias("dcg"),
        pl.col("assessment_id").drop_nulls().first(),
    )
    ideal = (
        truth.sort("grade", descending=True)
        .with_columns(pl.int_range(pl.len()).over("assessment_id").alias("slot"))
        .filter(pl.col("slot") < 10)
        .group_by("assessment_id")
        .agg((gain * discount).sum().alias("idcg"))
    )
    scored = dcg.join(ideal, on="assessment_id", how="left").with_columns(pl.col("idcg").fill_null(0.0))
    per_list = pl.when(pl.col("idcg") > 0).then(pl.col("dcg") / pl.col("idcg")).otherwise(1.0)
    return float(scored.select(per_list.mean()).item())


def _retrain(store: Store, options: SimulationOptions, number: int, model: Path) -> dict[str, Any]:
    """Train on every round up to ``number`` and save to ``model``; the training report
    (``status`` ``trained``, or ``insufficient_data`` with the reason)."""
    from recctl.dataset import TimeWindow
    from recctl.debias import with_window_curve
    from recctl.errors import InsufficientDataError
    from recctl.provenance import save_model
    from recctl.records import as_utc
    from recctl.training import TrainOptions, train_model
    from recctl.training_data import data_from_store

    _, until = options.window(number)
    try:
        training = data_from_store(
            store, TimeWindow(as_utc(options.start), as_utc(until)), min_interactions=options.min_interactions
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
