"""``recctl simulate``: the whole feedback loop, round after round, in a simulated world."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from recctl import defaults
from recctl.cli.common import print_json, refuse_idle_options, settings
from recctl.cli.options import Epsilon, Explore, MinInteractionsPerRound, Temperature
from recctl.cli.train import DebiasChoice, json_failures, lightgbm_params

if TYPE_CHECKING:
    from rich.console import Console

DEFAULT_OUT = Path("recctl-simulation")


def simulate_command(
    ctx: typer.Context,
    rounds: Annotated[int, typer.Option(min=0, help="Rounds after round 0 (the loop runs rounds 0..N).")] = 5,
    assessments_per_round: Annotated[
        int, typer.Option(min=1, help="New assessments (query groups) arriving in each round.")
    ] = 1000,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the world, the lists' streams and LightGBM.")] = 0,
    days_per_round: Annotated[int, typer.Option(min=1, help="Each round's time window, in days.")] = 7,
    examination: Annotated[
        str,
        typer.Option(
            help="The users' examination curve: default, steep, cliff, or comma-separated per-slot "
            "probabilities (as `recctl sample --examination`)."
        ),
    ] = "default",
    out: Annotated[
        Path,
        typer.Option(
            help="Folder for each round's files, the models and rounds.ndjson (one line per round, "
            "written as it ends); the store too, unless --store is given."
        ),
    ] = DEFAULT_OUT,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Write into a non-empty --out; an earlier simulation's rounds, models and store there "
            "are deleted first (a folder no simulation wrote is refused).",
        ),
    ] = False,
    lambda_: Annotated[
        float,
        typer.Option("--lambda", min=0.0, max=1.0, help="rank's MMR trade-off: 1 = relevance only."),
    ] = defaults.DEFAULT_LAMBDA,
    top_k: Annotated[int | None, typer.Option(min=1, help="Serve only the best K of each list.")] = None,
    no_diversity: Annotated[
        bool, typer.Option("--no-diversity", help="Serve by score only, no MMR.")
    ] = False,
    explore: Explore = None,
    temperature: Temperature = defaults.DEFAULT_TEMPERATURE,
    epsilon: Epsilon = defaults.DEFAULT_EPSILON,
    debias: Annotated[
        DebiasChoice, typer.Option(help="train's position-bias correction for every retraining.")
    ] = DebiasChoice.auto,
    num_boost_round: Annotated[int, typer.Option(min=1, help="train's maximum boosting rounds.")] = (
        defaults.NUM_BOOST_ROUND
    ),
    early_stopping_rounds: Annotated[
        int, typer.Option(min=0, help="train's early stopping patience; 0 = never.")
    ] = defaults.EARLY_STOPPING_ROUNDS,
    param: Annotated[
        list[str] | None, typer.Option(help="LightGBM parameter KEY=VALUE for training (repeatable).")
    ] = None,
    min_interactions: MinInteractionsPerRound = defaults.MIN_INTERACTIONS,
    plot: Annotated[
        Path | None,
        typer.Option(metavar="PATH", help="Also draw the rounds' figures to PATH (.svg or .png)."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the rounds as one JSON object on stdout.")
    ] = False,
) -> None:
    """Simulate the feedback loop: serve, react, ingest, retrain, for rounds 0..N.

    Round 0 is served by rank without a model (the confidence order, with MMR and any
    exploration); each later round by the model trained on every round before it. In each round
    new assessments arrive from one simulated world (its users come back across rounds), their
    lists are served exactly as `recctl rank` serves them, the simulated users react, and
    everything is ingested (impressions too). Per round: CTR (clicked / shown items),
    implementation rate (implemented / clicked), diversity_discounted and the true NDCG@10 of
    the served lists against the users' hidden grades, and the training report; the original
    system's expected improvements are printed beside them. The same options give the same rounds.

    The store is --store when given (the simulated records are added to it), else a new one in
    --out; --out is refused when it is not empty, unless --force.
    """
    from recctl.errors import OutputExistsError
    from recctl.exploration import Exploration
    from recctl.ranking import RankOptions
    from recctl.sample import ExaminationCurve, check_output_dir
    from recctl.simulation import SimulationOptions, check_empty_store, clear_earlier_run, simulate
    from recctl.training import TrainOptions

    options = settings(ctx)
    overrides = lightgbm_params(param)
    if plot is not None:
        from recctl.plots import kind_of

        try:
            kind_of(plot)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--plot") from None
    try:
        ExaminationCurve.parse(examination)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--examination") from None
    refuse_idle_options(ctx, explore=None if explore is None else explore.value, diversity=not no_diversity)
    exploration = None
    if explore is not None:
        exploration = Exploration(policy=explore.value, temperature=temperature, epsilon=epsilon)
    simulation = SimulationOptions(
        rounds=rounds,
        assessments_per_round=assessments_per_round,
        seed=seed,
        days_per_round=days_per_round,
        examination=examination,
        rank=RankOptions(lambda_=lambda_, top_k=top_k, diversity=not no_diversity, explore=exploration),
        train=TrainOptions(
            num_boost_round=num_boost_round,
            early_stopping_rounds=early_stopping_rounds,
            seed=seed,
            params=overrides,
            debias=debias.value,
        ),
        min_interactions=min_interactions,
    )
    with json_failures(json_output):
        try:
            check_output_dir(out, overwrite=force)
        except OutputExistsError as exc:
            hint = (
                "" if force or not out.is_dir() else " (pass --force to replace an earlier simulation there)"
            )
            raise OutputExistsError(f"{exc}{hint}") from None
        clear_earlier_run(out)
        store = _open_store(ctx, out)
        try:
            check_empty_store(store)
            results = _run(options.console, simulate(store, out, simulation, progress=None), simulation)
        finally:
            store.close()
    if plot is not None:
        from recctl.plots import rounds_chart, save

        save(rounds_chart(results), plot)
    summary = {
        "status": "simulated",
        "seed": seed,
        "assessments_per_round": assessments_per_round,
        "out": str(out),
        "options": {  # everything else that made these rounds, so a run can be told apart and repeated
            "rounds": rounds,
            "days_per_round": days_per_round,
            "examination": examination,
            "lambda": lambda_,
            "top_k": top_k,
            "diversity": not no_diversity,
            "explore": None
            if exploration is None
            else {"policy": exploration.policy, "temperature": temperature, "epsilon": epsilon},
            "debias": debias.value,
            "num_boost_round": num_boost_round,
            "early_stopping_rounds": early_stopping_rounds,
            "params": overrides,
            "min_interactions": min_interactions,
        },
        "rounds": results,
        "expected": _expected_json(),
    }
    if json_output:
        print_json(summary)
    _render(options.console, results)


def _open_store(ctx: typer.Context, out: Path) -> Any:
    """The --store when it was given on the command line, else a new store in ``out`` (never the
    default store, nor RECCTL_STORE's: simulated records must not land in real data by accident)."""
    from recctl.stores import open_store

    source = ctx.find_root().get_parameter_source("store")
    if getattr(source, "name", None) == "COMMANDLINE":
        return settings(ctx).open_store(create=True)
    return open_store(str(out / "store"), create=True)


def _run(console: Console, rounds: Any, simulation: Any) -> list[dict[str, Any]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    results = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("round 0", total=simulation.rounds + 1)
        for result in rounds:
            results.append(result.as_json())
            progress.update(task, advance=1, description=f"round {result.round + 1}")
    return results


def _expected_json() -> dict[str, dict[str, float]]:
    from recctl.simulation import EXPECTED

    return {name: {"before": before, "after": after} for name, (before, after) in EXPECTED.items()}


def _render(console: Console, results: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from recctl.simulation import EXPECTED

    table = Table(title="The loop, round by round", title_justify="left")
    for name in ("round", "model", "lists", "CTR", "impl.", "div.", "NDCG@10", "trained"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in results:
        training = row["training"] or {}
        trained = (
            f"{training['debias']} {training['best_iteration']}"
            if training.get("status") == "trained"
            else training.get("status", "-")
        )
        table.add_row(
            str(row["round"]),
            (row["model_version"] or "none")[:8],
            f"{row['lists']:,}",
            _fmt(row["ctr"]),
            _fmt(row["implementation_rate"]),
            _fmt(row["diversity_discounted"]),
            _fmt(row["true_ndcg@10"]),
            trained,
        )
    console.print(table)
    console.print(
        "impl.: implemented / clicked; div.: diversity_discounted; NDCG@10 against the users' hidden "
        "grades; trained: the position correction and boosting rounds of the model trained after it",
        style="dim",
    )
    if not results:
        return
    first, last = results[0], results[-1]
    expected = Table(
        title=f"Round 0 -> round {last['round']}, beside the original system's expected improvements",
        title_justify="left",
    )
    for name in ("figure", "measured", "change", "expected", "change "):
        expected.add_column(name, justify="right", no_wrap=True)
    for name, (before, after) in EXPECTED.items():
        start, end = first[name], last[name]
        change = f"{end - start:+.3f}" if start is not None and end is not None else "-"
        expected.add_row(
            _LABELS[name],
            f"{_fmt(start)} -> {_fmt(end)}",
            change,
            f"{before:.2f} -> {after:.2f}",
            f"{after - before:+.2f}",
        )
    console.print(expected)


_LABELS = {
    "true_ndcg@10": "true NDCG@10",
    "ctr": "CTR",
    "implementation_rate": "impl. rate",
    "diversity_discounted": "diversity",
}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
