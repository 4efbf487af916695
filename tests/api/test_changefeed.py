"""The change feed: every instance stored and deleted, in commit order, with a cursor."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import httpx
from fastapi.testclient import TestClient
from pacs_api.settings import Settings
from pacs_common.synthetic import to_bytes

from tests.support.dicom import ct_datasets, stow
from tests.support.server import running_api


def _feed(client: httpx.Client, since: int = 0, limit: int = 1000) -> dict:  # type: ignore[type-arg]
    response = client.get("/changefeed", params={"since": since, "limit": limit})
    assert response.status_code == 200, response.text
    body: dict = response.json()  # type: ignore[type-arg]
    return body


def test_changefeed_lists_stored_then_deleted_with_cursor(client: TestClient) -> None:
    """Stored instances appear once each (not again for an idempotent re-send), deletions
    follow, and ``since=next`` answers only what came after."""
    datasets = ct_datasets(3, seed=31)
    data = [to_bytes(ds) for ds in datasets]
    assert stow(client, data).status_code == 200
    assert stow(client, data[:1]).status_code == 200  # the same bytes again: no new entry
    first = _feed(client)
    assert [c["kind"] for c in first["changes"]] == ["stored"] * 3
    assert [c["instance"] for c in first["changes"]] == [ds.SOPInstanceUID for ds in datasets]
    assert first["changes"][0]["study"] == datasets[0].StudyInstanceUID
    ds = datasets[1]
    url = (
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    assert client.delete(url).status_code == 204
    after = _feed(client, since=first["next"])
    assert [(c["kind"], c["instance"]) for c in after["changes"]] == [
        ("deleted", ds.SOPInstanceUID)
    ]
    idle = _feed(client, since=after["next"])
    assert idle == {"changes": [], "next": after["next"], "head": after["next"]}
    paged = _feed(client, limit=2)
    assert len(paged["changes"]) == 2 and paged["next"] == paged["changes"][-1]["seq"]
    assert paged["head"] == after["next"]  # the newest entry, whatever the page


def test_changefeed_carries_modality_and_sender_ae(client: TestClient) -> None:
    """Entries say what routing rules match on: the series' Modality, and the AE title the
    object came from, from its File Meta Information (PS3.10 table 7.1-1): Sending AE Title
    (0002,0017) first, else Source AE Title (0002,0016). A deletion carries the modality."""
    sent, written, anonymous = ct_datasets(3, seed=33)
    sent.file_meta.SourceApplicationEntityTitle = "WRITER"
    sent.file_meta.SendingApplicationEntityTitle = "CT_SCANNER"
    written.file_meta.SourceApplicationEntityTitle = "WORKSTATION"
    assert stow(client, [to_bytes(ds) for ds in (sent, written, anonymous)]).status_code == 200
    feed = _feed(client)
    assert [(c["modality"], c["sender_ae"]) for c in feed["changes"]] == [
        ("CT", "CT_SCANNER"),
        ("CT", "WORKSTATION"),
        ("CT", ""),
    ]
    assert client.delete(f"/dicom-web/studies/{sent.StudyInstanceUID}").status_code == 204
    deleted = _feed(client, since=feed["next"])["changes"]
    assert {(c["kind"], c["modality"], c["sender_ae"]) for c in deleted} == {("deleted", "CT", "")}


def test_changefeed_failed_request_leaves_stored_then_deleted(client: TestClient) -> None:
    """A request that fails after storing some instances undoes them; a consumer that saw
    them stored also sees them deleted."""
    data = [to_bytes(ds) for ds in ct_datasets(2, seed=32)]
    from pacs_common.media import encode_multipart_related

    body, content_type = encode_multipart_related(data)
    whole = b"".join(body)
    broken = client.post(
        "/dicom-web/studies", content=whole[:-200], headers={"Content-Type": content_type}
    )
    assert broken.status_code == 400
    kinds = [c["kind"] for c in _feed(client)["changes"]]
    assert kinds.count("stored") == kinds.count("deleted")


def test_changefeed_bad_cursor_400(client: TestClient) -> None:
    assert client.get("/changefeed", params={"since": "-1"}).status_code == 400
    assert client.get("/changefeed", params={"limit": "lots"}).status_code == 400
    # past a 64-bit SQL integer: a 400, not a driver overflow (found by schemathesis)
    assert client.get("/changefeed", params={"since": str(2**63)}).status_code == 400


def test_changefeed_concurrent_writers_gapless(settings: Settings) -> None:
    """Concurrent STOW requests: the feed read while they commit never skips an entry (each
    read continues from the last cursor and in the end holds every instance once)."""
    batches = [[to_bytes(ds) for ds in ct_datasets(5, seed=40 + n)] for n in range(4)]
    seen: list[str] = []
    with (
        running_api(settings) as url,
        httpx.Client(base_url=url.removesuffix("/dicom-web"), timeout=60) as http,
    ):

        def upload(batch: list[bytes]) -> None:
            with httpx.Client(base_url=url.removesuffix("/dicom-web"), timeout=60) as own:
                assert stow(own, batch).status_code == 200

        threads = [threading.Thread(target=upload, args=(b,)) for b in batches]
        for thread in threads:
            thread.start()
        cursor = 0
        while any(t.is_alive() for t in threads):
            page = _feed(http, since=cursor)
            seen += [c["instance"] for c in page["changes"]]
            cursor = page["next"]
        for thread in threads:
            thread.join()
        page = _feed(http, since=cursor)
        seen += [c["instance"] for c in page["changes"]]
    assert len(seen) == len(set(seen)) == 20


def test_changefeed_commit_time_is_utc_with_offset(client: TestClient) -> None:
    """``at`` is an RFC 3339 date-time (§5.6: the offset is not optional) in UTC, on SQLite
    too, which keeps no offset (found by tests/fuzz/test_schemathesis_api.py)."""
    assert stow(client, [to_bytes(ct_datasets(1, seed=35)[0])]).status_code == 200
    at = datetime.fromisoformat(_feed(client)["changes"][0]["at"])
    assert at.utcoffset() == timedelta(0)
