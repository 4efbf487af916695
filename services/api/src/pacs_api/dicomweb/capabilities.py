"""Retrieve Capabilities (PS3.18 §8.9): ``OPTIONS`` on the service root and on resources.

The answer carries an ``Allow`` header with the methods of the resource and, as its body, the
capabilities description of the resource and every resource below it in WADL
(``application/vnd.sun.wadl+xml``), the format PS3.18 Annex H defines. Only WADL is served: it
is the one format the standard specifies, and a second, home-made JSON shape would give clients
nothing they can rely on.

The description is generated from the application's own OpenAPI document (path templates,
methods, summaries and declared query parameters), itself built from the routes, so it cannot
drift from what the server does.

A CORS preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) never gets
here when CORS is on: :mod:`pacs_api.cors` answers it first.
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from pacs_api.deps import BaseUrlDep
from pacs_api.dicomweb.negotiation import parse_accept
from pacs_api.dicomweb.responses import CAPABILITIES, CAPABILITIES_OF_STORED
from pacs_api.dicomweb.scope import InstanceScope, SeriesScope, StudyScope
from pacs_api.errors import NotAcceptable

ROOT = "/dicom-web"
#: Mounted at the service root itself (an ``OPTIONS /dicom-web`` route needs the prefix here).
router = APIRouter(prefix=ROOT, tags=["Capabilities"], default_response_class=Response)

WADL = "application/vnd.sun.wadl+xml"
WADL_NS = "http://wadl.dev.java.net/2009/02"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
Operations = dict[str, dict[str, Any]]
_ACCEPTED = {"*/*", "application/*", WADL, "application/xml", "text/xml"}


@router.options(
    "", responses=CAPABILITIES, summary="Capabilities of the service (PS3.18 §8.9, Annex H)"
)
def service_capabilities(request: Request, base: BaseUrlDep) -> Response:
    return _capabilities(request, base, "")


@router.options("/studies", responses=CAPABILITIES, summary="Capabilities of the studies resource")
def studies_capabilities(request: Request, base: BaseUrlDep) -> Response:
    return _capabilities(request, base, "/studies")


@router.options(
    "/studies/{study}", responses=CAPABILITIES_OF_STORED, summary="Capabilities of a study resource"
)
def study_capabilities(_scope: StudyScope, request: Request, base: BaseUrlDep) -> Response:
    return _capabilities(request, base, "/studies/{study}")


@router.options(
    "/studies/{study}/series/{series}",
    responses=CAPABILITIES_OF_STORED,
    summary="Capabilities of a series resource",
)
def series_capabilities(_scope: SeriesScope, request: Request, base: BaseUrlDep) -> Response:
    return _capabilities(request, base, "/studies/{study}/series/{series}")


@router.options(
    "/studies/{study}/series/{series}/instances/{instance}",
    responses=CAPABILITIES_OF_STORED,
    summary="Capabilities of an instance resource",
)
def instance_capabilities(_scope: InstanceScope, request: Request, base: BaseUrlDep) -> Response:
    return _capabilities(request, base, "/studies/{study}/series/{series}/instances/{instance}")


def _capabilities(request: Request, base: str, template: str) -> Response:
    if not any(a.media.value in _ACCEPTED for a in parse_accept(request.headers.get("accept"))):
        raise NotAcceptable(f"the capabilities description is served as {WADL} (PS3.18 Annex H)")
    app: FastAPI = request.app
    resources = dicomweb_resources(app.openapi(), template)
    allow = ", ".join(sorted(resources[template]))
    return Response(wadl(resources, base), headers={"Allow": allow}, media_type=WADL)


def dicomweb_resources(openapi: dict[str, Any], template: str = "") -> dict[str, Operations]:
    """The operations of *template* (relative to the service root) and of the resources below
    it, by path template and method, from the application's OpenAPI document."""
    found: dict[str, Operations] = {}
    for path, item in sorted(openapi.get("paths", {}).items()):
        relative = path.removeprefix(ROOT)
        if path.startswith(ROOT) and (relative == template or relative.startswith(template + "/")):
            found[relative] = {
                verb.upper(): operation
                for verb, operation in item.items()
                if verb.upper() in HTTP_METHODS
            }
    return found


def wadl(resources: dict[str, Operations], base: str) -> bytes:
    """A WADL application (W3C Member Submission, 2009) describing *resources*."""
    ET.register_namespace("", WADL_NS)
    application = ET.Element(_wadl("application"))
    ET.SubElement(application, _wadl("doc"), title="pacs-cloud DICOMweb (PS3.18)")
    root = ET.SubElement(application, _wadl("resources"), base=f"{base}/")
    for path, operations in resources.items():
        resource = ET.SubElement(root, _wadl("resource"), path=path.lstrip("/"))
        for name in _template_names(path):
            ET.SubElement(resource, _wadl("param"), name=name, style="template", required="true")
        for verb, operation in sorted(operations.items()):
            method = ET.SubElement(
                resource, _wadl("method"), name=verb, id=str(operation.get("operationId", ""))
            )
            ET.SubElement(method, _wadl("doc"), title=str(operation.get("summary", "")))
            query = [p for p in operation.get("parameters", []) if p.get("in") == "query"]
            if query:
                request = ET.SubElement(method, _wadl("request"))
                for param in query:
                    ET.SubElement(request, _wadl("param"), name=str(param["name"]), style="query")
    document: bytes = ET.tostring(application, encoding="utf-8", xml_declaration=True)
    return document


def _wadl(name: str) -> str:
    return f"{{{WADL_NS}}}{name}"


def _template_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]
