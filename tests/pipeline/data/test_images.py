"""The one image decoder: what training, the CLI and the service share."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipeline.data.images import (
    SAFE_FORMATS,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageError,
    decode_image,
    describe_bytes,
    probe_image,
)


def _png(array, **params):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", **params)
    return buf.getvalue()


@pytest.mark.parametrize("orientation, turns", [(1, 0), (6, 1), (3, 2), (8, 3)])
def test_the_exif_orientation_is_applied(orientation, turns):
    """A picture stored turned, with the EXIF orientation that says so, comes out upright."""
    upright = np.zeros((16, 8), np.uint8)
    upright[:4] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _png(np.ascontiguousarray(np.rot90(upright, turns)), exif=exif)
    np.testing.assert_array_equal(decode_image(data, (16, 8), "L"), upright)
    assert probe_image(data) == ((16, 8), "L")


def test_bytes_and_a_file_decode_the_same(tmp_path, rng):
    image = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    data = _png(image)
    (tmp_path / "a.png").write_bytes(data)
    from_bytes = decode_image(data, (9, 7), "RGB")
    np.testing.assert_array_equal(from_bytes, image)
    np.testing.assert_array_equal(decode_image(tmp_path / "a.png", (9, 7), "RGB"), from_bytes)
    assert decode_image(data, (4, 5), "L").shape == (4, 5)  # converted and resized: (height, width)


def test_sixteen_bit_gray_and_palettes_are_converted(rng):
    gray16 = (rng.integers(0, 256, (6, 6)) * 257).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(gray16).save(buf, format="PNG")
    np.testing.assert_array_equal(decode_image(buf.getvalue(), (6, 6), "L"), gray16 // 257)
    palette = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).convert("P")
    buf = io.BytesIO()
    palette.save(buf, format="PNG")
    np.testing.assert_array_equal(decode_image(buf.getvalue(), (6, 6), "RGB"), np.asarray(palette.convert("RGB")))


@pytest.mark.parametrize("data, error, match", [
    (b"", ImageError, "empty: expected"),
    (b"%PDF-1.7 not an image", UnsupportedImageError, "a PDF document"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", UnsupportedImageError, "an SVG document"),
    (b"hello, world", ImageError, "bytes of text starting 'hello, world'"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + b"\x00" * 5, ImageError, "corrupt or truncated"),
])
def test_bad_bytes_say_what_was_expected_and_what_arrived(data, error, match):
    with pytest.raises(error, match=match) as info:
        decode_image(data, (8, 8), "L", formats=SAFE_FORMATS)
    assert "expected" in str(info.value) and info.value.code


def test_a_format_outside_the_allowed_ones_is_refused_before_decoding():
    buf = io.BytesIO()
    Image.new("L", (4, 4)).save(buf, format="ICO")
    decode_image(buf.getvalue(), (4, 4), "L")  # any format Pillow reads, by default
    with pytest.raises(ImageError, match="starting with 00 00 01 00.*none of these formats"):
        decode_image(buf.getvalue(), (4, 4), "L", formats=SAFE_FORMATS)


def test_too_many_pixels_is_refused_from_the_header(rng):
    data = _png(rng.integers(0, 256, (100, 50), dtype=np.uint8))
    with pytest.raises(ImageTooLargeError, match="at most 4999 pixels, got a PNG image of 50x100 = 5000"):
        decode_image(data, (8, 8), "L", max_pixels=4999)
    assert decode_image(data, (8, 8), "L", max_pixels=5000).shape == (8, 8)


def test_a_missing_file_or_a_folder_is_an_image_error(tmp_path):
    for path in (tmp_path / "missing.png", tmp_path):
        with pytest.raises(ImageError, match="cannot read the file"):
            decode_image(path, (8, 8), "L")


def test_describe_bytes_names_binary_data():
    assert describe_bytes(b"\x00\x01\x02\xff" * 3) == "12 bytes starting with 00 01 02 ff 00 01 02 ff"
    with pytest.raises(ValueError, match="mode must be one of"):
        decode_image(_png(np.zeros((2, 2), np.uint8)), (2, 2), "CMYK")
