"""The pure de-identification of one data set: PS3.15 Table E.1-1 applied at every nesting
level, UIDs and the patient replaced by keyed hashes (HMAC-SHA256 with the configured secret),
dates optionally shifted by a per-patient offset. Pixel Data is never touched.

The same input and secret always give the same output, so the instances of a study (and of
later runs) reference each other consistently and a second run stores identical bytes.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, timedelta

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from pacs_api.deidentify.profile import (
    DEVICE_IDENTITY,
    METHOD_MEANINGS,
    REMOVED_GROUP_RANGES,
    TABLE,
    Action,
    MethodCode,
)

#: Shifted dates move back by 1 to MAX_SHIFT_DAYS days (per patient, from the secret).
MAX_SHIFT_DAYS = 3650
#: Dummy values (action D) per VR; other VRs get an empty value.
_DUMMY: dict[str, object] = {
    "PN": "ANONYMIZED",
    "LO": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "UT": "ANONYMIZED",
    "UC": "ANONYMIZED",
    "CS": "ANONYMIZED",
    "AE": "ANONYMIZED",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "AS": "000Y",
    "IS": "0",
    "DS": "0",
    "US": 0,
    "SS": 0,
    "UL": 0,
    "SL": 0,
    "FL": 0.0,
    "FD": 0.0,
}
_PIXEL_DATA = 0x7FE00010


@dataclass(frozen=True, slots=True)
class Options:
    retain_dates: bool = False  # Retain Longitudinal Temporal Information with Modified Dates
    retain_device: bool = False  # Retain Device Identity


@dataclass(frozen=True, slots=True)
class Deidentifier:
    secret: bytes
    options: Options = Options()

    def _digest(self, purpose: str, value: str) -> bytes:
        return hmac.new(self.secret, f"{purpose}:{value}".encode(), hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """A 2.25 UID (PS3.5 B.2) from the first 128 bits of the keyed hash of *original*."""
        return f"2.25.{int.from_bytes(self._digest('uid', original)[:16], 'big')}"

    def pseudonym(self, patient: str) -> str:
        return "ANON" + self._digest("patient", patient)[:6].hex().upper()

    def day_offset(self, patient: str) -> int:
        """Days every date of *patient* moves back (1..MAX_SHIFT_DAYS), stable per secret."""
        return 1 + int.from_bytes(self._digest("dates", patient)[:4], "big") % MAX_SHIFT_DAYS

    def methods(self) -> list[MethodCode]:
        codes = [MethodCode.BASIC]
        if self.options.retain_dates:
            codes.append(MethodCode.RETAIN_LONGITUDINAL_MODIFIED_DATES)
        if self.options.retain_device:
            codes.append(MethodCode.RETAIN_DEVICE_IDENTITY)
        return codes

    def apply(self, ds: Dataset) -> Dataset:
        """De-identify *ds* in place (and its file meta) and return it."""
        patient = str(ds.get("PatientID", "") or ds.get("PatientName", "") or "")
        shift = self.day_offset(patient) if self.options.retain_dates else None
        ds.remove_private_tags()
        self._walk(ds, shift)
        pseudonym = self.pseudonym(patient)
        ds.PatientName = pseudonym
        ds.PatientID = pseudonym
        ds.PatientIdentityRemoved = "YES"
        ds.LongitudinalTemporalInformationModified = "MODIFIED" if shift else "REMOVED"
        codes = self.methods()
        ds.DeidentificationMethod = [METHOD_MEANINGS[c][:64] for c in codes]
        items = []
        for code in codes:
            item = Dataset()
            item.CodeValue = code.value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = METHOD_MEANINGS[code]
            items.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(items)
        meta = getattr(ds, "file_meta", None)
        if isinstance(meta, FileMetaDataset) and "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return ds

    def _walk(self, ds: Dataset, shift: int | None) -> None:
        for tag in list(ds.keys()):
            element = ds[tag]
            if tag == _PIXEL_DATA:
                continue
            if any(lo <= tag.group <= hi for lo, hi in REMOVED_GROUP_RANGES):
                del ds[tag]
                continue
            entry = TABLE.get(tag)
            if entry is None:
                if element.VR == "SQ":
                    for item in element.value:
                        self._walk(item, shift)
                continue
            self._act(ds, tag, element, entry[1], shift)

    def _act(
        self, ds: Dataset, tag: BaseTag, element: DataElement, action: Action, shift: int | None
    ) -> None:
        if self.options.retain_device and tag in DEVICE_IDENTITY:
            return
        if action is Action.UID and element.VR == "UI":
            element.value = self._uids(element.value)
            return
        if shift is not None and element.VR in ("DA", "DT"):
            element.value = _shift(element.value, element.VR, shift)
            return
        if shift is not None and element.VR == "TM":
            return  # whole-day shifts keep times (PS3.15 E.3.6 "C")
        if action is Action.UID_IN_SEQUENCE and element.VR == "SQ":
            for item in element.value:
                self._references(item)
            return
        if action is Action.REMOVE:
            del ds[tag]
        elif action is Action.DUMMY and element.VR in _DUMMY:
            element.value = _DUMMY[element.VR]
        elif element.VR == "SQ":
            element.value = Sequence()
        else:
            element.value = None

    def _uids(self, value: object) -> object:
        if isinstance(value, str) and value:
            return self.uid(value)
        if isinstance(value, list):
            return [self.uid(str(v)) for v in value]
        return value

    def _references(self, item: Dataset) -> None:
        """X/Z/U* (e.g. Referenced Image Sequence): keep the reference, replace its UIDs."""
        for tag in list(item.keys()):
            element = item[tag]
            entry = TABLE.get(tag)
            if element.VR == "UI" and entry is not None and entry[1] is Action.UID:
                element.value = self._uids(element.value)
            elif element.VR == "UI" and entry is None:
                continue  # e.g. Referenced SOP Class UID
            elif element.VR == "SQ":
                for sub in element.value:
                    self._references(sub)
            elif entry is not None:
                del item[tag]


def _shift(value: object, vr: str, days: int) -> object:
    if isinstance(value, list):
        return [_shift(v, vr, days) for v in value]
    text = str(value or "")
    if len(text) < 8 or not text[:8].isdigit():
        return None  # empty or not a full date: nothing to shift, nothing kept
    try:
        moved = date(int(text[:4]), int(text[4:6]), int(text[6:8])) - timedelta(days=days)
    except ValueError:
        return None
    return moved.strftime("%Y%m%d") + (text[8:] if vr == "DT" else "")
