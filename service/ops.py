"""The operations blueprint: ``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.json``.

Open even when ``CVPIPE_API_TOKEN`` is set: probes and scrapers carry no token, and
none of these answers holds data a client sent.
"""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from service.api import default_entry, service_state
from service.openapi import openapi_document

ops = Blueprint("ops", __name__)


@ops.get("/healthz")
def healthz():
    """Liveness: the worker answers."""
    return jsonify({"status": "ok"})


@ops.get("/readyz")
def readyz():
    """Readiness: the default model is loaded (else the 503 that says why)."""
    registry = service_state().registry
    if not registry.ready():
        default_entry()  # raises the 503 that says why
    return jsonify({"status": "ready", "default": registry.default_name(),
                    "models": sum(e.status == "ready" for e in registry.entries())})


@ops.get("/metrics")
def metrics():
    """The Prometheus text format."""
    state = service_state()
    state.metrics.set_models(state.registry.entries())
    body, content_type = state.metrics.exposition()
    return Response(body, content_type=content_type)


@ops.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 document of this service."""
    return jsonify(openapi_document(token_required=bool(service_state().settings.api_token)))
