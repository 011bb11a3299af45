"""Training past one machine: a partitioned export (whole groups per file) and ``train --dask``
on a local Dask cluster, which must land within 0.01 NDCG@10 of the single-machine model trained
on the same data for the same rounds."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from builders import SAMPLE_WINDOW, run
from hypothesis import given
from hypothesis import strategies as st

from recctl.distributed import Cluster, group_chunks
from recctl.errors import InputError


@pytest.fixture(scope="module")
def partitioned(sample_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "parts"
    code, _, err = run(
        "--store", str(sample_store), "export", *SAMPLE_WINDOW, "--out", str(out), "--partitions", "3"
    )
    assert code == 0, err
    return out


def test_a_partitioned_export_holds_whole_groups_per_file(
    partitioned: Path, sample_store: Path, tmp_path: Path
) -> None:
    manifest = json.loads((partitioned / "manifest.json").read_text())
    assert manifest["data_files"] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    parts = [pl.read_parquet(partitioned / name) for name in manifest["data_files"]]
    groups = [set(part["query_id"]) for part in parts]
    assert (
        all(groups)
        and not (groups[0] & groups[1])
        and not (groups[1] & groups[2])
        and not (groups[0] & groups[2])
    )
    whole = tmp_path / "whole"
    assert run("--store", str(sample_store), "export", *SAMPLE_WINDOW, "--out", str(whole))[0] == 0
    assert pl.concat(parts).equals(pl.read_parquet(whole / "training_set.parquet"))


def test_an_export_over_an_earlier_one_leaves_no_stale_part(sample_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    for partitions in ("4", "2", "1"):
        args = (
            "--store",
            str(sample_store),
            "export",
            *SAMPLE_WINDOW,
            "--out",
            str(out),
            "--partitions",
            partitions,
        )
        assert run(*args)[0] == 0
        listed = json.loads((out / "manifest.json").read_text())["data_files"]
        assert sorted(path.name for path in out.glob("*.parquet")) == sorted(listed)
    assert listed == ["training_set.parquet"]


def test_dask_training_matches_the_single_machine_model(partitioned: Path, tmp_path: Path) -> None:
    same = ("--num-boost-round", "60", "--early-stopping-rounds", "0", "--debias", "none", "--seed", "3")
    figures = {}
    for name, extra in (("single", ()), ("dask", ("--dask", "local:2"))):
        model = tmp_path / f"{name}.txt"
        code, out, err = run(
            "train", "--data", str(partitioned), "--model", str(model), *same, *extra, "--json"
        )
        assert code == 0, err
        figures[name] = json.loads(out)
        assert figures[name]["best_iteration"] == 60
    assert figures["dask"]["groups"] == figures["single"]["groups"]
    for part in ("train", "valid"):
        single, dask = (
            figures["single"]["metrics"][part]["ndcg@10"],
            figures["dask"]["metrics"][part]["ndcg@10"],
        )
        assert abs(single - dask) <= 0.01, (part, single, dask)
    meta = json.loads((tmp_path / "dask.meta.json").read_text())
    assert meta["feature_names"] == json.loads((tmp_path / "single.meta.json").read_text())["feature_names"]
    code, out, err = run(
        "rank",
        str(Path(__file__).parents[1] / "sample_data" / "rank_batch.json"),
        "--model",
        str(tmp_path / "dask.txt"),
    )
    assert code == 0, err
    assert json.loads(out)["summary"]["ml_ranking_applied"] is True


def test_on_dask_the_best_round_is_kept_by_a_validation_pass(partitioned: Path, tmp_path: Path) -> None:
    code, out, err = run(
        "train", "--data", str(partitioned), "--model", str(tmp_path / "m.txt"), "--dask", "local:2",
        "--num-boost-round", "15", "--debias", "none", "--seed", "3", "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert 1 <= summary["best_iteration"] <= 15
    assert "validation pass" in summary["debias"]["early_stopping_on"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--dask", "local:0"), "local:N"),
        (("--dask", "somewhere"), "scheduler address"),
        (("--dask", "local:2", "--debias", "position"), "positions"),
    ],
)
def test_bad_dask_options_are_usage_errors(args: tuple[str, ...], message: str) -> None:
    code, _, err = run("train", "--data", "nowhere", *args)
    assert code == 2 and message in err


def test_cluster_specs() -> None:
    assert Cluster.parse("local:3") == Cluster(workers=3)
    assert Cluster.parse("tcp://10.0.0.5:8786") == Cluster(address="tcp://10.0.0.5:8786")
    for bad in ("local:", "local:x", "tcp://", "8786"):
        with pytest.raises(InputError):
            Cluster.parse(bad)


@given(st.lists(st.integers(1, 30), min_size=1, max_size=60), st.integers(1, 8))
def test_chunks_are_whole_groups_covering_every_row(sizes: list[int], chunks: int) -> None:
    group_sizes = np.array(sizes, dtype=np.int64)
    groups, rows = group_chunks(group_sizes, chunks)
    assert sum(groups) == len(sizes) and sum(rows) == sum(sizes)
    assert 1 <= len(groups) <= chunks and all(count > 0 for count in groups)
    bounds = np.cumsum((0, *groups))
    assert [int(group_sizes[a:b].sum()) for a, b in itertools.pairwise(bounds)] == list(rows)
