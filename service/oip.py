"""The Open Inference Protocol v2 over HTTP (KServe v2, NVIDIA Triton), so that their
clients (``tritonclient.http``, KServe's) talk to the service unchanged.

Endpoints: ``GET /v2`` (server metadata), ``GET /v2/health/live``, ``GET
/v2/health/ready``, ``GET /v2/models/<name>[/versions/<v>]`` (model metadata), ``GET
.../ready``, ``POST .../infer``. A model takes one input tensor, either

- ``image``: BYTES, shape ``[N]``, each element an encoded image (PNG, JPEG, ...), decoded
  as ``/predict`` decodes files; or
- ``pixels``: UINT8, shape ``[N, H, W]`` or ``[N, H, W, 3]``, converted to the model's
  color mode and size as any image is;

and answers ``scores`` (FP32 ``[N, n_classes]``: probabilities where the classifier has
them, else decision scores, as ``/predict``'s ``score_kind`` says) and ``label`` (BYTES
``[N]``). Tensors travel as JSON or with the binary tensor data extension (the JSON
header's length in ``Inference-Header-Content-Length``, then the raw bytes; BYTES
elements each prefixed by their 4-byte little-endian length), as the client chooses;
in JSON, BYTES elements are base64 strings. Errors are the protocol's ``{"error":
"<message>"}``. The version of a model is its manifest's (``GET /v1/models``).

Auth (but for the two health probes), limits and metrics are the API's (``CVPIPE_API_TOKEN``, ``CVPIPE_MAX_IMAGES``,
``CVPIPE_MAX_PIXELS``, ``CVPIPE_MAX_REQUEST_PIXELS``).
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import struct

import numpy as np
from flask import Blueprint, Response, g, jsonify, request
from PIL import Image

from pipeline.data.images import to_array
from pipeline.version import package_version
from service.api import check_token, named_entry, ready_entry, service_state
from service.decode import check_image_count, decode_batch
from service.errors import ApiError, bad_request, not_found, too_large

v2 = Blueprint("v2", __name__, url_prefix="/v2")


@v2.before_request
def _check_token_but_for_probes():
    if request.endpoint not in ("v2.live", "v2.ready"):  # probes carry no token (as /healthz, /readyz)
        check_token()
HEADER_LENGTH = "Inference-Header-Content-Length"
INPUTS = {"image": "BYTES", "pixels": "UINT8"}


@v2.errorhandler(ApiError)
def _protocol_error(exc):
    response = jsonify({"error": exc.message})
    response.status_code = exc.status
    g.cvpipe_error_code = exc.code
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


# ------------------------------------------------------------------ health and metadata
@v2.get("")
def server_metadata():
    return jsonify({"name": "cvpipe", "version": package_version(), "extensions": ["binary_tensor_data"]})


@v2.get("/health/live")
def live():
    return jsonify({"live": True})


@v2.get("/health/ready")
def ready():
    is_ready = service_state().registry.ready()
    return jsonify({"ready": is_ready}), 200 if is_ready else 503


def _model(name, version):
    entry = named_entry(name)
    g.cvpipe_model = entry.name
    if version is not None and version != entry.version:
        raise not_found("version_not_found", f"model {entry.name!r} serves version {entry.version}, not "
                                             f"{version[:40]!r}")
    return entry


@v2.get("/models/<name>")
@v2.get("/models/<name>/versions/<version>")
def model_metadata(name, version=None):
    entry = ready_entry(_model(name, version))
    model = entry.model
    height, width = model.input_shape_
    channels = [3] if model.color_mode_ == "RGB" else []
    return jsonify({
        "name": entry.name, "versions": [entry.version], "platform": "cvpipe",
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [-1]},
                   {"name": "pixels", "datatype": "UINT8", "shape": [-1, height, width, *channels]}],
        "outputs": [{"name": "scores", "datatype": "FP32", "shape": [-1, len(model.classes_)]},
                    {"name": "label", "datatype": "BYTES", "shape": [-1]}],
    })


@v2.get("/models/<name>/ready")
@v2.get("/models/<name>/versions/<version>/ready")
def model_ready(name, version=None):
    entry = _model(name, version)
    return jsonify({"name": entry.name, "ready": entry.status == "ready"}), 200 if entry.status == "ready" else 503


# ------------------------------------------------------------------------------ infer
@v2.post("/models/<name>/infer")
@v2.post("/models/<name>/versions/<version>/infer")
def infer(name, version=None):
    entry = ready_entry(_model(name, version))
    settings = service_state().settings
    doc, binary = _read_body()
    tensor = _one_input(doc)
    data = _tensor_data(tensor, binary)
    model = entry.model
    if tensor["name"] == "image":
        encoded = _bytes_elements(tensor, data)
        check_image_count(len(encoded), settings.max_images)
        batch = decode_batch(encoded, model, settings.max_pixels, settings.max_request_pixels)
    else:
        pixels = _pixels(tensor, data, settings)
        batch = np.stack([to_array(Image.fromarray(image), model.input_shape_, model.color_mode_)
                          for image in pixels])
    scores, _kind = model.class_scores(batch)
    scores = np.asarray(scores, dtype=np.float32)
    labels = [model.class_names_[int(i)] for i in np.argmax(np.nan_to_num(scores, nan=-np.inf), axis=1)]
    service_state().metrics.count_batch(entry.name, len(batch))
    return _answer(doc, entry, scores, labels)


def _read_body():
    raw = request.get_data(cache=False)
    length = request.headers.get(HEADER_LENGTH)
    if length is not None:
        if not length.strip().isdigit() or int(length) > len(raw):
            raise bad_request("invalid_header_length", f"{HEADER_LENGTH}: expected the byte length of the JSON "
                                                       f"header (at most the body's {len(raw)}), got {length[:20]!r}")
        raw, binary = raw[:int(length)], raw[int(length):]
    else:
        binary = b""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request("invalid_json", f"expected an inference request as JSON, got {raw[:40]!r} ({exc})") from exc
    if not isinstance(doc, dict):
        raise bad_request("invalid_request", f"expected a JSON object with 'inputs', got {type(doc).__name__}")
    return doc, binary


def _one_input(doc):
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise bad_request("invalid_inputs", "expected 'inputs' to hold one tensor, 'image' (BYTES) or 'pixels' "
                                            f"(UINT8), got {json.dumps(inputs)[:80]}")
    tensor = inputs[0]
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    if name not in INPUTS or datatype != INPUTS[name]:
        raise bad_request("invalid_inputs", f"expected the input 'image' (BYTES) or 'pixels' (UINT8), got "
                                            f"{str(name)[:40]!r} ({str(datatype)[:10]})")
    if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise bad_request("invalid_shape", f"input {name!r}: expected a shape of non-negative integers, got "
                                           f"{json.dumps(shape)[:60]}")
    return tensor


def _tensor_data(tensor, binary):
    """The tensor's binary bytes (the extension), or its JSON ``data``."""
    size = (tensor.get("parameters") or {}).get("binary_data_size")
    if size is None:
        if "data" not in tensor:
            raise bad_request("invalid_inputs", f"input {tensor['name']!r} has neither 'data' nor binary data")
        return tensor["data"]
    if not isinstance(size, int) or size < 0 or size != len(binary):
        raise bad_request("invalid_binary_size", f"input {tensor['name']!r}: binary_data_size {size!r} does not "
                                                 f"match the {len(binary)} bytes after the JSON header")
    return binary


def _flatten(data):
    out = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out


def _bytes_elements(tensor, data):
    """The encoded images of a BYTES tensor (binary: length-prefixed; JSON: base64 strings)."""
    if isinstance(data, (bytes, bytearray)):
        elements, at = [], 0
        while at < len(data):
            if at + 4 > len(data):
                raise bad_request("invalid_bytes_tensor", "input 'image': a BYTES element's 4-byte length is cut off")
            (length,) = struct.unpack_from("<I", data, at)
            if at + 4 + length > len(data):
                raise bad_request("invalid_bytes_tensor", f"input 'image': an element claims {length} bytes, more "
                                                          "than the binary data holds")
            elements.append(bytes(data[at + 4:at + 4 + length]))
            at += 4 + length
    else:
        elements = []
        for item in _flatten(data):
            try:
                elements.append(base64.b64decode(item, validate=True) if isinstance(item, str) else None)
            except (binascii.Error, ValueError):
                elements.append(None)
            if elements[-1] is None:
                raise bad_request("invalid_bytes_tensor", "input 'image': in JSON, expected each element as a "
                                                          f"base64 string, got {str(item)[:40]!r}")
    if int(np.prod(tensor["shape"])) != len(elements) or len(tensor["shape"]) > 2 or \
            (len(tensor["shape"]) == 2 and tensor["shape"][1] != 1):
        raise bad_request("invalid_shape", f"input 'image': expected shape [N] (or [N, 1]) for the {len(elements)} "
                                           f"elements sent, got {tensor['shape']}")
    if not elements:
        raise bad_request("missing_image", "input 'image': expected at least one encoded image, got none")
    return elements


def _pixels(tensor, data, settings):
    shape = tensor["shape"]
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] != 3) or 0 in shape:
        raise bad_request("invalid_shape", f"input 'pixels': expected shape [N, H, W] or [N, H, W, 3] with no "
                                           f"zero, got {shape}")
    check_image_count(shape[0], settings.max_images)
    if shape[1] * shape[2] > settings.max_pixels or shape[0] * shape[1] * shape[2] > settings.max_request_pixels:
        raise too_large("request_too_large", f"input 'pixels' {shape}: more pixels than an image "
                                             f"({settings.max_pixels}, CVPIPE_MAX_PIXELS) or a request "
                                             f"({settings.max_request_pixels}, CVPIPE_MAX_REQUEST_PIXELS) may hold")
    count = int(np.prod(shape))
    if isinstance(data, (bytes, bytearray)):
        if len(data) != count:
            raise bad_request("invalid_shape", f"input 'pixels': shape {shape} needs {count} bytes, got {len(data)}")
        return np.frombuffer(bytes(data), dtype=np.uint8).reshape(shape)
    values = _flatten(data)
    if len(values) != count or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255
                                       for v in values):
        raise bad_request("invalid_pixels", f"input 'pixels': expected {count} integers in 0..255 for shape "
                                            f"{shape}, got {len(values)} values")
    return np.asarray(values, dtype=np.uint8).reshape(shape)


def _answer(doc, entry, scores, labels):
    """The response, in JSON or with binary outputs where the request asked for them."""
    params = doc.get("parameters") or {}
    asked = doc.get("outputs")
    names = ["scores", "label"]
    binary = {name: bool(params.get("binary_data_output")) for name in names}
    if isinstance(asked, list) and asked:
        chosen = {o.get("name"): o for o in asked if isinstance(o, dict)}
        unknown = sorted(set(chosen) - set(names), key=str)
        if unknown:
            raise bad_request("invalid_outputs", f"expected outputs among {names}, got {unknown}")
        names = [name for name in names if name in chosen]
        binary = {name: bool((chosen[name].get("parameters") or {}).get("binary_data", binary[name]))
                  for name in names}
    tensors = {"scores": ("FP32", list(scores.shape), scores),
               "label": ("BYTES", [len(labels)], labels)}
    outputs, blobs = [], []
    for name in names:
        datatype, shape, value = tensors[name]
        out = {"name": name, "datatype": datatype, "shape": shape}
        if binary[name]:
            blob = (value.astype("<f4").tobytes() if datatype == "FP32" else
                    b"".join(struct.pack("<I", len(s.encode())) + s.encode() for s in value))
            out["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            out["data"] = ([v if math.isfinite(v) else None for v in value.ravel().tolist()] if datatype == "FP32"
                           else list(value))  # strict JSON: a score that is not finite is null
        outputs.append(out)
    header = {"model_name": entry.name, "model_version": entry.version, "outputs": outputs}
    if "id" in doc:
        header["id"] = doc["id"]
    text = json.dumps(header, allow_nan=False).encode()
    if not blobs:
        return Response(text, mimetype="application/json")
    response = Response(text + b"".join(blobs), mimetype="application/octet-stream")
    response.headers[HEADER_LENGTH] = str(len(text))
    return response
