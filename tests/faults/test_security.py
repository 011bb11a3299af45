"""Nobody gets in: no pickle or eval, no credentials in anything recctl prints or writes, no file
outside the locations the user named, and MongoDB TLS options handed to pymongo untouched."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tokenize
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import pymongo
import pytest
from builders import run
from mongo_server import free_port, server_uri, start_secantus, stop, wait_until_ready

import recctl
import recctl.stores.mongo
from faults.processes import RECCTL, start, summary
from recctl.errors import StoreError
from recctl.sample import generate_sample
from recctl.stores import open_store, redact

PACKAGE = Path(recctl.__file__).parent
WINDOW = ["--since", "2025-09-01", "--until", "2025-11-01"]


# -- no pickle, no eval --------------------------------------------------------------------------------
FORBIDDEN_NAMES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}


def code_names(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line, name, previous token) of every name in the code: not in strings, not in comments."""
    previous = ""
    for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if token.type == tokenize.NAME:
            yield token.start[0], token.string, previous
        if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
            previous = token.string


def test_no_pickle_eval_or_exec_in_the_package() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    found = []
    for path in files:
        for line, name, previous in code_names(path):
            where = f"{path.relative_to(PACKAGE.parent)}:{line}"
            if (
                name in FORBIDDEN_NAMES
                or "pickle" in name.lower()
                or (name in FORBIDDEN_CALLS and previous != ".")
            ):
                found.append(f"{where}: {name}")
    assert found == []


# -- credentials -----------------------------------------------------------------------------------------
PASSWORD = "p@ss:w/rd s3cret-Z9"
ENCODED = quote(PASSWORD, safe="")
KEY_PASSWORD = "keyfile-s3cret-77"
SESSION_TOKEN = "FwoGZXIvYXdzEBYaDH-token-42"
SECRETS = (PASSWORD, ENCODED, KEY_PASSWORD, SESSION_TOKEN, "s3cret")


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@pytest.mark.parametrize(
    "uri",
    [
        f"mongodb://alice:{ENCODED}@db.example:27017/recctl?authSource=admin",
        f"mongodb+srv://alice:{ENCODED}@cluster0.example.net/recctl?retryWrites=true",
        f"mongodb://:{ENCODED}@h1:1,h2:2/recctl",
        f"mongodb://alice:{ENCODED}@h/db?tls=true&tlsCertificateKeyFilePassword={KEY_PASSWORD}",
        f"mongodb://h/db?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:{SESSION_TOKEN}",
        f"mongodb://h/db?authMechanismProperties=AWS_SESSION_TOKEN%3A{SESSION_TOKEN}&tls=true",
    ],
)
def test_redact_masks_every_secret_a_uri_can_hold(uri: str) -> None:
    masked = redact(f"cannot reach MongoDB at {uri}: timed out")
    assert leaks(masked) == []
    assert "***" in masked
    assert masked.startswith("cannot reach MongoDB at mongodb") and masked.endswith(": timed out")


class Recorder:
    """Stands in for ``pymongo.MongoClient``: records how it was called, then cannot connect."""

    calls: ClassVar[list[tuple[tuple[Any, ...], dict[str, Any]]]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        Recorder.calls.append((args, kwargs))
        self.admin = self
        self.uri = args[0]

    def get_default_database(self, default: str) -> Any:
        return self

    def command(self, name: str) -> None:
        # A driver message may repeat what it was given: recctl masks the secrets in it.
        query = self.uri.partition("?")[2]
        raise pymongo.errors.ServerSelectionTimeoutError(f"fake.example:27017: timed out (options {query})")

    def close(self) -> None:
        pass


TLS_URIS = [
    "mongodb://alice:pw@db1.example:27017,db2.example:27017/recctl?replicaSet=rs0&tls=true"
    "&tlsCAFile=/etc/ssl/certs/ca.pem&tlsCertificateKeyFile=/etc/ssl/private/client.pem"
    f"&tlsCertificateKeyFilePassword={KEY_PASSWORD}&tlsAllowInvalidHostnames=false&authSource=admin",
    "mongodb+srv://alice:pw@cluster0.example.net/recctl?tls=true&tlsInsecure=false&w=majority",
    "mongodb://db.example/recctl?ssl=true&tlsDisableOCSPEndpointCheck=true&tlsCRLFile=/etc/ssl/crl.pem",
]


@pytest.mark.parametrize("uri", TLS_URIS)
def test_tls_options_reach_pymongo_untouched(
    uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The URI string is what pymongo gets, through the library and through ``--store``; recctl adds
    no TLS keyword of its own. (The client is a recorder: this checks the argument, not a database.)"""
    monkeypatch.setattr(recctl.stores.mongo.pymongo, "MongoClient", Recorder)
    Recorder.calls.clear()
    with pytest.raises(StoreError) as failure:
        open_store(uri)
    assert leaks(str(failure.value)) == []
    source = tmp_path / "in.ndjson"
    source.write_text("{}\n")
    code, out, err = run("--store", uri, "ingest", "interactions", str(source))
    assert code == 1
    assert leaks(out + err) == []
    assert len(Recorder.calls) == 2
    for args, kwargs in Recorder.calls:
        assert args == (uri,) and args[0] is not None
        assert set(kwargs) == {"serverSelectionTimeoutMS", "connectTimeoutMS", "tz_aware", "appname"}


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SecantusDB that requires a password: the URI with it (percent-encoded)."""
    storage = tmp_path_factory.mktemp("auth") / "data"
    port = free_port()
    process = start_secantus(storage, port)
    try:
        wait_until_ready(server_uri(port), process)
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(server_uri(port))
        client.admin.command("createUser", "alice", pwd=PASSWORD, roles=["root"])
        client.close()
    finally:
        stop(process)
    storage.with_name(storage.name + ".toml").write_text("[server]\nauth = true\n")
    process = start_secantus(storage, port)
    try:
        wait_until_ready(server_uri(port), process)
        yield f"mongodb://alice:{ENCODED}@127.0.0.1:{port}/recctl_auth?authSource=admin&directConnection=true"
    finally:
        process.kill()
        process.wait()


def files_under(*roots: Path) -> dict[Path, str]:
    """Every file below ``roots``, with its text (binary files decoded leniently)."""
    return {
        path: path.read_bytes().decode("utf-8", errors="replace")
        for root in roots
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.mark.mongo
@pytest.mark.slow
def test_a_password_never_appears_in_output_files_or_models(auth_server: str, tmp_path: Path) -> None:
    """Ingest, export, train, evaluate and failures, against a server that checks the password,
    with --verbose: the password is in none of the output and none of the files written."""
    data = tmp_path / "data"
    generate_sample(data, assessments=40, seed=5, start=datetime(2025, 9, 1, tzinfo=UTC), days=20)
    out = tmp_path / "out"
    out.mkdir()
    work = tmp_path / "cwd"
    work.mkdir()
    wrong = auth_server.replace(ENCODED, quote("wrong-" + PASSWORD, safe=""))
    verbose = ["-v", "--store", auth_server]
    enough = [*WINDOW, "--min-interactions", "10"]
    # Steps that do not depend on each other run at once (a stage is a list of such steps).
    stages: list[list[tuple[list[str], dict[str, str]]]] = [
        [
            *(
                (
                    [
                        *verbose,
                        "ingest",
                        kind,
                        str(data / f"{kind}.ndjson"),
                        "--json",
                        "--rejects",
                        str(out / kind),
                    ],
                    {},
                )
                for kind in ("assessments", "recommendations", "interactions")
            ),
            (["-v", "--store", wrong, "ingest", "interactions", str(data / "interactions.ndjson")], {}),
            (["--store", wrong, "export", *WINDOW, "--out", str(out / "never")], {}),
            (["ingest", "interactions", str(data / "interactions.ndjson")], {"RECCTL_STORE": wrong}),
            (["--help"], {"RECCTL_STORE": auth_server}),
            (["ingest", "--help"], {"RECCTL_STORE": auth_server}),
        ],
        [
            ([*verbose, "export", *enough, "--out", str(out / "set"), "--json"], {}),
            (
                [
                    *verbose,
                    "train",
                    *enough,
                    "--model",
                    str(out / "m.txt"),
                    "--json",
                ],
                {},
            ),
        ],
        [([*verbose, "evaluate", *enough, "--model", str(out / "m.txt"), "--json", "--resamples", "10"], {})],
    ]
    transcript = []
    for stage in stages:
        processes = [(args, env, start(args, cwd=work, **env)) for args, env in stage]
        for args, env, process in processes:
            stdout, stderr = process.communicate(timeout=120)
            transcript.append(stdout + stderr)
            if "--help" in args:
                assert process.returncode == 0
            elif wrong in [*args, env.get("RECCTL_STORE")]:
                assert process.returncode == 1, stderr[-800:]
                assert "Error: refused by MongoDB at mongodb://alice:***@" in stderr, stderr[-800:]
            else:
                assert process.returncode == 0, (args[3], stderr[-800:])
    assert summary(transcript[2].splitlines()[0])["inserted"] > 100
    written = files_under(out, work)
    assert list(work.iterdir()) == []  # nothing lands in the working directory
    assert [leaks(text) for text in transcript] == [[]] * len(transcript)
    assert {str(path): leaks(text) for path, text in written.items() if leaks(text)} == {}
    # ... and they do say where the data came from, masked
    manifest = json.loads((out / "set" / "manifest.json").read_text())
    meta = json.loads((out / "m.meta.json").read_text())
    assert manifest["source"].startswith("mongodb://alice:***@")
    assert meta["data_source"].startswith("mongodb://alice:***@")


# -- where recctl writes ---------------------------------------------------------------------------------
def test_nothing_is_written_outside_the_named_locations(tmp_path: Path) -> None:
    """In an empty working directory, with HOME and TMPDIR empty too: every file recctl creates is
    under --store, --out, --model or --rejects, and --store is used as given."""
    work, home, temporary = tmp_path / "cwd", tmp_path / "home", tmp_path / "tmp"
    for folder in (work, home, temporary):
        folder.mkdir()
    env = {"HOME": str(home), "TMPDIR": str(temporary), "XDG_CACHE_HOME": str(home / ".cache")}
    store = "my store/~data"  # relative, with a space and a tilde: created exactly there
    enough = [*WINDOW, "--min-interactions", "10"]
    steps = [
        ["sample", "--out", "named/sample", "--assessments", "40", "--seed", "3", "--start", "2025-09-01"],
        *(
            [
                "--store",
                store,
                "ingest",
                kind,
                f"named/sample/{kind}.ndjson",
                "--rejects",
                f"named/{kind}.rej",
            ]
            for kind in ("assessments", "recommendations", "interactions")
        ),
        ["--store", store, "ingest", "interactions", "--rejects", "named/stdin.rej"],
        ["--store", store, "export", *enough, "--out", "named/export"],
        ["--store", store, "train", *enough, "--model", "named/models/m.txt", "--json"],
        ["--store", store, "evaluate", *enough, "--model", "named/models/m.txt", "--resamples", "10"],
    ]
    for args in steps:
        process = subprocess.Popen(
            [*RECCTL, *args],
            cwd=work,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # one good row and one rejected (an ingest that rejects every row exits 1)
        good = json.dumps(
            {"recommendation_id": "r", "user_id": "u", "interaction_type": "view", "timestamp": "2025-09-02"}
        )
        stdin = good + '\n{"user_id": "from stdin"}\n' if "named/stdin.rej" in args else ""
        _, err = process.communicate(stdin, timeout=120)
        assert process.returncode == 0, (args, err[-800:])
    assert sorted(p.name for p in work.iterdir()) == ["my store", "named"]
    assert [p.name for p in (work / "my store").iterdir()] == ["~data"]
    assert not (home / "data").exists() and not (Path.home() / "data" / "interactions").exists()
    assert list(home.rglob("*")) == [] and list(temporary.rglob("*")) == []
    named = {str(p.relative_to(work / "named")) for p in (work / "named").rglob("*") if p.is_file()}
    expected = {
        "sample/assessments.ndjson",
        "sample/recommendations.ndjson",
        "sample/interactions.ndjson",
        "sample/impressions.ndjson",
        "stdin.rej",
        "models/m.txt",
        "models/m.meta.json",
    }
    assert expected <= named
    assert {n for n in named - expected if not n.startswith("export/")} == set()
    stored = {
        str(p.relative_to(work / store)).split("/")[0] for p in (work / store).rglob("*") if p.is_file()
    }
    assert stored == {".lock", ".recctl-store", "interactions", "recommendations", "assessments"}
