"""A corpus of awkward requests against one app: each gets its answer, none a 500.

Malformed, hostile or unsupported input gets its 4xx JSON error; valid but unusual
images (1x1, 10000x1, 16-bit, CMYK, palette with transparency, alpha, animated GIF,
TIFF, WebP, EXIF-rotated, ...) get a 200 with predictions. After the whole corpus the
same app still answers a good request, and its metrics count no 500.
"""
from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from pipeline.data.testing import png_header

TOKEN = "corpus-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BYTES = 1 << 20
MAX_IMAGES = 8


def _save(image, fmt="PNG", **params):
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def _color():
    return Image.fromarray(np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8))


def _palette_transparent():
    im = Image.new("P", (12, 12), 1)
    im.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    im.paste(0, (0, 0, 6, 12))
    return _save(im, transparency=0)


def _animated_gif():
    frames = [_color().convert("P"), Image.new("P", (30, 20), 3)]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def _exif_rotated():
    """A JPEG stored sideways with EXIF orientation 6 (display: rotate 90 degrees clockwise)."""
    upright = np.zeros((16, 8), np.uint8)
    upright[:4] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(Image.fromarray(np.rot90(upright, 1).copy()), "JPEG", exif=exif, quality=95)


PNG = _save(_color())
JPEG = _save(_color(), "JPEG")


def raw(data, content_type="image/png", path="/predict", **kw):
    return {"path": path, "data": data, "content_type": content_type, **kw}


def form(**fields):
    return {"path": "/predict", "data": fields, "content_type": "multipart/form-data"}


def files(*blobs, field="image"):
    return form(**{field: [(io.BytesIO(b), f"f{i}.png") for i, b in enumerate(blobs)]})


def encoded_form(blob, field="image"):
    """A multipart body built here (the test client would spool a large one to an unclosed temp file)."""
    body = (b"--b0undary\r\nContent-Disposition: form-data; name=\"" + field.encode()
            + b"\"; filename=\"big.png\"\r\nContent-Type: image/png\r\n\r\n" + blob + b"\r\n--b0undary--\r\n")
    return {"path": "/predict", "data": body, "content_type": "multipart/form-data; boundary=b0undary"}


def as_json(doc, path="/predict"):
    body = doc if isinstance(doc, (bytes, str)) else json.dumps(doc)
    return {"path": path, "data": body, "content_type": "application/json"}


def b64(data):
    return base64.b64encode(data).decode()


BAD = [  # (id, request, status, error code)
    ("empty body", raw(b""), 400, "empty_body"),
    ("empty body, no content type", {"path": "/predict", "data": b""}, 400, "empty_body"),
    ("truncated PNG", raw(PNG[: len(PNG) // 2]), 400, "invalid_image"),
    ("truncated JPEG", raw(JPEG[:300], "image/jpeg"), 400, "invalid_image"),
    ("text sent as image/png", raw(b"hello, I am not a picture\n"), 400, "invalid_image"),
    ("random bytes", raw(bytes(range(256)) * 4), 400, "invalid_image"),
    ("SVG", raw(b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>', "image/svg+xml"),
     415, "unsupported_image_format"),
    ("PDF as application/pdf", raw(b"%PDF-1.4\n%%EOF\n", "application/pdf"), 415, "unsupported_media_type"),
    ("PDF in a form", files(b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n"), 415, "unsupported_image_format"),
    ("EPS (Pillow reads it, we do not)", raw(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n", "image/eps"),
     415, "unsupported_image_format"),
    ("ICO (not an accepted format)", raw(_save(_color(), "ICO"), "image/x-icon"), 400, "invalid_image"),
    ("bomb: PNG header claiming 100000x100000", raw(png_header(100_000, 100_000)), 413, "too_many_pixels"),
    ("bomb: PNG header claiming 8000x8000 (64 MP)", raw(png_header(8000, 8000)), 413, "too_many_pixels"),
    ("wrong form field", files(PNG, field="file"), 400, "missing_image"),
    ("form without files", form(top_k="3"), 400, "missing_image"),
    ("empty file in a form", files(b""), 400, "empty_image"),
    ("too many files", files(*[PNG] * (MAX_IMAGES + 1)), 413, "too_many_images"),
    ("too many JSON instances", as_json({"instances": [{"b64": b64(PNG)}] * (MAX_IMAGES + 1)}),
     413, "too_many_images"),
    ("invalid JSON", as_json(b'{"instances": [{"b64": '), 400, "invalid_json"),
    ("JSON list, not an object", as_json([{"b64": b64(PNG)}]), 400, "invalid_json"),
    ("JSON without instances", as_json({"images": [b64(PNG)]}), 400, "invalid_json"),
    ("JSON instance without b64", as_json({"instances": [{"url": "http://x/y.png"}]}), 400, "invalid_json"),
    ("invalid base64", as_json({"instances": [{"b64": "not base64!!"}]}), 400, "invalid_base64"),
    ("base64 of text", as_json({"instances": [{"b64": b64(b"just text")}]}), 400, "invalid_image"),
    ("JSON nested 100000 deep", as_json(b"[" * 100_000 + b"]" * 100_000), 400, "invalid_json"),
    ("JSON not UTF-8", as_json(b'{"instances": "\xff\xfe"}'), 400, "invalid_json"),
    ("malformed multipart", {"path": "/predict", "data": b"--x\r\nContent-Disposition: form-data\r\n\r\nab",
                             "content_type": "multipart/form-data; boundary=x"}, 400, "missing_image"),
    ("wrong content type", raw(b"hello", "text/plain"), 415, "unsupported_media_type"),
    ("form-urlencoded", {"path": "/predict", "data": "image=abc",
                         "content_type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
    ("oversized raw body", raw(b"\x89PNG" + b"\0" * MAX_BYTES), 413, "payload_too_large"),
    ("oversized form", encoded_form(PNG + b"\0" * MAX_BYTES), 413, "payload_too_large"),
    ("top_k not a number", raw(PNG, path="/predict?top_k=abc"), 400, "invalid_top_k"),
    ("top_k zero", raw(PNG, path="/predict?top_k=0"), 400, "invalid_top_k"),
    ("top_k negative in the form", form(image=(io.BytesIO(PNG), "a.png"), top_k="-2"), 400, "invalid_top_k"),
    ("top_k a float in JSON", as_json({"instances": [{"b64": b64(PNG)}], "top_k": 2.5}), 400, "invalid_top_k"),
    ("unknown model", raw(PNG, path="/v1/models/nope/predict"), 404, "model_not_found"),
    ("model name with ../", raw(PNG, path="/v1/models/..%2Fdefault/predict"), 404, None),
    ("model name ..", raw(PNG, path="/v1/models/../predict"), 404, None),
    ("model info with ../", {"path": "/v1/models/..%2F..%2Fetc%2Fpasswd", "method": "GET"}, 404, None),
    ("model that failed to load", raw(PNG, path="/v1/models/broken/predict"), 503, "model_unavailable"),
    ("missing token", raw(PNG, headers={}), 401, "unauthorized"),
    ("wrong token", raw(PNG, headers={"Authorization": "Bearer wrong"}), 401, "unauthorized"),
    ("wrong scheme", raw(PNG, headers={"Authorization": f"Basic {TOKEN}"}), 401, "unauthorized"),
    ("non-ASCII token", raw(PNG, headers={"Authorization": "Bearer jeton-\u00e9t\u00e9"}), 401, "unauthorized"),
    ("GET /predict", {"path": "/predict", "method": "GET"}, 405, "method_not_allowed"),
    ("unknown route", {"path": "/v2/predict"}, 404, "not_found"),
]

GOOD = [  # (id, request, number of predictions)
    ("1x1", raw(_save(Image.new("L", (1, 1), 200))), 1),
    ("10000x1", raw(_save(Image.new("L", (10_000, 1), 90))), 1),
    ("16-bit PNG", raw(_save(Image.fromarray(np.full((9, 9), 40_000, np.uint16)))), 1),
    ("CMYK JPEG", raw(_save(Image.new("CMYK", (9, 9), (0, 255, 0, 0)), "JPEG"), "image/jpeg"), 1),
    ("palette with transparency", raw(_palette_transparent()), 1),
    ("RGBA", raw(_save(_color().convert("RGBA"))), 1),
    ("grayscale with alpha", raw(_save(_color().convert("LA"))), 1),
    ("1-bit", raw(_save(_color().convert("1"))), 1),
    ("animated GIF", raw(_animated_gif(), "image/gif"), 1),
    ("TIFF", raw(_save(_color(), "TIFF"), "image/tiff"), 1),
    ("WebP", raw(_save(_color(), "WEBP", lossless=True), "image/webp"), 1),
    ("BMP", raw(_save(_color(), "BMP"), "image/bmp"), 1),
    ("EXIF-rotated JPEG", raw(_exif_rotated(), "image/jpeg"), 1),
    ("multi-picture JPEG (MPO)", raw(_save(_color(), "MPO", save_all=True, append_images=[_color()]),
                                     "image/jpeg"), 1),
    ("content type image/jpeg on PNG bytes", raw(PNG, "image/jpeg"), 1),
    ("three files, mixed formats", files(PNG, JPEG, _save(_color(), "WEBP")), 3),
    ("a form built by hand", encoded_form(PNG), 1),
    ("JSON with a data URL", as_json({"instances": [{"b64": "data:image/png;base64," + b64(PNG)}]}), 1),
    ("JSON with wrapped base64", as_json({"instances": [{"b64": base64.encodebytes(PNG).decode()}]}), 1),
    ("top_k larger than the classes", raw(PNG, path="/predict?top_k=1000"), 1),
    ("the RGB model", raw(PNG, path="/v1/models/rgb/predict"), 1),
]


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _with_exif_chunk(payload):
    """A small PNG with an ``eXIf`` chunk holding ``payload`` right after its header."""
    png = _save(Image.new("L", (6, 4)))
    return png[:33] + _chunk(b"eXIf", payload) + png[33:]


def _exif_orientation(value):
    exif = Image.Exif()
    exif[0x0112] = value
    return _save(_color(), exif=exif)


GIF = _save(_color(), "GIF")

BAD += [  # hostile or broken images found by the red team: each its 4xx, none a 500
    ("LAB TIFF (Pillow cannot convert it)", raw(_save(_color().convert("LAB"), "TIFF"), "image/tiff"),
     400, "invalid_image"),
    ("PNG with a garbage EXIF chunk", raw(_with_exif_chunk(b"\xde\xad\xbe\xef" * 4)), 400, "invalid_image"),
    ("PNG of 0x0 pixels", raw(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 0, 8, 0, 0, 0, 0))
                              + _chunk(b"IEND", b"")), 400, "invalid_image"),
    ("truncated GIF", raw(GIF[: len(GIF) // 2], "image/gif"), 400, "invalid_image"),
    ("GIF header only", raw(GIF[:13], "image/gif"), 400, "invalid_image"),
    ("PGM with maxval 0", raw(b"P5\n2 2\n0\n" + b"\0" * 4, "image/x-portable-graymap"), 400, "invalid_image"),
    ("truncated WebP", raw(_save(_color(), "WEBP")[:30], "image/webp"), 400, "invalid_image"),
    ("bomb: GIF screen of 65535x65535", raw(b"GIF89a\xff\xff\xff\xff\x00\x00\x00,\x00\x00\x00\x00\xff\xff\xff\xff"
                                            b"\x00\x02\x02L\x01\x00;", "image/gif"), 413, "too_many_pixels"),
    ("bomb: PGM header claiming 100000x100000", raw(b"P5\n100000 100000\n255\n" + b"\0" * 10), 413,
     "too_many_pixels"),
    ("HTML sent as image/png", raw(b"<!DOCTYPE html><html><body>hi</body></html>"), 415, "unsupported_image_format"),
    ("SVG with an XML prolog", raw(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
                                   "image/svg+xml"), 415, "unsupported_image_format"),
    ("ZIP sent as image/png", raw(b"PK\x03\x04" + b"\0" * 40), 415, "unsupported_image_format"),
    ("a PDF in JSON", as_json({"instances": [{"b64": b64(b"%PDF-1.4\n%%EOF\n")}]}), 415, "unsupported_image_format"),
    ("one bad file among good ones", files(PNG, PNG[:40], JPEG), 400, "invalid_image"),
]

GOOD += [  # unusual but valid: each gets its prediction
    ("float TIFF full of NaN", raw(_save(Image.fromarray(np.full((4, 4), np.nan, np.float32)), "TIFF"),
                                   "image/tiff"), 1),
    ("16-bit big-endian TIFF", raw(_save(Image.fromarray(np.arange(16, dtype=">u2").reshape(4, 4)), "TIFF"),
                                   "image/tiff"), 1),
    ("CMYK TIFF", raw(_save(_color().convert("CMYK"), "TIFF"), "image/tiff"), 1),
    ("two-page TIFF", raw(_save(_color(), "TIFF", save_all=True, append_images=[_color()]), "image/tiff"), 1),
    ("animated WebP", raw(_save(_color(), "WEBP", save_all=True, append_images=[_color()]), "image/webp"), 1),
    ("16-bit PGM", raw(b"P5\n2 2\n65535\n" + b"\xff\xff" * 4, "image/x-portable-graymap"), 1),
    ("PBM", raw(b"P4\n8 1\n\xaa", "image/x-portable-bitmap"), 1),
    ("JPEG of 65000x1", raw(_save(Image.new("L", (65_000, 1)), "JPEG"), "image/jpeg"), 1),
    ("EXIF orientation 0", raw(_exif_orientation(0)), 1),
    ("EXIF orientation 65535", raw(_exif_orientation(65535)), 1),
    ("EXIF orientation 9 on the RGB model", raw(_exif_orientation(9), path="/v1/models/rgb/predict"), 1),
]


@pytest.fixture(scope="module")
def corpus_client(models_source, make_app):
    app = make_app(models_source, CVPIPE_API_TOKEN=TOKEN, CVPIPE_MAX_BYTES=MAX_BYTES,
                   CVPIPE_MAX_IMAGES=MAX_IMAGES)
    return app.test_client()


def _send(client, request):
    request = dict(request)
    headers = request.pop("headers", AUTH)
    method = request.pop("method", "POST")
    data = request.get("data")
    if isinstance(data, dict):  # file objects are consumed by a request: fresh copies each time
        request["data"] = {k: ([(io.BytesIO(f.getvalue()), n) for f, n in v] if isinstance(v, list)
                               else (io.BytesIO(v[0].getvalue()), v[1]) if isinstance(v, tuple) else v)
                           for k, v in data.items()}
    return client.open(method=method, headers=headers, **request)


@pytest.mark.parametrize("request_, status, code", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_gets_its_error(corpus_client, api_error, request_, status, code):
    api_error(_send(corpus_client, request_), status, code)


@pytest.mark.parametrize("request_, n", [c[1:] for c in GOOD], ids=[c[0] for c in GOOD])
def test_unusual_valid_image_is_predicted(corpus_client, request_, n):
    response = _send(corpus_client, request_)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert len(body["predictions"]) == n
    for p in body["predictions"]:
        assert p["label"] == p["top_k"][0]["label"] and 1 <= len(p["top_k"]) <= 10


def test_exif_orientation_is_applied():
    """The sideways JPEG decodes as the upright image (white band at the top), not as stored."""
    from types import SimpleNamespace

    from service.decode import decode_image

    model = SimpleNamespace(input_shape_=(16, 8), color_mode_="L")
    image = decode_image(_exif_rotated(), model, 10_000).astype(int)
    assert image.shape == (16, 8)
    assert image[:4].mean() > 200 and image[5:].mean() < 50


def test_corpus_leaves_the_app_serving(corpus_client, digit_png):
    """Runs last in this module: after every case above, a good request still works."""
    png, label = digit_png
    response = corpus_client.post("/predict", data=png, content_type="image/png", headers=AUTH)
    assert response.status_code == 200
    assert response.get_json()["predictions"][0]["label"] == str(label)
    metrics = corpus_client.get("/metrics").get_data(as_text=True)
    assert 'status="400"' in metrics and 'status="500"' not in metrics
