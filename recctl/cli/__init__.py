"""The ``recctl`` command line: a thin client of the library.

Importing this module must stay cheap (``recctl rank`` start-up is a feature): command modules
import polars, pyarrow, pymongo and lightgbm inside the functions that need them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Sequence
from typing import Annotated

import typer

from recctl._version import __version__
from recctl.cli.common import DEFAULT_STORE, RecctlGroup, Settings

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (the function or Typer group in recctl.cli.<name>, its section of the help)
    "ingest": ("ingest_command", "Data"),
    "sample": ("sample_command", "Data"),
    "export": ("export_command", "Modelling"),
    "train": ("train_command", "Modelling"),
    "evaluate": ("evaluate_command", "Modelling"),
    "features": ("features_command", "Modelling"),
    "models": ("models_app", "Modelling"),
    "stats": ("stats_command", "Analysis"),
    "history": ("history_command", "Analysis"),
    "bias": ("bias_command", "Analysis"),
    "experiment": ("experiment_command", "Analysis"),
    "simulate": ("simulate_command", "Analysis"),
    "tune": ("tune_command", "Analysis"),
    "report": ("report_command", "Analysis"),
    "rank": ("rank_command", "Serving"),
    "show": ("show_command", "Serving"),
}
"""Every command, in the order ``recctl --help`` lists them."""

HELP = "Learning-to-rank toolkit for recommendation feedback loops: ingest, export, train, rank, stats."

app: typer.Typer
"""The whole command line (every command), built on first use: ``from recctl.cli import app``."""


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"recctl {__version__}")
        raise typer.Exit()


def main_options(
    ctx: typer.Context,
    store: Annotated[
        str,
        typer.Option(
            "--store",
            envvar="RECCTL_STORE",
            help="Where data lives: a directory (Parquet files) or a mongodb:// / mongodb+srv:// URI.",
        ),
    ] = DEFAULT_STORE,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="More detail on stderr; tracebacks for unexpected errors.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only errors on stderr; data still goes to stdout.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the recctl version and exit."
        ),
    ] = False,
) -> None:
    """Learning-to-rank toolkit for recommendation feedback loops."""
    ctx.obj = Settings(store=store, verbose=verbose, quiet=quiet and not verbose)


def build_app(commands: Iterable[str] = COMMANDS) -> typer.Typer:
    """A ``recctl`` command line with the global options and ``commands`` (default: all)."""
    built = typer.Typer(
        cls=RecctlGroup,
        name="recctl",
        help=HELP,
        no_args_is_help=True,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        pretty_exceptions_enable=False,
        # Plain help, as click lays it out: options and their help in two columns that read at any
        # width (Typer's rich panels give the help one word per line at 80 columns), and usage
        # errors as one "Error: ..." line under the usage.
        rich_markup_mode=None,
    )
    built.callback()(main_options)
    for name in commands:
        attribute, panel = COMMANDS[name]
        target = getattr(importlib.import_module(f"recctl.cli.{name}"), attribute)
        if isinstance(target, typer.Typer):
            built.add_typer(target, name=name, rich_help_panel=panel)
        else:
            built.command(name, rich_help_panel=panel)(target)
    return built


def invoked_command(args: Sequence[str]) -> str | None:
    """The command ``args`` run (the first word after the global options); None when they ask for
    the top-level help or version, or name no known command."""
    words = iter(args)
    for word in words:
        if word in ("-h", "--help", "--version", "--"):
            return None
        if word == "--store":
            next(words, None)  # its value
        elif not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console-script entry point. Only the command being run is built (and its module imported):
    Typer inspects every option of every command it is given, which each start-up of ``recctl
    rank`` would pay for all sixteen. The help, a typo and ``--version`` get the whole command line."""
    command = invoked_command(sys.argv[1:])
    (build_app([command]) if command else build_app())()
