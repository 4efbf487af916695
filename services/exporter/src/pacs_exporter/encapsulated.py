"""A mesh stored back into its study: the Encapsulated STL IOD (PS3.3 A.85.1).

The instance is a new series (Modality ``M3D``) of the source's study, in the source's Frame
of Reference, so that its vertices, in patient LPS mm (PS3.3 C.7.6.2.1.1), mean what they
mean in the CT. Its modules (PS3.3 table A.85.1-1):

- Patient (C.7.1.1) and General Study (C.7.2.1): copied from the source series;
- Encapsulated Document Series (C.24.1): ``Modality`` M3D, a new Series Instance UID;
- Frame of Reference (C.7.4.1): the source's;
- Enhanced General Equipment (C.7.5.2): this software;
- Encapsulated Document (C.24.2): the binary STL in ``EncapsulatedDocument`` with its length
  (``EncapsulatedDocumentLength``, the value before the padding to an even length),
  ``MIMETypeOfEncapsulatedDocument`` ``model/stl``, the source images in
  ``SourceInstanceSequence``;
- Manufacturing 3D Model (C.8.35.2): the model's units in ``MeasurementUnitsCodeSequence``
  (``mm``, UCUM: PS3.16 CID 7063... the UCUM code ``mm``), not mirrored, not modified;
- Common Instance Reference (C.12.2): the source series in ``ReferencedSeriesSequence``;
- SOP Common (C.12.1): ``EncapsulatedSTLStorage``.

Attributes are set by keyword, so tags and VRs come from pydicom's data dictionary.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from io import BytesIO

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import EncapsulatedSTLStorage, ExplicitVRLittleEndian, generate_uid

__all__ = ["encapsulated_stl", "to_bytes"]

MANUFACTURER = "pacs-cloud"
MODEL_NAME = "pacs-cloud mesh exporter"
SOFTWARE_VERSION = "0.1.0"
#: Enhanced General Equipment requires a serial number; a software device has none of its own.
DEVICE_SERIAL_NUMBER = "0"
#: Series Number of stored-back meshes, apart from the scanner's usual numbers.
SERIES_NUMBER = 9001

_PATIENT = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex")
_STUDY = (
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "StudyDescription",
)
#: Type 2 attributes: present, empty when the source has no value.
_TYPE_2 = frozenset(
    {
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
    }
)


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _copy(target: Dataset, source: Dataset, keywords: Sequence[str]) -> None:
    for keyword in keywords:
        if keyword in source:
            setattr(target, keyword, source[keyword].value)
        elif keyword in _TYPE_2:
            setattr(target, keyword, None)


def encapsulated_stl(
    stl: bytes,
    sources: Sequence[Dataset],
    *,
    title: str,
    description: str,
    created: datetime | None = None,
) -> Dataset:
    """The Encapsulated STL instance holding the binary STL *stl*, made from the CT images
    *sources* (one series, one Frame of Reference: the mesh's vertices are in its LPS mm)."""
    if not stl:
        raise ValueError("an Encapsulated STL needs the STL's bytes")
    first = sources[0]
    created = created or datetime.now(UTC)
    ds = Dataset()
    if "SpecificCharacterSet" in first:
        ds.SpecificCharacterSet = first.SpecificCharacterSet

    # SOP Common (C.12.1)
    ds.SOPClassUID = EncapsulatedSTLStorage
    ds.SOPInstanceUID = generate_uid()
    ds.InstanceCreationDate = created.strftime("%Y%m%d")
    ds.InstanceCreationTime = created.strftime("%H%M%S")

    # Patient (C.7.1.1), General Study (C.7.2.1)
    _copy(ds, first, _PATIENT)
    _copy(ds, first, _STUDY)

    # Encapsulated Document Series (C.24.1)
    ds.Modality = "M3D"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = SERIES_NUMBER
    ds.SeriesDescription = description[:64]

    # Frame of Reference (C.7.4.1): the source's, so the vertices keep their meaning.
    ds.FrameOfReferenceUID = first.FrameOfReferenceUID
    ds.PositionReferenceIndicator = first.get("PositionReferenceIndicator", None)

    # Enhanced General Equipment (C.7.5.2)
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = MODEL_NAME
    ds.DeviceSerialNumber = DEVICE_SERIAL_NUMBER
    ds.SoftwareVersions = SOFTWARE_VERSION

    # Encapsulated Document (C.24.2)
    ds.InstanceNumber = 1
    ds.ContentDate = created.strftime("%Y%m%d")
    ds.ContentTime = created.strftime("%H%M%S")
    ds.AcquisitionDateTime = None
    ds.BurnedInAnnotation = "NO"
    ds.ConceptNameCodeSequence = DicomSequence()
    ds.DocumentTitle = title[:64]
    ds.MIMETypeOfEncapsulatedDocument = "model/stl"
    ds.SourceInstanceSequence = DicomSequence(
        [_reference(source) for source in sources],
    )
    ds.EncapsulatedDocument = stl if len(stl) % 2 == 0 else stl + b"\x00"
    ds.EncapsulatedDocumentLength = len(stl)

    # Manufacturing 3D Model (C.8.35.2)
    ds.MeasurementUnitsCodeSequence = DicomSequence([_code("mm", "UCUM", "millimeter")])
    ds.ModelModification = "NO"
    ds.ModelMirroring = "NO"

    # Common Instance Reference (C.12.2): the source series.
    referenced = Dataset()
    referenced.SeriesInstanceUID = first.SeriesInstanceUID
    referenced.ReferencedInstanceSequence = DicomSequence(
        [_reference(source) for source in sources]
    )
    ds.ReferencedSeriesSequence = DicomSequence([referenced])
    return ds


def _reference(source: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = source.SOPClassUID
    item.ReferencedSOPInstanceUID = source.SOPInstanceUID
    return item


def to_bytes(ds: Dataset) -> bytes:
    """*ds* as a Part 10 file (PS3.10 §7.1) in Explicit VR Little Endian."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
