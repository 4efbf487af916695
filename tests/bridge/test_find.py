"""C-FIND SCP (PS3.4 C.4.1) over QIDO-RS: DCMTK findscu at every level of both information
models, matching (wildcard, range, UID list), C-CANCEL and invalid identifiers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pacs_bridge.sop_classes import PATIENT_ROOT_FIND, STUDY_ROOT_FIND
from pacs_common import statuses
from pacs_common.client import DicomWebClient
from pacs_common.synthetic import iter_ct_series, to_bytes
from pydicom.dataset import Dataset

from tests.bridge.peers import findscu, scu_association
from tests.bridge.running import SCU, RunningBridge, api_settings, running_bridge
from tests.support.server import running_api

PATIENT_ID = "FIND-0001"
OTHER_PATIENT_ID = "FIND-0002"
SLICES = 4


class Archive:
    """Two patients: the first with one study of two CT series, the second with one study of
    one series; every series has SLICES instances."""

    def __init__(self, bridge: RunningBridge) -> None:
        self.bridge = bridge
        self.series = [
            list(iter_ct_series(SLICES, 16, 16, patient_id=PATIENT_ID, series_number=1)),
            list(iter_ct_series(SLICES, 16, 16, patient_id=PATIENT_ID, series_number=2)),
            list(
                iter_ct_series(
                    SLICES,
                    16,
                    16,
                    patient_id=OTHER_PATIENT_ID,
                    patient_name="Other^Patient",
                    series_number=1,
                    seed=3,
                )
            ),
        ]
        self.study = str(self.series[0][0].StudyInstanceUID)
        self.other_study = str(self.series[2][0].StudyInstanceUID)
        assert self.study != self.other_study
        assert self.series[1][0].StudyInstanceUID == self.study


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """The API holding the two patients, and a bridge in front of it (C-FIND reads only)."""
    with (
        running_api(api_settings(tmp_path_factory.mktemp("find-api"))) as api_url,
        running_bridge(api_url, find_page_size=2) as bridge,
    ):
        archive = Archive(bridge)
        with httpx.Client(timeout=60) as http:
            client = DicomWebClient(http, api_url)
            for series in archive.series:
                client.store([to_bytes(ds) for ds in series]).raise_for_failures()
        yield archive


def values(responses: list[Dataset], keyword: str) -> list[str]:
    return [str(ds.get(keyword, "")) for ds in responses]


def test_findscu_study_root_study_level_wildcard(archive: Archive, tmp_path: Path) -> None:
    """Study Root, STUDY level, PatientID wildcard (PS3.4 C.2.2.2.4): one answer per study with
    the requested keys filled in, computed counts included (PS3.4 C.6.2.1.2)."""
    proc, responses = findscu(
        archive.bridge,
        SCU,
        "study",
        [
            "QueryRetrieveLevel=STUDY",
            "PatientID=FIND-*",
            "StudyInstanceUID",
            "PatientName",
            "NumberOfStudyRelatedSeries",
            "NumberOfStudyRelatedInstances",
            "ModalitiesInStudy",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    by_study = {str(ds.StudyInstanceUID): ds for ds in responses}
    assert set(by_study) == {archive.study, archive.other_study}
    first = by_study[archive.study]
    assert first.QueryRetrieveLevel == "STUDY"
    assert first.PatientID == PATIENT_ID
    assert int(first.NumberOfStudyRelatedSeries) == 2
    assert int(first.NumberOfStudyRelatedInstances) == 2 * SLICES
    assert first.ModalitiesInStudy == "CT"
    assert str(by_study[archive.other_study].PatientName) == "Other^Patient"
    assert "SOPInstanceUID" not in first  # only the requested keys are answered


def test_findscu_study_root_series_level_uid_list(archive: Archive, tmp_path: Path) -> None:
    """Study Root, SERIES level with a list of UIDs (PS3.4 C.2.2.2.2): the two listed series."""
    listed = [
        str(archive.series[0][0].SeriesInstanceUID),
        str(archive.series[2][0].SeriesInstanceUID),
    ]
    proc, responses = findscu(
        archive.bridge,
        SCU,
        "study",
        [
            "QueryRetrieveLevel=SERIES",
            f"SeriesInstanceUID={chr(92).join(listed)}",
            "StudyInstanceUID",
            "Modality",
            "SeriesNumber",
            "NumberOfSeriesRelatedInstances",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(values(responses, "SeriesInstanceUID")) == sorted(listed)
    assert values(responses, "Modality") == ["CT", "CT"]
    assert {int(ds.NumberOfSeriesRelatedInstances) for ds in responses} == {SLICES}


def test_findscu_study_root_image_level_all_instances_paged(
    archive: Archive, tmp_path: Path
) -> None:
    """Study Root, IMAGE level within a series: every instance, although the bridge reads
    QIDO-RS two results at a time (PS3.18 §8.3.4.4)."""
    series = archive.series[1]
    proc, responses = findscu(
        archive.bridge,
        SCU,
        "study",
        [
            "QueryRetrieveLevel=IMAGE",
            f"StudyInstanceUID={archive.study}",
            f"SeriesInstanceUID={series[0].SeriesInstanceUID}",
            "SOPInstanceUID",
            "SOPClassUID",
            "InstanceNumber",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(values(responses, "SOPInstanceUID")) == sorted(
        str(ds.SOPInstanceUID) for ds in series
    )
    assert sorted(int(ds.InstanceNumber) for ds in responses) == list(range(1, SLICES + 1))


def test_findscu_study_date_range_matches(archive: Archive, tmp_path: Path) -> None:
    """A StudyDate range (PS3.4 C.2.2.2.5) passes to QIDO-RS unchanged."""
    study_date = str(archive.series[0][0].StudyDate)
    proc, inside = findscu(
        archive.bridge,
        SCU,
        "study",
        ["QueryRetrieveLevel=STUDY", f"StudyDate={study_date}-", "StudyInstanceUID"],
        tmp_path / "inside",
    )
    assert proc.returncode == 0, proc.stderr
    assert len(inside) == 2
    proc, before = findscu(
        archive.bridge,
        SCU,
        "study",
        ["QueryRetrieveLevel=STUDY", "StudyDate=-19000101", "StudyInstanceUID"],
        tmp_path / "before",
    )
    assert proc.returncode == 0, proc.stderr
    assert before == []


def test_findscu_patient_root_patient_level_grouped_studies(
    archive: Archive, tmp_path: Path
) -> None:
    """Patient Root, PATIENT level (PS3.4 C.6.1.1.2): one answer per patient, answered from
    the QIDO-RS studies grouped by Patient ID, with the patient's counts."""
    proc, responses = findscu(
        archive.bridge,
        SCU,
        "patient",
        [
            "QueryRetrieveLevel=PATIENT",
            "PatientID",
            "PatientName",
            "NumberOfPatientRelatedStudies",
            "NumberOfPatientRelatedSeries",
            "NumberOfPatientRelatedInstances",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    by_patient = {str(ds.PatientID): ds for ds in responses}
    assert set(by_patient) == {PATIENT_ID, OTHER_PATIENT_ID}
    first = by_patient[PATIENT_ID]
    assert first.QueryRetrieveLevel == "PATIENT"
    assert int(first.NumberOfPatientRelatedStudies) == 1
    assert int(first.NumberOfPatientRelatedSeries) == 2
    assert int(first.NumberOfPatientRelatedInstances) == 2 * SLICES


def test_findscu_patient_root_study_level_by_patient_id(archive: Archive, tmp_path: Path) -> None:
    """Patient Root, STUDY level under a Patient ID (PS3.4 C.6.1.1.3): that patient's study."""
    proc, responses = findscu(
        archive.bridge,
        SCU,
        "patient",
        [
            "QueryRetrieveLevel=STUDY",
            f"PatientID={OTHER_PATIENT_ID}",
            "StudyInstanceUID",
            "StudyDate",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert values(responses, "StudyInstanceUID") == [archive.other_study]


def _query(**keys: str) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def _statuses(bridge: RunningBridge, query: Dataset, model: str) -> list[int]:
    with scu_association(bridge, SCU, [model]) as assoc:
        assert assoc.is_established
        return [int(status.Status) for status, _ in assoc.send_c_find(query, model)]


@pytest.mark.parametrize(
    ("query", "model"),
    [
        pytest.param(_query(PatientID="", StudyInstanceUID=""), STUDY_ROOT_FIND, id="no-level"),
        pytest.param(_query(QueryRetrieveLevel="FOO"), STUDY_ROOT_FIND, id="unknown-level"),
        pytest.param(
            _query(QueryRetrieveLevel="PATIENT"), STUDY_ROOT_FIND, id="patient-in-study-root"
        ),
        pytest.param(
            _query(QueryRetrieveLevel="STUDY", SOPInstanceUID=""),
            STUDY_ROOT_FIND,
            id="image-key-at-study",
        ),
        pytest.param(
            _query(QueryRetrieveLevel="PATIENT", StudyInstanceUID=""),
            PATIENT_ROOT_FIND,
            id="study-key-at-patient",
        ),
    ],
)
def test_cfind_invalid_identifier_a900(archive: Archive, query: Dataset, model: str) -> None:
    """An identifier without a valid level for the model, or with a key below its level, is
    answered 0xA900 "Identifier does not match SOP Class" (PS3.4 C.4.1.1.4, C.2.2.1)."""
    assert _statuses(archive.bridge, query, model) == [statuses.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS]


def test_cfind_cancel_after_first_match_ends_with_cancel(tmp_path: Path) -> None:
    """A C-CANCEL after the first pending response (PS3.7 §9.1.2.1, §9.3.2.3) stops the
    matches: the last response is Cancel (0xFE00) and not every instance was sent."""
    instances = list(iter_ct_series(12, 16, 16, seed=21))
    with (
        running_api(api_settings(tmp_path)) as api_url,
        running_bridge(api_url, find_page_size=1) as bridge,
    ):
        with httpx.Client(timeout=60) as http:
            DicomWebClient(http, api_url).store([to_bytes(ds) for ds in instances])
        query = _query(QueryRetrieveLevel="IMAGE", SOPInstanceUID="")
        with scu_association(bridge, SCU, [STUDY_ROOT_FIND]) as assoc:
            context_id = next(
                cx.context_id
                for cx in assoc.accepted_contexts
                if cx.abstract_syntax == STUDY_ROOT_FIND
            )
            received: list[int] = []
            for status, _ in assoc.send_c_find(query, STUDY_ROOT_FIND, msg_id=7):
                received.append(int(status.Status))
                if len(received) == 1:
                    assert context_id is not None
                    assoc.send_c_cancel(7, context_id)
    assert received[0] == statuses.FIND_PENDING
    assert received[-1] == statuses.CANCEL
    assert received.count(statuses.FIND_PENDING) < len(instances)


def test_cfind_api_stopped_out_of_resources(tmp_path: Path) -> None:
    """With the API stopped, C-FIND answers 0xA700 "Refused: Out of Resources" (PS3.4
    C.4.1.1.4) and no match."""
    with running_api(api_settings(tmp_path)) as api_url:
        pass  # started and stopped: the bridge now points at a closed port
    with running_bridge(api_url) as bridge:
        query = _query(QueryRetrieveLevel="STUDY", StudyInstanceUID="")
        assert _statuses(bridge, query, STUDY_ROOT_FIND) == [statuses.FIND_OUT_OF_RESOURCES]
