"""The OHIF viewer, served from its prebuilt ``dist/`` on a free loopback port, and the headless
Chromium that drives it (Debian's, never a browser downloaded by Playwright).

``scripts/install-test-deps.sh`` fetches ``@ohif/app`` from the npm registry into
``.tools/ohif/<OHIF_VERSION>/`` and installs ``/usr/bin/chromium``; the helpers here fail with a
message naming that script when either is missing.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
OHIF_VERSION = "3.13.2"
"""The ``@ohif/app`` release this app-config was verified with (pinned in the install script)."""
OHIF_DIST = ROOT / ".tools" / "ohif" / OHIF_VERSION / "dist"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    # TESTING.md: as root, on a closed network (no background traffic to Google's hosts).
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
_INSTALL_HINT = "run scripts/install-test-deps.sh (as root), which `make test` runs first"


def app_config(*, api_root: str, source_name: str = "pacs-cloud") -> str:
    """OHIF's ``app-config.js`` with ONE DICOMweb data source: our API at *api_root*.

    The shape is that of the ``app-config.js`` in ``@ohif/app`` 3.13's ``dist/`` (its
    ``dicomweb`` data source), with every URL on our server: QIDO-RS and WADO-RS under
    ``/dicom-web`` (PS3.18 §10.6, §10.4) and WADO-URI at ``/wado`` (PS3.18 §9).
    """
    configuration = {
        "friendlyName": "pacs-cloud",
        "name": source_name,
        "qidoRoot": f"{api_root}/dicom-web",
        "wadoRoot": f"{api_root}/dicom-web",
        "wadoUriRoot": f"{api_root}/wado",
        "qidoSupportsIncludeField": True,
        "supportsReject": False,
        "supportsFuzzyMatching": True,
        "supportsWildcard": True,
        "imageRendering": "wadors",
        "thumbnailRendering": "wadors",
        "enableStudyLazyLoad": True,
        "staticWado": False,
        "singlepart": False,
        "bulkDataURI": {"enabled": True},
        "omitQuotationForMultipartRequest": True,
    }
    config: dict[str, Any] = {
        "routerBasename": "/",
        "extensions": [],
        "modes": [],
        "customizationService": {},
        "showStudyList": True,
        "maxNumberOfWebWorkers": 2,
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": False,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "defaultDataSourceName": source_name,
        "investigationalUseDialog": {"option": "never"},
        "dataSources": [
            {
                "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
                "sourceName": source_name,
                "configuration": configuration,
            }
        ],
    }
    return f"window.config = {json.dumps(config, indent=2)};\n"


class _OhifHandler(SimpleHTTPRequestHandler):
    """Static files of ``dist/``; ``/app-config.js`` from memory; any other unknown path gets
    ``index.html`` (OHIF is a single-page app with client-side routes such as ``/viewer``)."""

    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
        ".json": "application/json",
    }

    def __init__(self, *args: Any, site: OhifSite, **kwargs: Any) -> None:
        self.site = site
        super().__init__(*args, directory=str(site.dist), **kwargs)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if path == "/app-config.js":
            body = self.site.config.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
            return
        if not Path(self.translate_path(path)).is_file():
            self.path = "/index.html"
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Quiet: the test records requests from the browser's side."""


class OhifSite:
    """OHIF's ``dist/`` on ``http://127.0.0.1:<free port>``; :attr:`config` is served as
    ``/app-config.js`` (set it before the browser loads the page)."""

    def __init__(self, dist: Path) -> None:
        self.dist = dist
        self.config = "window.config = {};\n"
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_OhifHandler, site=self))
        self._server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OhifSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def ohif_dist() -> Path:
    """The installed ``dist/`` of the pinned OHIF release; fails the test when it is missing."""
    if not (OHIF_DIST / "index.html").is_file():
        pytest.fail(f"OHIF {OHIF_VERSION} is not installed in {OHIF_DIST.parent}: {_INSTALL_HINT}")
    return OHIF_DIST


@contextmanager
def chromium(*, viewport: tuple[int, int] = (1280, 800)) -> Iterator[BrowserContext]:
    """Debian's headless Chromium under Playwright, on a new empty profile (its
    ``--user-data-dir``); closed afterwards."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: {_INSTALL_HINT}")
    width, height = viewport
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                args=list(CHROMIUM_ARGS),
                viewport={"width": width, "height": height},
            )
            try:
                yield context
            finally:
                context.close()
