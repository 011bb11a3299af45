"""``recctl train``: LightGBM LambdaRank on the store or a learning-to-rank file, with CI gates."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from recctl import defaults
from recctl.cli.common import flag, settings, shown_line, user_message
from recctl.cli.options import (
    AttributionHours,
    Data,
    FeatureCols,
    GroupCol,
    LabelCol,
    Labels,
    LookbackDays,
    MinInteractions,
    ModelPath,
    Since,
    Until,
    training_data,
)

if TYPE_CHECKING:
    from rich.console import Console

    from recctl.model import ModelBundle
    from recctl.training_data import TrainingData


class SplitChoice(StrEnum):
    time = "time"
    group_random = "group-random"


class DebiasChoice(StrEnum):
    auto = "auto"
    none = "none"
    position = "position"
    ips = "ips"


ExcludeFeatures = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude-features",
        metavar="NAME|GROUP",
        help="Leave out a feature, or a group of them (recommendation, assessment, cross, list; "
        "`recctl features` lists them); repeatable, or comma-separated. rank computes what the model uses.",
    ),
]


def train_command(
    ctx: typer.Context,
    data: Data = None,
    label_col: LabelCol = "grade",
    group_col: GroupCol = "query_id",
    feature_cols: FeatureCols = None,
    model: ModelPath = defaults.DEFAULT_MODEL_PATH,
    min_interactions: MinInteractions = defaults.MIN_INTERACTIONS,
    lookback_days: LookbackDays = defaults.LOOKBACK_DAYS,
    since: Since = None,
    until: Until = None,
    labels: Labels = None,
    attribution_hours: AttributionHours = defaults.ATTRIBUTION_HOURS,
    validation_split: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share of query groups held out for validation.")
    ] = defaults.VALIDATION_SPLIT,
    split: Annotated[
        SplitChoice | None,
        typer.Option(
            help="time: newest groups validate (default with event times); group-random: seeded groups."
        ),
    ] = None,
    num_boost_round: Annotated[
        int, typer.Option(min=1, help="Maximum boosting rounds.")
    ] = defaults.NUM_BOOST_ROUND,
    early_stopping_rounds: Annotated[
        int,
        typer.Option(
            min=0, help="Stop after this many rounds without a better validation NDCG@10; 0 = never."
        ),
    ] = defaults.EARLY_STOPPING_ROUNDS,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed for LightGBM and the group-random split (default: LightGBM's own)."),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="LightGBM parameter KEY=VALUE (repeatable; lists as a,b,c).")
    ] = None,
    min_ndcg: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Quality gate: validation NDCG@10 must reach this, else exit 4."),
    ] = None,
    fail_below_baseline: Annotated[
        bool, typer.Option(help="Quality gate: exit 4 when the model does not beat the confidence order.")
    ] = False,
    min_valid_groups: Annotated[
        int, typer.Option(min=1, help="Gates need this many validation groups, else exit 3.")
    ] = defaults.MIN_VALID_GROUPS,
    debias: Annotated[
        DebiasChoice,
        typer.Option(
            help="Position-bias correction. position: LightGBM's position-debiased LambdaMART (every "
            "row's position in the Dataset; the model scores without it). ips: each relevant row "
            "(grade >= 1) weighted by min(1/examination(position), --ips-clip); LightGBM's row weights "
            "scale a row's summed pairwise lambdas, not each pair. The curve is --bias, else estimated "
            "from the window's served lists; with one, early stopping watches the IPS estimate of "
            "NDCG@10. auto: position when every row has a position (served lists), ips when only the "
            "relevant rows have one, else none."
        ),
    ] = DebiasChoice.auto,
    bias: Annotated[
        Path | None,
        typer.Option(metavar="PATH", help="Bias curve JSON for ips (as `recctl bias --out` writes it)."),
    ] = None,
    ips_clip: Annotated[
        float, typer.Option(min=1.0, help="The largest weight ips gives a row.")
    ] = defaults.IPS_CLIP,
    exclude_features: ExcludeFeatures = None,
    dask: Annotated[
        str | None,
        typer.Option(
            metavar="local:N|ADDRESS",
            help="Train on a Dask cluster: local:N starts N worker processes here, or give a scheduler "
            "address (tcp://host:8786). LightGBM's Dask interface has no early stopping (every round is "
            "trained, the best kept by a validation pass) and takes no positions (auto debiases by IPS "
            "weights). Needs pip install 'recctl[dask]'.",
        ),
    ] = None,
    evaluate_only: Annotated[
        bool, typer.Option(help="Do not train: report the current model on this data (gates still apply).")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")
    ] = False,
) -> None:
    """Train the LambdaRank ranker and write the model bundle (model text + .meta.json).

    The report (stderr) and --json say which position correction ran (--debias) and show its
    bias curve when there is one; the model's meta records both, and the features it uses.
    Exit 3 when there is too little data, 4 when a quality gate fails (the new model is then
    written as *.rejected.txt and the current one is left as it was).
    """
    from recctl.errors import QualityGateError
    from recctl.model import load_bundle
    from recctl.training import TrainOptions

    options = settings(ctx)
    overrides = lightgbm_params(param)
    if validation_split == 0 and (min_ndcg is not None or fail_below_baseline):
        raise typer.BadParameter("quality gates need a validation split", param_hint="--validation-split")
    _check_exclusions(exclude_features or [], data)
    curve = _bias_curve(debias, bias, data)
    if dask is not None:
        _check_dask(dask, debias, evaluate_only)
    train_options = TrainOptions(
        num_boost_round=num_boost_round,
        early_stopping_rounds=early_stopping_rounds,
        validation_split=validation_split,
        split=split.value if split else None,
        seed=seed,
        params=overrides,
        gated=min_ndcg is not None or fail_below_baseline,
        min_valid_groups=min_valid_groups,
        debias=debias.value,
        bias_curve=curve,
        ips_clip=ips_clip,
        bias_curve_source=str(bias) if bias is not None else None,
        dask=dask,
    )
    console = options.console
    with json_failures(json_output, model_path=model):
        # Everything that can be checked without the data is checked before reading it.
        current = load_bundle(model) if evaluate_only else None
        if current is None:
            _check_destination(model)
        console.rule("[bold]recctl train")
        training = training_data(
            options,
            data,
            label_col,
            group_col,
            feature_cols,
            min_interactions,
            lookback_days,
            since,
            until,
            labels,
            num_features=None,
            attribution_hours=attribution_hours,
        )
        training = exclude(training, exclude_features or [])
        console.print(
            f"Retrieved {training.retrieved:,} raw training examples from {training.source}", markup=False
        )
        report_links(console, training.manifest)
        console.print(
            f"Prepared {len(training.data.grades):,} training examples "
            f"in {len(training.data.group_sizes):,} query groups"
        )
        report_coverage(console, training.feature_coverage)
        train_options = with_estimated_curve(train_options, training, console)
        if current is not None:
            summary = _evaluate_only(console, training, train_options, current, min_ndcg, fail_below_baseline)
        else:
            summary = _train(console, training, train_options, model, min_ndcg, fail_below_baseline)
    _write_json(summary, json_output)
    if summary["status"] == "gate_failed":
        raise QualityGateError("; ".join(summary["gate_failures"]))


def lightgbm_params(param: list[str] | None) -> dict[str, Any]:
    """The ``--param KEY=VALUE`` overrides; a usage error for a malformed one or an unknown name."""
    from recctl.training import parse_param, unknown_params

    overrides = {}
    for text in param or []:
        try:
            key, value = parse_param(text)
        except ValueError:
            raise typer.BadParameter(f"--param wants KEY=VALUE, got {text!r}", param_hint="--param") from None
        overrides[key] = value
    unknown = unknown_params(overrides)
    if unknown:
        raise typer.BadParameter(
            "; ".join(
                f"unknown LightGBM parameter {name!r}" + (f" (did you mean {close!r}?)" if close else "")
                for name, close in unknown.items()
            ),
            param_hint="--param",
        )
    return overrides


def _check_dask(spec: str, debias: DebiasChoice, evaluate_only: bool) -> None:
    """Usage errors of --dask, before any data is read."""
    from recctl.distributed import Cluster, check_available
    from recctl.errors import InputError

    try:
        Cluster.parse(spec)
        check_available()
    except InputError as exc:
        raise typer.BadParameter(str(exc), param_hint="--dask") from None
    if debias == DebiasChoice.position:
        raise typer.BadParameter(
            "LightGBM's Dask interface takes no positions: use --debias ips or auto", param_hint="--dask"
        )
    if evaluate_only:
        raise typer.BadParameter("--evaluate-only trains nothing: drop --dask", param_hint="--dask")


def _check_exclusions(requests: list[str], data: Path | None) -> None:
    """A usage error, before any work, for an ``--exclude-features`` name that is neither a
    feature nor a group. With ``--data`` a name may be one of the data's own columns, so that check
    waits for the data (:func:`exclude`)."""
    from recctl.features import UnknownFeatureError, excluded_features

    if requests and data is None:
        try:
            excluded_features(requests)
        except UnknownFeatureError as exc:
            raise typer.BadParameter(exc.message(), param_hint="--exclude-features") from None


def exclude(training: TrainingData, requests: list[str]) -> TrainingData:
    """``training`` without the features ``--exclude-features`` names (among the data's own)."""
    from recctl.features import UnknownFeatureError, excluded_features

    if not requests:
        return training
    try:
        names = excluded_features(requests, training.data.feature_names)
    except UnknownFeatureError as exc:
        raise typer.BadParameter(exc.message(), param_hint="--exclude-features") from None
    return training.without_features(names)


def _bias_curve(debias: DebiasChoice, path: Path | None, data: Path | None) -> Any:
    """The bias curve of ``--bias`` (read before any work), or None."""
    from recctl.debias import read_bias_curve
    from recctl.errors import InputError

    if debias == DebiasChoice.ips and path is None and data is not None:
        raise typer.BadParameter(
            "--debias ips on --data needs --bias PATH (a curve from `recctl bias --out`)", param_hint="--bias"
        )
    if path is None:
        return None
    try:
        return read_bias_curve(path)
    except InputError as exc:
        raise typer.BadParameter(str(exc), param_hint="--bias") from None


def with_estimated_curve(train_options: Any, training: TrainingData, console: Console) -> Any:
    """``train_options`` with the curve of the window's own lists when no --bias was given and a
    correction may need one (:func:`recctl.debias.with_window_curve`)."""
    from recctl.debias import with_window_curve

    with console.status("estimating the position bias"):
        train_options, note = with_window_curve(train_options, training.click_log)
    if note is not None:
        console.print(f"No bias curve from the window's lists: {note}", markup=False)
    return train_options


def report_links(console: Console, manifest: dict[str, Any]) -> None:
    """What linking interactions to served lists gave, when the data had served lists."""
    impressions = manifest.get("impressions")
    if not impressions or not impressions.get("lists"):
        return
    groups = manifest["groups"]
    console.print(
        f"Served lists: {impressions['lists']:,} ({groups['lists']:,} kept as query groups, "
        f"{groups['left_out']['lists_without_interactions']:,} without a linked interaction); "
        f"{manifest['linked_interactions']:,} interactions linked to a list, "
        f"{manifest['unlinked_interactions']:,} unlinked (counted, not used)",
        markup=False,
    )


@contextlib.contextmanager
def json_failures(enabled: bool, **fields: Any) -> Iterator[None]:
    """With ``--json``, a failure still prints a JSON object on stdout, for CI that reads it:
    ``{"status": "insufficient_data" | "error", "message": ..., **fields}`` (exit 3 or 1).

    Usage errors (exit 2) print no JSON, like the errors of parsing the options.
    """
    from recctl.errors import InsufficientDataError, RecctlError

    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException, BrokenPipeError):
        raise
    except Exception as exc:
        if enabled:
            if isinstance(exc, InsufficientDataError):
                status, message = "insufficient_data", user_message(exc)
            elif isinstance(exc, RecctlError):
                status, message = "error", user_message(exc)
            else:
                status, message = "error", f"unexpected {type(exc).__name__}: {exc}"
            _write_json(
                {"status": status, "message": shown_line(message), **{k: str(v) for k, v in fields.items()}},
                True,
            )
        raise


def _check_destination(model_path: Path) -> None:
    from recctl.errors import ModelError
    from recctl.model import check_destination

    try:
        check_destination(model_path)
    except ModelError as exc:
        raise ModelError(f"--model: {exc}") from None


def _train(
    console: Console,
    training: TrainingData,
    train_options: Any,
    model_path: Path,
    min_ndcg: float | None,
    fail_below_baseline: bool,
) -> dict[str, Any]:
    from recctl.provenance import save_model
    from recctl.training import gate_failures, train_model

    with console.status("training"):
        result = train_model(training.data, train_options)
    failures = [
        failure.message(flag)
        for failure in gate_failures(
            result.metrics, result.baseline, min_ndcg=min_ndcg, fail_below_baseline=fail_below_baseline
        )
    ]
    saved = save_model(result, training, model_path, gate_failures=failures)
    _report(
        console,
        result.metrics,
        result.baseline,
        result.top_features,
        f"Boosting rounds: {result.best_iteration} ({result.split} split: {result.train_groups:,} train / "
        f"{result.valid_groups:,} validation groups)",
    )
    report_debias(console, result.debias)
    if result.splits == 0:
        console.print("[yellow]Warning[/]: the model has no split: it scores every item the same")
    elif 0 < result.valid_groups < train_options.min_valid_groups:
        console.print(
            f"[yellow]Warning[/]: validation on only {result.valid_groups} group(s): its NDCG is noise"
        )
    if failures:
        console.print(
            f"[bold red]Quality gate failed[/]: model written to {saved.path}; {model_path} left as it was"
        )
    else:
        console.print(f"[bold green]Model saved[/] to {saved.path} (version {saved.version})")
    return _summary(
        "gate_failed" if failures else "trained",
        training,
        best_iteration=result.best_iteration,
        model_path=saved.path,
        model_version=saved.version,
        metrics=result.metrics,
        baseline=result.baseline,
        top_features=[list(item) for item in result.top_features],
        split=result.split,
        gate_failures=failures,
        debias=result.debias,
        excluded_features=training.excluded_features,
    )


def _evaluate_only(
    console: Console,
    training: TrainingData,
    train_options: Any,
    bundle: ModelBundle,
    min_ndcg: float | None,
    fail_below_baseline: bool,
) -> dict[str, Any]:
    from recctl.errors import ModelError
    from recctl.evaluation import existing_model_metrics
    from recctl.model import describe_feature_mismatch
    from recctl.training import gate_failures

    model_path = bundle.path
    if not set(bundle.feature_names) <= set(training.data.feature_names):
        raise ModelError(
            describe_feature_mismatch(model_path, bundle.feature_names, training.data.feature_names)
        )
    data = training.data.select_features(bundle.feature_names)  # a model may use fewer features
    metrics, baseline, split = existing_model_metrics(bundle.booster(), data, train_options)
    failures = [
        failure.message(flag)
        for failure in gate_failures(
            metrics, baseline, min_ndcg=min_ndcg, fail_below_baseline=fail_below_baseline
        )
    ]
    _report(console, metrics, baseline, None, f"Model {model_path} (version {bundle.version}), {split} split")
    return _summary(
        "gate_failed" if failures else "evaluated",
        training,
        best_iteration=bundle.meta.get("best_iteration"),
        model_path=model_path,
        model_version=bundle.version,
        metrics=metrics,
        baseline=baseline,
        top_features=bundle.meta.get("top_features", []),
        split=split,
        gate_failures=failures,
    )


def _summary(status: str, training: TrainingData, *, model_path: Path, **figures: Any) -> dict[str, Any]:
    """The ``--json`` summary (the documented keys, plus model_version, split and gate_failures)."""
    manifest = training.manifest
    return {
        "status": status,
        "examples": len(training.data.grades),
        "groups": len(training.data.group_sizes),
        "model_path": str(model_path),
        **figures,
        "linked_interactions": manifest.get("linked_interactions"),
        "unlinked_interactions": manifest.get("unlinked_interactions"),
        "feature_coverage": training.feature_coverage,
        "empty_feature_groups": training.empty_feature_groups,
    }


def report_debias(console: Console, debias: dict[str, Any]) -> None:
    """Which position correction ran, why, and its bias curve when there is one."""
    line = f"Debiasing: {debias['method']} ({debias['reason']})"
    if debias["method"] == "position":
        line += "; LightGBM learns a bias per position, the model scores without positions"
    if debias.get("weights"):
        weights = debias["weights"]
        line += (
            f"; weights mean {weights['mean']:.3f}, max {weights['max']:.3f}, "
            f"{weights['clipped']:,} clipped at {debias['ips_clip']:g}"
        )
    console.print(line, markup=False)
    if debias.get("early_stopping_on") == "no early stopping" and debias["method"] == "position":
        console.print(
            "Note: no early stopping: without a bias curve only the logged NDCG@10 could judge the "
            "rounds, and it favours the order the clicks were logged in; all rounds were trained "
            "(--bias PATH makes early stopping watch the IPS estimate of NDCG)",
            markup=False,
        )
    if debias["method"] != "none" and debias.get("early_stopping_on") == "ndcg@10":
        console.print(
            "[yellow]Note[/]: early stopping watches the logged NDCG@10, which favours the order the "
            "clicks were logged in; --bias PATH makes it watch the IPS estimate of NDCG instead"
        )
    curve = debias.get("curve")
    if curve:
        shown = ", ".join(
            f"{entry['position']}: {entry['examination']:.3f}" for entry in curve["positions"][:12]
        )
        more = " ..." if len(curve["positions"]) > 12 else ""
        console.print(
            f"  examination by position ({curve['method']}, {curve['source']}): {shown}{more}", markup=False
        )


def report_coverage(console: Console, coverage: dict[str, dict[str, Any]]) -> None:
    """One line of coverage per feature group, and a warning for each group with no value at all."""
    from recctl.features import empty_feature_groups, empty_group_warning

    shares = ", ".join(f"{group} {info['coverage']:.0%}" for group, info in coverage.items())
    console.print(f"Feature coverage: {shares}", markup=False)
    for group in empty_feature_groups(coverage):
        console.print(f"[yellow]Warning[/]: {empty_group_warning(group, coverage)}")


def _report(
    console: Console,
    metrics: dict[str, dict[str, float]],
    baseline: dict[str, dict[str, float]] | None,
    top_features: list[tuple[str, float]] | None,
    headline: str,
) -> None:
    from rich.table import Table

    table = Table(title="NDCG", title_justify="left")
    table.add_column("groups")
    for name in ("model @5", "model @10", "confidence @5", "confidence @10"):
        table.add_column(name, justify="right")
    for part, values in metrics.items():
        reference = (baseline or {}).get(part, {})
        table.add_row(
            part,
            f"{values['ndcg@5']:.4f}",
            f"{values['ndcg@10']:.4f}",
            *(f"{reference[k]:.4f}" if k in reference else "-" for k in ("ndcg@5", "ndcg@10")),
        )
    console.print(table)
    console.print(headline, markup=False)
    if top_features:
        console.print("Top features by gain:")
        for rank, (name, gain) in enumerate(top_features, start=1):
            console.print(f"  {rank:>2}. {name}: {gain:,.2f}", markup=False)


def _write_json(summary: dict[str, Any], enabled: bool) -> None:
    """The ``--json`` summary on stdout (the human report is on stderr)."""
    if enabled:
        from recctl.cli.common import print_json

        print_json(summary)
