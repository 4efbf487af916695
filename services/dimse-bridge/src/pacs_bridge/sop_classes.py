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
#: PS3.4 C.6.1.3.2: Patient Root Query/Retrieve Information Model - MOVE.
PATIENT_ROOT_MOVE = sop_class_uid("PatientRootQueryRetrieveInformationModelMove")
#: PS3.4 C.6.2.3.2: Study Root Query/Retrieve Information Model - MOVE.
STUDY_ROOT_MOVE = sop_class_uid("StudyRootQueryRetrieveInformationModelMove")
#: PS3.4 C.6.1.3.3: Patient Root Query/Retrieve Information Model - GET.
PATIENT_ROOT_GET = sop_class_uid("PatientRootQueryRetrieveInformationModelGet")
#: PS3.4 C.6.2.3.3: Study Root Query/Retrieve Information Model - GET.
STUDY_ROOT_GET = sop_class_uid("StudyRootQueryRetrieveInformationModelGet")
