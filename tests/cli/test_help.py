"""Every command and every option has help text; global options behave."""

from __future__ import annotations

from typing import Any

import typer
from typer.main import get_command
from typer.testing import CliRunner

from recctl import __version__
from recctl.cli import app


def walk(command: Any, path: str = "recctl") -> list[tuple[str, Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += walk(sub, f"{path} {name}")
    return found


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, command in walk(get_command(app)):
        if not (command.help or "").strip():
            missing.append(path)
        for param in command.params:
            if not (getattr(param, "help", None) or "").strip():
                missing.append(f"{path} {param.name}")
    assert missing == []
    assert {"ingest", "sample"} <= set(get_command(app).commands)  # type: ignore[attr-defined]


def test_every_help_reads_at_80_columns() -> None:
    """No help wraps one word per line (Typer's rich panels did, in train --help), none is wider
    than the terminal, and each still shows what it documents."""
    box = str.maketrans("", "", "│╭╮╰╯─")
    for path, command in walk(get_command(app)):
        args = [*path.split()[1:], "--help"]
        result = CliRunner().invoke(app, args, env={"COLUMNS": "80"})
        assert result.exit_code == 0, (path, result.output)
        lines = result.stdout.splitlines()
        words = [len(line.translate(box).split()) for line in lines]
        lonely = [lines[i] for i in range(1, len(lines)) if words[i - 1] == words[i] == 1]
        assert lonely == [], (path, lonely)
        assert [line for line in lines if len(line.rstrip()) > 80] == [], path
        assert result.stdout.lstrip().startswith(f"Usage: {path}"), path
        for param in command.params:
            if getattr(param, "opts", None) and param.name != "help":
                assert max(param.opts, key=len) in result.stdout, (path, param.name)


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"recctl {__version__}"


def test_usage_error_exit_code() -> None:
    result = CliRunner().invoke(app, ["ingest", "bananas"])
    assert result.exit_code == 2
    result = CliRunner().invoke(app, ["no-such-command"])
    assert result.exit_code == 2


def test_help_groups_commands_in_panels() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Data" in result.stdout and "ingest" in result.stdout


def test_typer_is_the_only_cli_framework() -> None:
    assert isinstance(app, typer.Typer)
