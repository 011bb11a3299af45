"""The figures of ``make bench``, in the order they run (each module has ``NAME`` and
``run(context)``, which returns one result or a list of them).

============  ==================================================  ================================  ========
key           figure                                              baseline in the same run          target
============  ==================================================  ================================  ========
ingest-files  ingest 1M interactions (NDJSON) -> file store       polars read_ndjson+write_parquet  <= 2.0x
ingest-mongo  ingest 100k interactions -> MongoDB (SecantusDB)    pymongo insert_many(unordered)    <= 1.5x
impressions   ingest 100k impressions (~1M items) -> file store   polars read_ndjson+write_parquet  <= 2.0x
              ... its peak RSS at 25k lists (input-independent)   -                                 -
bias          recctl bias on ~100k randomised lists (~1M items)   -                                 <= 60 s
export        export 1M interactions -> training set              -                                 <= 10 s
              ... 5M interactions (the sample 5x): peak RSS       the 1M export's peak RSS          <= 1.2x
train         train overhead (sample, 1M interactions)            bare lightgbm.train               <= 1.15x
train-dask    train --dask local:2 (sample, 1M interactions)      recctl train, one machine         <= 3.0x
stats         stats over 1M interactions, file store              polars scan_parquet group_by      <= 1.5x
rank-cold     recctl rank cold start, 20 recs, trained model      python -c pass                    <= 12x
rank-warm     recctl rank --ndjson warm throughput, batches of 20 -                                 >= 2000/s
rank-explore  ... with --explore plackett-luce (prefix propensity) -                                >= 1500/s
              ... and --propensities marginal (Monte Carlo)       -                                 >= 200/s
rank-big      recctl rank, one batch of 50,000, --top-k 10        -                                 <= 10 s
              ... its peak RSS (with --top-k 10 and whole list)   -                                 <= 1.5 GB
rank-mixed    rank --ndjson, 300 batches of 11 + one of 5,000     the 5,000 batch alone (peak RSS)  <= 1.3x
mmr           MMR top-10 of 1,000 candidates (rank's mmr_many)    brute-force numpy MMR             <= 5 ms
ndcg          evaluate NDCG@10 over 100k groups                   -                                 <= 1 s
off-policy    evaluate --off-policy on ~100k randomised lists     -                                 <= 60 s
============  ==================================================  ================================  ========

Later figures reuse what earlier ones made (the store, the export, the model) and build it
themselves when run alone (``--only``).
"""

from __future__ import annotations

from types import ModuleType

from bench.figures import (
    bias,
    export,
    ingest_files,
    ingest_impressions,
    ingest_mongo,
    mmr,
    ndcg,
    off_policy,
    rank_big,
    rank_cold,
    rank_explore,
    rank_mixed,
    rank_warm,
    stats,
    train,
    train_dask,
)

FIGURES: dict[str, ModuleType] = {
    "ingest-files": ingest_files,
    "ingest-mongo": ingest_mongo,
    "impressions": ingest_impressions,
    "bias": bias,
    "export": export,
    "train": train,
    "train-dask": train_dask,
    "stats": stats,
    "rank-cold": rank_cold,
    "rank-warm": rank_warm,
    "rank-explore": rank_explore,
    "rank-big": rank_big,
    "rank-mixed": rank_mixed,
    "mmr": mmr,
    "ndcg": ndcg,
    "off-policy": off_policy,
}
