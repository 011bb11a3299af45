"""A helper process for a fast ``rank --ndjson`` stream.

Parsing JSON, validating it and building the answers hold Python's global interpreter lock, so the
stream's two ranking threads share one core's worth of that work (only polars and LightGBM run
beside each other). When lines arrive faster than those threads rank them, the stream starts one
:class:`HelperProcess`: a fresh interpreter (spawned, not forked: polars' and LightGBM's thread
pools do not survive a fork) that is handed a copy of the loaded ranker (its models, not their
paths) and ranks whole chunks of lines, which it gets and gives back pickled. It takes about half a
second to start, during which the threads go on; a stream that never builds a backlog (one line, a
slow producer) never starts it.
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recctl.ranking import RankedLines, Ranker, RankOptions

_work: tuple[Ranker, RankOptions, bool] | None = None
"""In the helper: the ranker, the options and whether bad lines are answered inline."""


def collect_rarely() -> None:
    """Garbage-collection settings for a process that ranks a stream.

    A stream allocates many objects that live for one chunk, and every collection scans the ones
    alive: move start-up objects (modules, the model) out of the collector's way and collect
    rarely. Parsed JSON holds no reference cycles; the collector still runs (measured: the default
    thresholds cost about 10% of the throughput, these about nothing).
    """
    gc.freeze()
    gc.set_threshold(500_000, 100, 1000)


class HelperProcess:
    """One helper process ranking chunks of a stream with a copy of ``ranker`` and ``options``.

    ``ready`` completes when the process has started and loaded the ranker (with its exception if
    it could not); :meth:`submit` ranks one chunk there.
    """

    def __init__(self, ranker: Ranker, options: RankOptions, *, errors_inline: bool) -> None:
        self._pool = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(ranker, options, errors_inline),
        )
        self.ready: Future[bool] = self._pool.submit(_started)

    def submit(self, lines: Sequence[bytes], first_line: int) -> Future[RankedLines]:
        """Rank a chunk in the helper; a helper that has died gives a future holding
        :class:`~concurrent.futures.process.BrokenProcessPool` (the chunk is not lost: the caller
        ranks it elsewhere)."""
        try:
            return self._pool.submit(_rank_chunk, list(lines), first_line)
        except BrokenProcessPool as exc:
            failed: Future[RankedLines] = Future()
            failed.set_exception(exc)
            return failed

    def close(self) -> None:
        """Stop the process (a chunk it is ranking is finished first; queued ones are dropped)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _start(ranker: Ranker, options: RankOptions, errors_inline: bool) -> None:
    global _work
    # Ctrl-C reaches the whole process group: the stream's own process handles it and stops this.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ranker.score_in_one_thread()  # one core for this process, the other for the stream's threads
    collect_rarely()
    _work = (ranker, options, errors_inline)


def _started() -> bool:
    return _work is not None


def _rank_chunk(lines: list[bytes], first_line: int) -> RankedLines:
    assert _work is not None, "the helper process was not started"
    ranker, options, errors_inline = _work
    return ranker.rank_lines(lines, first_line, options, errors_inline=errors_inline)
