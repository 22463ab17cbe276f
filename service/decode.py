"""A request -> the images in it -> arrays in a model's input contract.

Three ways to send images to a predict endpoint (:func:`read_images`):

- ``multipart/form-data``: one or more files in the field ``image``;
- a raw body with ``Content-Type: image/*``: one image;
- ``application/json``: ``{"instances": [{"b64": "<base64>"}, ...]}`` (a
  ``data:image/...;base64,`` prefix is accepted).

Each image is decoded by :func:`decode_image`, which is the decoder training uses
(:func:`pipeline.data.images.decode_image`) with the formats limited to
:data:`~pipeline.data.images.SAFE_FORMATS` and the pixel count to ``CVPIPE_MAX_PIXELS``,
both checked from the header before any pixel is decoded (a decompression bomb is
refused). Training and serving cannot drift apart.

Errors are :class:`~service.errors.ApiError` with status 400 (undecodable, bad JSON
or base64, no image), 413 (too many images, too many pixels) or 415 (an unsupported
content type, a format outside ``SAFE_FORMATS``, a document such as SVG or PDF).
"""
from __future__ import annotations

import base64
import binascii
import json
import re

import numpy as np

from pipeline.data import images
from pipeline.data.images import (
    SAFE_FORMATS,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageError,
    describe_bytes,
    expected_formats,
)
from service.errors import bad_request, too_large, unsupported

FIELD = "image"
_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+;base64,", re.IGNORECASE)
_EXPECTED = expected_formats(SAFE_FORMATS)
#: What each kind of :class:`~pipeline.data.images.ImageError` is answered with.
_STATUS = {ImageTooLargeError: too_large, UnsupportedImageError: unsupported, ImageError: bad_request}


def decode_image(data, model, max_pixels, where="image"):
    """Decode one encoded image into ``model``'s input: a uint8 (H, W) or (H, W, 3) array.

    :func:`pipeline.data.images.decode_image` limited to :data:`SAFE_FORMATS` and
    ``max_pixels``, its errors answered as the API's.

    Parameters
    ----------
    data : bytes
        The encoded image (any of :data:`SAFE_FORMATS`).
    model : ImagePipeline
        Gives the target ``input_shape_`` (height, width) and ``color_mode_``.
    max_pixels : int
        Largest width x height decoded (decompression-bomb limit, ``CVPIPE_MAX_PIXELS``).
    where : str
        Names the image in error messages (``"image 2 of 3"``).

    Raises
    ------
    ApiError
        400 unreadable, 413 more than ``max_pixels`` pixels, 415 a format outside
        :data:`SAFE_FORMATS` or a document that is not a raster image.
    """
    try:
        return images.decode_image(data, model.input_shape_, model.color_mode_, formats=SAFE_FORMATS,
                                   max_pixels=max_pixels, where=where)
    except ImageError as exc:
        raise _api_error(exc) from exc


def _api_error(exc):
    """The API's answer to an :class:`~pipeline.data.images.ImageError`."""
    answer = next(make for kind, make in _STATUS.items() if isinstance(exc, kind))
    return answer(exc.code, str(exc))


def decode_batch(encoded, model, max_pixels, max_request_pixels):
    """The encoded images of one request as ``model``'s input batch, uint8 (N, H, W[, 3]).

    Their pixels are summed from the headers against ``max_request_pixels`` before any
    is decoded (64 images of 6000x6000 in one 6.5 MB request took 19.7 s of a worker to
    decode); then each goes through :func:`decode_image`.

    Raises
    ------
    ApiError
        413 over the budget (``CVPIPE_MAX_REQUEST_PIXELS``); the errors of
        :func:`decode_image`, their message naming the image.
    """
    n = len(encoded)
    where = ["image" if n == 1 else f"image {i + 1} of {n}" for i in range(n)]
    total = 0
    for data, name in zip(encoded, where):
        try:
            with images.open_image(data, formats=SAFE_FORMATS, max_pixels=max_pixels, where=name) as im:
                total += im.size[0] * im.size[1]
        except ImageError as exc:
            raise _api_error(exc) from exc
        if total > max_request_pixels:
            raise too_large("request_too_large", f"the images of this request hold more than {max_request_pixels} "
                            f"pixels (width x height, summed over its {n} images; CVPIPE_MAX_REQUEST_PIXELS): "
                            "send fewer or smaller images")
    return np.stack([decode_image(data, model, max_pixels, where=name) for data, name in zip(encoded, where)])


# ------------------------------------------------------------------ request bodies
def read_images(request, max_images):
    """The encoded images of a predict request, and the parameters its body carries.

    Returns
    -------
    images : list of bytes
    params : dict
        Form fields or JSON keys other than the images (``top_k``), raw values.

    Raises
    ------
    ApiError
        400 no image, bad JSON or base64; 413 more than ``max_images`` images;
        415 a content type other than multipart, JSON or ``image/*``.
    """
    mimetype = request.mimetype or ""
    if mimetype == "multipart/form-data":
        images, params = _from_form(request)
    elif mimetype == "application/json" or mimetype.endswith("+json"):
        images, params = _from_json(request.get_data(cache=False), max_images)
    elif mimetype.startswith("image/"):
        images, params = [request.get_data(cache=False)], {}
        if not images[0]:
            raise bad_request("empty_body", f"empty body: expected the bytes of {_EXPECTED} "
                                            f"(Content-Type: {mimetype}), got 0 bytes")
    elif not mimetype and not request.content_length and not request.get_data(cache=False):
        raise bad_request("empty_body", "empty body: expected an image as multipart/form-data (field 'image'), "
                                        "a raw image/* body, or JSON {\"instances\": [{\"b64\": ...}]}")
    else:
        raise unsupported("unsupported_media_type",
                          f"Content-Type {request.content_type or '(none)'!r} is not accepted: expected "
                          "multipart/form-data (field 'image'), image/* (a raw image body) or application/json")
    check_image_count(len(images), max_images)
    return images, params


def check_image_count(n, max_images):
    """Refuse a request of more than ``max_images`` images (413, ``CVPIPE_MAX_IMAGES``)."""
    if n > max_images:
        raise too_large("too_many_images", f"expected at most {max_images} images in one request "
                                           f"(CVPIPE_MAX_IMAGES), got {n}")


def _from_form(request):
    simple = parse_simple_multipart(request.get_data(cache=True), request.mimetype_params.get("boundary"))
    if simple is not None:
        files, params, other_files = simple
    else:
        # Anything the short parser does not take (quoted-pair or encoded names, a preamble,
        # large text fields, a malformed body) goes through werkzeug's parser, which reads
        # the body cached above.
        files = [f.read() for f in request.files.getlist(FIELD)]
        params, other_files = dict(request.form.items()), set(request.files) - {FIELD}
    if not files:
        # werkzeug files a part without a name under None: say so (sorting None beside names failed)
        got = sorted("(a part without a name)" if k is None else k for k in set(params) | other_files) or "no fields"
        raise bad_request("missing_image", f"expected one or more files in the form field {FIELD!r}, got {got}")
    return files, params


_DISPOSITION = re.compile(rb'form-data; name="([\x20\x21\x23-\x5b\x5d-\x7e]*)"'
                          rb'(?:; filename="([\x20\x21\x23-\x5b\x5d-\x7e]*)")?', re.IGNORECASE)
_MAX_SIMPLE_FIELD = 1024  # bytes of a text field the short parser takes; larger ones go to werkzeug


def parse_simple_multipart(body, boundary):
    """The ``image`` files and the text fields of a plain ``multipart/form-data`` body.

    A short parser for the form every client sends (curl ``-F``, browsers, ``requests``):
    the body starts with the first boundary; each part has a ``Content-Disposition:
    form-data; name="..."[; filename="..."]`` header with printable ASCII names and no
    quoted pairs; text fields are short ASCII. For such a body it gives what werkzeug's
    parser gives (the tests hold the two equal) at a fraction of its cost, which a served
    one-image /predict and, more, a many-image one feel (BENCHMARKS.md, "Shortcuts on the
    service path"); for anything else it returns None and the caller uses werkzeug's parser.

    Parameters
    ----------
    body : bytes
    boundary : str or None
        The ``boundary`` parameter of the Content-Type.

    Returns
    -------
    (files, params, other_files) or None
        ``files``: the contents of the parts named ``image`` that carry a filename, in
        order; ``params``: the first value of every text field; ``other_files``: the
        names of the other file fields.
    """
    if not boundary or len(boundary) > 200 or not body:
        return None
    delimiter = b"--" + boundary.encode("latin-1", "replace")
    separator = b"\r\n" + delimiter
    if not body.startswith(delimiter + b"\r\n"):
        return None
    files, params, other_files, pos = [], {}, set(), len(delimiter) + 2
    while True:
        end = body.find(separator, pos)
        head_end = body.find(b"\r\n\r\n", pos, end)
        if end < 0 or head_end < 0:
            return None
        disposition = None
        for line in body[pos:head_end].split(b"\r\n"):
            name, colon, value = line.partition(b":")
            if not colon:
                return None
            if name.strip().lower() == b"content-disposition":
                if disposition is not None:
                    return None
                disposition = _DISPOSITION.fullmatch(value.strip())
                if disposition is None:
                    return None
        if disposition is None:
            return None
        content = body[head_end + 4:end]
        field, filename = disposition.group(1).decode("ascii"), disposition.group(2)
        if filename is not None:
            if field == FIELD:
                files.append(content)
            else:
                other_files.add(field)
        elif len(content) > _MAX_SIMPLE_FIELD or not content.isascii():
            return None
        else:
            params.setdefault(field, content.decode("ascii"))
        after = end + len(separator)
        if body[after:after + 2] == b"--":
            return files, params, other_files
        if body[after:after + 2] != b"\r\n":
            return None
        pos = after + 2


def _from_json(body, max_images):
    if not body:
        raise bad_request("empty_body", 'empty body: expected JSON {"instances": [{"b64": "..."}]}')
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad_request("invalid_json", f'expected a JSON body {{"instances": [{{"b64": "..."}}]}}, got '
                                          f"{describe_bytes(body)} that does not parse ({exc})") from exc
    instances = doc.get("instances") if isinstance(doc, dict) else None
    if not isinstance(instances, list) or not instances:
        got = f"keys {sorted(doc)}" if isinstance(doc, dict) else f"a JSON {type(doc).__name__}"
        if isinstance(doc, dict) and "instances" in doc:
            got = f"instances = {json.dumps(instances)[:60]}"
        raise bad_request("invalid_json", f'expected {{"instances": [{{"b64": "..."}}, ...]}} with at least one '
                                          f"instance, got {got}")
    if len(instances) > max_images:
        raise too_large("too_many_images", f"expected at most {max_images} images in one request "
                                           f"(CVPIPE_MAX_IMAGES), got {len(instances)} instances")
    images = [_b64(item, i, len(instances)) for i, item in enumerate(instances)]
    return images, {k: v for k, v in doc.items() if k != "instances"}


def _b64(item, i, n):
    where = f"instances[{i}]" if n > 1 else "instances[0]"
    if not isinstance(item, dict) or not isinstance(item.get("b64"), str):
        got = f"keys {sorted(item)}" if isinstance(item, dict) else f"a JSON {type(item).__name__}"
        raise bad_request("invalid_json", f'{where}: expected an object {{"b64": "<base64 image>"}}, got {got}')
    text = _DATA_URL.sub("", item["b64"].strip(), count=1)
    text = "".join(text.split())  # MIME base64 wraps lines
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        try:  # the URL-safe alphabet (-_ for +/)
            return base64.b64decode(text, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            pass
        raise bad_request("invalid_base64", f"{where}.b64: expected standard base64, got {len(text)} characters "
                                            f"starting {text[:16]!r} that do not decode ({exc})") from exc
