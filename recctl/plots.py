"""Charts of recctl's figures, drawn with Vega-Altair and rendered by vl-convert (no browser, no
network): SVG to embed in a page, PNG for slides.

Each ``*_chart`` function takes plain figures (as the commands' JSON gives them) and returns an
Altair chart; :func:`svg_of` and :func:`png_of` render one, :func:`save` writes it to a file by its
extension. Altair and vl-convert are imported only here, and only when a chart is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import altair as alt

WIDTH, HEIGHT = 440, 260
Kind = Literal["svg", "png"]
FORMATS: tuple[Kind, ...] = ("svg", "png")


def svg_of(chart: alt.TopLevelMixin) -> str:
    """The chart as SVG text (to embed in a page)."""
    import vl_convert

    return str(vl_convert.vegalite_to_svg(chart.to_json()))


def png_of(chart: alt.TopLevelMixin) -> bytes:
    """The chart as PNG bytes, at twice its size (for slides)."""
    import vl_convert

    return bytes(vl_convert.vegalite_to_png(chart.to_json(), scale=2))


def save(chart: alt.TopLevelMixin, path: Path) -> None:
    """Write the chart to ``path``, as SVG or PNG by its extension (ValueError for another)."""
    from recctl.atomic import write_atomically

    content = png_of(chart) if kind_of(path) == "png" else svg_of(chart).encode("utf-8")
    write_atomically(path, lambda temporary: temporary.write_bytes(content))


def kind_of(path: Path) -> Kind:
    """``svg`` or ``png`` from ``path``'s extension; ValueError for any other."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise ValueError(f"{path}: a plot is written as .svg or .png, not {path.suffix or 'no extension'}")
    return "png" if suffix == "png" else "svg"


def _altair() -> Any:
    import altair as alt

    alt.data_transformers.disable_max_rows()
    return alt


def frontier_chart(points: Sequence[dict[str, Any]], relevance: str) -> alt.LayerChart:
    """Relevance against ``diversity_discounted``, one point per lambda (as ``tune --json``
    gives them), the frontier joined and the knee ringed."""
    alt = _altair()
    rows = [
        {
            "lambda": point["lambda"],
            "relevance": point["relevance"],
            "diversity": point["diversity"],
            "on": "frontier" if point["pareto"] else "dominated",
            "knee": point["knee"],
        }
        for point in points
    ]
    data = alt.Data(values=rows)
    x = alt.X("diversity:Q", title="diversity_discounted", scale=alt.Scale(zero=False))
    y = alt.Y("relevance:Q", title=relevance, scale=alt.Scale(zero=False))
    base = alt.Chart(data).encode(x=x, y=y)
    line = (
        base.transform_filter(alt.datum.on == "frontier").mark_line(color="#4c78a8").encode(order="lambda:Q")
    )
    dots = base.mark_point(filled=True, size=60).encode(
        color=alt.Color(
            "on:N",
            title=None,
            scale=alt.Scale(domain=["frontier", "dominated"], range=["#4c78a8", "#bbbbbb"]),
        ),
        tooltip=["lambda:Q", "relevance:Q", "diversity:Q"],
    )
    labels = base.mark_text(dx=7, dy=-7, fontSize=10, align="left").encode(
        text=alt.Text("lambda:Q", format=".2f")
    )
    knee = base.transform_filter(alt.datum.knee).mark_point(size=260, color="#e45756", strokeWidth=2)
    return alt.layer(line, dots, labels, knee).properties(
        width=WIDTH, height=HEIGHT, title="The lambda frontier (knee ringed)"
    )


def rounds_chart(rounds: Sequence[dict[str, Any]]) -> alt.Chart:
    """The loop's figures per round (as ``simulate --json`` gives them), one line each."""
    alt = _altair()
    names = {
        "true_ndcg@10": "true NDCG@10",
        "ctr": "CTR",
        "implementation_rate": "implementation rate",
        "diversity_discounted": "diversity_discounted",
    }
    rows = [
        {"round": row["round"], "figure": label, "value": row[name]}
        for row in rounds
        for name, label in names.items()
        if row.get(name) is not None
    ]
    return (
        alt.Chart(alt.Data(values=rows))
        .mark_line(point=True)
        .encode(
            x=alt.X("round:O", title="round", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("value:Q", title="figure (each 0..1)"),
            color=alt.Color("figure:N", title=None, sort=list(names.values())),
            tooltip=["round:O", "figure:N", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(width=WIDTH, height=HEIGHT, title="The loop, round by round")
    )


def ndcg_chart(rows: Sequence[dict[str, Any]]) -> alt.LayerChart:
    """NDCG@k of each order with its interval: rows of ``order``, ``k``, ``value``, ``low``, ``high``."""
    alt = _altair()
    data = alt.Data(values=list(rows))
    order = ["model", "confidence order", "random", "ideal"]
    base = alt.Chart(data).encode(
        x=alt.X("k:N", title=None, sort=None, axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("order:N", sort=order),
        color=alt.Color("order:N", title=None, sort=order),
    )
    bars = base.mark_point(filled=True, size=50).encode(
        y=alt.Y("value:Q", title="NDCG", scale=alt.Scale(zero=False))
    )
    whiskers = base.mark_rule().encode(y="low:Q", y2="high:Q")
    return alt.layer(whiskers, bars).properties(width=WIDTH, height=HEIGHT, title="NDCG@k with 95% intervals")


def importance_chart(rows: Sequence[dict[str, Any]]) -> alt.Chart:
    """Gain per feature: rows of ``feature``, ``gain``, largest first."""
    alt = _altair()
    return (
        alt.Chart(alt.Data(values=list(rows)))
        .mark_bar(color="#4c78a8")
        .encode(
            x=alt.X("gain:Q", title="total gain"),
            y=alt.Y("feature:N", title=None, sort="-x"),
            tooltip=["feature:N", alt.Tooltip("gain:Q", format=",.0f")],
        )
        .properties(width=WIDTH, height=max(120, 18 * len(rows)), title="Feature importance (gain)")
    )


def bias_chart(positions: Sequence[dict[str, Any]]) -> alt.LayerChart:
    """Examination by slot with its interval, as ``recctl bias --json`` gives ``positions``."""
    alt = _altair()
    rows = [row for row in positions if row.get("examination") is not None]
    base = alt.Chart(alt.Data(values=rows)).encode(
        x=alt.X("position:O", title="slot (0 = first)", axis=alt.Axis(labelAngle=0))
    )
    band = base.mark_rule(color="#9ecae9", strokeWidth=3).encode(y="low:Q", y2="high:Q")
    line = base.mark_line(point=True, color="#4c78a8").encode(
        y=alt.Y("examination:Q", title="examination, relative to slot 0"),
        tooltip=["position:O", alt.Tooltip("examination:Q", format=".3f")],
    )
    return alt.layer(band, line).properties(width=WIDTH, height=HEIGHT, title="Position bias")


def engagement_chart(rows: Sequence[dict[str, Any]]) -> alt.Chart:
    """Interactions per day by type: rows of ``day`` (ISO date), ``type``, ``count``."""
    alt = _altair()
    return (
        alt.Chart(alt.Data(values=list(rows)))
        .mark_line()
        .encode(
            x=alt.X("day:T", title=None),
            y=alt.Y("count:Q", title="interactions per day"),
            color=alt.Color("type:N", title=None),
            tooltip=["day:T", "type:N", "count:Q"],
        )
        .properties(width=WIDTH, height=HEIGHT, title="Engagement over time")
    )


def category_chart(rows: Sequence[dict[str, Any]]) -> alt.Chart:
    """Rates per category: rows of ``category``, ``rate`` (its name), ``value``."""
    alt = _altair()
    return (
        alt.Chart(alt.Data(values=list(rows)))
        .mark_bar()
        .encode(
            x=alt.X("category:N", title=None, axis=alt.Axis(labelAngle=-30)),
            xOffset="rate:N",
            y=alt.Y("value:Q", title="rate"),
            color=alt.Color("rate:N", title=None),
            tooltip=["category:N", "rate:N", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(width=WIDTH, height=HEIGHT, title="Engagement per category")
    )
