"""The mesh stored back into its study as an Encapsulated STL (PS3.3 A.85.1): valid for
dciodvfy, listed by the API's QIDO-RS, referencing its source series and frame of reference."""

from __future__ import annotations

import subprocess
from io import BytesIO
from pathlib import Path

import httpx
import numpy as np
from pacs_common.client import DicomWebClient
from pacs_common.dicomjson import first_value
from pacs_exporter.encapsulated import encapsulated_stl, to_bytes
from pacs_exporter.mesh import MeshOptions, volume_to_mesh
from pacs_exporter.volume import volume_from_datasets
from pacs_exporter.writers import WRITERS
from pydicom import dcmread
from pydicom.uid import EncapsulatedSTLStorage
from stl import mesh as stl_mesh

from tests.bridge.running import api_settings
from tests.exporter.phantoms import LEVEL_HU
from tests.exporter.service import (
    exporter_settings,
    phantom,
    request,
    running_exporter,
    store,
    submit,
    wait_for,
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
