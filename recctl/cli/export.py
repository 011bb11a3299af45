"""``recctl export``: the training set as Parquet plus a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from recctl import defaults
from recctl.cli.common import print_json, settings
from recctl.cli.options import (
    AttributionHours,
    Labels,
    LookbackDays,
    MinInteractions,
    Since,
    Until,
    resolve_window,
)


def export_command(
    ctx: typer.Context,
    out: Annotated[
        Path, typer.Option(help="A directory (training_set.parquet + manifest.json) or a .parquet file path.")
    ] = Path("training-set"),
    lookback_days: LookbackDays = defaults.LOOKBACK_DAYS,
    since: Since = None,
    until: Until = None,
    min_interactions: MinInteractions = defaults.MIN_INTERACTIONS,
    labels: Labels = None,
    attribution_hours: AttributionHours = defaults.ATTRIBUTION_HOURS,
    partitions: Annotated[
        int,
        typer.Option(
            min=1,
            help="Write the directory as this many part-NNNNN.parquet files of whole query groups "
            "(for train --dask), listed in the manifest.",
        ),
    ] = 1,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the manifest summary as JSON on stdout.")
    ] = False,
) -> None:
    """Build the learning-to-rank training set from the store: one row per (query group, recommendation).

    A query group is a served list (impressions) for an assessment with lists in the window, with
    each item's position and propensities, else the assessment's catalog list. A window of more
    than 1,500,000 interactions is built in buckets of assessments of about 750,000 each, so its
    peak memory stays below that of 1.5M interactions (about 3 GB) however long the window
    (scratch files go beside --out, removed at the end).

    Exit 3 when there are fewer than --min-interactions interactions in the window or no usable group.
    """
    from recctl.bucketed_export import export_training_set
    from recctl.dataset import output_paths
    from recctl.labels import load_policy

    options = settings(ctx)
    output_paths(out)  # a bad --out fails before the work, not after it
    if partitions > 1 and out.suffix == ".parquet":
        raise typer.BadParameter(
            "a partitioned export is a directory: give --out DIR", param_hint="--partitions"
        )
    window = resolve_window(since, until, lookback_days)
    policy = load_policy(labels)
    store = options.open_store(existing=True)
    try:
        with options.console.status("exporting") as status:
            exported = export_training_set(
                store,
                window,
                out,
                policy=policy,
                min_interactions=min_interactions,
                attribution_hours=attribution_hours,
                partitions=partitions,
                progress=lambda message: status.update(message),
            )
    finally:
        store.close()
    summary = manifest_summary(exported.manifest, exported.data_path, exported.manifest_path)
    if json_output:
        print_json(summary)
    report(options.console, summary)


def manifest_summary(manifest: dict[str, Any], data_path: Path, manifest_path: Path) -> dict[str, Any]:
    """The manifest without the long feature list, plus where things were written."""
    short = {key: value for key, value in manifest.items() if key not in ("feature_names", "label_policy")}
    return {
        **short,
        "features": len(manifest["feature_names"]),
        "path": str(data_path),
        "manifest": str(manifest_path),
    }


def report(console: Any, summary: dict[str, Any]) -> None:
    groups = summary["groups"]
    left_out = ", ".join(f"{n:,} {reason.replace('_', ' ')}" for reason, n in groups["left_out"].items())
    window = summary["time_window"]
    console.print(
        f"[bold]{summary['rows']:,}[/] rows in [bold]{groups['kept']:,}[/] groups "
        f"({groups['seen']:,} seen; left out: {left_out}), {summary['features']} features",
        highlight=False,
    )
    console.print(
        f"interactions {summary['interactions']:,} (orphans {summary['orphan_interactions']:,}), "
        f"grades {summary['grade_counts']}, window {window['since'] or '-'} .. {window['until'] or '-'}",
        markup=False,
    )
    from recctl.cli.train import report_coverage, report_links

    report_links(console, summary)
    report_coverage(console, summary["feature_coverage"])
    console.print(f"-> {summary['path']} + {summary['manifest']}", markup=False, soft_wrap=True)
