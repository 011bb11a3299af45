"""What every command shares: settings, the stderr console, error mapping, output helpers."""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from recctl.errors import RecctlError

if TYPE_CHECKING:
    from rich.console import Console

    from recctl.stores.base import Store

DEFAULT_STORE = "./recctl-data"


@dataclass
class Settings:
    """Global options, shared by every command through ``ctx.obj``."""

    store: str = DEFAULT_STORE
    verbose: bool = False
    quiet: bool = False

    @cached_property
    def console(self) -> Console:
        """The stderr console for reports, progress and warnings (stdout is for data)."""
        from rich.console import Console

        return Console(stderr=True, quiet=self.quiet, highlight=False)

    def open_store(self, *, existing: bool = False, create: bool = False) -> Store:
        """The ``--store``. With ``existing``, a missing or empty directory is an error (exit 1), so
        a mistyped path does not read as an empty store ("not enough data"); with ``create`` (ingest)
        a missing or empty directory becomes a store. A directory of other files is always exit 1,
        a URI of an unknown scheme exit 2."""
        from recctl.errors import NotAStoreError, UnknownStoreError
        from recctl.stores import open_store

        try:
            return open_store(self.store, create=create, must_exist=existing)
        except NotAStoreError as exc:
            raise NotAStoreError(f"{exc} (check --store / RECCTL_STORE)") from None
        except UnknownStoreError as exc:
            raise UnknownStoreError(f"--store: {exc}") from None


def settings(ctx: typer.Context) -> Settings:
    """The global settings (defaults when a command is invoked without the group callback)."""
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = Settings()
    return root.obj


def flag(argument: str) -> str:
    """The command-line flag of a library argument: ``min_interactions`` -> ``--min-interactions``."""
    return "--" + argument.replace("_", "-")


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the option ``name`` (its parameter name) was given, not left at its default."""
    source = ctx.get_parameter_source(name)  # None or DEFAULT: not on the command line
    return source is not None and source.name != "DEFAULT"


def refuse_idle_options(ctx: typer.Context, *, explore: str | None, diversity: bool = True) -> None:
    """A usage error for a ranking option that would be silently ignored: ``--temperature``
    without ``--explore plackett-luce``, ``--epsilon`` without ``--explore epsilon-greedy``, and
    (when the command has ``--no-diversity``) ``--lambda`` or ``--diversify-depth`` with it."""
    if given(ctx, "temperature") and explore != "plackett-luce":
        raise typer.BadParameter("--temperature needs --explore plackett-luce")
    if given(ctx, "epsilon") and explore != "epsilon-greedy":
        raise typer.BadParameter("--epsilon needs --explore epsilon-greedy")
    if not diversity:
        for name in ("lambda_", "diversify_depth"):
            if given(ctx, name):
                shown = "--lambda" if name == "lambda_" else flag(name)
                raise typer.BadParameter(f"{shown} sets MMR diversity, which --no-diversity turns off")


def user_message(exc: RecctlError) -> str:
    """What a user reads of a recctl error: the arguments it names are the command's flags."""
    return exc.message(flag)


def shown_line(message: str) -> str:
    """The line a user is shown of an error message: its first, with any password masked."""
    from recctl.stores import redact

    return (redact(message.strip()).splitlines() or ["unknown error"])[0]


def _error_line(message: str) -> str:
    return f"Error: {shown_line(message)}"


class RecctlGroup(TyperGroup):
    """Maps recctl's exceptions to one ``Error: ...`` line and an exit code: 1 failed, 2 usage error
    (click's own), 3 not enough data, 4 quality gate failed."""

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        return list(self.commands)  # the order commands were added, not alphabetical

    def format_commands(self, ctx: typer.Context, formatter: Any) -> None:  # type: ignore[override]
        """The commands in one section per ``rich_help_panel`` (Data, Modelling, ...), in order."""
        commands = [(name, self.commands[name]) for name in self.list_commands(ctx)]
        commands = [(name, command) for name, command in commands if not command.hidden]
        if not commands:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in commands)
        panels: dict[str, list[tuple[str, str]]] = {}
        for name, command in commands:
            panel = getattr(command, "rich_help_panel", None) or "Commands"
            panels.setdefault(panel, []).append((name, command.get_short_help_str(limit)))
        for panel, rows in panels.items():
            with formatter.section(panel):
                formatter.write_dl(rows)

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except RecctlError as exc:
            verbose = isinstance(ctx.obj, Settings) and ctx.obj.verbose
            if verbose:
                traceback.print_exc(file=sys.stderr)
            typer.echo(_error_line(user_message(exc)), err=True)
            raise typer.Exit(exc.exit_code) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except BrokenPipeError:
            # The reader of our stdout went away (``| head``): not an error of ours. Point stdout at
            # /dev/null so the interpreter's final flush does not complain about the pipe either.
            import os

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None
        except KeyboardInterrupt:
            typer.echo("Error: interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:  # a bug: one line, the traceback only with --verbose
            if isinstance(ctx.obj, Settings) and ctx.obj.verbose:
                traceback.print_exc(file=sys.stderr)
            typer.echo(
                _error_line(f"unexpected {type(exc).__name__}: {exc} (run with --verbose for details)"),
                err=True,
            )
            raise typer.Exit(1) from None


def print_json(document: Any) -> None:
    """One JSON document on stdout."""
    import json

    sys.stdout.write(json.dumps(document, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()
