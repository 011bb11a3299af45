"""``recctl rank`` in a pipeline: permutation, pass-through, summary, fallback, MMR, errors, streaming."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from builders import SAMPLE_DATA, run


def sample_batches(count: int) -> list[dict[str, Any]]:
    recommendations = [
        json.loads(line) for line in (SAMPLE_DATA / "recommendations.ndjson").read_text().splitlines()
    ]
    assessments = [json.loads(line) for line in (SAMPLE_DATA / "assessments.ndjson").read_text().splitlines()]
    batches = []
    for assessment in assessments[:count]:
        items = [dict(r) for r in recommendations if r["assessment_id"] == assessment["assessment_id"]]
        batches.append({"assessment": assessment, "recommendations": items, "user_id": assessment["user_id"]})
    return batches


def rank(batch: Any, *options: str) -> tuple[int, Any, str]:
    code, out, err = run("rank", *options, input=json.dumps(batch))
    return code, (json.loads(out) if out.strip() else None), err


def rank_each(batches: list[dict[str, Any]], *options: str) -> list[dict[str, Any]]:
    """Every batch ranked by one ``rank --ndjson`` run (the model loaded once), answers in order."""
    code, out, err = run("rank", "--ndjson", *options, input="".join(json.dumps(b) + "\n" for b in batches))
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def without_request_id(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != "request_id"}


def test_output_is_a_permutation_with_pass_through(sample_model: Path) -> None:
    batch = sample_batches(1)[0]
    batch["request_id"] = "req-7"
    batch["recommendations"][0]["custom"] = {"nested": [1, {"x": None}], "big": 12345678901234567890}
    code, result, err = rank(batch, "--model", str(sample_model))
    assert code == 0, err
    ids_in = sorted(r["recommendation_id"] for r in batch["recommendations"])
    assert sorted(r["recommendation_id"] for r in result["recommendations"]) == ids_in
    assert [r["rank"] for r in result["recommendations"]] == list(range(1, len(ids_in) + 1))
    assert result["request_id"] == "req-7" and result["assessment"] == batch["assessment"]
    by_id = {r["recommendation_id"]: r for r in result["recommendations"]}
    for original in batch["recommendations"]:
        returned = dict(by_id[original["recommendation_id"]])
        assert isinstance(returned.pop("ml_score"), float)
        assert returned.pop("position") == returned.pop("rank") - 1
        assert returned == original  # every input value comes back unchanged
    summary = result["summary"]
    assert summary["ml_ranking_applied"] is True and isinstance(summary["model_version"], str)
    assert 0.0 <= summary["diversity_score"] <= 1.0 and summary["mmr_lambda"] == 0.7
    assert 0.0 <= summary["diversity_discounted"] <= 1.0
    assert summary["count"] == len(ids_in)
    assert err == ""


def test_bare_array_and_top_k(sample_model: Path) -> None:
    items = sample_batches(1)[0]["recommendations"]
    code, result, _ = rank(items, "--model", str(sample_model), "--top-k", "3")
    assert code == 0
    assert set(result) == {"request_id", "recommendations", "summary"} and result["summary"]["count"] == 3
    assert [r["position"] for r in result["recommendations"]] == [0, 1, 2]


def test_lambda_one_equals_no_diversity(sample_model: Path) -> None:
    for batch in sample_batches(5):
        _, plain, _ = rank(batch, "--model", str(sample_model), "--no-diversity")
        _, relevance_only, _ = rank(batch, "--model", str(sample_model), "--lambda", "1")
        ids = [[r["recommendation_id"] for r in doc["recommendations"]] for doc in (plain, relevance_only)]
        assert ids[0] == ids[1]
        scores = [r["ml_score"] for r in plain["recommendations"]]
        assert scores == sorted(scores, reverse=True)


def test_lower_lambda_gives_more_diversity(sample_model: Path) -> None:
    means = []
    batches = sample_batches(30)
    for lambda_ in ("0.9", "0.3"):
        results = rank_each(batches, "--model", str(sample_model), "--lambda", lambda_, "--top-k", "5")
        scores = [result["summary"]["diversity_score"] for result in results]
        means.append(sum(scores) / len(scores))
    assert means[1] > means[0]


def test_fallback_without_a_model(tmp_path: Path) -> None:
    batch = sample_batches(1)[0]
    code, result, err = rank(batch, "--model", str(tmp_path / "missing.txt"), "--no-diversity")
    assert code == 0
    assert result["summary"]["ml_ranking_applied"] is False and result["summary"]["model_version"] is None
    confidence = [r["confidence_score"] for r in result["recommendations"]]
    assert confidence == sorted(confidence, reverse=True)
    assert all(r["ml_score"] is None for r in result["recommendations"])
    assert err.count("\n") == 1 and err.startswith("warning: no model at")
    code, _, err = rank(batch, "--model", str(tmp_path / "missing.txt"), "--require-model")
    assert code == 1 and err.startswith("Error: no model at")


def test_unusable_model_falls_back(tmp_path: Path, sample_model: Path) -> None:
    broken = tmp_path / "ranker.txt"
    broken.write_text(sample_model.read_text()[:200])
    (tmp_path / "ranker.meta.json").write_text((sample_model.parent / "ranker.meta.json").read_text())
    code, result, err = rank(sample_batches(1)[0], "--model", str(broken))
    assert code == 0 and result["summary"]["ml_ranking_applied"] is False
    assert "not a complete LightGBM text model" in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda b: b["recommendations"][3].update(confidence_score="high"),
            "recommendations[3].confidence_score: must be a finite number",
        ),
        (
            lambda b: b["recommendations"][2].pop("recommendation_id"),
            "recommendations[2].recommendation_id: required",
        ),
        (lambda b: b["recommendations"].__setitem__(1, "text"), "recommendations[1]: not a JSON object"),
        (lambda b: b.update(request_id=True), "request_id: must be a non-empty string or an integer"),
        (lambda b: b.update(request_id=" "), "request_id: must be a non-empty string or an integer"),
        (lambda b: b.update(request_id=1.5), "request_id: must be a non-empty string or an integer"),
        (lambda b: b.update(recommendations={"a": 1}), "recommendations: must be a list"),
        (lambda b: b["assessment"].update(monthly_budget=-5), "assessment.monthly_budget: must be >= 0"),
        (lambda b: b.pop("recommendations"), "recommendations: required"),
    ],
)
def test_errors_name_the_json_path(sample_model: Path, change: Any, message: str) -> None:
    batch = sample_batches(1)[0]
    change(batch)
    code, result, err = rank(batch, "--model", str(sample_model))
    assert code == 1 and result is None
    assert err.startswith(f"Error: {message}") and err.count("\n") == 1


def test_non_finite_numbers_are_refused_with_their_path(sample_model: Path) -> None:
    text = json.dumps(sample_batches(1)[0]).replace('"roi_potential": ', '"roi_potential": NaN, "was": ', 1)
    code, _, err = run("rank", "--model", str(sample_model), input=text)
    assert code == 1 and "recommendations[0].roi_potential: must be a finite number, got NaN" in err
    code, _, err = run(
        "rank", "--model", str(sample_model), input='[{"recommendation_id": "a", "confidence_score": 1e999}]'
    )
    assert code == 1 and "[0].confidence_score: must be a finite number" in err
    code, _, err = run("rank", "--model", str(sample_model), input="{oops")
    assert code == 1 and err.startswith("Error: $: invalid JSON")


def test_ndjson_streams_and_reports_bad_lines(sample_model: Path) -> None:
    batches = sample_batches(4)
    lines = [
        json.dumps(batches[0]),
        "{broken",
        "",
        json.dumps(batches[1]),
        json.dumps({"recommendations": [{"confidence_score": 0.5}]}),
        json.dumps(batches[2]),
    ]
    code, out, err = run("rank", "--ndjson", "--model", str(sample_model), input="\n".join(lines) + "\n")
    assert code == 1
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["user_id"] for r in results] == [b["user_id"] for b in (batches[0], batches[1], batches[2])]
    assert "Error: line 2: $: invalid JSON" in err
    assert "Error: line 5: recommendations[0].recommendation_id: required" in err
    # One batch at a time and many at once give the same answers.
    for batch, streamed in zip((batches[0], batches[1], batches[2]), results, strict=True):
        alone = rank(batch, "--model", str(sample_model))[1]
        assert without_request_id(alone) == without_request_id(streamed)


def test_ndjson_many_chunks_in_flight_keep_input_order(sample_model: Path) -> None:
    """An in-memory stdin is read 64 KB at a time, so ~90 lines make about ten chunks, ranked two
    at a time. Output and errors keep input order, and each answer is the one-batch answer."""
    batches = sample_batches(80)
    lines = []
    for number, batch in enumerate(batches):
        lines.append(json.dumps({**batch, "request": number}))
        if number % 9 == 4:
            lines.append(json.dumps({**batch, "recommendations": [{"confidence_score": 0.5}]}))
    code, out, err = run("rank", "--ndjson", "--model", str(sample_model), input="\n".join(lines) + "\n")
    assert code == 1
    assert [json.loads(line)["request"] for line in out.splitlines()] == list(range(len(batches)))
    bad_lines = [n for n, line in enumerate(lines, start=1) if '"recommendations": [{"conf' in line]
    reported = [
        int(line.split()[2].rstrip(":")) for line in err.splitlines() if line.startswith("Error: line ")
    ]
    assert reported == bad_lines and "recommendation_id: required" in err
    streamed = [json.loads(line) for line in out.splitlines()]
    for number in (0, 41, 79):
        alone = rank({**batches[number], "request": number}, "--model", str(sample_model))[1]
        assert without_request_id(alone) == without_request_id(streamed[number])


def test_ndjson_deep_nesting_fails_only_its_line(sample_model: Path) -> None:
    """Up to 500 levels pass through (deeper than orjson writes); deeper is that line's error."""
    batch = sample_batches(1)[0]
    deep_note = {**batch, "note": json.loads("[" * 400 + "]" * 400)}
    too_deep = {**batch, "note": json.loads("[" * 700 + "]" * 700)}
    lines = [json.dumps(batch), json.dumps(deep_note), json.dumps(too_deep), json.dumps(batch)]
    code, out, err = run("rank", "--ndjson", "--model", str(sample_model), input="\n".join(lines) + "\n")
    assert code == 1 and "Error: line 3: $: invalid JSON: nested deeper than 500 levels" in err
    results = [json.loads(line) for line in out.splitlines()]
    assert len(results) == 3 and results[1]["note"] == deep_note["note"]


def test_explain(sample_model: Path) -> None:
    code, result, _ = rank(sample_batches(1)[0], "--model", str(sample_model), "--explain")
    assert code == 0
    explanation = result["recommendations"][0]["explanation"]
    contributions = explanation["top_contributions"]
    assert len(contributions) == 5 and {"feature", "contribution", "value"} <= set(contributions[0])
    magnitudes = [abs(c["contribution"]) for c in contributions]
    assert magnitudes == sorted(magnitudes, reverse=True)
    total = explanation["bias"] + sum(c["contribution"] for c in contributions)
    assert isinstance(total, float)


def test_broken_pipe_is_quiet(sample_model: Path, tmp_path: Path) -> None:
    batch = json.dumps(sample_batches(1)[0])
    (tmp_path / "in.ndjson").write_text((batch + "\n") * 300)
    completed = subprocess.run(
        f"{sys.executable} -m recctl rank --ndjson --model {sample_model} {tmp_path / 'in.ndjson'}"
        " | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in completed.stderr and "BrokenPipe" not in completed.stderr


def test_rank_with_a_model_does_not_import_lightgbm(sample_model: Path, tmp_path: Path) -> None:
    (tmp_path / "batch.json").write_text(json.dumps(sample_batches(1)[0]))
    probe = (
        "import sys, contextlib, io\n"
        "from recctl.cli import app\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        f"    app(['rank', {str(tmp_path / 'batch.json')!r}, '--model', {str(sample_model)!r}])\n"
        "import json\n"
        "print(json.dumps([json.loads(out.getvalue())['summary']['ml_ranking_applied'],"
        " sorted({m.split('.')[0] for m in sys.modules})]))"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    applied, modules = json.loads(completed.stdout.strip().splitlines()[-1])
    assert applied is True
    assert set(modules) & {"lightgbm", "pymongo", "pyarrow", "pymongoarrow"} == set()


def test_an_empty_list_is_answered(sample_model: Path) -> None:
    code, result, err = rank({"recommendations": [], "request_id": 12}, "--model", str(sample_model))
    assert code == 0, err
    assert result["recommendations"] == [] and result["request_id"] == 12
    assert result["summary"]["count"] == 0 and result["summary"]["diversity_score"] == 0.0
    batch = sample_batches(1)[0]
    lines = [json.dumps(batch), "[]", json.dumps({"recommendations": []})]
    code, out, err = run("rank", "--ndjson", "--model", str(sample_model), input="\n".join(lines) + "\n")
    assert code == 0, err
    counts = [json.loads(line)["summary"]["count"] for line in out.splitlines()]
    assert counts == [len(batch["recommendations"]), 0, 0]


def test_request_ids_kept_new_or_seeded(sample_model: Path) -> None:
    batch = sample_batches(1)[0]
    code, result, _ = rank(batch, "--model", str(sample_model))
    assert code == 0 and uuid.UUID(result["request_id"]).version == 4
    assert rank(batch, "--model", str(sample_model))[1]["request_id"] != result["request_id"]
    seeded = [rank(batch, "--model", str(sample_model), "--seed", "5")[1]["request_id"] for _ in range(2)]
    assert seeded[0] == seeded[1] and uuid.UUID(seeded[0]).version == 4
    assert rank(batch, "--model", str(sample_model), "--seed", "6")[1]["request_id"] != seeded[0]
    # In a stream the line number is part of a seeded id: the same batch on two lines gets two ids,
    # and the same stream ranked again gets the same ones.
    stream = "\n".join([json.dumps(batch), json.dumps(batch), json.dumps({**batch, "request_id": "r-1"})])
    answers = [
        [
            json.loads(line)["request_id"]
            for line in run("rank", "--ndjson", "--seed", "5", input=stream)[1].splitlines()
        ]
        for _ in range(2)
    ]
    assert answers[0] == answers[1] and answers[0][0] == seeded[0]
    assert answers[0][1] != answers[0][0] and answers[0][2] == "r-1"


def test_errors_inline_keeps_one_answer_per_line(sample_model: Path) -> None:
    batches = sample_batches(3)
    lines = [
        json.dumps(batches[0]),
        "{broken",
        "",
        json.dumps({"recommendations": "x"}),
        json.dumps(batches[1]),
    ]
    code, out, err = run(
        "rank", "--ndjson", "--errors", "inline", "--model", str(sample_model), input="\n".join(lines) + "\n"
    )
    assert code == 1
    answers = [json.loads(line) for line in out.splitlines()]
    assert len(answers) == 4  # every line but the blank one
    assert answers[1] == {"error": answers[1]["error"], "line": 2} and "invalid JSON" in answers[1]["error"]
    assert answers[2] == {"error": "recommendations: must be a list, got a string", "line": 4}
    assert answers[0]["user_id"] == batches[0]["user_id"] and answers[3]["user_id"] == batches[1]["user_id"]
    assert "Error: line 2:" in err and "Error: line 4:" in err
    code, _, err = run("rank", "--errors", "inline", "--model", str(sample_model), input=lines[0])
    assert code == 2 and "--ndjson" in err


def test_diversity_discounted_rewards_diverse_tops(sample_model: Path) -> None:
    """Lower lambda puts dissimilar items near the top, which the order-aware figure sees."""
    means = []
    batches = sample_batches(30)
    for lambda_ in ("1", "0.3"):
        results = rank_each(batches, "--model", str(sample_model), "--lambda", lambda_)
        values = [result["summary"]["diversity_discounted"] for result in results]
        means.append(sum(values) / len(values))
    assert means[1] > means[0]


def test_diversify_depth_bounds_mmr(sample_model: Path) -> None:
    """Without --top-k, MMR fills --diversify-depth slots and the rest follow by score."""
    batch = sample_batches(1)[0]
    code, result, _ = rank(batch, "--model", str(sample_model), "--lambda", "0", "--diversify-depth", "3")
    assert code == 0 and result["summary"]["count"] == len(batch["recommendations"])
    tail = [r["ml_score"] for r in result["recommendations"][3:]]
    assert tail == sorted(tail, reverse=True)
    _, full, _ = rank(batch, "--model", str(sample_model), "--lambda", "0")
    assert [r["recommendation_id"] for r in full["recommendations"][:3]] == [
        r["recommendation_id"] for r in result["recommendations"][:3]
    ]


def test_one_failing_batch_costs_only_its_line(sample_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch that makes ranking fail (here: memory, injected for lists over 20 items) is ranked
    alone and answered by its error; the other batches of its chunk are still answered."""
    import recctl.exploration

    real = recctl.exploration.mmr_many

    def failing_on_long_lists(scores: Any, traits: Any, **options: Any) -> Any:
        if traits.sizes.max(initial=0) > 20:
            raise MemoryError("injected")
        return real(scores, traits, **options)

    monkeypatch.setattr(recctl.exploration, "mmr_many", failing_on_long_lists)
    batches = sample_batches(6)
    long_batch = {**batches[0], "recommendations": [r for b in batches[:3] for r in b["recommendations"]]}
    lines = [json.dumps(b) for b in batches[3:]] + [json.dumps(long_batch), json.dumps(batches[1])]
    code, out, err = run("rank", "--ndjson", "--model", str(sample_model), input="\n".join(lines) + "\n")
    assert code == 1
    assert len(out.splitlines()) == 4
    assert "Error: line 4: $: could not be ranked (MemoryError: injected)" in err


# A child's peak RSS on Linux starts from the size of the process it was forked from, so a small
# launcher (python -S) stands between pytest and the measured command.
_LAUNCHER = """
import os, subprocess, sys
report, *command = sys.argv[1:]
child = subprocess.Popen(command)
_, status, usage = os.wait4(child.pid, 0)
with open(report, "w") as handle:
    handle.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss // 1024}")
"""


def peak_rss(args: list[str], stdin: Path, stdout: Path) -> tuple[int, int]:
    """Exit code and peak RSS (MB) of ``recctl *args`` reading ``stdin``, writing ``stdout``."""
    report = stdout.with_suffix(".rusage")
    with stdin.open("rb") as source, stdout.open("wb") as sink:
        subprocess.run(
            [sys.executable, "-S", "-c", _LAUNCHER, str(report), sys.executable, "-m", "recctl", *args],
            stdin=source,
            stdout=sink,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=600,
        )
    code, megabytes = report.read_text().split()
    return int(code), int(megabytes)


def big_batch(size: int) -> dict[str, Any]:
    """``size`` recommendations of the sample catalog (ids made unique) under one assessment."""
    catalog = [json.loads(line) for line in (SAMPLE_DATA / "recommendations.ndjson").read_text().splitlines()]
    items = [
        {**catalog[i % len(catalog)], "recommendation_id": f"r{i}", "assessment_id": "a"} for i in range(size)
    ]
    return {"assessment": sample_batches(1)[0]["assessment"], "recommendations": items}


def test_memory_grows_linearly_with_one_big_batch(sample_model: Path, tmp_path: Path) -> None:
    """10,000 recommendations in one batch (an n x n similarity would be 800 MB per array)."""
    batch = tmp_path / "big.json"
    batch.write_text(json.dumps(big_batch(10_000)))
    out = tmp_path / "out.json"
    for options in (["--top-k", "10"], ["--no-diversity"], []):
        code, megabytes = peak_rss(["rank", str(batch), "--model", str(sample_model), *options], batch, out)
        assert code == 0
        result = json.loads(out.read_text())
        assert result["summary"]["count"] == (10 if "--top-k" in options else 10_000)
        assert megabytes < 600, f"rank {options} peaked at {megabytes} MB"


def test_one_large_line_does_not_drag_its_chunk(sample_model: Path, tmp_path: Path) -> None:
    """100 batches of 11 and one of 1,000 in one chunk: each line answered, memory as for its own size."""
    small = sample_batches(100)
    lines = [json.dumps(b) for b in small[:50]] + [json.dumps(big_batch(1_000))]
    lines += [json.dumps(b) for b in small[50:]]
    stream = tmp_path / "mixed.ndjson"
    stream.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.ndjson"
    code, megabytes = peak_rss(["rank", "--ndjson", "--model", str(sample_model), "-"], stream, out)
    assert code == 0
    answers = [json.loads(line) for line in out.read_text().splitlines()]
    assert [a["summary"]["count"] for a in answers] == [len(b["recommendations"]) for b in small[:50]] + [
        1_000
    ] + [len(b["recommendations"]) for b in small[50:]]
    assert megabytes < 500, f"the stream peaked at {megabytes} MB"


def test_log_appends_served_lists_that_ingest_back(
    sample_model: Path, tmp_path: Path, store_location: str
) -> None:
    """recctl's own output is recctl's own input: every logged list ingests with zero rejects."""
    batches = sample_batches(4)
    bare = [dict(r) for r in batches[3]["recommendations"]]  # one assessment_id on every item
    lines = [*batches[:3], bare, {"recommendations": [], "request_id": "empty"}]
    log = tmp_path / "served.ndjson"
    stream = "\n".join(json.dumps(line) for line in lines) + "\n"
    code, out, err = run("rank", "--model", str(sample_model), "--ndjson", "--log", str(log), input=stream)
    assert code == 0, err
    answers = [json.loads(line) for line in out.splitlines()]
    code, out, err = run(
        "rank", "--model", str(sample_model), "--log", str(log), input=json.dumps(batches[0])
    )
    assert code == 0, err
    answers.append(json.loads(out))
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    served = [answer for answer in answers if answer["recommendations"]]  # an empty list is not logged
    assert [record["request_id"] for record in logged] == [answer["request_id"] for answer in served]
    for record, answer in zip(logged, served, strict=True):
        assert record["items"] == [
            {"recommendation_id": r["recommendation_id"], "position": r["position"]}
            for r in answer["recommendations"]
        ]
        assert record["model_version"] == answer["summary"]["model_version"]
        assert record["policy"] == "deterministic" and record["timestamp"].endswith("Z")
    assert logged[3]["assessment_id"] == bare[0]["assessment_id"]
    assert logged[0]["assessment_id"] == batches[0]["assessment"]["assessment_id"]
    assert logged[0]["user_id"] == batches[0]["user_id"]
    code, out, err = run("--store", store_location, "ingest", "impressions", str(log), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["read"], summary["inserted"], summary["rejected"]) == (5, 5, 0)


def test_log_refuses_a_list_it_cannot_log(sample_model: Path, tmp_path: Path) -> None:
    """A list whose assessment is unknown is a bad line: answered by an error, never served unlogged."""
    good = sample_batches(1)[0]
    mixed = [dict(r, assessment_id=f"a-{i}") for i, r in enumerate(good["recommendations"])]
    log = tmp_path / "served.ndjson"
    stream = json.dumps(good) + "\n" + json.dumps(mixed) + "\n"
    code, out, err = run("rank", "--model", str(sample_model), "--ndjson", "--log", str(log), input=stream)
    assert code == 1
    assert len(out.splitlines()) == 1 and len(log.read_text().splitlines()) == 1
    assert "line 2: cannot log the served list: no assessment_id" in err
    code, out, err = run("rank", "--model", str(sample_model), "--log", str(log), input=json.dumps(mixed))
    assert code == 1 and out == "" and "no assessment_id" in err


def test_log_path_is_checked_before_any_work(sample_model: Path, tmp_path: Path) -> None:
    code, out, err = run("rank", "--model", str(sample_model), "--log", str(tmp_path), input="not json")
    assert code == 1 and out == ""
    assert err.startswith(f"Error: --log {tmp_path}: cannot append to it") and len(err.splitlines()) == 1
