"""A MongoDB server for the tests: SecantusDB started on a free port, or ``RECCTL_TEST_MONGO_URI``.

A pytest plugin (registered with ``pytest_plugins = ("mongo_server",)``). Fixtures:

- ``mongo_server_uri`` (session): the server's URI. With ``RECCTL_TEST_MONGO_URI`` set, that server
  is used as it is; otherwise SecantusDB is started in a temporary directory and stopped at the end.
  A server that does not come up fails the session; it never skips.
- ``mongo_uri`` (function): the same server with a fresh database ``recctl_test_<hex>``, dropped
  after the test.

``start_secantus`` / ``wait_until_ready`` / ``stop`` are usable on their own for fault-injection
tests (stop the server mid-ingest, restart it on the same storage path).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymongo
import pytest
from pymongo.errors import PyMongoError

ENV_URI = "RECCTL_TEST_MONGO_URI"
START_TIMEOUT_S = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_uri(port: int, database: str = "") -> str:
    """The test URI of a local server. ``directConnection`` because SecantusDB advertises a one-node
    replica set under its own host name; recctl itself never adds it."""
    return f"mongodb://127.0.0.1:{port}/{database}?directConnection=true"


def _server_command() -> list[str]:
    launcher = Path(sys.executable).parent / "secantusd-py"
    if launcher.exists():
        return [str(launcher)]
    found = shutil.which("secantusd-py")
    return [found] if found else [sys.executable, "-m", "secantus"]


def default_log_path(storage_path: Path) -> Path:
    """Where :func:`start_secantus` writes the server's output unless told otherwise."""
    return storage_path.with_name(storage_path.name + ".log")


def start_secantus(storage_path: Path, port: int, *, log_path: Path | None = None) -> subprocess.Popen[bytes]:
    """Start SecantusDB on ``127.0.0.1:port`` with its data in ``storage_path`` (reopened if it exists).

    Output goes to ``log_path`` (default: ``<storage_path>.log``, appended across restarts). An empty
    config file is passed so no ``secantusd.toml`` of the machine is picked up. Does not wait for
    the server: see :func:`wait_until_ready`.
    """
    storage_path = Path(storage_path)
    storage_path.parent.mkdir(parents=True, exist_ok=True)
    log_path = log_path or default_log_path(storage_path)
    config = storage_path.with_name(storage_path.name + ".toml")
    config.touch()
    command = [
        *_server_command(),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        str(storage_path),
        "--log-level",
        "WARNING",
    ]
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=storage_path.parent
        )


def wait_until_ready(
    uri: str, process: subprocess.Popen[bytes] | None = None, timeout: float = START_TIMEOUT_S
) -> None:
    """Wait until ``ping`` answers at ``uri``; raise RuntimeError on timeout or if ``process`` exits."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode}")
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            uri, serverSelectionTimeoutMS=500, connectTimeoutMS=500
        )
        try:
            client.admin.command("ping")
            return
        except PyMongoError as exc:
            last_error = str(exc).split(",")[0]
        finally:
            client.close()
        time.sleep(0.1)
    raise RuntimeError(f"no ping answer within {timeout:.0f} s ({last_error})")


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate the server (SIGTERM), wait, and kill it if it does not exit in ``timeout`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def with_database(uri: str, database: str) -> str:
    """``uri`` pointing at ``database``; credentials keep authenticating where they did before."""
    scheme, _, rest = uri.partition("://")
    address, _, query = rest.partition("?")
    hosts, _, old_database = address.partition("/")
    options = [option for option in query.split("&") if option]
    has_credentials = "@" in hosts
    if has_credentials and not any(option.lower().startswith("authsource=") for option in options):
        # Without authSource the path database is where users authenticate: keep the old one.
        options.append(f"authSource={old_database or 'admin'}")
    return f"{scheme}://{hosts}/{database}" + (f"?{'&'.join(options)}" if options else "")


@pytest.fixture(scope="session")
def mongo_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of the test server (``RECCTL_TEST_MONGO_URI``, or a SecantusDB started for the session)."""
    external = os.environ.get(ENV_URI)
    if external:
        yield external
        return
    root = tmp_path_factory.mktemp("secantus")
    storage = root / "data"
    port = free_port()
    process = start_secantus(storage, port)
    uri = server_uri(port)
    try:
        wait_until_ready(uri, process)
    except RuntimeError as exc:
        stop(process)
        pytest.fail(f"SecantusDB did not start on port {port}: {exc}\n{log_tail(default_log_path(storage))}")
    try:
        yield uri
    finally:
        stop(process)


@pytest.fixture(scope="session")
def mongo_client(mongo_server_uri: str) -> Iterator[pymongo.MongoClient[dict[str, object]]]:
    """A pymongo client on the test server, for setting up and inspecting raw documents."""
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(mongo_server_uri, tz_aware=True)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def mongo_uri(mongo_server_uri: str, mongo_client: pymongo.MongoClient[dict[str, object]]) -> Iterator[str]:
    """The test server with a database of this test's own (``recctl_test_<hex>``), dropped afterwards."""
    database = f"recctl_test_{uuid.uuid4().hex[:12]}"
    try:
        yield with_database(mongo_server_uri, database)
    finally:
        mongo_client.drop_database(database)
