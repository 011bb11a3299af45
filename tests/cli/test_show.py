"""``recctl show``: rank's JSON as a table for people (the demo pipes rank into it)."""

from __future__ import annotations

import json
from pathlib import Path

from builders import SAMPLE_DATA, run

SAMPLE_BATCH = SAMPLE_DATA / "rank_batch.json"


def ranked(*options: str) -> str:
    code, out, _ = run("-q", "rank", str(SAMPLE_BATCH), "--model", "none.txt", *options)
    assert code == 0
    return out


def test_a_ranked_batch_in_rank_order_with_its_summary() -> None:
    document = json.loads(ranked())
    code, out, err = run("show", input=json.dumps(document))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["rank", "score", "conf.", "category", "recommendation", "title"]
    body = lines[1:-1]
    assert len(body) == len(document["recommendations"]) == 11
    for line, item in zip(body, document["recommendations"], strict=True):
        cells = line.split()
        assert cells[:5] == [
            str(item["rank"]),
            "-",  # no model: no score
            f"{item['confidence_score']:.2f}",
            item["category"],
            item["recommendation_id"],
        ]
    assert lines[-1] == f"11 in confidence order (no model) · MMR lambda 0.7 · diversity {0.830:.3f}"
    assert max(len(line) for line in lines) <= 80  # long titles are cut with an ellipsis
    assert any(line.endswith("…") for line in body)


def test_a_file_and_an_ndjson_stream(tmp_path: Path) -> None:
    path = tmp_path / "ranked.json"
    path.write_text(ranked("--top-k", "2"))
    code, out, _ = run("show", str(path))
    assert code == 0 and len(out.splitlines()) == 4  # header, 2 rows, summary
    stream = ranked("--top-k", "2") + "\n" + ranked("--top-k", "3", "--no-diversity")
    code, out, _ = run("show", input=stream)
    assert code == 0
    blocks = out.split("\n\n")
    assert [len(block.strip().splitlines()) for block in blocks] == [4, 5]
    assert blocks[1].strip().splitlines()[-1].startswith("3 in confidence order (no model) · no MMR · ")


def test_scores_of_a_model_show_signed() -> None:
    document = {
        "recommendations": [
            {"recommendation_id": "r1", "rank": 1, "ml_score": 1.23456, "confidence_score": 0.5},
            {"recommendation_id": "r2", "rank": 2, "ml_score": -0.5, "category": None},
        ],
        "summary": {"ml_ranking_applied": True, "model_version": "abc123", "mmr_lambda": 0.6, "count": 2},
    }
    code, out, _ = run("show", input=json.dumps(document))
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split()[:4] == ["1", "+1.235", "0.50", "-"]
    assert lines[2].split()[:4] == ["2", "-0.500", "-", "-"]
    assert lines[3] == "2 ranked by model abc123 · MMR lambda 0.6 · diversity -"


def test_bad_input_is_one_error_line_and_nothing_on_stdout(tmp_path: Path) -> None:
    good = ranked("--top-k", "1")
    cases = [
        ('{"a": 1}', "stdin, document 1: not a ranked batch (no 'recommendations' list)"),
        (good + "\n{bad\n", "stdin, line 3: invalid JSON"),
        ("", "stdin: no ranked batch to show"),
    ]
    for text, message in cases:
        code, out, err = run("show", input=text)
        assert code == 1 and out == "", text
        assert err.startswith(f"Error: {message}") and err.count("\n") == 1, err
    code, _, err = run("show", str(tmp_path / "missing.json"))
    assert code == 1 and err.startswith("Error: cannot read") and "missing.json" in err


def test_help_is_a_help() -> None:
    code, out, _ = run("show", "--help")
    assert code == 0 and out.startswith("Usage: recctl show")
