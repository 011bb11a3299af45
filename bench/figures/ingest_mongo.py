"""Figure 2: ``recctl ingest interactions`` of 100k rows into MongoDB (the SecantusDB test server),
against raw pymongo ``insert_many(ordered=False)`` of the very documents recctl stored.

recctl's side is the whole command (process start, reading and validating the NDJSON, building the
documents, inserting). The baseline inserts ready-made dicts (read back from recctl's database once)
from this process, into a fresh database with the same indexes, created before the clock starts.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.data import recctl
from bench.measure import Result, log, run_child

NAME = "ingest 100k interactions -> MongoDB (SecantusDB)"
ROWS = 100_000
COLLECTION = "recommendation_interactions"


def _server_helpers() -> Any:
    tests = Path(__file__).resolve().parents[2] / "tests"
    if str(tests) not in sys.path:
        sys.path.insert(0, str(tests))
    import mongo_server

    return mongo_server


def run(context: Context) -> Result:
    import pymongo

    helpers = _server_helpers()
    workspace = context.workspace
    source = workspace.interactions_prefix(ROWS)
    result = Result(NAME, "s", 1.5, "ratio_max", baseline_name="pymongo insert_many(ordered=False)")
    storage = workspace.scratch("mongo") / "data"
    port = helpers.free_port()
    server = helpers.start_secantus(storage, port)
    uri = helpers.server_uri(port)
    client: pymongo.MongoClient[dict[str, Any]] | None = None
    try:
        helpers.wait_until_ready(uri, server)
        client = pymongo.MongoClient(uri, tz_aware=True)
        documents: list[dict[str, Any]] = []
        indexes: list[tuple[Any, dict[str, Any]]] = []
        for attempt in range(context.runs):
            database = f"bench_recctl_{uuid.uuid4().hex[:8]}"
            mine = run_child(
                recctl("--store", helpers.server_uri(port, database), "-q", "ingest", "interactions", source)
            )
            if not documents:
                stored = client[database][COLLECTION]
                documents = list(stored.find({}, {"_id": 0}))
                indexes = [
                    (info["key"], {key: info[key] for key in ("unique", "sparse") if key in info})
                    for name, info in stored.index_information().items()
                    if name != "_id_"
                ]
            client.drop_database(database)
            raw_database = f"bench_raw_{uuid.uuid4().hex[:8]}"
            collection = client[raw_database][COLLECTION]
            for keys, options in indexes:
                collection.create_index(keys, **options)
            copies = [dict(document) for document in documents]  # insert_many adds _id to each
            start = time.perf_counter()
            collection.insert_many(copies, ordered=False)
            seconds = time.perf_counter() - start
            client.drop_database(raw_database)
            result.add(mine)
            result.baseline_samples.append(seconds)
            log(f"  run {attempt + 1}: recctl {mine.seconds:.1f} s, raw insert_many {seconds:.1f} s")
        result.details = {"documents": len(documents), "indexes": [str(keys) for keys, _ in indexes]}
    finally:
        if client is not None:
            client.close()
        helpers.stop(server)
    return result
