"""The ``recctl`` command line: a thin client of the library.

Importing this module must stay cheap (``recctl rank`` start-up is a feature): command modules
import polars, pyarrow, pymongo and lightgbm inside the functions that need them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from recctl._version import __version__
from recctl.cli import bias as bias_cli
from recctl.cli import evaluate as evaluate_cli
from recctl.cli import experiment as experiment_cli
from recctl.cli import export as export_cli
from recctl.cli import features as features_cli
from recctl.cli import history as history_cli
from recctl.cli import ingest as ingest_cli
from recctl.cli import models as models_cli
from recctl.cli import rank as rank_cli
from recctl.cli import report as report_cli
from recctl.cli import sample as sample_cli
from recctl.cli import show as show_cli
from recctl.cli import simulate as simulate_cli
from recctl.cli import stats as stats_cli
from recctl.cli import train as train_cli
from recctl.cli import tune as tune_cli
from recctl.cli.common import DEFAULT_STORE, RecctlGroup, Settings

app = typer.Typer(
    cls=RecctlGroup,
    name="recctl",
    help="Learning-to-rank toolkit for recommendation feedback loops: ingest, export, train, rank, stats.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    # Plain help, as click lays it out: options and their help in two columns that read at any
    # width (Typer's rich panels give the help one word per line at 80 columns), and usage
    # errors as one "Error: ..." line under the usage.
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"recctl {__version__}")
        raise typer.Exit()


@app.callback()
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


app.command("ingest", rich_help_panel="Data")(ingest_cli.ingest_command)
app.command("sample", rich_help_panel="Data")(sample_cli.sample_command)
app.command("export", rich_help_panel="Modelling")(export_cli.export_command)
app.command("train", rich_help_panel="Modelling")(train_cli.train_command)
app.command("evaluate", rich_help_panel="Modelling")(evaluate_cli.evaluate_command)
app.command("features", rich_help_panel="Modelling")(features_cli.features_command)
app.add_typer(models_cli.models_app, name="models", rich_help_panel="Modelling")
app.command("stats", rich_help_panel="Analysis")(stats_cli.stats_command)
app.command("history", rich_help_panel="Analysis")(history_cli.history_command)
app.command("bias", rich_help_panel="Analysis")(bias_cli.bias_command)
app.command("experiment", rich_help_panel="Analysis")(experiment_cli.experiment_command)
app.command("simulate", rich_help_panel="Analysis")(simulate_cli.simulate_command)
app.command("tune", rich_help_panel="Analysis")(tune_cli.tune_command)
app.command("report", rich_help_panel="Analysis")(report_cli.report_command)
app.command("rank", rich_help_panel="Serving")(rank_cli.rank_command)
app.command("show", rich_help_panel="Serving")(show_cli.show_command)


def main() -> None:
    """Console-script entry point."""
    app()
