"""``recctl sample``: generate a synthetic, realistic data set."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recctl import defaults
from recctl.cli.common import print_json, settings

if TYPE_CHECKING:
    from rich.console import Console

    from recctl.ranking import RankOptions
    from recctl.sample import RankerServing

DEFAULT_OUT = Path("recctl-sample")
#: The Plackett-Luce temperature when none is given (recctl.sample.DEFAULT_TEMPERATURE, kept
#: here so --help does not import the simulator).
DEFAULT_TEMPERATURE = 0.2


class Explore(StrEnum):
    plackett_luce = "plackett-luce"
    epsilon_greedy = "epsilon-greedy"


class Propensities(StrEnum):
    prefix = "prefix"
    marginal = "marginal"


_SERVING = "Serving through recctl's ranker"


def sample_command(
    ctx: typer.Context,
    out: Annotated[
        Path,
        typer.Option(
            help="Directory to write the four NDJSON files into (assessments, recommendations, "
            "interactions, impressions): a new or empty one, unless --force."
        ),
    ] = DEFAULT_OUT,
    assessments: Annotated[
        int,
        typer.Option(
            min=1, help="How many assessments to simulate (about 28 interactions and 2.5 served lists each)."
        ),
    ] = defaults.SAMPLE_ASSESSMENTS,
    seed: Annotated[
        int, typer.Option(min=0, help="Random seed: the same seed gives byte-identical files.")
    ] = 0,
    start: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="First day of the simulated window (UTC).")
    ] = defaults.SAMPLE_START,
    days: Annotated[int, typer.Option(min=1, help="Length of the simulated window in days.")] = (
        defaults.SAMPLE_DAYS
    ),
    explore: Annotated[
        Explore | None,
        typer.Option(
            help="Serve each session a randomised list. Alone: plackett-luce draws it from "
            "softmax(confidence_score / --temperature) and logs exact propensities. With --policy "
            "or --ab: rank --explore's policies (plackett-luce or epsilon-greedy). "
            "Default: every list in confidence order (propensity 1.0)."
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(
            help="Plackett-Luce temperature. Alone: on confidence_score (0.3..0.98), default "
            f"{DEFAULT_TEMPERATURE}: at 0.2 a confidence gap of 0.1 makes an item 1.65 times likelier. "
            "With --policy or --ab: rank --temperature (on the MMR objective) and its default.",
        ),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            help="Serve every list through recctl's ranker, as rank would: 'confidence' (rank "
            "without a model) or a model file, with --lambda, --no-diversity, --top-k and --explore.",
            rich_help_panel=_SERVING,
        ),
    ] = None,
    ab: Annotated[
        str | None,
        typer.Option(
            "--ab",
            metavar="NAME=POLICY,...",
            help="An A/B test: split users (not lists) between policies, e.g. "
            "A=confidence,B=model.txt; each list's impression names its variant.",
            rich_help_panel=_SERVING,
        ),
    ] = None,
    ab_split: Annotated[
        str | None,
        typer.Option(
            metavar="SHARES",
            help="With --ab: each variant's share of the users, e.g. 90,10 (normalised; default equal).",
            rich_help_panel=_SERVING,
        ),
    ] = None,
    interleave: Annotated[
        str | None,
        typer.Option(
            metavar="A=POLICY,B=POLICY | POLICY",
            help="Team-draft interleave two policies' lists (each item's team A or B): "
            "A=confidence,B=model.txt, or with --policy the other policy (team B).",
            rich_help_panel=_SERVING,
        ),
    ] = None,
    epsilon: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="With --explore epsilon-greedy: the chance of a uniformly drawn remaining item per slot.",
            rich_help_panel=_SERVING,
        ),
    ] = None,
    propensities: Annotated[
        Propensities,
        typer.Option(
            help="With --policy/--ab and --explore: also log each item's marginal propensity "
            "(marginal); prefix propensities are always logged.",
            rich_help_panel=_SERVING,
        ),
    ] = Propensities.prefix,
    lambda_: Annotated[
        float | None,
        typer.Option(
            "--lambda",
            min=0.0,
            max=1.0,
            help=f"rank's MMR trade-off (default {defaults.DEFAULT_LAMBDA}): 1 = relevance only.",
            rich_help_panel=_SERVING,
        ),
    ] = None,
    no_diversity: Annotated[
        bool, typer.Option("--no-diversity", help="rank by score only, no MMR.", rich_help_panel=_SERVING)
    ] = False,
    top_k: Annotated[
        int | None,
        typer.Option(
            min=1, help="Serve only the best K recommendations of each list.", rich_help_panel=_SERVING
        ),
    ] = None,
    examination: Annotated[
        str,
        typer.Option(
            help="How likely users are to examine each slot: default ((1+p)^-0.6), steep "
            "((1+p)^-1.2), cliff (1.0 at slots 0-3, 0.1 after) or comma-separated per-slot "
            "probabilities (the last one holds for later slots)."
        ),
    ] = "default",
    truth: Annotated[
        Path | None,
        typer.Option(
            help="Also write the hidden truth: per recommendation its utility and a 0..4 grade "
            "(NDJSON, usable as evaluate --grades), the examination curve beside it "
            "(PATH without .ndjson + .examination.json) and each policy's true expected clicks "
            "and implementations per list (+ .rewards.json)."
        ),
    ] = None,
    compress: Annotated[
        bool, typer.Option("--gzip", help="Write .ndjson.gz files instead of plain NDJSON.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Write into --out even if it is not empty (replacing the four files)."),
    ] = False,
) -> None:
    """Simulate users reacting to served lists of recommendations and write the data set as NDJSON.

    Users have hidden preferences; the old confidence_score is a noisy view of them and set the
    display order (or, with --explore, the centre of a randomised one), so position bias and a
    learnable signal are both in the logs. Impressions record every served list; views are what
    the frontend logs (every item on the first screen, with the page's dwell time); how likely a
    user was to look at a slot is never logged, only --truth tells it.

    With --policy, --ab or --interleave the lists are served by recctl's ranker instead (a model
    or the confidence order, with rank's options and exploration). The simulated world is the
    same for the same --seed whatever the policy, so --truth's rewards of one run are the truth
    for a log of another.
    """
    from recctl.errors import OutputExistsError
    from recctl.sample import ExaminationCurve, check_output_dir, generate_sample

    options = settings(ctx)
    if temperature is not None and not temperature > 0:
        raise typer.BadParameter(f"must be > 0, got {temperature}", param_hint="--temperature")
    serve = _ranker_serving(
        policy,
        ab,
        ab_split,
        interleave,
        explore,
        temperature,
        epsilon,
        propensities,
        lambda_,
        no_diversity,
        top_k,
    )
    try:
        curve = ExaminationCurve.parse(examination)
    except ValueError as exc:
        raise typer.BadParameter(str(exc).removeprefix("examination: "), param_hint="--examination") from None
    try:
        check_output_dir(out, overwrite=force)
    except OutputExistsError as exc:
        hint = " (pass --force to write into it, or choose another --out)" if out.is_dir() else ""
        raise OutputExistsError(f"--out {exc}{hint}") from None
    bar = _Bar(options.console) if options.console.is_terminal and assessments >= 5_000 else None
    summary = generate_sample(
        out,
        assessments=assessments,
        seed=seed,
        start=start,
        days=days,
        explore=explore.value if explore and serve is None else None,
        temperature=DEFAULT_TEMPERATURE if temperature is None or serve is not None else temperature,
        examination=curve,
        truth=truth,
        compress=compress,
        progress=bar.update if bar else None,
        overwrite=force,
        serve=serve,
    )
    if bar:
        bar.stop()
    if json_output:
        print_json(summary.as_json())
    options.console.print(
        f"{summary.assessments:,} assessments, {summary.recommendations:,} recommendations, "
        f"{summary.interactions:,} interactions, {summary.impressions:,} served lists "
        f"({summary.users:,} users, {summary.policy}) -> {out}" + (f"; truth -> {truth}" if truth else ""),
        markup=False,
    )


def _ranker_serving(
    policy: str | None,
    ab: str | None,
    ab_split: str | None,
    interleave: str | None,
    explore: Explore | None,
    temperature: float | None,
    epsilon: float | None,
    propensities: Propensities,
    lambda_: float | None,
    no_diversity: bool,
    top_k: int | None,
) -> RankerServing | None:
    """The ranker serving the options ask for (None: the simulator's own order); usage errors."""
    from recctl.sample import VARIANT, RankerServing

    if ab is not None and policy is not None:
        raise typer.BadParameter(
            "give --policy (every list) or --ab (a user split), not both", param_hint="--ab"
        )
    if ab is not None and interleave is not None:
        raise typer.BadParameter("give --ab or --interleave, not both", param_hint="--interleave")
    if ab_split is not None and ab is None:
        raise typer.BadParameter("needs --ab", param_hint="--ab-split")
    ranker_only = {
        "--epsilon": epsilon is not None,
        "--propensities": propensities is not Propensities.prefix,
        "--lambda": lambda_ is not None,
        "--no-diversity": no_diversity,
        "--top-k": top_k is not None,
        "--explore epsilon-greedy": explore is Explore.epsilon_greedy,
    }
    if policy is None and ab is None and interleave is None:
        for flag, given in ranker_only.items():
            if given:
                raise typer.BadParameter(
                    "serves through recctl's ranker: give --policy, --ab or --interleave", param_hint=flag
                )
        return None
    if interleave is not None and explore is not None:
        raise typer.BadParameter(
            "interleaves two deterministic lists: drop --explore", param_hint="--interleave"
        )
    if propensities is Propensities.marginal and explore is None:
        raise typer.BadParameter(
            "needs --explore (a deterministic list's propensities are 1)", param_hint="--propensities"
        )
    if epsilon is not None and explore is not Explore.epsilon_greedy:
        raise typer.BadParameter("needs --explore epsilon-greedy", param_hint="--epsilon")
    if temperature is not None and explore is not Explore.plackett_luce:
        raise typer.BadParameter(
            "with --policy, --ab or --interleave: needs --explore plackett-luce", param_hint="--temperature"
        )

    split: tuple[float, ...] | None = None
    if ab is not None:
        policies = _named_policies(ab, "--ab")
        if len(policies) < 2:
            raise typer.BadParameter(
                "name two or more variants, e.g. A=confidence,B=model.txt", param_hint="--ab"
            )
        if ab_split is not None:
            split = _shares(ab_split, len(policies))
    elif interleave is not None:
        if policy is not None:
            policies = [("A", policy), ("B", interleave)]
        else:
            policies = _named_policies(interleave, "--interleave")
            if len(policies) != 2:
                raise typer.BadParameter(
                    "name two policies, A=POLICY,B=POLICY (or give --policy and the other one)",
                    param_hint="--interleave",
                )
    else:
        assert policy is not None
        policies = [(VARIANT, policy)]
    return RankerServing(
        policies=tuple(policies),
        split=split,
        interleave=interleave is not None,
        options=_rank_options(explore, temperature, epsilon, propensities, lambda_, no_diversity, top_k),
    )


def _named_policies(spec: str, flag: str) -> list[tuple[str, str]]:
    """``A=confidence,B=model.txt`` -> [("A", "confidence"), ("B", "model.txt")]."""
    policies = []
    for part in spec.split(","):
        name, equals, source = part.partition("=")
        if not equals or not name.strip() or not source.strip():
            raise typer.BadParameter(
                f"expected NAME=POLICY pairs separated by commas, got {part!r}", param_hint=flag
            )
        policies.append((name.strip(), source.strip()))
    names = [name for name, _ in policies]
    if len(set(names)) != len(names):
        raise typer.BadParameter(f"variant names must be distinct, got {', '.join(names)}", param_hint=flag)
    return policies


def _shares(spec: str, variants: int) -> tuple[float, ...]:
    try:
        shares = tuple(float(part) for part in spec.split(","))
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated numbers, got {spec!r}", param_hint="--ab-split"
        ) from None
    if len(shares) != variants or not all(share > 0 for share in shares):
        raise typer.BadParameter(
            f"expected {variants} positive shares (one per --ab variant), got {spec!r}",
            param_hint="--ab-split",
        )
    return shares


def _rank_options(
    explore: Explore | None,
    temperature: float | None,
    epsilon: float | None,
    propensities: Propensities,
    lambda_: float | None,
    no_diversity: bool,
    top_k: int | None,
) -> RankOptions:
    from recctl.defaults import DEFAULT_EPSILON
    from recctl.defaults import DEFAULT_TEMPERATURE as RANK_TEMPERATURE
    from recctl.exploration import Exploration
    from recctl.ranking import RankOptions

    exploration = None
    if explore is not None:
        exploration = Exploration(
            policy=explore.value,
            temperature=RANK_TEMPERATURE if temperature is None else temperature,
            epsilon=DEFAULT_EPSILON if epsilon is None else epsilon,
            marginals=propensities is Propensities.marginal,
        )
    return RankOptions(
        lambda_=defaults.DEFAULT_LAMBDA if lambda_ is None else lambda_,
        top_k=top_k,
        diversity=not no_diversity,
        explore=exploration,
    )


class _Bar:
    def __init__(self, console: Console) -> None:
        from rich.progress import Progress

        self._progress = Progress(console=console, transient=True)
        self._task = self._progress.add_task("simulating", total=None)
        self._progress.start()

    def update(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total)

    def stop(self) -> None:
        self._progress.stop()
