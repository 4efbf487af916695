"""The bridge's audit records go to its outbox by group commit (pacs_common.audit_writer):
concurrent associations each leave exactly their records, and a clean stop stores every one
of them in the outbox before it returns (the API down meanwhile, so nothing leaves it)."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy
from pacs_common.database import make_engine

from tests.bridge.peers import dcmtk, peer_args
from tests.bridge.running import SCU, running_bridge
from tests.support.server import free_port

ASSOCIATIONS = 6


def test_concurrent_echoes_all_in_outbox_after_clean_stop(tmp_path: Path) -> None:
    """Six echoscu at once against a bridge whose API is down: after the bridge's close(),
    its outbox holds exactly one A-ASSOCIATE and one C-ECHO record per association, the same
    records as its stream, in the stream's order."""
    database = f"sqlite:///{tmp_path / 'bridge.sqlite3'}"
    stream = tmp_path / "bridge-audit.jsonl"
    nowhere = f"http://127.0.0.1:{free_port()}/dicom-web"  # no API: the outbox keeps them
    with running_bridge(
        nowhere,
        database_url=database,
        audit_log_path=stream,
        audit_retry_initial=30.0,
        audit_retry_max=30.0,
    ) as running:
        with ThreadPoolExecutor(ASSOCIATIONS) as pool:
            results = list(
                pool.map(lambda _: dcmtk("echoscu", *peer_args(running, SCU)), range(ASSOCIATIONS))
            )
        assert all(r.returncode == 0 for r in results)
    engine = make_engine(database)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sqlalchemy.text("SELECT record FROM audit_outbox ORDER BY id")
            ).scalars()
            kept = [json.loads(row) for row in rows]
    finally:
        engine.dispose()
    assert Counter(r["dimse_command"] for r in kept) == {
        "A-ASSOCIATE": ASSOCIATIONS,
        "C-ECHO": ASSOCIATIONS,
    }
    assert len({r["request_id"] for r in kept if r["dimse_command"] == "C-ECHO"}) == ASSOCIATIONS
    streamed = [json.loads(line)["pacs"]["request_id"] for line in stream.read_text().splitlines()]
    assert [r["request_id"] for r in kept] == streamed
