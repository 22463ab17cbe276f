"""JSON errors: ``{"error": {"code": ..., "message": ...}}`` with the right HTTP status.

Service code raises :class:`ApiError` (or one of the named helpers below); Werkzeug's
HTTP exceptions (unknown route, wrong method, body over ``MAX_CONTENT_LENGTH``) are
turned into the same shape; anything else is a bug: logged with its traceback and
answered with a JSON 500 that gives no internals away. Bad input must never get there.
"""
from __future__ import annotations

import logging

from flask import current_app, g, has_request_context, jsonify
from werkzeug.exceptions import HTTPException

try:  # the body is read while the app runs: the server's parser raises there on a malformed one
    from gunicorn.http.errors import ParseException as ServerParseError
except ImportError:  # pragma: no cover - another server (gunicorn is installed on Linux)
    ServerParseError = None

logger = logging.getLogger("service")

#: Werkzeug's status -> our code, for errors raised by routing and request parsing.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """An error a client caused (or a state it must wait out): status, code, message.

    Parameters
    ----------
    status : int
        The HTTP status, 4xx or 503.
    code : str
        A stable, machine-readable name (``"invalid_image"``, ``"model_not_found"``).
    message : str
        For a person: what was expected and what arrived.
    headers : dict, optional
        Extra response headers (``WWW-Authenticate``, ``Retry-After``).
    """

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message = int(status), code, message
        self.headers = dict(headers or {})


def bad_request(code, message):
    return ApiError(400, code, message)


def unauthorized(message):
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": 'Bearer realm="cvpipe"'})


def not_found(code, message):
    return ApiError(404, code, message)


def too_large(code, message):
    return ApiError(413, code, message)


def unsupported(code, message):
    return ApiError(415, code, message)


def unavailable(code, message):
    return ApiError(503, code, message, {"Retry-After": "5"})


def error_response(status, code, message, headers=None):
    """The JSON error response."""
    if has_request_context():
        g.cvpipe_error_code = code  # for the errors metric
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _api_error(exc):
    return error_response(exc.status, exc.code, exc.message, exc.headers)


def _http_error(exc):
    if exc.code == 404:
        message = "no such endpoint; see GET /openapi.json for the API"
    elif exc.code == 405:
        allowed = exc.valid_methods or []
        message = f"method not allowed here; this endpoint takes {', '.join(sorted(allowed)) or 'no method'}"
    elif exc.code == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        message = f"request body too large: expected at most {limit} bytes (CVPIPE_MAX_BYTES)"
    else:
        message = exc.description or exc.name
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return error_response(exc.code or 500, _HTTP_CODES.get(exc.code, exc.name.lower().replace(" ", "_")),
                          message, headers)


def _malformed_body(exc):
    return error_response(400, "malformed_body", f"the request body is malformed: {exc}")


def _internal_error(exc):
    logger.exception("unhandled error answering a request: %s", exc)
    return error_response(500, "internal_error", "the service failed on this request; the error is logged")


def register_error_handlers(app):
    """Answer every error of ``app`` as JSON."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    if ServerParseError is not None:  # a bad chunk size, a body cut short: the client's error, a 400
        app.register_error_handler(ServerParseError, _malformed_body)
    app.register_error_handler(Exception, _internal_error)
