"""The SOP class UIDs the bridge serves besides storage, named as in PS3.4.

pynetdicom generates its ``sop_class`` constants at import, which a type checker cannot see;
they are looked up here by keyword once, so no UID is typed by hand.
"""

from __future__ import annotations

from pydicom.uid import UID
from pynetdicom import sop_class


def sop_class_uid(keyword: str) -> UID:
    """The UID of the SOP class pynetdicom names *keyword*."""
    uid = getattr(sop_class, keyword, None)
    if uid is None:
        raise LookupError(f"pynetdicom has no SOP class {keyword!r}")
    return UID(str(uid))


#: PS3.4 Annex A: Verification SOP Class (C-ECHO).
VERIFICATION = sop_class_uid("Verification")
#: PS3.4 C.6.1.3.1: Patient Root Query/Retrieve Information Model - FIND.
PATIENT_ROOT_FIND = sop_class_uid("PatientRootQueryRetrieveInformationModelFind")
#: PS3.4 C.6.2.3.1: Study Root Query/Retrieve Information Model - FIND.
STUDY_ROOT_FIND = sop_class_uid("StudyRootQueryRetrieveInformationModelFind")
