"""The repository stands alone: its data is inside, its docs explain it in their own words, and what
the README and ``make demo`` tell a new user to do works."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

from typer.main import get_command

from recctl.cli import app

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
LIGHTGBM_EXAMPLE_SHA256 = {
    "rank.train": "a0c7201c89120879c14a5059e091f441cbf2a29b8aaef363885ccb1a530448df",
    "rank.test": "3b1219ce117a0a36d2f76c02de7e7831c1d79af0d40f5195c03178bbe26c824b",
}

# Words that send a reader to documents a clone does not have (the contract and issue tracker the
# code was built from, the system it replaces by a code name).
LEAKS = [
    re.compile(r"\.\./shared"),
    re.compile(r"\bDESIGN\b"),
    re.compile("\N{SECTION SIGN}"),
    re.compile(r"\bissue \d+", re.IGNORECASE),
    # "the seed" alone may be a random seed (--seed); the old system is "the seed's ...".
    re.compile(r"\bseed(?:'s| api| documents?| script| system)\b", re.IGNORECASE),
]
# Paths out of the repository in test code.
OUTSIDE = re.compile(r"\.\./shared|shared/datasets|[\"']shared[\"']")


def repository_text_files() -> list[Path]:
    files = [README, REPO / "Makefile", REPO / "pyproject.toml", *REPO.glob("*/README.md")]
    for folder in ("recctl", "tests", "bench", "checks", "docs"):
        files += [path for path in (REPO / folder).rglob("*") if path.suffix in (".py", ".md", ".toml")]
    return sorted(path for path in set(files) if path.is_file() and path != Path(__file__).resolve())


def test_docs_and_code_speak_in_their_own_words() -> None:
    found = []
    for path in repository_text_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if any(pattern.search(line) for pattern in LEAKS):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert found == []


def test_tests_read_nothing_outside_the_repository() -> None:
    found = []
    for path in repository_text_files():
        if path.suffix == ".py" and path.parts[len(REPO.parts)] in ("tests", "checks"):
            text = path.read_text(encoding="utf-8")
            found += [f"{path.relative_to(REPO)}: {match.group()}" for match in OUTSIDE.finditer(text)]
    assert found == []


def test_the_shipped_lightgbm_example_is_lightgbms(lightgbm_example: Path) -> None:
    for name, digest in LIGHTGBM_EXAMPLE_SHA256.items():
        assert hashlib.sha256((lightgbm_example / name).read_bytes()).hexdigest() == digest, name
        sizes = [int(line) for line in (lightgbm_example / f"{name}.query").read_text().split()]
        assert sum(sizes) == len((lightgbm_example / name).read_bytes().splitlines())
    licence = (REPO / "tests" / "data" / "lightgbm_lambdarank" / "LICENSE").read_text()
    assert "MIT License" in licence and "Copyright (c) Microsoft Corporation" in licence
    assert "LICENSE" in (REPO / "tests" / "data" / "README.md").read_text()


def _option_default(command: str, option: str) -> str:
    params = get_command(app).commands[command].params  # type: ignore[attr-defined]
    return str(next(param.default for param in params if param.name == option))


def test_make_demo_trains_the_model_rank_uses_by_default() -> None:
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "-C", str(REPO), "demo"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    dry_run = [line for line in dry_run if not line.startswith("echo ")]
    trains = [line.split() for line in dry_run if " train " in f" {line} "]
    # One training writes the model rank uses; any other (the naive comparison) writes elsewhere.
    into_models = [t for t in trains if "--model" not in t or t[t.index("--model") + 1].startswith("models/")]
    assert len(into_models) == 1
    assert all(t[t.index("--model") + 1].startswith("demo-output/") for t in trains if t not in into_models)
    train = into_models[0]
    written = train[train.index("--model") + 1] if "--model" in train else _option_default("train", "model")
    assert written == _option_default("rank", "model") == "models/recommendation_ranker.txt"
    ranks = [line for line in dry_run if " rank " in line]
    assert ranks and all("--model" not in rank for rank in ranks)
    assert all(rank.split("|")[1].split()[1:] == ["show"] for rank in ranks)  # recctl show, documented


def _sh_block_after(heading: str) -> list[str]:
    """The command lines of the first ```sh block after ``heading`` in the README."""
    text = README.read_text(encoding="utf-8")
    start = text.index("```sh\n", text.index(heading)) + len("```sh\n")
    return [line for line in text[start : text.index("```", start)].splitlines() if line.strip()]


def test_the_readme_tour_runs_in_a_store_of_its_own(tmp_path: Path) -> None:
    tour = _sh_block_after("## A 60-second tour")
    training = [
        line
        for line in _sh_block_after("### `recctl train` / `recctl evaluate`")
        if line.startswith(("recctl export", "recctl train --data"))
    ]
    assert len(training) == 4  # each export that makes what a `train --data` reads, then that train
    training = [line for line in training if "--dask" not in line]  # test_distributed runs that one
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    script = "\n".join(["set -e", *tour, *training])
    completed = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert not (tmp_path / "recctl-data").exists()  # the demo's store is left alone
    assert (tmp_path / "models" / "recommendation_ranker.txt").is_file()


def test_placeholders_in_the_tour_are_marked() -> None:
    # Names the reader has to replace are in <...>, so a copied line cannot run as it stands ...
    own = _sh_block_after("With your own data")
    assert own and all(re.search(r"<[a-z][a-z.-]*\.(?:gz|ndjson)>", line) for line in own), own
    # ... and the lines the tour means to be run name nothing the reader does not have.
    tour = "\n".join(_sh_block_after("## A 60-second tour"))
    assert not re.search(r"old-logs|events\.ndjson|mongodb://|<", tour)


def test_links_in_the_docs_lead_to_files_in_the_repository() -> None:
    pages = [README, *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if not target.startswith(("http://", "https://")) and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert len(pages) >= 5 and broken == []
