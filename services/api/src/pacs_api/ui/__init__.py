"""The web dashboard at ``/ui``: static HTML, CSS and JavaScript modules (no build step, no
CDN: every asset is served from :data:`STATIC`), and the small configuration the page reads.

The page calls the API's DICOMweb resources and ``/usage`` on its own origin, and the mesh
exporter and the bridge's status API directly when ``ui_exporter_url`` and
``ui_bridge_status_url`` are set (those services must allow the dashboard's origin by CORS).
"""

from pacs_api.ui.routes import router

__all__ = ["router"]
