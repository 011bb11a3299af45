"""Training past one machine: LightGBM's Dask ranker on a Dask cluster (``recctl train --dask``).

The training groups are cut into one chunk per worker, each of whole query groups, and handed to
:class:`lightgbm.DaskLGBMRanker`, which trains one booster with LightGBM's data-parallel learner
across the workers. What LightGBM's Dask interface lacks, and what recctl does instead:

- early stopping: it trains every ``num_boost_round`` round, then a validation pass on the
  client scores the validation groups after each round and keeps the best round by the same
  figure early stopping would watch (NDCG@10, or its IPS estimate with a bias curve), so the
  model saved is the one early stopping with unlimited patience would have kept;
- positions (LightGBM's position-debiased LambdaMART): it takes no positions, so ``--debias
  auto`` debiases by IPS weights when a bias curve is available (estimated from the window's
  lists, or ``--bias``), and ``--debias position`` is refused.

The cluster is ``local:N`` (a :class:`distributed.LocalCluster` of N single-threaded worker
processes on this machine, started and stopped by the run) or a scheduler's address
(``tcp://host:8786``). Dask, distributed, pandas and scikit-learn (which LightGBM's Dask module
needs) come with ``pip install 'recctl[dask]'``.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from recctl.errors import InputError, RecctlError

if TYPE_CHECKING:
    import lightgbm

    from recctl.ltrdata import LtrData


@dataclass(frozen=True)
class Cluster:
    """Where to train: ``workers`` local processes, or the scheduler at ``address``."""

    workers: int | None = None
    address: str | None = None

    @classmethod
    def parse(cls, spec: str) -> Cluster:
        """``local:N`` (N >= 1) or a scheduler address (``tcp://host:port``, ``tls://...``);
        InputError otherwise."""
        text = spec.strip()
        if text.startswith("local:"):
            count = text.removeprefix("local:")
            if not count.isdigit() or int(count) < 1:
                raise InputError(f"--dask local:N wants a number of workers >= 1, got {spec!r}")
            return cls(workers=int(count))
        if "://" in text and text.split("://", 1)[1]:
            return cls(address=text)
        raise InputError(f"--dask wants local:N or a scheduler address such as tcp://host:8786, got {spec!r}")

    def describe(self) -> str:
        return f"local:{self.workers}" if self.workers is not None else str(self.address)


def check_available() -> None:
    """InputError naming the extra when Dask's pieces are not installed."""
    from importlib.util import find_spec

    missing = [module for module in ("dask", "distributed", "pandas", "sklearn") if find_spec(module) is None]
    if missing:
        raise InputError(f"--dask needs {', '.join(missing)}: install them with pip install 'recctl[dask]'")


@contextlib.contextmanager
def _stdout_silenced() -> Iterator[None]:
    """File descriptor 1 sent to /dev/null (local workers inherit it): LightGBM's network set-up
    prints to stdout whatever its verbosity, and stdout carries recctl's data (``--json``)."""
    import os
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):  # and Python's prints
            os.dup2(null.fileno(), 1)
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def client_for(cluster: Cluster) -> Iterator[Any]:
    """A :class:`distributed.Client` of ``cluster`` (a local one is started and stopped here);
    while it is open, this process's stdout is silenced (see :func:`_stdout_silenced`)."""
    from distributed import Client, LocalCluster

    for name in (
        "distributed",
        "distributed.worker",
        "distributed.scheduler",
        "distributed.nanny",
        "lightgbm",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        if cluster.workers is not None:
            with (
                _stdout_silenced(),
                LocalCluster(
                    n_workers=cluster.workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                ) as local,
                Client(local) as client,
            ):
                yield client
        else:
            with _stdout_silenced(), Client(cluster.address, timeout="10s") as client:
                yield client
    except OSError as exc:
        raise RecctlError(f"cannot reach the Dask scheduler {cluster.describe()}: {exc}") from None


def fit(
    client: Any,
    params: dict[str, Any],
    train: LtrData,
    weights: npt.NDArray[np.float64] | None,
    num_boost_round: int,
    chunks: int,
) -> lightgbm.Booster:
    """A LambdaRank booster of ``train`` trained on the cluster, ``chunks`` chunks of whole groups."""
    import dask.array as da
    import lightgbm

    groups_per_chunk, rows_per_chunk = group_chunks(train.group_sizes, chunks)
    columns = train.features.shape[1]
    features = da.from_array(train.features, chunks=(rows_per_chunk, (columns,)))
    grades = da.from_array(train.grades, chunks=(rows_per_chunk,))
    groups = da.from_array(train.group_sizes, chunks=(groups_per_chunk,))
    sample_weight = da.from_array(weights, chunks=(rows_per_chunk,)) if weights is not None else None
    model = lightgbm.DaskLGBMRanker(client=client, n_estimators=num_boost_round, **params)
    try:
        with warnings.catch_warnings():  # the scikit-learn wrapper's n_jobs, which Dask replaces
            warnings.filterwarnings(
                "ignore", message="Parameter n_jobs will be ignored", category=UserWarning
            )
            model.fit(
                features, grades, group=groups, sample_weight=sample_weight, feature_name=train.feature_names
            )
    except lightgbm.basic.LightGBMError as exc:
        raise RecctlError(f"LightGBM's Dask training failed: {str(exc).splitlines()[0]}") from None
    return model.booster_


def group_chunks(group_sizes: npt.NDArray[np.int64], chunks: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Groups and rows per chunk: at most ``chunks`` runs of whole consecutive groups, of about
    equal rows, none empty."""
    ends = np.cumsum(group_sizes)
    targets = ends[-1] * np.arange(1, chunks) / chunks
    cut_groups = np.unique(np.concatenate([np.searchsorted(ends, targets, side="left") + 1, [len(ends)]]))
    cut_groups = cut_groups[(cut_groups > 0) & (cut_groups <= len(ends))]
    group_bounds = np.concatenate([[0], cut_groups])
    row_bounds = np.concatenate([[0], ends[cut_groups - 1]])
    return tuple(np.diff(group_bounds).tolist()), tuple(np.diff(row_bounds).tolist())


def best_round(
    booster: lightgbm.Booster,
    valid: LtrData,
    metric: Callable[[npt.NDArray[np.float64]], float],
) -> tuple[int, list[float]]:
    """The round whose scores of ``valid`` maximise ``metric`` (the first such), and each
    round's figure: the validation pass that stands in for early stopping."""
    rounds = booster.current_iteration()
    scores = np.zeros(len(valid.grades))
    figures = []
    for number in range(rounds):
        scores = scores + booster.predict(
            valid.features, start_iteration=number, num_iteration=1, raw_score=True
        )
        figures.append(metric(scores))
    return int(np.argmax(figures)) + 1, figures
