"""Faults (issue 6): STOW-RS and DELETE of one study racing, many rounds, across two worker
processes, on both deployments.

Each round releases, together, two clients that STOW the whole study (the same bytes, so each
answers 200) and one that DELETEs it (204, or 404 when nothing was left to delete). Afterwards:

- every answer was one of those (no 500, no 409: identical bytes are idempotent);
- every index row has its object (:func:`pacs_api.sweep.check`), and the sweep finds nothing
  unreferenced: the object count equals the row count;
- the index is what the change feed says: an instance is held exactly when its last feed
  entry is ``stored`` (a study DELETE answered 204 for has rows only if a STOW re-created them
  later in feed order).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from pacs_api.index.db import make_engine
from pacs_api.index.repository import Index
from pacs_api.settings import Settings
from pacs_api.sweep import check, sweep
from pacs_common.media import encode_multipart_related
from pacs_common.storage import open_store
from pacs_common.synthetic import to_bytes

from tests.api.test_faults_concurrency import api_workers, at_once
from tests.support.dicom import ct_datasets

ROUNDS = 12
INSTANCES = 4


def test_stow_and_delete_of_one_study_racing_no_orphans_feed_consistent(
    settings: Settings, tmp_path: Path
) -> None:
    datasets = ct_datasets(INSTANCES, seed=81)
    study = str(datasets[0].StudyInstanceUID)
    sops = {str(ds.SOPInstanceUID) for ds in datasets}
    chunks, content_type = encode_multipart_related([to_bytes(ds) for ds in datasets])
    body = b"".join(chunks)
    seen: list[str] = []
    lock = threading.Lock()

    def call(method: str, url: str) -> Callable[[], None]:
        def run() -> None:
            with httpx.Client(timeout=60) as http:
                if method == "POST":
                    answer = http.post(url, content=body, headers={"Content-Type": content_type})
                else:
                    answer = http.delete(url)
            with lock:
                seen.append(f"{method} {answer.status_code} {answer.text[:200]}")

        return run

    with api_workers(settings, tmp_path / "api.log") as url:
        stow = call("POST", f"{url}/studies")
        delete = call("DELETE", f"{url}/studies/{study}")
        for _ in range(ROUNDS):
            at_once([stow, delete, stow])
        with httpx.Client(timeout=30) as http:
            feed = http.get(f"{url.removesuffix('/dicom-web')}/changefeed", params={"limit": 10000})
            assert feed.status_code == 200, feed.text
            listed = http.get(f"{url}/studies/{study}/instances")
            assert listed.status_code in (200, 404), listed.text
            held = (
                {row["00080018"]["Value"][0] for row in listed.json()}
                if listed.status_code == 200
                else set()
            )

    codes = {line.split(" ", 2)[0] + " " + line.split(" ", 2)[1] for line in seen}
    assert codes <= {"POST 200", "DELETE 204", "DELETE 404"}, sorted(set(seen))

    last: dict[str, str] = {}
    for entry in feed.json()["changes"]:
        last[entry["instance"]] = entry["kind"]
    assert set(last) == sops
    assert held == {sop for sop, kind in last.items() if kind == "stored"}

    engine = make_engine(settings.database_url)
    store = open_store(settings)
    try:
        index = Index(engine)
        report = check(index, store)
        assert report.ok, f"rows without their object: {report.examples}"
        swept = sweep(index, store, grace=timedelta(0), now=datetime.now(UTC))
        assert swept.raced == []
        assert swept.deleted == 0, swept.summary()
        assert sum(1 for _ in store.scan("studies/")) == report.rows == len(held)
    finally:
        store.close()
        engine.dispose()
