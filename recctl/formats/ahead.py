"""Reading input on a thread of its own, a few chunks ahead of the code that uses them."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_END = object()


def read_ahead(items: Iterable[T], depth: int) -> Iterator[T]:
    """The items of ``items``, produced by a thread of its own up to ``depth`` ahead of the
    consumer. An exception of ``items`` is raised here, where it would have come; a consumer that
    stops early stops the thread at its next item (which then closes ``items``, and so its file)."""
    ready: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(value: Any, error: BaseException | None = None) -> bool:
        while not stop.is_set():
            try:
                ready.put((value, error), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = None
        try:
            iterator = iter(items)
            for item in iterator:
                if not offer(item):
                    return
            offer(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            offer(_END, exc)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    threading.Thread(target=produce, name="recctl-reader", daemon=True).start()
    try:
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()  # not joined: a reader waiting on stdin would hold the caller up
