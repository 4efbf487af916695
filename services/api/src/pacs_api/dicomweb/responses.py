"""What the DICOMweb routes answer, as their ``responses=`` for the OpenAPI document.

Each route names the statuses it really answers and, for the success, the media types of
PS3.18 §8.7 it serves (``tests/fuzz/test_schemathesis_api.py`` holds the document to that).
Every error is a problem (:func:`pacs_common.openapi_problems.problem_response`); a request
FastAPI cannot validate is a 400, added by :func:`~pacs_common.openapi_problems.document_problems`.
"""

from __future__ import annotations

from typing import Any

from pacs_common.media import (
    APPLICATION_DICOM_JSON,
    APPLICATION_OCTET_STREAM,
)
from pacs_common.openapi_problems import problem_response

Responses = dict[int | str, dict[str, Any]]

BINARY: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}
#: A DICOM JSON data set (PS3.18 Annex F.2): attributes keyed by tag.
DATASET: dict[str, Any] = {"schema": {"type": "object"}}
DATASETS: dict[str, Any] = {"schema": {"type": "array", "items": {"type": "object"}}}
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'
MULTIPART_XML = 'multipart/related; type="application/dicom+xml"'
MULTIPART_OCTETS = 'multipart/related; type="application/octet-stream"'
#: The rendered media types of PS3.18 §8.7.4 this service produces.
RENDERED_TYPES = ("image/jpeg", "image/png", "image/gif")

BAD_UID: Responses = {
    400: problem_response("A malformed path UID or parameter (named in the detail).")
}
NOT_FOUND: Responses = {404: problem_response("Nothing of that is stored.")}
NOT_ACCEPTABLE: Responses = {406: problem_response("No acceptable media type or transfer syntax.")}
UNAVAILABLE: Responses = {
    503: problem_response("The index or the object store is unavailable (Retry-After).")
}
#: Every route that reads stored data by its path UIDs.
LOOKUP: Responses = {**BAD_UID, **NOT_FOUND, **UNAVAILABLE}

RETRIEVE: Responses = {
    200: {
        "description": "The instances, one part each, in the transfer syntax negotiated by the "
        "Accept header (PS3.18 §10.4.1.1.1, §8.7.3.5).",
        "content": {MULTIPART_DICOM: BINARY},
    },
    **LOOKUP,
    **NOT_ACCEPTABLE,
}

METADATA: Responses = {
    200: {
        "description": "The instances' DICOM JSON, bulk data as BulkDataURI (PS3.18 "
        "§10.4.1.1.2, Annex F); asked for it, one PS3.19 Native DICOM Model document per "
        "instance.",
        "content": {APPLICATION_DICOM_JSON: DATASETS, MULTIPART_XML: BINARY},
    },
    **LOOKUP,
    **NOT_ACCEPTABLE,
}

FRAMES: Responses = {
    200: {
        "description": "The frames, one part each: uncompressed as application/octet-stream, "
        "or in their stored compressed media type (PS3.18 §10.4.1.1.3, §8.7.3.3).",
        "content": {"multipart/related": BINARY},
    },
    **LOOKUP,
    **NOT_ACCEPTABLE,
}

BULKDATA: Responses = {
    200: {
        "description": "The element's value (PS3.18 §10.4.1.1.5), as one part or, asked for "
        "it, as the body itself.",
        "content": {MULTIPART_OCTETS: BINARY, APPLICATION_OCTET_STREAM: BINARY},
    },
    206: {
        "description": "The requested byte range of the value (RFC 9110 §14, §15.3.7).",
        "content": {MULTIPART_OCTETS: BINARY, APPLICATION_OCTET_STREAM: BINARY},
    },
    416: problem_response("The range starts past the end of the value (RFC 9110 §15.5.17)."),
    **LOOKUP,
    **NOT_ACCEPTABLE,
}

RENDERED: Responses = {
    200: {
        "description": "The image, rendered through the modality and VOI LUTs (PS3.18 "
        "§10.4.1.1.4, §8.3.5.1).",
        "content": dict.fromkeys(RENDERED_TYPES, BINARY),
    },
    **LOOKUP,
    **NOT_ACCEPTABLE,
}

RENDERED_MANY: Responses = {
    200: {
        "description": "The instances rendered, one image part each (PS3.18 §10.4.1.1.4).",
        "content": {"multipart/related": BINARY},
    },
    **LOOKUP,
    **NOT_ACCEPTABLE,
}

DELETED: Responses = {204: {"description": "Deleted, with its objects."}, **LOOKUP}

CAPABILITIES: Responses = {
    200: {
        "description": "The resource's capabilities as a WADL document (PS3.18 §8.9, Annex H); "
        "the Allow header lists its methods.",
        "content": {"application/vnd.sun.wadl+xml": BINARY},
    },
    **NOT_ACCEPTABLE,
}

CAPABILITIES_OF_STORED: Responses = {**CAPABILITIES, **LOOKUP}

QIDO: Responses = {
    200: {
        "description": "The matches as a DICOM JSON array (PS3.18 §10.6.3, Annex F); `[]` when "
        "nothing matches. Asked for it, one PS3.19 Native DICOM Model document per match. "
        "Warning headers name ignored parameters.",
        "content": {
            APPLICATION_DICOM_JSON: DATASETS,
            "application/json": DATASETS,
            MULTIPART_XML: BINARY,
        },
    },
    204: {"description": "No match, for an XML answer (PS3.18 §10.6.3.2)."},
    400: problem_response("A malformed parameter value or path UID (named in the detail)."),
    406: problem_response("The Accept header admits neither DICOM JSON, JSON nor DICOM XML."),
    **UNAVAILABLE,
}

WADO_URI: Responses = {
    200: {
        "description": "The object as stored (contentType=application/dicom), or rendered "
        "(PS3.18 §9.1.2.1.5, §9.1.2.2).",
        "content": {"application/dicom": BINARY} | dict.fromkeys(RENDERED_TYPES, BINARY),
    },
    **LOOKUP,
    **NOT_ACCEPTABLE,
}

#: The Store Instances Response Module (PS3.18 §10.5.3, table 10.5.3-2).
_STORE_RESPONSE: dict[str, Any] = {"content": {APPLICATION_DICOM_JSON: DATASET}}
STOW: Responses = {
    200: {
        "description": "Every instance was stored (PS3.18 table 10.5.3-1).",
        **_STORE_RESPONSE,
    },
    202: {
        "description": "Some instances were stored, others failed (FailedSOPSequence).",
        **_STORE_RESPONSE,
    },
    409: {
        "description": "No instance was stored (FailedSOPSequence says why).",
        **_STORE_RESPONSE,
    },
    400: problem_response("The request body cannot be read (broken multipart); nothing stored."),
    413: problem_response(
        "The body is larger than the configured limit, or carries more instances than "
        "max_instances_per_request; nothing stored."
    ),
    415: problem_response('Not multipart/related; type="application/dicom".'),
    **UNAVAILABLE,
}
