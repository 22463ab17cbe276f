"""The upload page (``GET /``): drop or pick an image, see the top classes with bars.

Plain HTML, CSS and JavaScript (``templates/index.html``, ``static/``), no build
step and nothing fetched from another origin. The page calls the public API from
the browser (``GET /v1/models``, ``POST /predict``), so it needs nothing the API
does not already offer; with ``CVPIPE_API_TOKEN`` set, the person types the token
into the page, which keeps it in ``sessionStorage`` and sends it as a bearer token.
The page itself never needs the token: it holds no data.
"""
from __future__ import annotations

from flask import Blueprint, make_response, render_template, request

__all__ = ["page"]

#: Everything the page loads comes from this origin; previews are ``blob:`` URLs.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "img-src 'self' blob: data:",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

page = Blueprint(
    "page", __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/ui/static",  # not /static: the app may have its own static folder
)


@page.get("/")
def index():
    """The upload page."""
    response = make_response(render_template("index.html", api_root=request.script_root))
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache"
    return response
