"""The helper process of a fast ``rank --ndjson`` stream answers exactly what the stream's threads
answer, and losing it loses no line."""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
from pathlib import Path
from typing import Any

import pytest
from builders import SAMPLE_DATA, run

from recctl import rank_process
from recctl.cli import rank
from recctl.ranking import Ranker, RankOptions


def stream_lines(count: int) -> list[bytes]:
    """``count`` sample batches, one per line, every ninth one bad (a recommendation without id)."""
    recommendations = [json.loads(line) for line in (SAMPLE_DATA / "recommendations.ndjson").open()]
    assessments = [json.loads(line) for line in (SAMPLE_DATA / "assessments.ndjson").open()]
    lines = []
    for number in range(count):
        assessment = assessments[number % len(assessments)]
        items = [r for r in recommendations if r["assessment_id"] == assessment["assessment_id"]]
        if number % 9 == 4:
            items = [{"confidence_score": 0.5}]
        lines.append(json.dumps({"assessment": assessment, "recommendations": items}).encode())
    return lines


OPTIONS = RankOptions(seed=11)  # seeded: request ids follow the line numbers, wherever ranked


def test_a_pickled_ranker_ranks_like_the_one_it_came_from(sample_model: Path) -> None:
    ranker = Ranker(sample_model)
    copy = pickle.loads(pickle.dumps(ranker))  # noqa: S301 (our own bytes)
    assert copy.model_version == ranker.model_version and copy.warning is None
    lines = stream_lines(12)
    assert copy.rank_lines(lines, 5, OPTIONS) == ranker.rank_lines(lines, 5, OPTIONS)
    fallback = pickle.loads(pickle.dumps(Ranker(sample_model.parent / "missing.txt")))  # noqa: S301
    assert fallback.bundle is None and "ranking by confidence_score" in (fallback.warning or "")


def test_the_helper_answers_a_chunk_as_a_thread_does(sample_model: Path) -> None:
    ranker = Ranker(sample_model)
    lines = stream_lines(20)
    helper = rank_process.HelperProcess(ranker, OPTIONS, errors_inline=True)
    try:
        assert helper.ready.result(timeout=60)
        answered = helper.submit(lines, 31).result(timeout=60)
    finally:
        helper.close()
    assert answered == ranker.rank_lines(lines, 31, OPTIONS, errors_inline=True)
    assert answered.errors and answered.errors[0].startswith("line 35: ")


def ranked_stream(lines: list[bytes], ranker: Ranker, capsys: Any, **options: Any) -> tuple[int, bytes]:
    failures = rank._rank_stream(
        io.BytesIO(b"\n".join(lines) + b"\n"), ranker, OPTIONS, errors_inline=True, **options
    )
    return failures, capsys.readouterr().out


@pytest.fixture
def helpers(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every helper the stream starts (each up before the stream goes on, so that it gets chunks
    whatever the machine's speed), and how many chunks each was given."""
    started: list[Any] = []
    start, submit = rank_process.HelperProcess.__init__, rank_process.HelperProcess.submit

    def start_and_wait(self: Any, ranker: Any, *args: Any, **kwargs: Any) -> None:
        start(self, ranker, *args, **kwargs)
        self.recipe = ranker
        self.ready.result(timeout=60)
        self.chunks = 0
        started.append(self)

    def count(self: Any, *args: Any) -> Any:
        self.chunks += 1
        return submit(self, *args)

    monkeypatch.setattr(rank_process.HelperProcess, "__init__", start_and_wait)
    monkeypatch.setattr(rank_process.HelperProcess, "submit", count)
    return started


def test_a_backlog_starts_the_helper_and_the_output_keeps_input_order(
    sample_model: Path, capsysbinary: pytest.CaptureFixture[bytes], helpers: list[Any]
) -> None:
    """An in-memory stream is read 64 KB at a time: 200 lines make dozens of chunks at once."""
    ranker, lines = Ranker(sample_model), stream_lines(200)
    alone = ranked_stream(lines, ranker, capsysbinary, helper_allowed=False)
    assert not helpers
    assert ranked_stream(lines, ranker, capsysbinary) == alone
    assert len(helpers) == 1 and helpers[0].chunks > 0
    assert alone[0] == len(range(4, 200, 9)) and len(alone[1].splitlines()) == 200


def test_a_helper_that_dies_loses_no_line(
    sample_model: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
    helpers: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ranker, lines = Ranker(sample_model), stream_lines(200)
    alone = ranked_stream(lines, ranker, capsysbinary, helper_allowed=False)
    submit = rank_process.HelperProcess.submit

    def killed_first(self: Any, *args: Any) -> Any:
        if self.chunks == 0:  # the helper dies before its first chunk reaches it
            for process in list(self._pool._processes.values()):
                os.kill(process.pid, signal.SIGKILL)
                process.join(timeout=60)
        return submit(self, *args)

    monkeypatch.setattr(rank_process.HelperProcess, "submit", killed_first)
    assert ranked_stream(lines, ranker, capsysbinary) == alone
    assert len(helpers) == 1 and helpers[0].chunks >= 1


def test_a_large_input_file_starts_the_helper_from_the_model_path(
    sample_model: Path, tmp_path: Path, helpers: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file of more than two chunks still to read: the helper is started (from the model's path)
    before this process loads the model; the answers are those of a stream without it."""
    source = tmp_path / "batches.ndjson"
    source.write_bytes(b"\n".join(stream_lines(120)) + b"\n")
    command = ["rank", "--ndjson", "--seed", "3", "--errors", "inline", "--model", str(sample_model)]
    monkeypatch.setattr(rank, "CHUNK_BYTES", source.stat().st_size // 3 - 1)
    assert rank._large_file(source.open("rb"))
    code, out, err = run(*command, str(source))
    assert len(helpers) == 1 and isinstance(helpers[0].recipe, rank_process.RankerRecipe)
    assert helpers[0].chunks > 0
    monkeypatch.setattr(rank, "CHUNK_BYTES", source.stat().st_size)  # one chunk: no helper
    assert run(*command, str(source)) == (code, out, err) and len(helpers) == 1
    assert code == 1 and len(out.splitlines()) == 120


def test_a_helper_that_loaded_other_models_is_not_used(
    sample_model: Path, capsysbinary: pytest.CaptureFixture[bytes], helpers: list[Any]
) -> None:
    ranker, lines = Ranker(sample_model), stream_lines(200)
    alone = ranked_stream(lines, ranker, capsysbinary, helper_allowed=False)
    elsewhere = rank_process.HelperProcess(
        rank_process.RankerRecipe(sample_model.parent / "replaced.txt"), OPTIONS, errors_inline=True
    )
    assert elsewhere.ready.result(timeout=60) == (None,) != ranker.models
    assert ranked_stream(lines, ranker, capsysbinary, helper=elsewhere) == alone
    assert elsewhere.chunks == 0  # stopped unused; a copy of this ranker took over
    assert len(helpers) == 2 and helpers[1].chunks > 0
