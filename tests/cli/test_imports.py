"""Start-up is a feature: what ``import recctl.cli`` and the rank path load."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("polars", "pyarrow", "pymongo", "lightgbm", "pymongoarrow", "numpy")


def loaded_after(code: str) -> set[str]:
    listing = "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    probe = f"import sys\n{code}\nimport json\n{listing}"
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(completed.stdout.strip().splitlines()[-1]))


def test_importing_the_cli_loads_no_heavy_module() -> None:
    assert loaded_after("import recctl.cli") & set(HEAVY) == set()


def test_rank_path_loads_neither_pymongo_nor_pyarrow_nor_lightgbm(tmp_path) -> None:  # type: ignore[no-untyped-def]
    batch = [
        {"recommendation_id": "a", "assessment_id": "x", "category": "security", "confidence_score": 0.5},
        {
            "recommendation_id": "b",
            "assessment_id": "x",
            "category": "cost_optimization",
            "confidence_score": 0.7,
        },
    ]
    (tmp_path / "batch.json").write_text(json.dumps(batch))
    code = (
        "from recctl.cli import app\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    app(['rank', {str(tmp_path / 'batch.json')!r}, '--model', {str(tmp_path / 'none.txt')!r}])"
    )
    loaded = loaded_after(code)
    assert "polars" in loaded  # the features really ran
    assert loaded & {"pymongo", "pyarrow", "pymongoarrow", "lightgbm"} == set()


def test_a_command_run_builds_only_that_command(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``recctl rank`` does not import (nor have Typer inspect) the other commands' modules."""
    code = (
        "import sys, contextlib, io\n"
        f"sys.argv = ['recctl', '--store', {str(tmp_path / 'store')!r}, '-q', 'rank', '--help']\n"
        "from recctl.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('recctl.cli.'))))\n"
        "import json"
    )
    probe = f"import json\n{code}"
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(json.loads(completed.stdout.strip().splitlines()[-1]))
    assert "recctl.cli.rank" in loaded
    assert (
        loaded & {"recctl.cli.train", "recctl.cli.ingest", "recctl.cli.report", "recctl.cli.simulate"}
        == set()
    )


def test_the_invoked_command_is_the_first_word_after_the_global_options() -> None:
    from recctl.cli import invoked_command

    assert invoked_command(["rank", "x.json"]) == "rank"
    assert (
        invoked_command(["--store", "rank", "-q", "train", "--since", "x"]) == "train"
    )  # a store named rank
    assert invoked_command(["-v", "--store=mongodb://h/db", "models", "show", "m.txt"]) == "models"
    assert invoked_command(["--help", "rank"]) is None and invoked_command(["--version"]) is None
    assert invoked_command([]) is None and invoked_command(["rnk"]) is None  # the whole app says why
