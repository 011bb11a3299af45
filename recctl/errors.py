"""The few exceptions recctl raises on purpose; their messages are written for users.

The CLI turns each into one ``Error: ...`` line on stderr and its exit code: 1, or 3 for too little
data, 4 for a failed quality gate.
"""

from __future__ import annotations

from collections.abc import Callable


class RecctlError(Exception):
    """Base class: a failure the user can act on. Exit code 1.

    Messages are in the library's terms. An error about an argument's value overrides
    :meth:`message` to name that argument as the caller spells it: the command line passes a
    ``flag`` function (``min_interactions`` -> ``--min-interactions``).
    """

    exit_code = 1

    def message(self, flag: Callable[[str], str] | None = None) -> str:
        """The message, naming the arguments it is about with ``flag`` (when given)."""
        return str(self)


class InputError(RecctlError):
    """The input could not be read at all (missing file, unknown format, bad policy file)."""


class StoreError(RecctlError):
    """The store could not be opened, reached or written.

    ``written`` is how many rows were stored before a failure part-way through a write, when known.
    """

    def __init__(self, message: str, *, written: int | None = None) -> None:
        super().__init__(message)
        self.written = written


class NotAStoreError(StoreError):
    """A store location holds no recctl store: a missing or empty directory where one must exist,
    or a directory of other files."""


class UnknownStoreError(StoreError):
    """A store location is a URI of a kind recctl has no store for (``postgres://``, ``mongo://``).
    A usage error: exit code 2."""

    exit_code = 2


class NotFoundError(RecctlError):
    """A recommendation, user or file the command was asked about does not exist."""


class OutputExistsError(RecctlError):
    """An output location already holds data that the command would overwrite."""


class StrictModeError(RecctlError):
    """``--strict`` ingest found invalid rows, so nothing was written."""


class ModelError(RecctlError):
    """A model bundle is missing, unreadable or does not match this recctl."""


class InsufficientDataError(RecctlError):
    """Too little data to train or export. Exit code 3."""

    exit_code = 3


class QualityGateError(RecctlError):
    """A trained model failed a quality gate. Exit code 4."""

    exit_code = 4


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what a
    one-line error shows of a library's multi-line failure."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def cannot_open(source: object, exc: OSError) -> InputError:
    """The error for a file that cannot be opened: ``cannot open PATH: REASON``."""
    return InputError(f"cannot open {source}: {exc.strerror or exc}")
