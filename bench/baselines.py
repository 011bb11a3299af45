"""The baselines that run as processes of their own, so they pay what the recctl command pays
(interpreter start, imports, reading the input): ``python -m bench.baselines NAME ARGS``.

Each prints one JSON object on stdout with its internal timings (seconds), for the details.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def polars_ingest(source: str, out: str) -> dict[str, Any]:
    """The natural way to turn an NDJSON file into Parquet with polars."""
    import polars as pl

    pl.read_ndjson(source).write_parquet(out)
    return {}


def lightgbm_train(data: str, meta: str, rounds: str) -> dict[str, Any]:
    """``lightgbm.train`` on the exported matrix with the parameters recctl recorded in the model's meta.

    Same rows, same features (the export manifest's), same grades, same groups, same params, same
    number of rounds, no validation set (recctl is run with ``--validation-split 0``).
    """
    started = time.perf_counter()
    import lightgbm
    import numpy as np
    import polars as pl

    directory = Path(data)
    manifest = json.loads((directory / "manifest.json").read_text())
    features = list(manifest["feature_names"])
    table = pl.read_parquet(directory / "training_set.parquet")
    if not table["query_id"].is_sorted():  # LightGBM needs each group's rows together
        order = table.with_row_index("row").group_by("query_id", maintain_order=True).agg("row")
        table = table[order["row"].explode().to_numpy()]
    matrix = table.select(pl.col(features).cast(pl.Float64)).to_numpy()
    grades = table["grade"].to_numpy().astype(np.int32)
    groups = table["query_id"].rle().struct.field("len").to_numpy()  # contiguous groups: one run per group
    params = json.loads(Path(meta).read_text())["params"]
    loaded = time.perf_counter()
    dataset = lightgbm.Dataset(matrix, label=grades, group=groups, feature_name=features)
    booster = lightgbm.train(params, dataset, num_boost_round=int(rounds))
    trained = time.perf_counter()
    return {
        "startup_and_load_s": loaded - started,
        "train_s": trained - loaded,
        "rows": int(matrix.shape[0]),
        "groups": len(groups),
        "trees": booster.num_trees(),
    }


def polars_stats(store: str) -> dict[str, Any]:
    """The counts of ``recctl stats`` with one polars group-by over the store's Parquet parts,
    sorted like the default table and its first 20 rows printed."""
    import polars as pl

    kind = pl.col("interaction_type")
    counts = {
        "view": "view_count",
        "click": "click_count",
        "save": "save_count",
        "share": "share_count",
        "implement": "implementation_count",
        "dismiss": "dismiss_count",
        "rate": "rate_count",
    }
    table = (
        pl.scan_parquet(f"{store}/interactions/date=*/part-*.parquet")
        .group_by("recommendation_id")
        .agg(
            pl.len().alias("total_interactions"),
            *((kind == name).sum().alias(column) for name, column in counts.items()),
            pl.col("label").sum().alias("label_sum"),
            pl.col("label").count().alias("label_count"),
        )
        .sort(["total_interactions", "recommendation_id"], descending=[True, False])
        .collect()
    )
    print(table.head(20), file=sys.stderr)
    return {"groups": table.height}


BASELINES: dict[str, Callable[..., dict[str, Any]]] = {
    "polars-ingest": polars_ingest,
    "lightgbm-train": lightgbm_train,
    "polars-stats": polars_stats,
}


def main() -> None:
    name, *args = sys.argv[1:]
    print(json.dumps(BASELINES[name](*args)))


if __name__ == "__main__":
    main()
