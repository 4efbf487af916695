"""``POST /studies/{study}/deidentify``: a new, de-identified copy of a stored study.

At the server root, not under ``/dicom-web``: it is no DICOMweb transaction (PS3.18 defines
none for it), and DICOMweb clients and conformance tools that walk ``/dicom-web`` must not meet
it there; the change feed sits at the root for the same reason. Its answer points at the new
study's DICOMweb RetrieveURL.

Synchronous, for studies up to ``deidentify_max_instances`` instances (409 above): each
instance is read from the object store, de-identified (:mod:`pacs_api.deidentify.transform`)
and stored through the STOW-RS pipeline (:class:`pacs_api.ingest.pipeline.Ingest`), so the new
study is indexed and in the change feed like any other. A failure undoes what the request
stored. The same secret and options give the same bytes, so running it again is harmless.
"""

from __future__ import annotations

import hashlib
import io
from typing import Annotated

import pydicom
from fastapi import APIRouter, Body, Request
from pacs_common.openapi_problems import problem_response
from pydantic import BaseModel, Field

from pacs_api.audit.note import audit_note, note_instances
from pacs_api.deidentify.profile import BURNS_IN, TABLE_SOURCE
from pacs_api.deidentify.transform import Deidentifier, Options
from pacs_api.deps import BaseUrlDep, IndexDep, SettingsDep, StoreDep, WriterDep
from pacs_api.dicomweb.responses import LOOKUP
from pacs_api.dicomweb.scope import StudyScope, stored_instances
from pacs_api.errors import Conflict, NotConfigured
from pacs_api.ingest.pipeline import Ingest

router = APIRouter(tags=["De-identification"])


class DeidentifyRequest(BaseModel):
    retain_dates: bool = Field(
        False,
        description="Retain Longitudinal Temporal Information with Modified Dates (PS3.15 "
        "E.3.6): dates shifted back by a per-patient number of days derived from the secret.",
    )
    retain_device: bool = Field(
        False, description="Retain Device Identity (PS3.15 E.3.5): station, serial numbers..."
    )


class BurnedIn(BaseModel):
    """An instance whose pixels may show identifying text: the profile leaves pixels as they
    are, so a person must review it (or it must not leave)."""

    series_uid: str
    sop_instance_uid: str
    reason: str


class Failure(BaseModel):
    sop_instance_uid: str
    reason: str


class DeidentifyResult(BaseModel):
    source_study_uid: str
    study_uid: str = Field(description="Study Instance UID of the new, de-identified study.")
    retrieve_url: str
    instances: int = Field(description="Instances of the new study stored (or already held).")
    series: int
    failed: list[Failure]
    burned_in_annotation: list[BurnedIn]
    methods: list[str] = Field(description="Code values of PS3.16 CID 7050 applied.")
    profile_table: str = Field(description="The PS3.15 Table E.1-1 edition used and its source.")


@router.post(
    "/studies/{study}/deidentify",
    summary="Make a de-identified copy of a study (PS3.15 Basic Profile)",
    responses=LOOKUP
    | {
        409: problem_response("The study has more instances than one request de-identifies."),
        503: problem_response("Not configured (no secret), or the index or store unavailable."),
    },
)
def deidentify_study(
    scope: StudyScope,
    index: IndexDep,
    store: StoreDep,
    settings: SettingsDep,
    writer: WriterDep,
    base: BaseUrlDep,
    http: Request,
    request: Annotated[DeidentifyRequest | None, Body()] = None,
) -> DeidentifyResult:
    if settings.deidentify_secret is None:
        raise NotConfigured(
            "de-identification needs a secret: set PACS_API_DEIDENTIFY_SECRET (16+ characters; "
            "the same secret always gives the same pseudonyms and UIDs)"
        )
    options = request or DeidentifyRequest()
    found = stored_instances(index, scope)
    if len(found) > settings.deidentify_max_instances:
        raise Conflict(
            f"study {scope.study_uid} has {len(found)} instances, more than the "
            f"{settings.deidentify_max_instances} de-identified in one request "
            "(PACS_API_DEIDENTIFY_MAX_INSTANCES)"
        )
    engine = Deidentifier(
        settings.deidentify_secret.get_secret_value().encode(),
        Options(retain_dates=options.retain_dates, retain_device=options.retain_device),
    )
    new_study = engine.uid(scope.study_uid)
    ingest = Ingest(index, store, settings, study_uid=new_study, writer=writer)
    burned: list[BurnedIn] = []
    try:
        for held in found:
            data = b"".join(store.open(held.object_key))
            ds = pydicom.dcmread(io.BytesIO(data))
            reason = _burned_in(ds)
            engine.apply(ds)
            out = io.BytesIO()
            ds.save_as(out, enforce_file_format=True)
            payload = out.getvalue()
            if reason:
                burned.append(
                    BurnedIn(
                        series_uid=ds.SeriesInstanceUID,
                        sop_instance_uid=ds.SOPInstanceUID,
                        reason=reason,
                    )
                )
            stream = io.BytesIO(payload)
            ingest.add(stream, len(payload), hashlib.sha256(payload).hexdigest(), lambda: None)
        results = ingest.finish()
    except BaseException:
        ingest.abort()
        raise
    ok = [r for r in results if r.failure is None]
    note_instances(http, found)  # audited: Export of the source study, Import of the new one
    audit_note(http).created_study_uid = new_study
    return DeidentifyResult(
        source_study_uid=scope.study_uid,
        study_uid=new_study,
        retrieve_url=f"{base}/studies/{new_study}",
        instances=len(ok),
        series=len({r.series_uid for r in ok}),
        failed=[
            Failure(sop_instance_uid=r.sop_instance_uid, reason=r.reason)
            for r in results
            if r.failure is not None
        ],
        burned_in_annotation=burned,
        methods=[code.value for code in engine.methods()],
        profile_table=TABLE_SOURCE,
    )


def _burned_in(ds: pydicom.Dataset) -> str:
    """Why this instance's pixels may show identifying text ("" when there is no reason)."""
    value = str(ds.get("BurnedInAnnotation", "") or "").upper()
    if value == "YES":
        return "Burned In Annotation is YES"
    modality = str(ds.get("Modality", "") or "")
    if not value and modality in BURNS_IN:
        return f"Burned In Annotation is absent and {modality} images commonly burn text in"
    return ""
