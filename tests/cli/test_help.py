"""Every command and every option has help text; global options behave."""

from __future__ import annotations

from typing import Any

from builders import run
from typer.main import get_command

from recctl import __version__
from recctl.cli import app

PANELS = ["Data", "Modelling", "Analysis", "Serving"]


def walk(command: Any, path: str = "recctl") -> list[tuple[str, Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += walk(sub, f"{path} {name}")
    return found


def help_sections(text: str) -> dict[str, list[tuple[str, str, int]]]:
    """The ``Name:`` sections of a help text: each row's term, its description and how many
    lines the description takes (a description that wraps continues on deeper-indented lines)."""
    sections: dict[str, list[tuple[str, str, int]]] = {}
    rows: list[tuple[str, str, int]] | None = None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            rows = sections.setdefault(line[:-1], [])
        elif rows is not None and line.startswith("   ") and rows:
            term, description, lines = rows[-1]
            rows[-1] = (term, f"{description} {line.strip()}", lines + 1)
        elif rows is not None and line.startswith("  "):
            term, _, description = line.strip().partition("  ")
            rows.append((term, description.strip(), 1))
    return sections


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
        result = run(*args, columns=80)
        assert result.exit_code == 0, (path, result.stderr)
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
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"recctl {__version__}"


def test_usage_error_exit_code() -> None:
    assert run("ingest", "bananas").exit_code == 2
    assert run("no-such-command").exit_code == 2


def test_help_groups_commands_in_panels() -> None:
    """``recctl --help`` lists the commands in one section per panel, each in the order added."""
    result = run("--help")
    assert result.exit_code == 0
    panels: dict[str, list[str]] = {}
    for name, command in get_command(app).commands.items():  # type: ignore[attr-defined]
        panels.setdefault(command.rich_help_panel, []).append(name)
    assert list(panels) == PANELS
    sections = help_sections(result.stdout)
    assert list(sections) == ["Options", *PANELS]
    assert {panel: [row[0] for row in sections[panel]] for panel in PANELS} == panels


def test_help_gives_every_command_a_one_line_summary_from_its_own_help() -> None:
    result = run("--help")
    assert result.exit_code == 0
    commands = get_command(app).commands  # type: ignore[attr-defined]
    sections = help_sections(result.stdout)
    rows = [row for panel in PANELS for row in sections[panel]]
    assert sorted(name for name, _, _ in rows) == sorted(commands)  # every command, once
    for name, summary, lines in rows:
        first_paragraph = " ".join(commands[name].help.split("\n\n")[0].split())
        assert lines == 1 and len(summary.split()) >= 4, (name, summary)
        assert first_paragraph.startswith(summary.removesuffix("...")), (name, summary)
    options = {term.split()[0].rstrip(",") for term, _, _ in sections["Options"]}
    assert {"--store", "-v", "-q", "--version", "-h"} <= options
