"""Faults (issue 6): the same instance sent 20 times at once.

Through a real uvicorn with two worker processes (the requests race across processes, not only
threads) on both deployments: identical bytes 20 times -> 20 answers 200 with the same
ReferencedSOPSequence, one index row, one stored object (PS3.18 §10.5: storing an instance
again is idempotent); 20 different objects under one SOP Instance UID -> exactly one stored,
19 answered 409 with FailureReason 0111H "Duplicate SOP Instance" (PS3.4 B.2.3) and the
conflict reason, one object left and nothing for the sweep. And through the DIMSE bridge: 20
concurrent C-STOREs of one instance all succeed and leave one copy.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import httpx
import pydicom
from pacs_api.index.db import make_engine
from pacs_api.index.repository import Index
from pacs_api.settings import Settings
from pacs_api.sweep import check, sweep
from pacs_common import statuses
from pacs_common.media import encode_multipart_related
from pacs_common.storage import open_store
from pacs_common.synthetic import to_bytes
from pynetdicom import AE, evt

from tests.support.api_process import api_process
from tests.support.dicom import ct_datasets, failed, referenced, values
from tests.support.server import running_api

SENDERS = 20
T = TypeVar("T")


def env_of(settings: Settings) -> dict[str, str]:
    """The ``PACS_API_*`` variables that give an API process *settings*' deployment."""
    names = ("database_url", "store_url", "s3_access_key", "s3_secret_key")
    dumped = settings.model_dump()
    return {f"PACS_API_{n.upper()}": str(dumped[n]) for n in names if dumped[n] is not None}


@contextmanager
def api_workers(settings: Settings, log: Path, workers: int = 2) -> Iterator[str]:
    """The API with *workers* uvicorn worker processes on *settings*' deployment; yields its
    DICOMweb root once ready."""
    with api_process(env_of(settings), log, workers=workers) as (_, url):
        yield url


def at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Run *calls* in threads released together by a barrier; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[T | BaseException | None] = [None] * len(calls)

    def run(n: int) -> None:
        barrier.wait()
        try:
            results[n] = calls[n]()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


def post(url: str, instance: bytes) -> Callable[[], httpx.Response]:
    chunks, content_type = encode_multipart_related([instance])
    body = b"".join(chunks)

    def send() -> httpx.Response:
        with httpx.Client(timeout=60) as http:
            return http.post(f"{url}/studies", content=body, headers={"Content-Type": content_type})

    return send


def objects_of(settings: Settings, sop: str) -> list[str]:
    store = open_store(settings)
    try:
        return [info.key for info in store.list("studies/") if f"/instances/{sop}." in info.key]
    finally:
        store.close()


def assert_consistent(settings: Settings) -> None:
    """No row without its object, and nothing unreferenced for the sweep (grace 0)."""
    engine = make_engine(settings.database_url)
    store = open_store(settings)
    try:
        index = Index(engine)
        report = check(index, store)
        assert report.ok, report.examples
        swept = sweep(index, store, grace=timedelta(0), now=datetime.now(UTC), dry_run=True)
        assert swept.orphans == 0, swept.summary()
    finally:
        store.close()
        engine.dispose()


def test_same_instance_20_concurrent_stows_one_copy_same_answer(
    settings: Settings, tmp_path: Path
) -> None:
    ds = ct_datasets(1, seed=71)[0]
    instance = to_bytes(ds)
    sop = str(ds.SOPInstanceUID)
    with api_workers(settings, tmp_path / "api.log") as url:
        answers = at_once([post(url, instance)] * SENDERS)
        assert [a.status_code for a in answers] == [200] * SENDERS, [a.text for a in answers]
        sequences = {str(referenced(a)) for a in answers}
        assert len(sequences) == 1 and sop in sequences.pop()
        with httpx.Client(timeout=30) as http:
            rows = http.get(f"{url}/instances", params={"SOPInstanceUID": sop}).json()
        assert len(rows) == 1
    assert len(objects_of(settings, sop)) == 1
    assert_consistent(settings)


def test_one_uid_20_different_objects_concurrent_one_wins_rest_409(
    settings: Settings, tmp_path: Path
) -> None:
    base = ct_datasets(1, seed=72)[0]
    sop = str(base.SOPInstanceUID)
    variants = []
    for n in range(SENDERS):
        base.ImageComments = f"variant {n}"  # other bytes, same SOP Instance UID
        variants.append(to_bytes(base))
    assert len(set(variants)) == SENDERS
    with api_workers(settings, tmp_path / "api.log") as url:
        answers = at_once([post(url, data) for data in variants])
        codes = [a.status_code for a in answers]
        assert sorted(codes) == [200] + [409] * (SENDERS - 1), codes
        for answer in answers:
            if answer.status_code == 409:
                (item,) = failed(answer)
                assert values(item, "00081197") == [statuses.DUPLICATE_SOP_INSTANCE]
                assert "already stored with different content" in values(item, "00000902")[0]
        winner = variants[codes.index(200)]
        study, series = str(base.StudyInstanceUID), str(base.SeriesInstanceUID)
        with httpx.Client(timeout=30) as http:
            got = http.get(
                f"{url}/studies/{study}/series/{series}/instances/{sop}",
                headers={"Accept": 'multipart/related; type="application/dicom"'},
            )
        assert got.status_code == 200 and winner in got.content
    assert len(objects_of(settings, sop)) == 1
    assert_consistent(settings)


def test_bridge_same_instance_20_concurrent_cstores_all_succeed_one_copy(
    tmp_path: Path,
) -> None:
    """20 associations C-STORE one instance at once through the bridge (PS3.4 B.2): every
    one answers Success, and the API holds one row and one object."""
    from tests.bridge.running import SCU, api_settings, running_bridge

    settings = api_settings(tmp_path)
    ds = ct_datasets(1, seed=73)[0]
    data = to_bytes(ds)
    sop = str(ds.SOPInstanceUID)

    def cstore(port: int) -> Callable[[], int]:
        def send() -> int:
            ae = AE(ae_title=SCU)
            ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
            assoc = ae.associate(
                "127.0.0.1",
                port,
                ae_title="PACSCLOUD",
                evt_handlers=[(evt.EVT_CONN_OPEN, _nodelay)],
            )
            try:
                assert assoc.is_established
                status = assoc.send_c_store(pydicom.dcmread(io.BytesIO(data)))
                return int(status.Status)
            finally:
                if assoc.is_established:
                    assoc.release()
                ae.shutdown()

        return send

    with running_api(settings) as url, running_bridge(url, max_associations=SENDERS) as bridge:
        results = at_once([cstore(bridge.port)] * SENDERS)
        assert results == [statuses.SUCCESS] * SENDERS
        with httpx.Client(timeout=30) as http:
            assert len(http.get(f"{url}/instances", params={"SOPInstanceUID": sop}).json()) == 1
    assert len(objects_of(settings, sop)) == 1
    assert_consistent(settings)


def _nodelay(event: evt.Event) -> None:
    from pacs_bridge.network import set_tcp_nodelay

    set_tcp_nodelay(event)
