"""The mesh stored back into its study as an Encapsulated STL (PS3.3 A.85.1) or OBJ (PS3.3
A.86.1): valid for dciodvfy, listed by the API's QIDO-RS, referencing its source series and
frame of reference, and stored once however often its job is retried."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import httpx
import numpy as np
from pacs_common.client import DicomWebClient
from pacs_common.dicomjson import first_value
from pacs_exporter.encapsulated import derived_uid, encapsulated_model, encapsulated_stl, to_bytes
from pacs_exporter.jobs.queue import Job
from pacs_exporter.mesh import MeshOptions, volume_to_mesh
from pacs_exporter.volume import volume_from_datasets
from pacs_exporter.writers import WRITERS
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import EncapsulatedOBJStorage, EncapsulatedSTLStorage
from stl import mesh as stl_mesh

from tests.bridge.running import api_settings
from tests.exporter.phantoms import LEVEL_HU
from tests.exporter.service import (
    WAIT_SECONDS,
    Killed,
    exporter_settings,
    phantom,
    request,
    running_exporter,
    store,
    submit,
    wait_for,
    worker,
)
from tests.support.server import running_api


def dciodvfy(path: Path) -> list[str]:
    """dciodvfy's error lines for the file at *path* (dicom3tools writes them to stderr)."""
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if line.startswith("Error")]


def test_encapsulated_stl_of_phantom_passes_dciodvfy(tmp_path: Path) -> None:
    """The instance built from a CT phantom's mesh has every module of the IOD: dciodvfy
    reports no error, and its document is the STL, with its length, in the CT's frame."""
    sources = phantom()
    buffer = BytesIO()
    mesh = volume_to_mesh(volume_from_datasets(sources), MeshOptions(level=LEVEL_HU))
    WRITERS["stl"](mesh, buffer, "test mesh")
    stl = buffer.getvalue() + b"!"  # an odd length: padded in the value, not in the length
    path = tmp_path / "mesh.dcm"
    path.write_bytes(to_bytes(encapsulated_stl(stl, sources, title="t", description="d")))
    assert dciodvfy(path) == []
    ds = dcmread(path)
    assert ds.SOPClassUID == EncapsulatedSTLStorage and ds.Modality == "M3D"
    assert ds.MIMETypeOfEncapsulatedDocument == "model/stl"
    assert ds.EncapsulatedDocumentLength == len(stl)
    assert bytes(ds.EncapsulatedDocument)[: len(stl)] == stl
    assert ds.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    assert ds.StudyInstanceUID == sources[0].StudyInstanceUID
    assert ds.SeriesInstanceUID != sources[0].SeriesInstanceUID
    assert ds.MeasurementUnitsCodeSequence[0].CodeValue == "mm"
    assert ds.MeasurementUnitsCodeSequence[0].CodingSchemeDesignator == "UCUM"


def test_store_back_instance_listed_in_study_and_valid(tmp_path: Path) -> None:
    """store_back: the job records the stored instance; QIDO-RS lists an M3D series in the
    study; the retrieved instance passes dciodvfy, references the source series and holds the
    same binary STL, in LPS mm, as the job's file even when the file was asked in RAS."""
    with running_api(api_settings(tmp_path / "api")) as url:
        sources = phantom()
        study, series = store(url, sources)
        with running_exporter(exporter_settings(tmp_path, url)) as client:
            body = request(study, series, store_back=True, coordinates="RAS")
            job = wait_for(client, submit(client, body)["id"])
            assert job["state"] == "succeeded", job["error"]
            downloaded = client.get(job["file"]).content
        sop = job["stored_instance"]
        assert sop and job["report"]["stored_instance"] == sop
        with httpx.Client(timeout=60) as http:
            dicomweb = DicomWebClient(http, url)
            listed = dicomweb.search_series(study, Modality="M3D")
            assert len(listed) == 1
            m3d_series = first_value(listed[0], "SeriesInstanceUID")
            [instance] = dicomweb.search_instances(study, m3d_series)
            assert first_value(instance, "SOPInstanceUID") == sop
            assert first_value(instance, "SOPClassUID") == EncapsulatedSTLStorage
            [part10] = list(dicomweb.retrieve_instance(study, m3d_series, sop))
    path = tmp_path / "stored.dcm"
    path.write_bytes(part10)
    assert dciodvfy(path) == []
    ds = dcmread(path)
    [referenced] = ds.ReferencedSeriesSequence
    assert referenced.SeriesInstanceUID == series
    assert len(referenced.ReferencedInstanceSequence) == len(sources)
    assert {item.ReferencedSOPInstanceUID for item in ds.SourceInstanceSequence} == {
        s.SOPInstanceUID for s in sources
    }
    assert ds.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    document = bytes(ds.EncapsulatedDocument)[: ds.EncapsulatedDocumentLength]
    lps = stl_mesh.Mesh.from_file("lps.stl", fh=BytesIO(document))
    ras = stl_mesh.Mesh.from_file("ras.stl", fh=BytesIO(downloaded))
    assert lps.is_closed() and len(lps.vectors) == len(ras.vectors)
    np.testing.assert_array_equal(lps.vectors * [-1, -1, 1], ras.vectors)
    assert lps.get_mass_properties()[0] > 0  # outward faces: positive volume in LPS too


def _mesh_document(kind: str, sources: list[Dataset]) -> bytes:
    buffer = BytesIO()
    mesh = volume_to_mesh(volume_from_datasets(sources), MeshOptions(level=LEVEL_HU))
    WRITERS[kind](mesh, buffer, "pacs-cloud mesh, LPS mm")
    return buffer.getvalue()


def test_encapsulated_instance_of_one_job_is_the_same_bytes() -> None:
    """Built twice for one job (its id and submission), the instance is byte for byte the
    same, whatever order the sources came in; another job's has other UIDs."""
    sources = phantom()
    stl = _mesh_document("stl", sources)
    created = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)

    def built(identity: str, ordered: list[Dataset]) -> bytes:
        ds = encapsulated_stl(
            stl, ordered, title="t", description="d", created=created, identity=identity
        )
        return to_bytes(ds)

    first = built("a" * 32, sources)
    assert built("a" * 32, list(reversed(sources))) == first
    ds = dcmread(BytesIO(first))
    assert ds.SOPInstanceUID == derived_uid("a" * 32, "instance")
    assert ds.SeriesInstanceUID == derived_uid("a" * 32, "series")
    assert ds.ContentDate == ds.InstanceCreationDate == "20250301"
    assert ds.ContentTime == "123000"
    other = dcmread(BytesIO(built("b" * 32, sources)))
    assert {other.SOPInstanceUID, other.SeriesInstanceUID}.isdisjoint(
        {ds.SOPInstanceUID, ds.SeriesInstanceUID}
    )


def test_store_back_of_job_retried_after_its_stow_stores_one_instance(tmp_path: Path) -> None:
    """A worker dies after its STOW-RS of the Encapsulated STL succeeded, before recording the
    job; the job, taken over after its lease, stores back again: the API answers it as the
    instance it holds, and QIDO-RS lists one M3D series of one instance, the job's."""
    with running_api(api_settings(tmp_path / "api")) as url:
        study, series = store(url, phantom())
        settings = exporter_settings(tmp_path, url, workers=0, lease_seconds=0.3)

        def die_after_store_back(_job: Job, percent: float) -> None:
            if percent >= 98:
                raise Killed

        with running_exporter(settings) as client:
            job = submit(client, request(study, series, store_back="stl"))
            with worker(settings, "doomed", die_after_store_back) as doomed:
                try:
                    doomed.run_one()
                except Killed:
                    pass
                else:
                    raise AssertionError("the worker did not reach its store back")
            with worker(settings, "survivor") as survivor:
                deadline = time.monotonic() + WAIT_SECONDS
                while not survivor.run_one():  # until the dead worker's lease expires
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            done = wait_for(client, job["id"])
        assert done["state"] == "succeeded" and done["attempts"] == 2, done["error"]
        assert done["stored_instance"] == derived_uid(job["id"], "instance")
        with httpx.Client(timeout=60) as http:
            dicomweb = DicomWebClient(http, url)
            listed = dicomweb.search_series(study, Modality="M3D")
            assert [first_value(s, "SeriesInstanceUID") for s in listed] == [
                derived_uid(job["id"], "series")
            ]
            instances = dicomweb.search_instances(study, derived_uid(job["id"], "series"))
    assert [first_value(i, "SOPInstanceUID") for i in instances] == [done["stored_instance"]]


def test_encapsulated_obj_valid_but_for_its_sop_class_unknown_to_this_dciodvfy(
    tmp_path: Path,
) -> None:
    """The Encapsulated OBJ IOD (PS3.3 A.86.1) has the Encapsulated STL IOD's modules; this
    dciodvfy (dicom3tools 2022-06) predates it and says only that it does not know it. Read
    as the STL IOD, the instance's only error is the MIME type that IOD fixes to model/stl."""
    sources = phantom()
    obj = _mesh_document("obj", sources)
    ds = encapsulated_model(obj, sources, kind="obj", title="t", description="d")
    path = tmp_path / "mesh.dcm"
    path.write_bytes(to_bytes(ds))
    assert dciodvfy(path) == ["Error - Information Object Not found"]
    assert ds.SOPClassUID == EncapsulatedOBJStorage
    assert ds.MIMETypeOfEncapsulatedDocument == "model/obj"
    assert bytes(ds.EncapsulatedDocument)[: ds.EncapsulatedDocumentLength] == obj

    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = EncapsulatedSTLStorage
    as_stl = tmp_path / "as-stl.dcm"
    ds.save_as(as_stl, enforce_file_format=True)
    assert dciodvfy(as_stl) == [
        "Error - Unrecognized enumerated value <model/obj> for value 1 of attribute "
        "<MIME Type of Encapsulated Document>"
    ]


def test_store_back_obj_listed_in_study_with_obj_in_lps(tmp_path: Path) -> None:
    """store_back "obj": the study gets an Encapsulated OBJ instance whose document is the OBJ
    in LPS mm (the file was asked in RAS), with as many faces as the job's mesh."""
    with running_api(api_settings(tmp_path / "api")) as url:
        sources = phantom()
        study, series = store(url, sources)
        with running_exporter(exporter_settings(tmp_path, url)) as client:
            body = request(study, series, store_back="obj", format="obj", coordinates="RAS")
            job = wait_for(client, submit(client, body)["id"])
            assert job["state"] == "succeeded", job["error"]
            assert job["request"]["store_back"] == "obj"
        sop = job["stored_instance"]
        assert job["report"]["stored_instance_sop_class"] == EncapsulatedOBJStorage
        with httpx.Client(timeout=60) as http:
            dicomweb = DicomWebClient(http, url)
            [listed] = dicomweb.search_series(study, Modality="M3D")
            m3d_series = first_value(listed, "SeriesInstanceUID")
            [instance] = dicomweb.search_instances(study, m3d_series)
            assert first_value(instance, "SOPClassUID") == EncapsulatedOBJStorage
            [part10] = list(dicomweb.retrieve_instance(study, m3d_series, sop))
    ds = dcmread(BytesIO(part10))
    assert ds.MIMETypeOfEncapsulatedDocument == "model/obj"
    assert ds.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    document = bytes(ds.EncapsulatedDocument)[: ds.EncapsulatedDocumentLength].decode()
    assert document.startswith("# pacs-cloud mesh, LPS mm")
    faces = sum(1 for line in document.splitlines() if line.startswith("f "))
    assert faces == job["report"]["triangles"]
