"""STOW-RS (PS3.18 §10.5) on both deployments: what is stored, what is refused and why."""

from __future__ import annotations

from io import BytesIO

import pydicom
from fastapi.testclient import TestClient
from pacs_api.ingest import parse
from pacs_api.settings import OverwritePolicy, Settings
from pacs_common import statuses
from pacs_common.media import APPLICATION_DICOM_JSON as DICOM_JSON
from pacs_common.media import encode_multipart_related
from pacs_common.synthetic import to_bytes
from pydicom.uid import generate_uid

from tests.support.dicom import (
    ct_datasets,
    ct_instances,
    failed,
    failure_reasons,
    referenced,
    stow,
    values,
)
from tests.support.stores import stored_objects


def _study_uid(data: bytes) -> str:
    return str(pydicom.dcmread(BytesIO(data), stop_before_pixels=True).StudyInstanceUID)


def test_stow_series_200_with_referenced_sops(client: TestClient) -> None:
    """All stored: 200, ReferencedSOPSequence with a RetrieveURL per instance and the study's
    RetrieveURL (PS3.18 §10.5.3, tables 10.5.3-1 and -2)."""
    datasets = ct_datasets(3)
    response = stow(client, [to_bytes(ds) for ds in datasets])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(DICOM_JSON)
    items = referenced(response)
    assert [values(i, "00081155")[0] for i in items] == [ds.SOPInstanceUID for ds in datasets]
    study = datasets[0].StudyInstanceUID
    assert values(response.json(), "00081190") == [f"http://testserver/dicom-web/studies/{study}"]
    url = values(items[0], "00081190")[0]
    assert url.endswith(
        f"/series/{datasets[0].SeriesInstanceUID}/instances/{datasets[0].SOPInstanceUID}"
    )
    assert not failed(response)


def test_stow_stores_exact_bytes(client: TestClient, settings: Settings) -> None:
    """The object in the store is byte for byte what was received (no re-encoding)."""
    data = ct_instances(1)[0]
    assert stow(client, [data]).status_code == 200
    assert list(stored_objects(settings).values()) == [data]


def test_stow_same_instance_twice_is_idempotent(client: TestClient, settings: Settings) -> None:
    """The same SOP Instance with identical bytes succeeds again and is stored once."""
    data = ct_instances(1)[0]
    assert stow(client, [data]).status_code == 200
    again = stow(client, [data])
    assert again.status_code == 200
    assert len(referenced(again)) == 1
    assert len(stored_objects(settings)) == 1


def test_stow_same_uid_other_bytes_409_duplicate(client: TestClient, settings: Settings) -> None:
    """Other bytes under a stored SOP Instance UID are refused (0x0111) and the first copy
    stays, when the overwrite policy is 'reject' (the default)."""
    ds = ct_datasets(1)[0]
    first = to_bytes(ds)
    ds.SeriesDescription = "changed"
    second = to_bytes(ds)
    assert stow(client, [first]).status_code == 200
    response = stow(client, [second])
    assert response.status_code == 409
    assert failure_reasons(response) == [statuses.DUPLICATE_SOP_INSTANCE]
    assert list(stored_objects(settings).values()) == [first]


def test_stow_overwrite_policy_replaces(settings: Settings) -> None:
    """With overwrite_policy=overwrite, other bytes replace the stored ones, old object gone."""
    from pacs_api.main import create_app

    settings = settings.model_copy(update={"overwrite_policy": OverwritePolicy.OVERWRITE})
    ds = ct_datasets(1)[0]
    first = to_bytes(ds)
    ds.SeriesDescription = "changed"
    second = to_bytes(ds)
    with TestClient(create_app(settings)) as client:
        assert stow(client, [first]).status_code == 200
        assert stow(client, [second]).status_code == 200
    assert list(stored_objects(settings).values()) == [second]


def test_stow_study_uid_mismatch_409(client: TestClient, settings: Settings) -> None:
    """An instance of another study than the URL's fails (PS3.18 §10.5.1); nothing stored."""
    data = ct_instances(1)[0]
    response = stow(client, [data], study=generate_uid())
    assert response.status_code == 409
    assert failure_reasons(response) == [statuses.DATA_SET_DOES_NOT_MATCH_SOP_CLASS]
    assert "does not match" in values(failed(response)[0], "00000902")[0]
    assert stored_objects(settings) == {}


def test_stow_series_of_another_study_refused_a900(client: TestClient, settings: Settings) -> None:
    """An instance naming a held series under another study is refused (a series belongs to
    one study, PS3.3 C.7.3.1), not acknowledged under a RetrieveURL that then answers 404, and
    no empty study is left behind; the held series is untouched (found by tests/fuzz)."""
    first, second = ct_datasets(2, seed=39)
    assert stow(client, [to_bytes(first)]).status_code == 200
    second.StudyInstanceUID = generate_uid()
    response = stow(client, [to_bytes(second)])
    assert response.status_code == 409
    assert failure_reasons(response) == [statuses.DATA_SET_DOES_NOT_MATCH_SOP_CLASS]
    assert "another study" in values(failed(response)[0], "00000902")[0]
    studies = client.get("/dicom-web/studies").json()
    assert [values(s, "0020000D") for s in studies] == [[first.StudyInstanceUID]]
    assert len(stored_objects(settings)) == 1


def test_stow_into_matching_study_200(client: TestClient) -> None:
    data = ct_instances(2)
    assert stow(client, data, study=_study_uid(data[0])).status_code == 200


def test_stow_some_failed_202(client: TestClient, settings: Settings) -> None:
    """Good and bad instances in one request: 202, the good ones stored (table 10.5.3-1)."""
    good = ct_instances(2)
    response = stow(client, [good[0], b"not dicom at all", good[1]])
    assert response.status_code == 202
    assert len(referenced(response)) == 2
    assert failure_reasons(response) == [statuses.CANNOT_UNDERSTAND]
    assert "Warning" in response.headers
    assert len(stored_objects(settings)) == 2


def test_stow_image_without_pixel_data_refused_a900(client: TestClient, settings: Settings) -> None:
    """A CT image with no Pixel Data is refused: a header-only image breaks viewers."""
    ds = ct_datasets(1)[0]
    del ds.PixelData
    response = stow(client, [to_bytes(ds)])
    assert response.status_code == 409
    assert failure_reasons(response) == [statuses.DATA_SET_DOES_NOT_MATCH_SOP_CLASS]
    assert "without Pixel Data" in values(failed(response)[0], "00000902")[0]
    # Not in the archive; kept in the quarantine (tests/api/test_quarantine.py).
    assert [k for k in stored_objects(settings) if not k.startswith("quarantine/")] == []


def test_stow_truncated_instance_refused_c000(client: TestClient, settings: Settings) -> None:
    """A file cut short inside its Pixel Data is refused, never stored half."""
    data = ct_instances(1)[0]
    response = stow(client, [data[: len(data) - 100]])
    assert response.status_code == 409
    assert failure_reasons(response) == [statuses.CANNOT_UNDERSTAND]
    assert "truncated" in values(failed(response)[0], "00000902")[0]
    # Not in the archive; kept in the quarantine (tests/api/test_quarantine.py).
    assert [k for k in stored_objects(settings) if not k.startswith("quarantine/")] == []


def test_stow_unknown_vr_refused_c000_not_500(client: TestClient, settings: Settings) -> None:
    """An element whose explicit VR is not one of PS3.5 table 6.2-1 is refused as not
    understood when its value is needed, not answered 500 (found by tests/fuzz)."""
    data = ct_instances(1)[0]
    sop = data.index(b"\x08\x00\x18\x00UI")  # SOP Instance UID (0008,0018), explicit VR
    broken = data[: sop + 4] + b"ZZ" + data[sop + 6 :]
    response = stow(client, [broken])
    assert response.status_code == 409
    assert failure_reasons(response) == [statuses.CANNOT_UNDERSTAND]
    assert stored_objects(settings) == {}


def test_stow_deflate_bomb_refused_a700_small_deflated_stored(
    client: TestClient, settings: Settings
) -> None:
    """A deflated object (PS3.5 A.5) whose data set inflates past MAX_INFLATED_BYTES is refused
    (Out of Resources) before pydicom inflates it in memory; a small one is stored (found by
    tests/fuzz: a 66 KiB part held the server at 900 MiB)."""
    bomb, small = ct_datasets(2, seed=37)
    bomb.add_new(0x00091010, "LO", "FUZZ")  # private block (0009,10xx)
    bomb.add_new(0x00091001, "OB", bytes(parse.MAX_INFLATED_BYTES + 2))
    for ds in (bomb, small):
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1.99"
    response = stow(client, [to_bytes(bomb), to_bytes(small)])
    assert response.status_code == 202
    assert failure_reasons(response) == [statuses.OUT_OF_RESOURCES]
    assert [values(r, "00081155")[0] for r in referenced(response)] == [small.SOPInstanceUID]


def test_stow_missing_or_malformed_uids_refused(client: TestClient, settings: Settings) -> None:
    """Missing SOP Instance UID, and UIDs carrying path tricks, are refused (PS3.5 §9.1)."""
    bad = []
    for keyword, value in (
        ("SOPInstanceUID", None),
        ("SeriesInstanceUID", "../../etc/passwd"),
        ("StudyInstanceUID", "1.2.3/../../x"),
        ("SOPInstanceUID", "1.2.03"),
        ("SOPInstanceUID", "1." + "2" * 70),
    ):
        ds = ct_datasets(1, seed=len(bad) + 1)[0]
        if value is None:
            del ds[keyword]
        else:
            ds[keyword].value = value
        bad.append(to_bytes(ds))
    response = stow(client, bad)
    assert response.status_code == 409
    assert failure_reasons(response) == [statuses.DATA_SET_DOES_NOT_MATCH_SOP_CLASS] * 5
    assert stored_objects(settings) == {}


def test_stow_wrong_content_type_415(client: TestClient) -> None:
    """Only multipart/related; type="application/dicom" is accepted (PS3.18 §10.5.1.2)."""
    data = ct_instances(1)[0]
    plain = client.post(
        "/dicom-web/studies", content=data, headers={"Content-Type": "application/dicom"}
    )
    assert plain.status_code == 415
    assert plain.headers["content-type"] == "application/problem+json"
    body, content_type = encode_multipart_related([b"{}"], "application/dicom+json")
    json_form = client.post(
        "/dicom-web/studies", content=b"".join(body), headers={"Content-Type": content_type}
    )
    assert json_form.status_code == 415


def test_stow_broken_multipart_400_stores_nothing(client: TestClient, settings: Settings) -> None:
    """A body cut before its closing boundary is a 400, and the complete parts before the cut
    are not kept: a request answered with an error has stored nothing."""
    body, content_type = encode_multipart_related(ct_instances(3))
    whole = b"".join(body)
    response = client.post(
        "/dicom-web/studies",
        content=whole[: len(whole) - 400],
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 400
    assert "ended before its close delimiter" in response.json()["detail"]
    assert stored_objects(settings) == {}
    assert client.get("/dicom-web/studies").json() == []


def test_stow_no_boundary_400(client: TestClient) -> None:
    response = client.post(
        "/dicom-web/studies",
        content=b"--x\r\n",
        headers={"Content-Type": 'multipart/related; type="application/dicom"'},
    )
    assert response.status_code == 400
    assert "boundary" in response.json()["detail"]


def test_stow_body_over_limit_413_stores_nothing(settings: Settings) -> None:
    """A body over max_body_bytes is refused with 413, declared or streamed (chunked)."""
    from pacs_api.main import create_app

    instances = ct_instances(4)
    limited = settings.model_copy(update={"max_body_bytes": sum(map(len, instances)) // 2})
    with TestClient(create_app(limited)) as client:
        declared = stow(client, instances)
        assert declared.status_code == 413
        body, content_type = encode_multipart_related(instances)
        streamed = client.post(
            "/dicom-web/studies",
            content=body,  # no Content-Length
            headers={"Content-Type": content_type},
        )
        assert streamed.status_code == 413
    assert stored_objects(limited) == {}


def test_stow_bad_study_uid_in_path_400(client: TestClient) -> None:
    response = stow(client, ct_instances(1), study="1.2.abc")
    assert response.status_code == 400
    assert "not a valid UID" in response.json()["detail"]


def test_stow_empty_body_400(client: TestClient) -> None:
    body, content_type = encode_multipart_related([])
    response = client.post(
        "/dicom-web/studies", content=b"".join(body), headers={"Content-Type": content_type}
    )
    assert response.status_code == 400


def test_stow_sixteen_new_patients_one_connection_200(client: TestClient) -> None:
    """Sixteen new patients in a row, one request each (one pooled connection): on PostgreSQL,
    psycopg prepares the patient insert from its fifth run and the server plans it generically
    after five more, and ON CONFLICT must still find the partial unique index on Patient ID
    (its predicate is a literal, not a parameter)."""
    from pacs_common.synthetic import iter_ct_series

    for n in range(16):
        data = to_bytes(next(iter_ct_series(1, 8, 8, patient_id=f"NEW-PATIENT-{n}", seed=n)))
        body, content_type = encode_multipart_related([data])
        response = client.post(
            "/dicom-web/studies", content=b"".join(body), headers={"Content-Type": content_type}
        )
        assert response.status_code == 200, response.text
