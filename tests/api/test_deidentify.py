"""POST /studies/{study}/deidentify on the real app (SQLite+filesystem, PostgreSQL+SeaweedFS):
a generated CT study and pydicom's CT, MR, US and SC files de-identified with the PS3.15 Basic
Profile; nothing the table removes survives, UIDs are remapped consistently and stably per
secret, pixel data is byte-identical, dciodvfy finds no new errors."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from fastapi.testclient import TestClient
from pacs_api.deidentify.profile import TABLE, Action
from pacs_api.main import create_app
from pacs_api.settings import Settings
from pydantic import SecretStr
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from tests.support.dicom import ct_datasets, stow

SECRET = "a-test-secret-of-some-length"
#: Independent of the table the code uses: identifying attributes PS3.15 E.1-1 is best known
#: for removing or replacing (Basic Profile, no options).
IDENTIFYING = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientAddress",
    "OtherPatientIDs",
    "ReferringPhysicianName",
    "InstitutionName",
    "InstitutionAddress",
    "StationName",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
    "OperatorsName",
    "PerformingPhysicianName",
    "DeviceSerialNumber",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
    "StudyDescription",
)


def _client(settings: Settings, secret: str | None) -> TestClient:
    update = {"deidentify_secret": SecretStr(secret) if secret else None}
    return TestClient(create_app(settings.model_copy(update=update)), base_url="http://testserver")


@pytest.fixture
def deid(settings: Settings) -> Iterator[TestClient]:
    with _client(settings, SECRET) as client:
        yield client


def _retrieve(client: TestClient, study: str) -> list[Dataset]:
    from pacs_common.client import DicomWebClient

    web = DicomWebClient(client, "http://testserver/dicom-web")
    return [
        pydicom.dcmread(io.BytesIO(part)) for part in web.retrieve_study(study, transfer_syntax="*")
    ]


def _ct_study() -> list[Dataset]:
    series = ct_datasets(3, seed=5)
    for ds in series:
        ds.PatientName = "Doe^Jane"
        ds.PatientID = "MRN-12345"
        ds.InstitutionName = "General Hospital"
        ds.StationName = "CT-ROOM-1"
        ds.DeviceSerialNumber = "SN-998877"
        ds.AccessionNumber = "ACC-42"
        ds.BurnedInAnnotation = "NO"
    series[1].BurnedInAnnotation = "YES"
    ref = Dataset()
    ref.ReferencedSOPClassUID = series[0].SOPClassUID
    ref.ReferencedSOPInstanceUID = series[0].SOPInstanceUID
    series[2].ReferencedImageSequence = [ref]
    return series


def _bytes(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _deidentify(client: TestClient, study: str, **options: bool) -> dict[str, object]:
    response = client.post(f"/studies/{study}/deidentify", json=options)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _walk(ds: Dataset) -> Iterator[pydicom.DataElement]:
    for element in ds:
        yield element
        if element.VR == "SQ":
            for item in element.value:
                yield from _walk(item)


def _removed_values(original: Dataset) -> dict[int, object]:
    """Table tags the original holds a non-empty value for, with that value (not UIDs)."""
    return {
        int(e.tag): e.value
        for e in _walk(original)
        if e.tag in TABLE and e.VR not in ("SQ", "UI") and e.value not in (None, "", b"")
    }


def _dciodvfy_errors(data: bytes, tmp: Path, name: str) -> set[str]:
    path = tmp / name
    path.write_bytes(data)
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    lines = (run.stdout + run.stderr).splitlines()
    return {line.split(" - ", 1)[-1] for line in lines if line.startswith("Error")}


def test_deidentify_ct_study_profile_uids_pixels_burned_in(deid: TestClient) -> None:
    series = _ct_study()
    assert stow(deid, [_bytes(ds) for ds in series]).status_code == 200
    body = _deidentify(deid, series[0].StudyInstanceUID)
    new_study = str(body["study_uid"])
    assert new_study.startswith("2.25.") and new_study != series[0].StudyInstanceUID
    assert body["instances"] == 3 and body["series"] == 1 and body["failed"] == []
    assert str(body["retrieve_url"]).endswith(f"/dicom-web/studies/{new_study}")
    assert body["methods"] == ["113100"]
    out = {ds.InstanceNumber: ds for ds in _retrieve(deid, new_study)}
    assert len(out) == 3
    flagged = body["burned_in_annotation"]
    assert isinstance(flagged, list) and len(flagged) == 1
    assert flagged[0]["sop_instance_uid"] == out[series[1].InstanceNumber].SOPInstanceUID
    originals = {ds.InstanceNumber: ds for ds in series}
    for number, ds in out.items():
        before = originals[number]
        assert ds.PixelData == before.PixelData  # byte-identical
        assert ds.StudyInstanceUID == new_study
        assert ds.SeriesInstanceUID == out[1].SeriesInstanceUID != before.SeriesInstanceUID
        assert ds.FrameOfReferenceUID == out[1].FrameOfReferenceUID != before.FrameOfReferenceUID
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.PatientName == ds.PatientID and str(ds.PatientID).startswith("ANON")
        assert [i.CodeValue for i in ds.DeidentificationMethodCodeSequence] == ["113100"]
        for keyword in IDENTIFYING:
            if keyword in before and before[keyword].value:
                assert ds.get(keyword) != before[keyword].value, keyword
        for tag, value in _removed_values(before).items():
            if tag in ds and TABLE[pydicom.tag.Tag(tag)][1] is not Action.UID:
                assert ds[tag].value != value, pydicom.datadict.keyword_for_tag(tag)
    reference = out[3].ReferencedImageSequence[0]
    assert reference.ReferencedSOPInstanceUID == out[1].SOPInstanceUID
    assert reference.ReferencedSOPClassUID == series[0].SOPClassUID


def test_deidentify_stable_per_secret_and_different_with_another(
    deid: TestClient, settings: Settings
) -> None:
    series = _ct_study()
    stow(deid, [_bytes(ds) for ds in series])
    study = series[0].StudyInstanceUID
    first, again = _deidentify(deid, study), _deidentify(deid, study)
    assert first["study_uid"] == again["study_uid"] and again["instances"] == 3
    with _client(settings, "another-secret-entirely") as other:
        assert _deidentify(other, study)["study_uid"] != first["study_uid"]


def test_deidentify_retain_dates_and_device_shifted_kept(deid: TestClient) -> None:
    series = _ct_study()
    stow(deid, [_bytes(ds) for ds in series])
    body = _deidentify(deid, series[0].StudyInstanceUID, retain_dates=True, retain_device=True)
    assert body["methods"] == ["113100", "113107", "113109"]
    out = _retrieve(deid, str(body["study_uid"]))
    before = series[0]
    shifts = set()
    for ds in out:
        assert ds.StationName == "CT-ROOM-1" and ds.DeviceSerialNumber == "SN-998877"
        assert ds.StudyDate != before.StudyDate and len(ds.StudyDate) == 8
        assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
        shifts.add((pydicom.valuerep.DA(before.StudyDate) - pydicom.valuerep.DA(ds.StudyDate)).days)
        assert ds.StudyTime == before.StudyTime
    assert len(shifts) == 1 and 1 <= shifts.pop() <= 3650


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "SC_rgb_small_odd.dcm"])
def test_deidentify_pydicom_files_dciodvfy_no_new_errors(
    deid: TestClient, name: str, tmp_path: Path
) -> None:
    path = get_testdata_file(name)
    assert isinstance(path, str)
    data = Path(path).read_bytes()
    original = pydicom.dcmread(path)
    response = stow(deid, [data])
    assert response.status_code == 200, response.text
    body = _deidentify(deid, original.StudyInstanceUID)
    assert body["instances"] == 1
    (out,) = _retrieve(deid, str(body["study_uid"]))
    assert out.PixelData == original.PixelData
    for tag, value in _removed_values(original).items():
        if tag in out and TABLE[pydicom.tag.Tag(tag)][1] is not Action.UID:
            assert out[tag].value != value, pydicom.datadict.keyword_for_tag(tag)
    for element in _walk(out):
        assert not element.tag.is_private
    if original.Modality in ("US", "SC") and "BurnedInAnnotation" not in original:
        assert len(body["burned_in_annotation"]) == 1  # type: ignore[arg-type]
    if shutil.which("dciodvfy"):
        new_errors = _dciodvfy_errors(_bytes(out), tmp_path, "out.dcm") - _dciodvfy_errors(
            data, tmp_path, "in.dcm"
        )
        assert not new_errors, new_errors


def test_deidentify_without_secret_503(client: TestClient) -> None:
    series = _ct_study()
    stow(client, [_bytes(ds) for ds in series])
    response = client.post(f"/studies/{series[0].StudyInstanceUID}/deidentify")
    assert response.status_code == 503
    assert "PACS_API_DEIDENTIFY_SECRET" in response.json()["detail"]
    assert "Retry-After" not in response.headers


def test_deidentify_unknown_study_404(deid: TestClient) -> None:
    assert deid.post("/studies/1.2.3.4/deidentify").status_code == 404
