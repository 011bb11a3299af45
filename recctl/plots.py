"""Charts of recctl's figures, drawn with Vega-Altair and rendered by vl-convert (no browser, no
network): SVG to embed in a page, PNG for slides.

Each ``*_chart`` function takes plain figures (as the commands' JSON gives them) and returns an
Altair chart; :func:`render` turns one into SVG text or PNG bytes, :func:`save` writes it to a file
by its extension. Altair and vl-convert are imported only here, and only when a chart is drawn.
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


def render(chart: alt.TopLevelMixin, kind: Kind = "svg") -> str | bytes:
    """The chart as SVG text or PNG bytes (twice the size, for slides)."""
    import vl_convert

    spec = chart.to_json()
    if kind == "png":
        return bytes(vl_convert.vegalite_to_png(spec, scale=2))
    return str(vl_convert.vegalite_to_svg(spec))


def save(chart: alt.TopLevelMixin, path: Path) -> None:
    """Write the chart to ``path``, as SVG or PNG by its extension (ValueError for another)."""
    from recctl.atomic import write_atomically

    drawn = render(chart, kind_of(path))
    content = drawn.encode("utf-8") if isinstance(drawn, str) else drawn
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
            x=alt.X("round:O", title="round"),
            y=alt.Y("value:Q", title=None),
            color=alt.Color("figure:N", title=None, sort=list(names.values())),
            tooltip=["round:O", "figure:N", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(width=WIDTH, height=HEIGHT, title="The loop, round by round")
    )
