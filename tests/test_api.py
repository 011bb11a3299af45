"""The public Python API: ``import recctl`` names what the commands call, and the README's example runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import recctl

REPO = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    """The first ```python block after the README's "## Python API" heading."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("```python\n", text.index("## Python API")) + len("```python\n")
    return text[start : text.index("```", start)]


def run_python(code: str, cwd: Path) -> list[str]:
    """The lines ``code`` prints, run by a fresh interpreter in ``cwd``."""
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout.splitlines()


def test_every_exported_name_resolves_and_is_documented() -> None:
    assert recctl.__doc__ is not None
    for name in recctl.__all__:
        assert getattr(recctl, name) is not None, name
        if name != "__version__":
            assert f"`{name}`" in recctl.__doc__, f"{name} is not in recctl's docstring"


def test_importing_recctl_loads_no_heavy_module_and_ingest_stays_a_function(tmp_path: Path) -> None:
    # The function ingest lives in recctl.ingestion, so no submodule import can rebind the name.
    probe = (
        "import sys, recctl\n"
        "print(sorted({'polars', 'numpy', 'lightgbm', 'pymongo', 'pyarrow'} & set(sys.modules)))\n"
        "import recctl.ingestion, recctl.cli.ingest\n"
        "print(callable(recctl.ingest), recctl.ingest is recctl.ingestion.ingest)"
    )
    assert run_python(probe, tmp_path) == ["[]", "True True"]


def test_the_readme_example_runs(tmp_path: Path) -> None:
    sample_data = REPO / "sample_data"
    example = readme_example()
    assert example.count("sample_data/") == 2  # the three record files, the rank batch
    code = example.replace("sample_data/", f"{sample_data}/")  # the example runs from a checkout
    facts = """
print(json.dumps({
    "meta": recctl.model.load_bundle(model.path).meta == model.meta and model.meta["status"],
    "model_path": str(model.path),
    "version": model.version,
    "groups": evaluation.groups,
    "left_out": evaluation.training_overlap["left_out"],
    "ndcg@10": {name: report.values["ndcg@10"][0] for name, report in evaluation.orders.items() if report},
    "ranks": [item["rank"] for item in ranked["recommendations"]],
    "summary": ranked["summary"],
}))
"""
    *printed, last = run_python(code + facts, tmp_path)
    result = json.loads(last)

    assert (tmp_path / "recctl-data").is_dir() and (tmp_path / "models" / "ranker.txt").is_file()
    assert result["meta"] == "trained" and result["model_path"] == "models/ranker.txt"
    assert result["groups"] > 0 and result["left_out"] is True
    means = result["ndcg@10"]
    assert means["ideal"] == 1.0 and means["model"] > means["random"]
    assert result["ranks"] == [1, 2, 3, 4, 5]
    assert result["summary"]["ml_ranking_applied"] is True
    assert result["summary"]["model_version"] == result["version"]
    assert printed[0].startswith(f"model {result['version']}: validation NDCG@10 0.")
    assert [line.split(":")[0] for line in printed[1:4]] == ["model", "baseline", "random"]
    assert printed[4].startswith("['rec-") and len(printed) == 5
