"""One self-contained HTML report of a store's window and a model: figures an analyst reads.

Sections, in order: the data window and its counts; the model against the confidence order
(NDCG@k with bootstrap 95% intervals); the model's feature importance (gain); the position-bias
curve; the lambda frontier; engagement over time; engagement per category. Each section that
cannot be drawn from the data (no model, no served lists, a curve that cannot be estimated)
says why in its place instead of failing the report.

The page needs nothing but itself: plots are inline SVG (Vega-Altair charts rendered by
vl-convert, :mod:`recctl.plots`), the style is inline, there is no script, and a
Content-Security-Policy forbids loading anything, so a browser opens it offline without a single
request.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import altair as alt
    import polars as pl

    from recctl.dataset import TimeWindow
    from recctl.stores.base import Store

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@dataclass
class Section:
    """One part of the report: a title, a sentence or two, an optional table and chart."""

    key: str
    title: str
    text: str = ""
    table: tuple[list[str], list[list[str]]] | None = None
    chart: alt.TopLevelMixin | None = None
    missing: str | None = None
    """Why the section has no figures (None: it has them)."""


@dataclass
class Report:
    title: str
    generated: str
    sections: list[Section] = field(default_factory=list)

    def charts(self) -> dict[str, Any]:
        return {section.key: section.chart for section in self.sections if section.chart is not None}

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "generated": self.generated,
            "sections": [
                {"key": s.key, "title": s.title, "plot": s.chart is not None, "missing": s.missing}
                for s in self.sections
            ],
        }


def build_report(
    store: Store,
    window: TimeWindow,
    model_path: Path | None,
    *,
    lambdas: list[float] | None = None,
    min_interactions: int = 0,
    resamples: int = 200,
    seed: int = 0,
    progress: Any = None,
) -> Report:
    """The report of ``store``'s ``window`` and the model at ``model_path`` (None or missing:
    the model sections say so)."""
    from recctl.errors import RecctlError
    from recctl.model import load_bundle

    def step(message: str) -> None:
        if progress is not None:
            progress(message)

    bundle = None
    model_note = "no model was given"
    if model_path is not None:
        try:
            bundle = load_bundle(model_path)
        except RecctlError as exc:
            model_note = exc.message()
    report = Report(
        title="recctl report",
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    step("counting the window's records")
    report.sections.append(_window_section(store, window))
    step("evaluating the model")
    training = None
    try:
        from recctl.training_data import data_from_store

        training = data_from_store(store, window, min_interactions=min_interactions)
    except RecctlError as exc:
        training_note = exc.message()
    else:
        training_note = ""
    report.sections.append(
        _model_section(model_path, bundle, model_note, training, training_note, resamples, seed)
    )
    report.sections.append(_importance_section(bundle, model_note))
    step("estimating the position bias")
    report.sections.append(_bias_section(training, training_note, resamples, seed))
    step("sweeping lambda")
    report.sections.append(
        _frontier_section(store, window, model_path, bundle, model_note, lambdas, min_interactions)
    )
    step("engagement")
    interactions = store.read(
        "interactions",
        since=window.since,
        until=window.until,
        columns=["timestamp", "interaction_type", "recommendation_id"],
    )
    report.sections.append(_engagement_section(interactions))
    report.sections.append(_category_section(store, window))
    return report


def _window_section(store: Store, window: TimeWindow) -> Section:
    interactions = store.read(
        "interactions",
        since=window.since,
        until=window.until,
        columns=["user_id", "recommendation_id", "timestamp"],
    )
    impressions = store.read("impressions", since=window.since, until=window.until, columns=["request_id"])
    first, last = (
        (interactions["timestamp"].min(), interactions["timestamp"].max())
        if interactions.height
        else (None, None)
    )
    rows = [
        ["window", f"{_when(window.since) or 'open'} .. {_when(window.until) or 'open'}"],
        ["interactions", f"{interactions.height:,}"],
        ["first / last interaction", f"{_when(first) or '-'} / {_when(last) or '-'}"],
        ["users", f"{interactions['user_id'].n_unique():,}" if interactions.height else "0"],
        [
            "recommendations interacted with",
            f"{interactions['recommendation_id'].n_unique():,}" if interactions.height else "0",
        ],
        [
            "served lists (impressions)",
            f"{impressions['request_id'].n_unique():,}" if impressions.height else "0",
        ],
        ["items shown", f"{impressions.height:,}"],
    ]
    return Section("window", "The data", "What the report was computed on.", table=(["", ""], rows))


def _model_section(
    model_path: Path | None,
    bundle: Any,
    model_note: str,
    training: Any,
    training_note: str,
    resamples: int,
    seed: int,
) -> Section:
    from recctl.errors import RecctlError
    from recctl.evaluation import evaluate
    from recctl.plots import ndcg_chart

    section = Section("model", "The model against the confidence order")
    if bundle is None or training is None:
        section.missing = model_note if bundle is None else training_note
        return section
    try:
        result = evaluate(model_path, training, resamples=resamples, seed=seed).as_json()  # type: ignore[arg-type]
    except RecctlError as exc:
        section.missing = exc.message()
        return section
    orders = [name for name in ("model", "baseline", "random", "ideal") if result[name] is not None]
    metrics = list(result["model"])
    header = ["order", *metrics]
    rows = [
        [
            _order_name(name),
            *(_with_interval(result[name][m], result["intervals"][name][m]) for m in metrics),
        ]
        for name in orders
    ]
    overlap = result["training_overlap"] or {}
    section.text = (
        f"Model {model_path} (version {bundle.version}) on {result['groups']:,} query groups of the "
        f"window; in brackets, bootstrap 95% intervals over groups."
        + (
            f" {overlap['groups']:,} of the groups were in its training data, so these figures flatter it."
            if overlap.get("groups")
            else ""
        )
    )
    section.table = (header, rows)
    section.chart = ndcg_chart(
        [
            {
                "order": _order_name(name),
                "k": m,
                "value": result[name][m],
                "low": result["intervals"][name][m][0],
                "high": result["intervals"][name][m][1],
            }
            for name in orders
            for m in metrics
        ]
    )
    return section


def _with_interval(value: float, interval: list[float]) -> str:
    return f"{value:.4f} ({interval[0]:.3f}-{interval[1]:.3f})"


def _order_name(name: str) -> str:
    return "confidence order" if name == "baseline" else name


def _importance_section(bundle: Any, model_note: str) -> Section:
    from recctl.plots import importance_chart

    section = Section(
        "importance", "What the model looks at", "Total gain of the splits on each feature (the 15 largest)."
    )
    if bundle is None:
        section.missing = model_note
        return section
    booster = bundle.booster()
    gains = booster.feature_importance(importance_type="gain")
    pairs = sorted(zip(booster.feature_name(), gains.tolist(), strict=True), key=lambda pair: -pair[1])[:15]
    pairs = [(name, gain) for name, gain in pairs if gain > 0]
    if not pairs:
        section.missing = "the model has no split"
        return section
    section.chart = importance_chart([{"feature": name, "gain": gain} for name, gain in pairs])
    return section


def _bias_section(training: Any, training_note: str, resamples: int, seed: int) -> Section:
    from recctl.bias import estimate_bias
    from recctl.errors import RecctlError
    from recctl.plots import bias_chart

    section = Section(
        "bias",
        "Position bias",
        "How likely each slot is to be examined, relative to the first, with 95% intervals (recctl bias).",
    )
    if training is None or training.click_log is None:
        section.missing = training_note or "the window has no served lists (impressions)"
        return section
    try:
        curve = estimate_bias(training.click_log, resamples=min(resamples, 100), seed=seed).as_json()
    except RecctlError as exc:
        section.missing = exc.message()
        return section
    section.text += f" Method: {curve['method']}."
    section.chart = bias_chart(curve["positions"])
    return section


def _frontier_section(
    store: Store,
    window: TimeWindow,
    model_path: Path | None,
    bundle: Any,
    model_note: str,
    lambdas: list[float] | None,
    min_interactions: int,
) -> Section:
    from recctl.errors import RecctlError
    from recctl.plots import frontier_chart
    from recctl.tuning import lambda_grid, tune_store

    section = Section("frontier", "The lambda frontier", "")
    if bundle is None:
        section.missing = model_note
        return section
    try:
        tuned = tune_store(
            store, window, model_path, lambdas or lambda_grid("0:1:0.1"), min_interactions=min_interactions
        ).as_json()
    except RecctlError as exc:
        section.missing = exc.message()
        return section
    section.text = (
        f"MMR's relevance ({tuned['relevance']}) against diversity_discounted over {tuned['lists']:,} lists "
        f"(recctl tune); the suggested knee is lambda {tuned['knee']:.2f}."
    )
    section.chart = frontier_chart(tuned["points"], tuned["relevance"])
    return section


def _engagement_section(interactions: pl.DataFrame) -> Section:
    import polars as pl

    from recctl.plots import engagement_chart

    section = Section("engagement", "Engagement over time", "Interactions per day, by type.")
    if interactions.is_empty():
        section.missing = "no interactions in the window"
        return section
    daily = (
        interactions.with_columns(
            pl.col("timestamp").dt.date().alias("day"),
            pl.col("interaction_type").str.to_lowercase().str.strip_chars().alias("type"),
        )
        .group_by("day", "type")
        .agg(pl.len().alias("count"))
        .sort("day", "type")
    )
    section.chart = engagement_chart(
        [
            {"day": row["day"].isoformat(), "type": row["type"], "count": row["count"]}
            for row in daily.iter_rows(named=True)
        ]
    )
    return section


def _category_section(store: Store, window: TimeWindow) -> Section:
    import polars as pl

    from recctl.plots import category_chart
    from recctl.stats import recommendation_stats

    section = Section(
        "categories",
        "Engagement per category",
        "Click-through rate (clicks / views) and implementation rate (implementations / clicks) "
        "of each catalog category.",
    )
    stats = recommendation_stats(store, since=window.since, until=window.until)
    if stats.is_empty():
        section.missing = "no interactions in the window"
        return section
    per_category = (
        stats.group_by(pl.col("category").fill_null("(none)"))
        .agg(pl.col("view_count").sum(), pl.col("click_count").sum(), pl.col("implementation_count").sum())
        .with_columns(
            (pl.col("click_count") / pl.col("view_count")).alias("ctr"),
            (pl.col("implementation_count") / pl.col("click_count")).alias("implementation_rate"),
        )
        .sort("category")
    )
    section.table = (
        ["category", "views", "clicks", "implementations", "CTR", "implementation rate"],
        [
            [
                row["category"],
                f"{row['view_count']:,}",
                f"{row['click_count']:,}",
                f"{row['implementation_count']:,}",
                _rate(row["ctr"]),
                _rate(row["implementation_rate"]),
            ]
            for row in per_category.iter_rows(named=True)
        ],
    )
    section.chart = category_chart(
        [
            {"category": row["category"], "rate": name, "value": row[key]}
            for row in per_category.iter_rows(named=True)
            for key, name in (("ctr", "CTR"), ("implementation_rate", "implementation rate"))
            if row[key] is not None
        ]
    )
    return section


def _rate(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.3f}"


def _when(value: Any) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%d %H:%M") if hasattr(value, "strftime") else str(value)


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 60rem;
       color: #222; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
p.meta, p.missing { color: #666; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { padding: 0.25rem 0.7rem; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1rem 0; }
nav a { margin-right: 0.8rem; }
"""


def render_html(report: Report) -> str:
    """The report as one HTML page: inline SVG plots, inline style, no script, nothing to load."""
    from recctl.plots import svg_of

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(report.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
        f'<p class="meta">Generated {html.escape(report.generated)} by recctl.</p>',
        "<nav>"
        + "".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in report.sections)
        + "</nav>",
    ]
    for section in report.sections:
        parts.append(f'<section id="{section.key}"><h2>{html.escape(section.title)}</h2>')
        if section.text:
            parts.append(f"<p>{html.escape(section.text)}</p>")
        if section.missing is not None:
            parts.append(f'<p class="missing">Not shown: {html.escape(section.missing)}</p>')
        if section.table is not None:
            header, rows = section.table
            head = (
                ""
                if not any(header)
                else "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>"
            )
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
            )
            parts.append(f"<table>{head}<tbody>{body}</tbody></table>")
        if section.chart is not None:
            parts.append(f'<figure class="plot" data-plot="{section.key}">{svg_of(section.chart)}</figure>')
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
