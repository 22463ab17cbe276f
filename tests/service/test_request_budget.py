"""A request's images are budgeted together, from their headers, before any is decoded; a
16-bit image decodes without float64 copies of itself."""
from __future__ import annotations

import io
import time
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from pipeline.data.images import _scale_16_to_8, decode_image
from pipeline.data.testing import png_header


def _multipart(*blobs):
    parts = b"".join(b"--b0undary\r\nContent-Disposition: form-data; name=\"image\"; filename=\"f.png\"\r\n"
                     b"Content-Type: image/png\r\n\r\n" + blob + b"\r\n" for blob in blobs)
    return {"data": parts + b"--b0undary--\r\n", "content_type": "multipart/form-data; boundary=b0undary"}


def test_many_large_images_in_one_request_are_refused_before_decoding(make_app, models_source, api_error,
                                                                       monkeypatch):
    """64 images of 6000x6000 (each within the per-image limit): a 413 naming the budget,
    from the headers alone."""
    import pipeline.data.images as images

    decoded = []
    real = images.to_array
    monkeypatch.setattr(images, "to_array", lambda *a, **k: decoded.append(1) or real(*a, **k))
    client = make_app(models_source, CVPIPE_MAX_IMAGES=64).test_client()
    t0 = time.perf_counter()
    response = client.post("/predict", **_multipart(*[png_header(6000, 6000)] * 64))
    took = time.perf_counter() - t0
    message = api_error(response, 413, "request_too_large")
    assert "CVPIPE_MAX_REQUEST_PIXELS" in message and "40000000" in message
    assert decoded == [] and took < 2, (decoded, took)


def test_the_budget_is_a_setting_and_small_batches_pass(make_app, models_source, encode):
    small = encode(np.full((8, 8), 100, np.uint8))
    client = make_app(models_source, CVPIPE_MAX_REQUEST_PIXELS=64 * 3).test_client()
    assert client.post("/predict", **_multipart(small, small, small)).status_code == 200
    assert client.post("/predict", **_multipart(small, small, small, small)).status_code == 413


def test_16_bit_scaling_equals_the_rounded_quotient_for_every_value():
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    reference = np.rint(values.astype(np.float64) / 257).astype(np.uint8)  # the slow reference
    np.testing.assert_array_equal(_scale_16_to_8(values), reference)


def test_a_16_bit_image_decodes_with_no_whole_image_float_copies():
    """4.5 bytes a pixel traced (the 16-bit array, the 8-bit result); the float64 arithmetic
    before took 17 (687 MB for a 78 KB 6324x6324 PNG)."""
    pixels = np.zeros((2000, 2000), np.uint16)
    pixels[::7] = 60000
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    tracemalloc.start()
    try:
        out = decode_image(buf.getvalue(), (28, 28), "L")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == (28, 28)
    assert peak < 6 * pixels.size, f"{peak / 1e6:.1f} MB traced for a {pixels.size / 1e6:.0f} MP 16-bit image"


@pytest.mark.parametrize("shape", [(1, 1), (255, 3), (513, 17)])
def test_16_bit_scaling_keeps_any_shape(shape):
    values = np.random.default_rng(0).integers(0, 65536, shape, dtype=np.uint16)
    np.testing.assert_array_equal(_scale_16_to_8(values), np.rint(values / 257).astype(np.uint8))
