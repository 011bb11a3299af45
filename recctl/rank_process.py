"""A helper process for a fast ``rank --ndjson`` stream.

Parsing JSON, validating it and building the answers hold Python's global interpreter lock, so the
stream's two ranking threads share one core's worth of that work (only polars and LightGBM run
beside each other). When lines arrive faster than those threads rank them, the stream starts one
:class:`HelperProcess`: a fresh interpreter (spawned, not forked: polars' and LightGBM's thread
pools do not survive a fork) that is handed a copy of the loaded ranker (its models, not their
paths) and ranks whole chunks of lines, which it gets and gives back pickled. It takes about half a
second to start, during which the threads go on; a stream that never builds a backlog (one line, a
slow producer) never starts it. When the input is a large file, the helper is started from the
model's path (a :class:`RankerRecipe`) before the stream's own process loads it, so that both start
at once; it is used only if it loaded the very models the stream did.
"""

from __future__ import annotations

import gc
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from recctl.ranking import RankedLines, Ranker, RankOptions


@dataclass(frozen=True)
class RankerRecipe:
    """How ``recctl rank`` builds its ranker: the model (and interleaving partner) to load."""

    model: Path
    require_model: bool = False
    interleave: Path | None = None

    def build(self, warn: Callable[[str], None] | None = None) -> Ranker:
        """The ranker; ``warn`` is told why it falls back to confidence order (before the
        interleaving model, which must be usable, is loaded)."""
        from recctl.ranking import Ranker

        ranker = Ranker(self.model, require_model=self.require_model)
        if ranker.warning and warn is not None:
            warn(ranker.warning)
        if self.interleave is not None:
            ranker.interleaved_with(self.interleave)
        return ranker


def rank_options(settings: dict[str, Any]) -> RankOptions:
    """The :class:`~recctl.ranking.RankOptions` of ``settings``: its fields, ``explore`` given as
    the arguments of an :class:`~recctl.exploration.Exploration` (or None). Plain values, so that
    a helper can be started before this process has imported the ranking code."""
    from recctl.exploration import Exploration
    from recctl.ranking import RankOptions

    explore = settings.get("explore")
    return RankOptions(**{**settings, "explore": None if explore is None else Exploration(*explore)})


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
    """One helper process ranking chunks of a stream with ``options`` (or the ones
    :func:`rank_options` makes of them) and a copy of ``ranker`` (or the ranker a recipe builds).

    ``ready`` completes when the process has started and loaded the ranker, with the ranker's
    :attr:`~recctl.ranking.Ranker.models` (or the exception that stopped it); :meth:`submit`
    ranks one chunk there.
    """

    def __init__(
        self,
        ranker: Ranker | RankerRecipe,
        options: RankOptions | dict[str, Any],
        *,
        errors_inline: bool,
    ) -> None:
        # (imported here: a single batch, which starts no helper, does not pay for them)
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._pool: ProcessPoolExecutor = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(ranker, options, errors_inline),
        )
        self.ready: Future[tuple[str | None, ...]] = self._pool.submit(_started)

    def serves(self, models: tuple[str | None, ...]) -> bool:
        """Whether the helper is up and ranks with ``models`` (a :attr:`Ranker.models`)."""
        return self.ready.done() and self.ready.exception() is None and self.ready.result() == models

    def failed(self, models: tuple[str | None, ...]) -> bool:
        """Whether the helper could not start, or loaded other models than ``models``."""
        return self.ready.done() and not self.serves(models)

    def submit(self, lines: Sequence[bytes], first_line: int) -> Future[RankedLines]:
        """Rank a chunk in the helper; a helper that has died gives a future holding
        :class:`~concurrent.futures.process.BrokenProcessPool` (the chunk is not lost: the caller
        ranks it elsewhere)."""
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self._pool.submit(_rank_chunk, list(lines), first_line)
        except BrokenProcessPool as exc:
            failed: Future[RankedLines] = Future()
            failed.set_exception(exc)
            return failed

    def close(self) -> None:
        """Stop the process: queued chunks are dropped, one it is ranking is finished first (and
        waited for: an executor left running makes the interpreter's exit report an error)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _start(
    source: Ranker | RankerRecipe, settings: RankOptions | dict[str, Any], errors_inline: bool
) -> None:
    global _work
    # Ctrl-C reaches the whole process group: the stream's own process handles it and stops this.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ranker = source.build() if isinstance(source, RankerRecipe) else source
    options = rank_options(settings) if isinstance(settings, dict) else settings
    ranker.score_in_one_thread()  # one core for this process, the other for the stream's threads
    collect_rarely()
    _work = (ranker, options, errors_inline)


def _started() -> tuple[str | None, ...]:
    assert _work is not None, "the helper process was not started"
    return _work[0].models


def _rank_chunk(lines: list[bytes], first_line: int) -> RankedLines:
    assert _work is not None, "the helper process was not started"
    ranker, options, errors_inline = _work
    return ranker.rank_lines(lines, first_line, options, errors_inline=errors_inline)
