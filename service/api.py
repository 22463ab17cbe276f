"""The API blueprint: ``POST /predict``, ``POST /v1/models/<name>/predict``, and the
models (``GET /v1/models[/<name>]``, ``POST /v1/models/reload``).

When ``CVPIPE_API_TOKEN`` is set, every endpoint of this blueprint requires
``Authorization: Bearer <token>``, checked by one hook (:func:`check_token`) before
any of them runs. The operations endpoints (:mod:`service.ops`: probes, metrics,
OpenAPI) live in another blueprint and stay open: probes and scrapers carry no token.
"""
from __future__ import annotations

import hmac
import re
import time

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.routing import BaseConverter

from service.decode import decode_batch, read_images
from service.errors import bad_request, not_found, unauthorized, unavailable

api = Blueprint("api", __name__)


class ModelNameConverter(BaseConverter):
    """A model name in ``GET /v1/models/<name>``: a path segment without ":" (``NAME:predict``
    is KServe v1's POST path) and not ``reload``, so that
    ``/v1/models/reload`` is only ``POST`` (its ``OPTIONS`` said ``GET`` too)."""

    regex = r"(?!reload$)[^/:]+"


@api.record_once
def _register_converter(state):
    state.app.url_map.converters["model_name"] = ModelNameConverter
DEFAULT_TOP_K = 5
_INTEGER = re.compile(r"^\+?\d{1,9}$")


def service_state():
    return current_app.extensions["cvpipe"]


# --------------------------------------------------------------------------- checks
@api.before_request
def check_token():
    token = service_state().settings.api_token
    if not token:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.strip().partition(" ")
    if not header:
        raise unauthorized("missing bearer token: expected the header 'Authorization: Bearer <token>', "
                           "got no Authorization header")
    if scheme.lower() != "bearer" or not given.strip():
        raise unauthorized(f"expected the header 'Authorization: Bearer <token>', got an Authorization "
                           f"header with scheme {scheme[:20]!r}" + ("" if given.strip() else " and no token"))
    if not hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8")):
        raise unauthorized("wrong bearer token")


def named_entry(name):
    """The loaded entry called ``name`` (looked up in the loaded set only)."""
    registry = service_state().registry
    entry = registry.get(name)
    if entry is None:
        known = [e.name for e in registry.entries()]
        raise not_found("model_not_found", f"no model named {name[:80]!r}: expected one of {known} "
                                           "(GET /v1/models lists them)")
    return entry


def ready_entry(entry):
    if entry.status != "ready":
        raise unavailable("model_unavailable", f"model {entry.name!r} failed to load: {entry.error}")
    return entry


def default_entry():
    registry = service_state().registry
    name = registry.default_name()
    if name is None:
        errors = [f"{e.name}: {e.error}" for e in registry.entries()]
        raise unavailable("no_model", "no model is loaded: expected a model folder NAME/ with manifest.json and "
                                      "arrays.npz in the models folder (CVPIPE_MODELS), got "
                                      + (f"only models that failed: {errors}" if errors else "none"))
    entry = registry.get(name)
    if entry is None:
        raise unavailable("no_model", f"the default model {name!r} (CVPIPE_DEFAULT_MODEL) is not in the models "
                                      f"folder; it holds {[e.name for e in registry.entries()]}")
    return ready_entry(entry)


def parse_top_k(value, n_classes):
    """``top_k`` from a query string, form field or JSON value: 1..n_classes (larger is clipped).

    Raises
    ------
    ApiError
        400 for anything but a positive integer.
    """
    if value is None or value == "":
        return min(DEFAULT_TOP_K, n_classes)
    if isinstance(value, int) and not isinstance(value, bool):
        k = value
    elif isinstance(value, str) and _INTEGER.match(value.strip()):
        k = int(value.strip())
    elif isinstance(value, str) and re.fullmatch(r"\+?\d+", value.strip()):
        k = n_classes  # a huge integer: clipped like any other
    else:
        k = None
    if k is None or k < 1:
        shown = value if isinstance(value, (int, float, bool)) else str(value)[:40]
        raise bad_request("invalid_top_k", f"top_k: expected a positive integer (1..{n_classes} for this "
                                           f"model; larger is clipped), got {shown!r}")
    return min(k, n_classes)


# ------------------------------------------------------------------------- predict
def _predict(entry):
    t0 = time.perf_counter()
    state = service_state()
    g.cvpipe_model = entry.name
    entry = ready_entry(entry)
    model = entry.model
    images, params = read_images(request, state.settings.max_images)
    raw_k = request.args.get("top_k") if "top_k" in request.args else params.get("top_k")
    k = parse_top_k(raw_k, len(model.classes_))
    batch = decode_batch(images, model, state.settings.max_pixels, state.settings.max_request_pixels)
    predictions = model.top_classes(batch, k)  # one batch for all images
    state.metrics.count_batch(entry.name, len(batch))
    return jsonify({
        "model": entry.name,
        "version": entry.version,
        "predictions": predictions,
        "took_ms": round((time.perf_counter() - t0) * 1000, 2),
    })


@api.post("/predict")
def predict():
    return _predict(default_entry())


@api.post("/v1/models/<name>/predict")
@api.post("/v1/models/<name>:predict")  # KServe v1 / TensorFlow Serving's path; the body is theirs already
def predict_with(name):
    return _predict(named_entry(name))


# -------------------------------------------------------------------------- models
@api.get("/v1/models")
def list_models():
    registry = service_state().registry
    return jsonify({"models": [e.summary() for e in registry.entries()], "default": registry.default_name()})


@api.get("/v1/models/<model_name:name>")
def model_info(name):
    entry = named_entry(name)
    g.cvpipe_model = entry.name
    return jsonify(entry.describe())


@api.post("/v1/models/reload")
def reload_models():
    state = service_state()
    changes = state.registry.reload()
    return jsonify({**changes, "models": [e.summary() for e in state.registry.entries()],
                    "default": state.registry.default_name()})
