"""``GET /docs``: Swagger UI for ``/openapi.json``, served from this origin.

The Swagger UI assets (5.x, which reads OpenAPI 3.1) come from the ``swagger-ui-py``
package, which ships them: nothing is fetched from a CDN, so the page works offline and
under the same Content-Security-Policy as the upload page (``script-src 'self'``; the
page's own start-up script is ``static/docs.js``).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from flask import Blueprint, make_response, render_template, request

from service.errors import unavailable
from service.page import CONTENT_SECURITY_POLICY

__all__ = ["docs"]


def _swagger_assets():
    """The folder of Swagger UI's files in the ``swagger-ui-py`` package, or None."""
    spec = importlib.util.find_spec("swagger_ui")  # found, not imported: its own server code is not used
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


ASSETS = _swagger_assets()
docs = Blueprint("docs", __name__, template_folder="templates", static_folder=ASSETS and str(ASSETS),
                 static_url_path="/docs/assets")


@docs.get("/docs")
def swagger_ui():
    """Swagger UI for this service's OpenAPI document."""
    if ASSETS is None:
        raise unavailable("docs_unavailable", "GET /docs needs the swagger-ui-py package (pip install "
                                              "swagger-ui-py); GET /openapi.json serves the document itself")
    # Swagger UI sets inline styles on its elements: 'unsafe-inline' for styles only.
    policy = CONTENT_SECURITY_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
    response = make_response(render_template("docs.html", api_root=request.script_root))
    response.headers["Content-Security-Policy"] = policy
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
