"""The OpenAPI 3.1 document of the service (``GET /openapi.json``)."""
from __future__ import annotations

from pipeline.data.images import SAFE_FORMATS
from pipeline.version import package_version
from service.decode import FIELD

OPENAPI_VERSION = "3.1.0"


def _ref(name, kind="schemas"):
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema, description):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses):
    names = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 413: "TooLarge",
             415: "UnsupportedMediaType", 503: "Unavailable"}
    return {str(s): _ref(names[s], "responses") for s in statuses}


_TOP_K = {"name": "top_k", "in": "query", "required": False,
          "description": "How many classes to list per image (default 5, at most the number of classes). "
                         "May also be sent as a form field or a JSON key.",
          "schema": {"type": "integer", "minimum": 1, "default": 5}}
_NAME = {"name": "name", "in": "path", "required": True, "description": "A model name from GET /v1/models.",
         "schema": {"type": "string"}}
_FORMATS = ", ".join(SAFE_FORMATS)
_VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "The model's version (GET /v1/models); another is a 404."}

_PREDICT_BODY = {
    "required": True,
    "description": f"One or more images ({_FORMATS}); several images are classified as one batch.",
    "content": {
        "multipart/form-data": {
            "schema": {"type": "object", "required": [FIELD], "properties": {
                FIELD: {"type": "array", "minItems": 1,
                        "items": {"type": "string", "contentMediaType": "application/octet-stream"}},
                "top_k": {"type": "integer", "minimum": 1}}},
            "encoding": {FIELD: {"contentType": "image/*"}}},
        "image/*": {"schema": {"type": "string", "contentMediaType": "image/*"}},
        "application/json": {"schema": {"type": "object", "required": ["instances"], "properties": {
            "instances": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["b64"],
                "properties": {"b64": {"type": "string", "contentEncoding": "base64",
                                       "description": "A base64 image; a data: URL prefix is accepted."}}}},
            "top_k": {"type": "integer", "minimum": 1}}}},
    },
}

_SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string", "examples": ["invalid_image"]},
                       "message": {"type": "string", "description": "What was expected and what arrived."}}}}},
    "Prediction": {"type": "object", "required": ["label", "class_index", "score", "top_k"], "properties": {
        "label": {"type": "string"}, "class_index": {"type": "integer"},
        "score": {"type": ["number", "null"]},
        "score_kind": {"type": "string", "enum": ["probability", "decision"],
                       "description": "Probabilities (kNN, softmax, net) or SVM margins."},
        "top_k": {"type": "array", "items": {"type": "object", "required": ["label", "score"], "properties": {
            "label": {"type": "string"}, "class_index": {"type": "integer"},
            "score": {"type": ["number", "null"]}}}}}},
    "PredictResponse": {"type": "object", "required": ["model", "version", "predictions", "took_ms"], "properties": {
        "model": {"type": "string"},
        "version": {"type": "string", "description": "First 12 hex digits of the sha256 of the model's manifest.json."},
        "predictions": {"type": "array", "items": _ref("Prediction"), "description": "One per image, in order."},
        "took_ms": {"type": "number"}}},
    "ModelSummary": {"type": "object", "required": ["name", "status", "version"], "properties": {
        "name": {"type": "string"}, "status": {"type": "string", "enum": ["ready", "error"]},
        "version": {"type": ["string", "null"]}, "created": {"type": ["string", "null"]},
        "error": {"type": "string", "description": "Why the model (or its latest files) failed to load."}}},
    "ModelList": {"type": "object", "required": ["models"], "properties": {
        "models": {"type": "array", "items": _ref("ModelSummary")},
        "default": {"type": ["string", "null"], "description": "The model POST /predict uses."}}},
    "ModelInfo": {"allOf": [_ref("ModelSummary"), {"type": "object", "properties": {
        "classes": {"type": "array", "items": {"type": "object"}},
        "input": {"type": ["object", "null"], "properties": {
            "height": {"type": "integer"}, "width": {"type": "integer"},
            "color_mode": {"type": "string", "enum": ["L", "RGB"]}}},
        "features": {}, "classifier": {"type": ["object", "null"]},
        "scores": {"type": ["string", "null"]}, "metrics": {"type": ["object", "null"]},
        "cvpipe_version": {"type": ["string", "null"]},
        "card": {"anyOf": [_ref("ModelCard"), {"type": "null"}],
                 "description": "The model card, as `cvpipe info NAME --json` prints it; null without a manifest."},
    }}]},
    "ModelCard": {"type": "object", "required": ["name", "sha256", "classes", "input", "steps", "provenance",
                                                  "metrics", "versions"], "properties": {
        "name": {"type": ["string", "null"]},
        "sha256": {"type": ["string", "null"], "description": "sha256 of manifest.json (the version is its first "
                                                              "12 digits); null for a model that failed to load."},
        "arrays_sha256": {"type": ["string", "null"]}, "created": {"type": ["string", "null"]},
        "format_version": {"type": "integer"}, "migrated_from": {"type": "integer"},
        "classes": {"type": "array", "items": {"type": "object", "properties": {
            "index": {"type": "integer"}, "label": {"type": "string"}, "value": {}}}},
        "input": {"type": ["object", "null"], "properties": {
            "height": {"type": "integer"}, "width": {"type": "integer"}, "color_mode": {"type": "string"}}},
        "steps": {"type": "array", "description": "Every step but the pipeline itself, parent first.",
                  "items": {"type": "object", "required": ["name", "class", "params"], "properties": {
                      "name": {"type": "string"}, "class": {"type": "string"}, "params": {"type": "object"}}}},
        "provenance": {"anyOf": [_ref("Provenance"), {"type": "null"}],
                       "description": "How the model was made; null for a model saved without it."},
        "metrics": {"type": "object", "description": "The trainer's metrics; `test_classification_report` is "
                                                     "scikit-learn's classification_report (output_dict=True)."},
        "versions": {"type": "object", "description": "cvpipe, Python and the libraries, as saved.",
                     "additionalProperties": {"type": ["string", "null"]}}}},
    "Provenance": {"type": "object", "properties": {
        "dataset": {"type": ["object", "null"], "properties": {"train": _ref("DataRecord"),
                                                               "test": _ref("DataRecord")}},
        "config": {"type": ["object", "null"], "description": "The training arguments as resolved, with "
                                                              "`classifier_params` (get_params)."},
        "command": {"type": ["array", "null"], "items": {"type": "string"},
                    "description": "The command line; null when trained from Python."},
        "search": {"type": ["object", "null"], "description": "The search's best trial and number of trials."}}},
    "DataRecord": {"type": ["object", "null"], "properties": {
        **{k: {"type": ["string", "null"]} for k in ("name", "split", "source", "kind", "fingerprint",
                                                     "used_fingerprint")},
        **{k: {"type": ["integer", "null"]} for k in ("n_images", "n_skipped", "n_used")}}},
    "ReloadResult": {"type": "object", "properties": {
        **{k: {"type": "array", "items": {"type": "string"}}
           for k in ("added", "updated", "removed", "failed", "unchanged")},
        "models": {"type": "array", "items": _ref("ModelSummary")}}},
    "Status": {"type": "object", "properties": {"status": {"type": "string"}}},
}

_ERROR_RESPONSES = {
    "BadRequest": "Undecodable image, bad JSON or base64, no image, or a bad top_k.",
    "Unauthorized": "CVPIPE_API_TOKEN is set and the bearer token is missing or wrong.",
    "NotFound": "No such model (or endpoint).",
    "TooLarge": "Body over CVPIPE_MAX_BYTES, an image over CVPIPE_MAX_PIXELS, or more than CVPIPE_MAX_IMAGES images.",
    "UnsupportedMediaType": "A Content-Type other than multipart/form-data, image/* or application/json, "
                            "or an image format that is not accepted.",
    "Unavailable": "No model is loaded (or this one failed to load).",
}


_TOKEN_NOTE = {True: "/predict and /v1 require the bearer token (CVPIPE_API_TOKEN is set).",
               False: "No bearer token is required (CVPIPE_API_TOKEN is not set)."}


def _predict(summary, security, *params):
    return {"summary": summary, "parameters": [*params, _TOP_K], "requestBody": _PREDICT_BODY,
            "security": security,
            "responses": {"200": _json(_ref("PredictResponse"), "The top classes of each image."),
                          **_errors(400, 401, 404, 413, 415, 503)}}


def openapi_document(token_required=False):
    """The OpenAPI document, as a dict.

    Parameters
    ----------
    token_required : bool
        The server has ``CVPIPE_API_TOKEN`` set: the ``/predict`` and ``/v1`` endpoints
        require the bearer token.
    """
    status = _ref("Status")
    secured = [{"bearerAuth": []}] if token_required else []
    paths = {
        "/predict": {"post": _predict("Classify images with the default model", secured)},
        "/v1/models/{name}/predict": {"post": _predict("Classify images with the named model", secured, _NAME)},
        "/v1/models/{name}:predict": {"post": _predict("The same, on KServe v1 / TensorFlow Serving's path",
                                                       secured, _NAME)},
        "/v1/models": {"get": {"summary": "The models, their versions and load status",
                               "security": secured,
                               "responses": {"200": _json(_ref("ModelList"), "Every model folder."), **_errors(401)}}},
        "/v1/models/{name}": {"get": {"summary": "One model: classes, input contract, features, classifier, metrics",
                                      "parameters": [_NAME], "security": secured,
                                      "responses": {"200": _json(_ref("ModelInfo"), "From the model's manifest."),
                                                    **_errors(401, 404)}}},
        "/v1/models/reload": {"post": {"summary": "Load new and changed model folders, drop removed ones",
                                       "security": secured,
                                       "responses": {"200": _json(_ref("ReloadResult"), "What changed."),
                                                     **_errors(401)}}},
        "/healthz": {"get": {"summary": "Liveness", "security": [],
                             "responses": {"200": _json(status, "The process answers.")}}},
        "/readyz": {"get": {"summary": "Readiness: the default model is loaded", "security": [],
                            "responses": {"200": _json(status, "Ready to predict."), **_errors(503)}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "security": [], "responses": {"200": {
            "description": "Prometheus text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": {"summary": "This document", "security": [],
                                  "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1.")}}},
    }
    paths.update(_open_inference_protocol(secured))
    paths["/docs"] = {"get": {"summary": "Swagger UI for this document", "security": [],
                              "responses": {"200": {"description": "An HTML page.",
                                                    "content": {"text/html": {"schema": {"type": "string"}}}},
                                            **_errors(503)}}}
    paths["/"] = {"get": {"summary": "Upload page: drop an image, see the top classes", "security": [],
                          "responses": {"200": {"description": "An HTML page.",
                                                "content": {"text/html": {"schema": {"type": "string"}}}}}}}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "cvpipe prediction service", "version": package_version(),
                 "description": "Classic computer-vision pipelines (hand-made features, classic classifiers) "
                                "behind an HTTP API. Errors are JSON {\"error\": {\"code\", \"message\"}}. "
                                + (_TOKEN_NOTE[token_required])},
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "responses": {name: _json(_ref("Error"), text) for name, text in _ERROR_RESPONSES.items()},
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


def _open_inference_protocol(secured):
    """The Open Inference Protocol v2 paths (service/oip.py); their bodies are the protocol's
    (https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/), errors
    ``{"error": "<message>"}``."""
    error = {"description": "The protocol's error.", "content": {"application/json": {"schema": {
        "type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}}}}
    errors = {str(status): error for status in (400, 401, 404, 413, 415, 503)}
    anything = {"type": "object"}
    tensors = {"required": True, "description": "An inference request: one input tensor, 'image' (BYTES, "
               "encoded images) or 'pixels' (UINT8 [N, H, W(, 3)]), as JSON or with the binary tensor data "
               "extension (header Inference-Header-Content-Length).",
               "content": {"application/json": {"schema": anything},
                           "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    answer = {"description": "Outputs 'scores' (FP32 [N, n_classes]) and 'label' (BYTES [N]).",
              "content": {"application/json": {"schema": anything},
                          "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}

    not_ready = _json({"type": "object", "required": ["ready"], "properties": {"ready": {"type": "boolean"}}},
                      "Not ready: {\"ready\": false}.")

    def get(summary, params=(), security=secured, codes=(404, 503), readiness=False):
        responses = {"200": _json(anything, summary), **{c: errors[c] for c in map(str, codes)},
                     **({"401": errors["401"]} if security else {})}
        if readiness:
            responses["503"] = not_ready
        return {"get": {"summary": summary, "parameters": list(params), "security": security,
                        "responses": responses}}

    def infer(params):
        return {"post": {"summary": "Classify a batch (Open Inference Protocol v2)", "parameters": list(params),
                         "security": secured, "requestBody": tensors,
                         "responses": {"200": answer, **{c: errors[c] for c in ("400", "401", "404", "413", "415",
                                                                                  "503")}}}}

    return {
        "/v2": get("Server metadata (Open Inference Protocol v2)", codes=()),
        "/v2/health/live": get("Liveness (v2)", security=[], codes=()),
        "/v2/health/ready": get("Readiness (v2): the default model is loaded", security=[], readiness=True, codes=()),
        "/v2/models/{name}": get("Model metadata (v2): inputs and outputs", [_NAME]),
        "/v2/models/{name}/versions/{version}": get("Model metadata (v2), of this version", [_NAME, _VERSION]),
        "/v2/models/{name}/ready": get("Model readiness (v2)", [_NAME], readiness=True),
        "/v2/models/{name}/versions/{version}/ready": get("Model readiness (v2), of this version",
                                                          [_NAME, _VERSION], readiness=True),
        "/v2/models/{name}/infer": infer([_NAME]),
        "/v2/models/{name}/versions/{version}/infer": infer([_NAME, _VERSION]),
    }
