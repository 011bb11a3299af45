"""MongoDB unreachable at start, and MongoDB stopped in the middle of an ingest, then restarted."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mongo_server import free_port, server_uri, start_secantus, stop, wait_until_ready

from faults.conftest import Log
from faults.processes import MongoCounter, mongo_event_ids, run, start, summary

pytestmark = pytest.mark.mongo
STORED = re.compile(r"; (\d+) rows were stored by this ingest before the failure$")


class Server:
    """A SecantusDB of this test's own, to stop and restart on the same storage path."""

    def __init__(self, storage: Path) -> None:
        self.storage = storage
        self.port = free_port()
        self.uri = server_uri(self.port, "recctl_down")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = start_secantus(self.storage, self.port)
        wait_until_ready(self.uri, self.process)

    def stop(self) -> None:
        """Stop the server the way an operator does (SIGTERM, then wait)."""
        if self.process is not None:
            stop(self.process)
            self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    own = Server(tmp_path / "secantus" / "data")
    own.start()
    try:
        yield own
    finally:
        own.kill()  # the test is over: no need to wait for a clean shutdown


def test_unreachable_at_start_is_one_line_within_5_s(tmp_path: Path, small_log: Log) -> None:
    """Every command that opens the store, run at once against a port nobody listens on."""
    uri = server_uri(free_port(), "recctl")
    commands = [
        ["ingest", "interactions", str(small_log.path), "--rejects", str(tmp_path / "rejects.ndjson")],
        ["export", "--lookback-days", "0", "--out", str(tmp_path / "export")],
        ["train", "--lookback-days", "0", "--model", str(tmp_path / "model.txt")],
    ]
    started = time.monotonic()
    processes = [start(["--store", uri, *command]) for command in commands]
    for command, process in zip(commands, processes, strict=True):
        out, err = process.communicate(timeout=60)
        assert process.returncode == 1, (command, err)
        assert out == ""
        # one Error line (train's report heading may come before it), no traceback
        lines = [line for line in err.strip().splitlines() if "recctl train" not in line]
        assert len(lines) == 1 and lines[0].startswith("Error: cannot reach MongoDB at"), (command, err)
    # 5 s of server selection, plus start-up for three processes on a loaded two-core machine (a CI run
    # took 9.2 s); far below pymongo's default 30 s, which is what this guards against
    assert time.monotonic() - started < 15
    assert not (tmp_path / "export").exists() and not (tmp_path / "model.txt").exists()


@pytest.mark.slow
def test_server_stopped_mid_ingest_then_restarted(server: Server, small_log: Log, tmp_path: Path) -> None:
    args = ["-q", "--store", server.uri, "ingest", "interactions", str(small_log.path), "--json"]
    args += ["--rejects", str(tmp_path / "rejects.ndjson")]
    count = MongoCounter(server.uri)
    process = start(args, RECCTL_INGEST_BATCH_ROWS="200")
    try:
        while count() < 800:
            assert process.poll() is None, "the ingest finished before the server was stopped"
            time.sleep(0.01)
    finally:
        count.close()
    server.stop()
    stopped = time.monotonic()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert time.monotonic() - stopped < 12
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: lost the connection writing interactions to MongoDB at"), err
    match = STORED.search(lines[0])
    assert match, err
    reported = int(match.group(1))

    server.start()
    stored = len(mongo_event_ids(server.uri))
    # What the ingest said it stored is stored; a batch in flight may have landed unacknowledged.
    assert 800 <= reported <= stored < len(small_log.expected_ids)
    code, out, err = run(args, RECCTL_INGEST_BATCH_ROWS="200")
    assert code == 0, err
    result = summary(out)
    ids = mongo_event_ids(server.uri)
    assert sorted(ids) == sorted(small_log.expected_ids)
    assert result["inserted"] == len(small_log.expected_ids) - stored
    assert result["rejected"] == small_log.rejected
