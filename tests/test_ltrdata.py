"""Learning-to-rank data sets: LibSVM (qid and .query), Parquet (files, export directories), and
LightGBM's own lambdarank example (shipped in tests/data) reproduced to four decimals.

The MQ2008 check needs a data set the repository does not ship: ``make check-mq2008`` runs it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest
from builders import LAMBDARANK_EXAMPLE_CONF

from recctl.errors import InputError
from recctl.ltrdata import LtrData, load_ltr
from recctl.metrics import ndcg

# LightGBM's examples/lambdarank/train.conf. No `seed`: LightGBM's default per-purpose seeds
# (bagging_seed 3, ...) are what its CLI uses; setting `seed` alone changes the bagging draws.
LAMBDARANK_EXAMPLE_PARAMS: dict[str, object] = {
    "objective": "lambdarank",
    **LAMBDARANK_EXAMPLE_CONF,
    "deterministic": True,
    "force_row_wise": True,
    # Any thread count gives the same model here; one thread avoids OpenMP spin-waiting, which
    # makes two threads on a busy two-core CI machine up to 100x slower.
    "num_threads": 1,
    "verbose": -1,
}
LAMBDARANK_EXAMPLE_NDCG = {1: 0.5775, 3: 0.6190, 5: 0.6546, 10: 0.7243}


# --- LibSVM ---------------------------------------------------------------------------------------------


def test_libsvm_with_qid_comments_gaps_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text(
        "# a header comment\n"
        "2 qid:7 1:0.5 4:1.5 # docid = a\n"
        "\n"
        "0 qid:7\t2:-1  # tabs and double spaces\r\n"
        "1 qid:9 0:3 1:1e-3\n"
        "0 qid:9\n"  # a line with no features: all zero
        "3 qid:9 4:inf"
    )
    data = load_ltr(path)
    assert isinstance(data, LtrData)
    assert data.feature_names == ["f0", "f1", "f2", "f3", "f4"]
    assert data.features.dtype == np.float64
    assert data.features.tolist() == [
        [0.0, 0.5, 0.0, 0.0, 1.5],
        [0.0, 0.0, -1.0, 0.0, 0.0],
        [3.0, 0.001, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, np.inf],
    ]
    assert data.grades.dtype == np.int32
    assert data.grades.tolist() == [2, 0, 1, 0, 3]
    assert data.group_sizes.dtype == np.int64
    assert data.group_sizes.tolist() == [2, 3]
    assert data.query_ids is not None and data.query_ids.tolist() == [7, 9]
    assert (data.confidence_score, data.event_time) == (None, None)
    assert (data.num_rows, data.num_groups, data.source) == (5, 2, str(path))


def test_libsvm_with_query_file(tmp_path: Path) -> None:
    path = tmp_path / "rank.train"
    path.write_text("1 0:1 2:2\n0 1:1\n4 2:0.5\n")
    (tmp_path / "rank.train.query").write_text("2\n1\n")
    data = load_ltr(path)
    assert data.features.tolist() == [[1.0, 0.0, 2.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.5]]
    assert data.grades.tolist() == [1, 0, 4]
    assert data.group_sizes.tolist() == [2, 1]
    assert data.query_ids is None


def test_libsvm_padding_to_the_training_width(tmp_path: Path) -> None:
    path = tmp_path / "test.txt"
    path.write_text("1 qid:1 2:1\n0 qid:1 1:1\n")
    data = load_ltr(path, num_features=6)
    assert data.features.shape == (2, 6)
    assert data.feature_names == [f"f{index}" for index in range(6)]
    assert data.features[:, 3:].sum() == 0.0
    with pytest.raises(InputError, match="feature index 2, beyond the 2 features expected"):
        load_ltr(path, num_features=2)


def test_libsvm_feature_columns_by_name(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text("1 qid:1 0:1 2:2\n0 qid:1 1:3\n")
    data = load_ltr(path, feature_cols=["f2", "f0", "f5"])
    assert data.feature_names == ["f2", "f0", "f5"]
    assert data.features.tolist() == [[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    with pytest.raises(InputError, match="unknown: score"):
        load_ltr(path, feature_cols=["f1", "score"])


def test_libsvm_interleaved_qids_are_regrouped_stably(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text("1 qid:b 0:1\n2 qid:a 0:2\n3 qid:b 0:3\n0 qid:a 0:4\n4 qid:c 0:5\n")
    data = load_ltr(path)
    assert data.query_ids is not None and data.query_ids.tolist() == ["b", "a", "c"]
    assert data.group_sizes.tolist() == [2, 2, 1]
    assert data.grades.tolist() == [1, 3, 2, 0, 4]
    assert data.features[:, 0].tolist() == [1.0, 3.0, 2.0, 4.0, 5.0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1 qid:1 1:0.5\nx qid:1 1:1\n", "line 2: label 'x' is not a number"),
        ("1 qid:1 1:0.5\n0 qid:1 a:1\n", "line 2: 'a:1' is not index:value"),
        ("1 qid:1 1:0.5\n0 qid:1 3\n", "line 2: '3' is not index:value"),
        ("1 qid:1 1:0.5 2:1:2\n", "line 1: '2:1:2' is not index:value"),
        ("1 qid:1 1:0.5\n0 2:1\n", "line 2: every line needs exactly one qid"),
        ("1 qid:1 qid:2 1:0.5\n", "line 1: every line needs exactly one qid"),
        ("0.5 qid:1 1:0.5\n", "fractional"),
        ("-1 qid:1 1:0.5\n", "from 0 to 31"),
        ("# only a comment\n\n", "no data lines"),
        ("1 1:0.5\n", "no query file train.txt.query"),
    ],
)
def test_libsvm_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "train.txt"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        load_ltr(path)


@pytest.mark.parametrize(
    ("query_file", "message"), [("1\n", "add up to 1, but"), ("2\nx\n", "positive whole number")]
)
def test_libsvm_bad_query_file(tmp_path: Path, query_file: str, message: str) -> None:
    path = tmp_path / "train.txt"
    path.write_text("1 1:0.5\n0 1:1\n")
    (tmp_path / "train.txt.query").write_text(query_file)
    with pytest.raises(InputError, match=message):
        load_ltr(path)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_ltr(tmp_path / "nowhere.txt")


# --- Parquet --------------------------------------------------------------------------------------------


def export_like_table() -> pl.DataFrame:
    """Rows as a recctl export has them: ids, label and grade, event_time, position, features."""
    when = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    return pl.DataFrame(
        {
            "query_id": ["a1", "a1", "a1", "a2", "a2"],
            "recommendation_id": ["r1", "r2", "r3", "r4", "r5"],
            "label": [1.0, 0.4, 0.0, 0.1, 0.8],
            "grade": [4, 2, 0, 0, 3],
            "event_time": [when] * 3 + [when + dt.timedelta(days=1)] * 2,
            "position": [0, 1, 2, 0, 1],
            "confidence_score": [0.9, None, 0.5, 0.2, 0.7],
            "roi_potential": [1.5, 2.0, float("nan"), None, 3.0],
            "is_aws": [True, False, None, True, False],
            "category": ["cost", "security", "cost", "performance", "cost"],
        }
    )


def test_parquet_default_columns(tmp_path: Path) -> None:
    path = tmp_path / "training_set.parquet"
    export_like_table().write_parquet(path)
    data = load_ltr(path)
    assert data.feature_names == ["confidence_score", "roi_potential", "is_aws"]
    features = data.features
    assert features.dtype == np.float64 and features.flags.c_contiguous
    np.testing.assert_array_equal(
        features,
        [[0.9, 1.5, 1.0], [np.nan, 2.0, 0.0], [0.5, np.nan, np.nan], [0.2, np.nan, 1.0], [0.7, 3.0, 0.0]],
    )
    assert data.grades.tolist() == [4, 2, 0, 0, 3]  # the default label column is `grade`
    assert data.group_sizes.tolist() == [3, 2]
    assert data.query_ids is not None and data.query_ids.tolist() == ["a1", "a2"]
    assert data.confidence_score is not None
    np.testing.assert_array_equal(data.confidence_score, [0.9, np.nan, 0.5, 0.2, 0.7])
    assert data.event_time is not None and data.event_time.dtype == np.dtype("datetime64[ms]")
    assert data.event_time[0] == np.datetime64("2024-03-01T10:00:00.000")  # converted to UTC
    assert data.event_time[3] == np.datetime64("2024-03-02T10:00:00.000")


def test_parquet_explicit_columns(tmp_path: Path) -> None:
    path = tmp_path / "letor.parquet"
    pl.DataFrame(
        {
            "qid": [5, 5, 6],
            "relevance": [2.0, 0.0, 1.0],
            "bm25": [3.5, 1.0, 2.0],
            "pagerank": [0.1, 0.2, 0.3],
            "doc_len": [100, 200, 300],
        }
    ).write_parquet(path)
    data = load_ltr(path, label_col="relevance", group_col="qid", feature_cols=["pagerank", "bm25"])
    assert data.feature_names == ["pagerank", "bm25"]
    assert data.features.tolist() == [[0.1, 3.5], [0.2, 1.0], [0.3, 2.0]]
    assert data.grades.tolist() == [2, 0, 1]
    assert data.query_ids is not None and data.query_ids.tolist() == [5, 6]
    assert data.confidence_score is None and data.event_time is None
    everything = load_ltr(path, label_col="relevance", group_col="qid")
    assert everything.feature_names == ["bm25", "pagerank", "doc_len"]


def test_parquet_label_fallbacks(tmp_path: Path) -> None:
    table = export_like_table()
    path = tmp_path / "data.parquet"
    table.write_parquet(path)
    # recctl's label in [0, 1] stands in for nothing LambdaRank can use: its grade is taken instead.
    assert load_ltr(path, label_col="label").grades.tolist() == [4, 2, 0, 0, 3]

    table.drop("grade").with_columns(pl.Series("label", [2, 1, 0, 0, 1])).write_parquet(path)
    assert load_ltr(path).grades.tolist() == [2, 1, 0, 0, 1]  # no `grade`: `label` it is

    table.drop("grade").write_parquet(path)
    with pytest.raises(InputError, match="fractional"):
        load_ltr(path)


def test_parquet_interleaved_groups_are_regrouped_stably(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pl.DataFrame(
        {"query_id": ["q2", "q1", "q2", "q1"], "grade": [1, 2, 3, 0], "x": [10.0, 20.0, 30.0, 40.0]}
    ).write_parquet(path)
    data = load_ltr(path)
    assert data.query_ids is not None and data.query_ids.tolist() == ["q2", "q1"]
    assert data.group_sizes.tolist() == [2, 2]
    assert data.grades.tolist() == [1, 3, 2, 0]
    assert data.features[:, 0].tolist() == [10.0, 30.0, 20.0, 40.0]


def test_export_directory_reads_all_parts_in_name_order_and_the_manifest(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    table = export_like_table()
    table.slice(3).write_parquet(export / "part-00001.parquet")
    table.slice(0, 3).write_parquet(export / "part-00000.parquet")
    (export / "notes.txt").write_text("not data")
    assert load_ltr(export).grades.tolist() == [4, 2, 0, 0, 3]
    assert load_ltr(export).feature_names == ["confidence_score", "roi_potential", "is_aws"]

    (export / "manifest.json").write_text(
        json.dumps({"feature_names": ["roi_potential", "confidence_score"]})
    )
    assert load_ltr(export).feature_names == ["roi_potential", "confidence_score"]
    (export / "manifest.json").write_text(json.dumps({"feature_names": ["roi_potential", "gone"]}))
    with pytest.raises(InputError, match=r"gone \(from the manifest's feature_names"):
        load_ltr(export)


def test_single_exported_file_uses_its_manifest(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    export_like_table().write_parquet(path)
    (tmp_path / "train.manifest.json").write_text(json.dumps({"feature_names": ["is_aws", "roi_potential"]}))
    assert load_ltr(path).feature_names == ["is_aws", "roi_potential"]
    assert load_ltr(path, feature_cols=["confidence_score"]).feature_names == ["confidence_score"]


def test_parquet_recognised_by_content(tmp_path: Path) -> None:
    path = tmp_path / "training_data"
    export_like_table().write_parquet(path)
    assert load_ltr(path).num_rows == 5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"group_col": "assessment_id"}, "no group column 'assessment_id'; the columns are: query_id, "),
        ({"label_col": "clicks"}, "no label column 'clicks'; the columns are: query_id, "),
        ({"feature_cols": ["roi_potential", "savings"]}, "feature column.s. savings .from feature_cols."),
        ({"feature_cols": ["category"]}, "must be numeric: category"),
        ({"num_features": 4}, "has 3 features, expected 4"),
    ],
)
def test_parquet_missing_or_wrong_columns(tmp_path: Path, options: dict[str, object], message: str) -> None:
    path = tmp_path / "data.parquet"
    export_like_table().write_parquet(path)
    with pytest.raises(InputError, match=message):
        load_ltr(path, **options)  # type: ignore[arg-type]


def test_parquet_missing_default_label_and_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    export_like_table().drop("grade", "label").write_parquet(path)
    with pytest.raises(InputError, match="no label column 'grade'"):
        load_ltr(path)
    export_like_table().with_columns(pl.lit(None, pl.String).alias("query_id")).write_parquet(path)
    with pytest.raises(InputError, match="group column 'query_id' is missing on 5 row"):
        load_ltr(path)
    export_like_table().with_columns(pl.Series("grade", [1, None, 0, 0, 1])).write_parquet(path)
    with pytest.raises(InputError, match="label column 'grade' is missing on 1 row"):
        load_ltr(path)
    export_like_table().select("query_id", "grade", "category").write_parquet(path)
    with pytest.raises(InputError, match="no numeric feature columns"):
        load_ltr(path)


def test_empty_directory_and_unreadable_parquet(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"holds no \*\.parquet files"):
        load_ltr(tmp_path / "empty")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match="cannot read Parquet data"):
        load_ltr(tmp_path / "broken.parquet")


# --- LightGBM's lambdarank example ----------------------------------------------------------------------


def test_lightgbm_lambdarank_example_shapes(lightgbm_example: Path) -> None:
    train = load_ltr(lightgbm_example / "rank.train")
    test = load_ltr(lightgbm_example / "rank.test", num_features=train.features.shape[1])
    assert (train.num_rows, train.num_groups) == (3005, 201)
    assert (test.num_rows, test.num_groups) == (768, 50)
    assert train.features.shape[1] == test.features.shape[1] == 301  # indices 0..300
    assert set(np.unique(train.grades)) <= {0, 1, 2, 3, 4}


def test_reproduces_lightgbm_lambdarank_example(lightgbm_example: Path) -> None:
    folder = lightgbm_example
    train = load_ltr(folder / "rank.train")
    test = load_ltr(folder / "rank.test", num_features=train.features.shape[1])
    params = {**LAMBDARANK_EXAMPLE_PARAMS, "metric": "ndcg", "eval_at": [1, 3, 5, 10]}
    train_set = lgb.Dataset(train.features, train.grades, group=train.group_sizes)
    test_set = lgb.Dataset(test.features, test.grades, group=test.group_sizes, reference=train_set)
    history: dict[str, dict[str, list[float]]] = {}
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=100,
        valid_sets=[test_set],
        valid_names=["test"],
        callbacks=[lgb.record_evaluation(history)],
    )
    assert booster.current_iteration() == 100
    scores = booster.predict(test.features)
    lightgbm_values = {metric: values[-1] for metric, values in history["test"].items()}
    for k, reference in LAMBDARANK_EXAMPLE_NDCG.items():
        value = ndcg(test.grades, scores, test.group_sizes, k).mean
        assert value == pytest.approx(reference, abs=5e-4), f"ndcg@{k}"
        assert abs(value - lightgbm_values[f"ndcg@{k}"]) < 1e-9


def test_libsvm_with_commas_in_its_comments_is_libsvm(tmp_path: Path) -> None:
    """Only a header line of a CSV is refused: a LETOR comment may hold commas."""
    path = tmp_path / "commented.svm"
    path.write_text(
        "# made by a tool, version 2\n1 qid:1 1:0.5 2:0.1 # doc a, b\n0 qid:1 1:0.2 2:0.3 # doc c, d\n"
    )
    data = load_ltr(path)
    assert data.grades.tolist() == [1, 0] and data.group_sizes.tolist() == [2]
