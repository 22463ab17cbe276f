"""A request -> the images in it -> arrays in a model's input contract.

Three ways to send images to a predict endpoint (:func:`read_images`):

- ``multipart/form-data``: one or more files in the field ``image``;
- a raw body with ``Content-Type: image/*``: one image;
- ``application/json``: ``{"instances": [{"b64": "<base64>"}, ...]}`` (a
  ``data:image/...;base64,`` prefix is accepted).

Each image is decoded by :func:`decode_image`: first its header alone is read, and
the format is checked against :data:`FORMATS` and its pixel count against the
limit (a decompression bomb is refused before any pixel is decoded); then the
conversion the training data went through is applied, by the very same code
(:func:`pipeline._folder.image_to_array`, on the image opened with :data:`FORMATS`): EXIF
orientation, first frame of an animation, palette (with transparency) -> RGBA,
16-bit -> 8-bit, alpha dropped, converted to the model's color mode and resized to
its input size. Training and serving cannot drift apart.

Errors are :class:`~service.errors.ApiError` with status 400 (undecodable, bad JSON
or base64, no image), 413 (too many images, too many pixels) or 415 (an unsupported
content type, a format outside :data:`FORMATS`, a document such as SVG or PDF).
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import re

from service.errors import bad_request, too_large, unsupported

#: Raster formats Pillow may decode here (Pillow's names); the parsers of the others
#: (EPS would start Ghostscript, PSD, ICNS, ...) never see request data.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM")
#: ``im.format`` of what they open: a camera's multi-picture JPEG opens as "MPO".
_OPENED = FORMATS + ("MPO",)
FIELD = "image"
_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+;base64,", re.IGNORECASE)
_DOCUMENTS = ((b"%PDF", "a PDF document"), (b"<svg", "an SVG document"), (b"<?xml", "an XML (or SVG) document"),
              (b"<!doctype html", "an HTML document"), (b"<html", "an HTML document"),
              (b"PK\x03\x04", "a ZIP archive"), (b"%!PS", "a PostScript document"))
_EXPECTED = "a raster image (" + ", ".join(FORMATS) + ")"


# ------------------------------------------------------------------- what arrived
def describe_bytes(data):
    """A short description of ``data`` for error messages (what arrived)."""
    if not data:
        return "an empty file (0 bytes)"
    head = data[:256].lstrip().lower()
    for magic, what in _DOCUMENTS:
        if head.startswith(magic.lower()) or (magic == b"<svg" and b"<svg" in head):
            return f"{what} ({len(data)} bytes)"
    text = data[:40].decode("utf-8", errors="replace")
    if all(c.isprintable() or c.isspace() for c in text.rstrip("\ufffd")):  # a cut multi-byte char at the end
        return f"{len(data)} bytes of text starting {text[:24]!r}"
    return f"{len(data)} bytes starting with {data[:8].hex(' ')}"


def _is_document(data):
    head = data[:256].lstrip().lower()
    return any(head.startswith(m.lower()) for m, _ in _DOCUMENTS) or b"<svg" in head


# ------------------------------------------------------------------------ decoding
def open_image(data, max_pixels, where="image"):
    """Open ``data`` with the allowed parsers and check its header: no pixel is decoded yet.

    Returns
    -------
    PIL.Image.Image
        The lazily opened image (its format, size and mode are known); close it after use.

    Raises
    ------
    ApiError
        400 unreadable, 413 more than ``max_pixels`` pixels, 415 a format outside
        :data:`FORMATS` or a document that is not a raster image.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise bad_request("empty_image", f"{where} is empty: expected {_EXPECTED}, got 0 bytes")
    try:
        im = Image.open(io.BytesIO(data), formats=FORMATS)  # no other parser sees request bytes
    except Image.DecompressionBombError as exc:
        raise too_large("too_many_pixels", f"{where}: expected at most {max_pixels} pixels, got an image "
                                           f"header claiming more than Pillow ever decodes ({exc})") from exc
    except UnidentifiedImageError as exc:
        if _is_document(data):
            raise unsupported("unsupported_image_format",
                              f"{where}: expected {_EXPECTED}, got {describe_bytes(data)}") from exc
        raise bad_request("invalid_image", f"{where}: expected {_EXPECTED}, got {describe_bytes(data)}, "
                                           "which is none of these formats") from exc
    except Exception as exc:  # Pillow raises many types on a corrupt header
        raise bad_request("invalid_image", f"{where}: expected {_EXPECTED}, got a corrupt or truncated header "
                                           f"({describe_bytes(data)}; {type(exc).__name__}: {exc})") from exc
    fmt, (w, h) = im.format, im.size
    if fmt not in _OPENED:
        im.close()
        raise unsupported("unsupported_image_format", f"{where}: expected {_EXPECTED}, got an image in {fmt} format")
    if w * h > max_pixels:
        im.close()
        raise too_large("too_many_pixels", f"{where}: expected at most {max_pixels} pixels, got a {fmt} image "
                                           f"of {w}x{h} = {w * h} pixels (CVPIPE_MAX_PIXELS)")
    return im


def decode_image(data, model, max_pixels, where="image"):
    """Decode one encoded image into ``model``'s input: a uint8 (H, W) or (H, W, 3) array.

    Parameters
    ----------
    data : bytes
        The encoded image (any of :data:`FORMATS`).
    model : ImagePipeline
        Gives the target ``input_shape_`` (height, width) and ``color_mode_``.
    max_pixels : int
        Largest width x height decoded (decompression-bomb limit).
    where : str
        Names the image in error messages (``"image 2 of 3"``).

    Raises
    ------
    ApiError
        400, 413 or 415, see :func:`open_image`; 400 for data that fails while decoding
        (truncated, corrupt).
    """
    from pipeline._folder import image_to_array

    height, width = model.input_shape_
    with open_image(data, max_pixels, where) as im:  # the header is checked before any pixel is decoded
        fmt, (w, h) = im.format, im.size
        try:
            return image_to_array(im, model.color_mode_, (width, height))
        except MemoryError as exc:
            raise too_large("too_many_pixels", f"{where}: a {fmt} image of {w}x{h} is too large to decode") from exc
        except Exception as exc:  # truncated or corrupt pixel data shows only now
            raise bad_request("invalid_image", f"{where}: expected a complete {fmt} image, got one that fails "
                                               f"to decode ({type(exc).__name__}: {exc})") from exc


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
    if len(images) > max_images:
        raise too_large("too_many_images", f"expected at most {max_images} images in one request "
                                           f"(CVPIPE_MAX_IMAGES), got {len(images)}")
    return images, params


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
        got = sorted(set(params) | other_files) or "no fields"
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
    parser gives (the tests hold the two equal) at a fraction of the cost on a small
    image; for anything else it returns None and the caller uses werkzeug's parser.

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
