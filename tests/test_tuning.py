"""The lambda sweep: the frontier marks exactly the non-dominated points, the knee is one of them,
and the ranked lists' figures are rank's (exact on lists small enough to check by hand)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from builders import SAMPLE_DATA, SAMPLE_WINDOW, run
from hypothesis import given
from hypothesis import strategies as st

from recctl.diversity import list_traits_of
from recctl.tuning import MAX_LAMBDAS, knee_index, lambda_grid, pareto_flags, ranked_figures

figures = st.lists(
    st.tuples(st.sampled_from([0.1, 0.2, 0.3, 0.5, 0.8]), st.sampled_from([0.1, 0.4, 0.6, 0.9])),
    min_size=1,
    max_size=25,
)


@given(figures)
def test_pareto_marks_exactly_the_points_no_other_dominates(points: list[tuple[float, float]]) -> None:
    relevance, diversity = (np.array(values) for values in zip(*points, strict=True))
    flags = pareto_flags(relevance, diversity)
    for i, (rel, div) in enumerate(points):
        dominated = any(
            other_rel >= rel and other_div >= div and (other_rel > rel or other_div > div)
            for other_rel, other_div in points
        )
        assert flags[i] == (not dominated)


@given(figures)
def test_the_knee_is_a_frontier_point(points: list[tuple[float, float]]) -> None:
    relevance, diversity = (np.array(values) for values in zip(*points, strict=True))
    lambdas = np.linspace(0.0, 1.0, len(points))
    assert pareto_flags(relevance, diversity)[knee_index(relevance, diversity, lambdas)]


def test_the_knee_of_a_bent_frontier_is_its_bend() -> None:
    # relevance falls slowly, then fast, as diversity rises: the bend is at the third point
    relevance = np.array([1.0, 0.98, 0.95, 0.6, 0.2])
    diversity = np.array([0.1, 0.3, 0.5, 0.6, 0.7])
    assert knee_index(relevance, diversity, [1.0, 0.8, 0.6, 0.4, 0.2]) == 2


@pytest.mark.parametrize(
    ("spec", "lambdas"),
    [
        ("0.5:1.0:0.25", [0.5, 0.75, 1.0]),
        ("0.6,0.8,0.7,0.7", [0.6, 0.7, 0.8]),
        ("0:1:0.1", [round(0.1 * i, 10) for i in range(11)]),
        ("0.3:1.0:0.3", [0.3, 0.6, 0.9]),
    ],
)
def test_lambda_grids(spec: str, lambdas: list[float]) -> None:
    assert lambda_grid(spec) == lambdas


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "0.5:0.2:0.1",
        "0:1:0",
        "0:1.5:0.5",
        "a,b",
        "0.2:0.4",
        "0:1:1e-9",
        "0:1:1e-300",
        "0:inf:0.1",
        "0:1:inf",
    ],
)
def test_bad_lambda_grids(spec: str) -> None:
    with pytest.raises(ValueError, match=r"lambda|START|step|numbers|expected"):
        lambda_grid(spec)


def test_a_grid_has_at_most_a_thousand_and_one_lambdas() -> None:
    assert len(lambda_grid("0:1:0.001")) == MAX_LAMBDAS
    assert lambda_grid(",".join(["0.5"] * 5_000)) == [0.5]  # repeats are one lambda
    with pytest.raises(ValueError, match="at most 1,001 lambdas, got 3,000"):
        lambda_grid(",".join(str(i / 3_000) for i in range(3_000)))


def _traits(categories: list[str], sizes: list[int]):  # type: ignore[no-untyped-def]
    import polars as pl

    frame = pl.DataFrame(
        {
            "category": categories,
            "cloud_provider": [None] * len(categories),
            "priority": [None] * len(categories),
            "implementation_effort": [None] * len(categories),
            "services": [[] for _ in categories],
            "tags": [[] for _ in categories],
        },
        schema_overrides={
            **dict.fromkeys(("cloud_provider", "priority", "implementation_effort"), pl.String),
            **dict.fromkeys(("services", "tags"), pl.List(pl.String)),
        },
    )
    return list_traits_of(frame, sizes)


def test_ranked_figures_by_hand() -> None:
    # One list: a (cost, grade 2), b (cost, grade 1), c (security, grade 0); scores follow grades.
    traits = _traits(["cost", "cost", "security"], [3])
    scores = np.array([3.0, 2.0, 1.0])
    grades = np.array([2, 1, 0])
    ndcg_1, div_1 = ranked_figures(scores, grades, traits, 1.0, top_k=None, k=3)
    assert ndcg_1 == pytest.approx(1.0)
    # lambda 0: after a, MMR picks the dissimilar c before b: a, c, b
    ndcg_0, div_0 = ranked_figures(scores, grades, traits, 0.0, top_k=None, k=3)
    gains = np.array([3.0, 0.0, 1.0]) / np.log2(np.arange(2, 5))
    ideal = np.array([3.0, 1.0, 0.0]) / np.log2(np.arange(2, 5))
    assert ndcg_0 == pytest.approx(gains.sum() / ideal.sum())
    assert div_0 > div_1
    # cut to one item, NDCG@1 judges it against the whole list's best
    assert ranked_figures(scores, grades, traits, 1.0, top_k=1, k=1)[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="cut"):
        ranked_figures(scores, grades, traits, 1.0, top_k=1, k=3)


def tune(store: Path, model: Path, *args: str) -> dict:
    code, out, err = run(
        "--store", str(store), "tune", *SAMPLE_WINDOW, "--model", str(model), *args, "--json"
    )
    assert code == 0, err
    return json.loads(out)


def test_on_the_sample_data_diversity_rises_as_lambda_falls(sample_store: Path, sample_model: Path) -> None:
    summary = tune(sample_store, sample_model, "--lambda", "0.3:1.0:0.1")
    by_falling_lambda = sorted(summary["points"], key=lambda point: -point["lambda"])
    diversity = [point["diversity"] for point in by_falling_lambda]
    assert by_falling_lambda[0]["lambda"] == 1.0 and len(diversity) == 8
    assert all(later >= earlier for earlier, later in itertools.pairwise(diversity))
    assert diversity[-1] > diversity[0]
    knee = [point for point in summary["points"] if point["knee"]]
    assert len(knee) == 1 and knee[0]["pareto"] and knee[0]["lambda"] == summary["knee"]
    flags = pareto_flags(
        [p["relevance"] for p in summary["points"]], [p["diversity"] for p in summary["points"]]
    )
    assert [p["pareto"] for p in summary["points"]] == flags.tolist()


def test_grades_and_a_plot(sample_store: Path, sample_model: Path, tmp_path: Path) -> None:
    plot = tmp_path / "frontier.svg"
    summary = tune(
        sample_store, sample_model, "--lambda", "0.5,1", "--grades", str(SAMPLE_DATA / "truth.ndjson"),
        "--plot", str(plot),
    )  # fmt: skip
    assert summary["relevance"] == "ndcg@10 (grades)" and summary["grades"]["rows_judged"] > 0
    text = plot.read_text()
    assert text.startswith("<svg") and "diversity_discounted" in text


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (("--lambda", "0.2:0.1:0.1"), "--lambda"),
        (("--plot", "frontier.gif"), "--plot"),
        (("--top-k", "3", "--k", "5"), "--k"),
        (("--off-policy", "snips", "--grades", "g.ndjson"), "--off-policy"),
    ],
)
def test_bad_arguments_are_usage_errors(args: tuple[str, ...], flag: str) -> None:
    code, _, err = run("tune", *args)
    assert code == 2 and flag in err
