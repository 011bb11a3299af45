"""Options shared by several commands, defined once."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from recctl import defaults
from recctl.cli.output import OutputFormat

if TYPE_CHECKING:
    from recctl.cli.common import Settings
    from recctl.dataset import TimeWindow
    from recctl.training_data import TrainingData


def parse_time(text: str) -> datetime:
    """A ``--since``/``--until`` value: any ISO-8601 time recctl prints, as a naive UTC datetime.

    Accepts a date (``2025-10-01``), a time with ``T`` or a space, to the minute, second or
    microsecond (``2025-10-01T12:00:00.123``), with a zone ``Z``/``z``, ``+02:00`` or ``+0200``, or
    without one (UTC). A zoned time is converted to UTC, so ``12:00:00+02:00`` is ``10:00`` UTC.
    """
    if isinstance(text, datetime):  # a default, or a value typer already converted
        moment = text
    else:
        value = str(text).strip()
        try:
            moment = datetime.fromisoformat(value[:-1] + "Z" if value.endswith("z") else value)
        except ValueError:
            raise typer.BadParameter(
                f"{value!r} is not an ISO-8601 time (like 2025-10-01, 2025-10-01T12:00:00Z or "
                "2025-10-01 12:00:00+02:00)"
            ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


_TIME = "TIME"

Since = Annotated[
    datetime | None,
    typer.Option(
        parser=parse_time,
        metavar=_TIME,
        help="Start of the window (ISO-8601; no zone = UTC; inclusive); overrides --lookback-days.",
    ),
]
Until = Annotated[
    datetime | None,
    typer.Option(
        parser=parse_time,
        metavar=_TIME,
        help="End of the window (ISO-8601; no zone = UTC; exclusive). Default: now.",
    ),
]
# The analysis commands (stats, history) have no default window: all time unless given.
FilterSince = Annotated[
    datetime | None,
    typer.Option(
        "--since",
        parser=parse_time,
        metavar=_TIME,
        help="Only interactions at or after this time (ISO-8601; no zone = UTC).",
    ),
]
FilterUntil = Annotated[
    datetime | None,
    typer.Option(
        "--until",
        parser=parse_time,
        metavar=_TIME,
        help="Only interactions before this time (ISO-8601; no zone = UTC).",
    ),
]
Format = Annotated[
    OutputFormat,
    typer.Option(
        "--format",
        help="table for people; json, csv or ndjson for scripts (plain text, every row).",
    ),
]
LookbackDays = Annotated[
    int, typer.Option(min=0, help="Days back from --until that the window starts; 0 = no lower bound.")
]
MinInteractions = Annotated[
    int, typer.Option(min=0, help="Exit 3 when the window holds fewer interactions than this.")
]
MinInteractionsPerSection = Annotated[
    int,
    typer.Option(
        "--min-interactions",
        min=0,
        help="A section built from training data (model, bias, frontier) needs at least this many "
        "interactions in the window; with fewer it says so and the report goes on.",
    ),
]
MinInteractionsPerRound = Annotated[
    int,
    typer.Option(
        "--min-interactions",
        min=0,
        help="A round trains a model only when every round so far holds at least this many "
        "interactions; with fewer, the next round is served without a model (confidence order, as "
        "round 0) and the round's training status says insufficient_data.",
    ),
]
AttributionHours = Annotated[
    float,
    typer.Option(
        min=0.0,
        help="An interaction without a request_id belongs to the newest list of its assessment that "
        "showed its recommendation at most this many hours before it.",
    ),
]
Labels = Annotated[Path | None, typer.Option(help="Label policy TOML file (default: the built-in labels).")]
ModelPath = Annotated[
    Path, typer.Option("--model", help="The model file; its meta is <name>.meta.json beside it.")
]
Data = Annotated[
    Path | None,
    typer.Option(
        help="Read a learning-to-rank set instead of the store: a recctl export, Parquet, or LibSVM."
    ),
]
LabelCol = Annotated[str, typer.Option(help="With --data: the relevance grade column (Parquet).")]
GroupCol = Annotated[str, typer.Option(help="With --data: the query group column (Parquet).")]
FeatureCols = Annotated[
    str | None,
    typer.Option(help="With --data: comma-separated feature columns (default: the other columns)."),
]


def resolve_window(since: datetime | None, until: datetime | None, lookback_days: int) -> TimeWindow:
    """The time window of the options, as a usage error (exit 2) when it is empty."""
    from recctl.dataset import TimeWindow

    try:
        return TimeWindow.resolve(since=since, until=until, lookback_days=lookback_days)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def check_window(since: datetime | None, until: datetime | None) -> None:
    """A usage error (exit 2) when ``--since`` is not before ``--until``."""
    if since is not None and until is not None and since >= until:
        raise typer.BadParameter(f"the time window is empty: --since {since} is not before --until {until}")


def split_names(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def training_data(
    options: Settings,
    data: Path | None,
    label_col: str,
    group_col: str,
    feature_cols: str | None,
    min_interactions: int,
    lookback_days: int,
    since: Any,
    until: Any,
    labels: Path | None,
    *,
    num_features: int | None,
    attribution_hours: float = defaults.ATTRIBUTION_HOURS,
) -> TrainingData:
    """The data of ``train``/``evaluate``: ``--data`` when given, else the store's training set."""
    from recctl.training_data import data_from_path, data_from_store

    if data is not None:
        return data_from_path(
            data,
            label_col=label_col,
            group_col=group_col,
            feature_cols=split_names(feature_cols),
            num_features=num_features,
        )
    from recctl.labels import load_policy

    window = resolve_window(since, until, lookback_days)
    policy = load_policy(labels)
    store = options.open_store(existing=True)
    try:
        with options.console.status("collecting training data") as status:
            return data_from_store(
                store,
                window,
                policy=policy,
                min_interactions=min_interactions,
                attribution_hours=attribution_hours,
                progress=lambda message: status.update(message),
            )
    finally:
        store.close()


class Reward(StrEnum):
    """What a slot earns in an off-policy estimate (``evaluate --off-policy``, ``tune --off-policy``)."""

    click = "click"
    implement = "implement"
    label = "label"


class ExplorePolicy(StrEnum):
    """The exploring policies of ``rank --explore`` (and the commands that serve like rank)."""

    plackett_luce = "plackett-luce"
    epsilon_greedy = "epsilon-greedy"


Explore = Annotated[
    ExplorePolicy | None,
    typer.Option(
        help="Draw each list instead of serving MMR's order: plackett-luce (each slot from "
        "softmax(MMR objective / --temperature)) or epsilon-greedy (MMR's choice, else with "
        "probability --epsilon a uniformly drawn remaining item); each item gets its prefix_propensity."
    ),
]
Temperature = Annotated[
    float,
    typer.Option(
        min=defaults.MIN_TEMPERATURE,
        help="Plackett-Luce temperature on MMR's objective (relevance scaled to 0..1): lower is closer "
        "to MMR's order.",
    ),
]
Epsilon = Annotated[
    float,
    typer.Option(
        min=0.0, max=1.0, help="Epsilon-greedy: the chance that a slot gets a uniformly drawn item."
    ),
]
