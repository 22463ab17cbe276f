"""The one image decoder: what training, the CLI and the service share."""
from __future__ import annotations

import io
import os
import struct
import zlib

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
    with pytest.raises(ImageError, match="cannot read the file .*missing.png"):
        decode_image(tmp_path / "missing.png", (8, 8), "L")
    with pytest.raises(ImageError, match="expected an image file, got the folder"):
        decode_image(tmp_path, (8, 8), "L")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    """Opening a FIFO blocks until something writes to it: the decoder never opens one."""
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(ImageError, match="expected an image file, got a FIFO"):
        decode_image(tmp_path / "pipe.png", (8, 8), "L")


def test_a_corrupt_exif_block_is_an_image_error_when_probing_and_decoding():
    data = _png(np.zeros((4, 4), np.uint8))
    end = data.rindex(b"IEND") - 4
    broken = data[:end] + _chunk(b"eXIf", b"garbage!") + data[end:]
    with pytest.raises(ImageError, match="a PNG image whose EXIF data is corrupt"):
        probe_image(broken)
    with pytest.raises(ImageError, match="fails to decode"):
        decode_image(broken, (4, 4), "L")


def test_describe_bytes_names_binary_data():
    assert describe_bytes(b"\x00\x01\x02\xff" * 3) == "12 bytes starting with 00 01 02 ff 00 01 02 ff"
    with pytest.raises(ValueError, match="mode must be one of"):
        decode_image(_png(np.zeros((2, 2), np.uint8)), (2, 2), "CMYK")


# ------------------------------------------------------------ hostile input (red team)
def _save(image, fmt, **params):
    buf = io.BytesIO()
    image.save(buf, format=fmt, **params)
    return buf.getvalue()


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_claiming(width, height, color_type=0, depth=8):
    """A PNG whose header claims ``width`` x ``height`` over a few bytes of pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def _color_image():
    return Image.fromarray(np.random.default_rng(2).integers(0, 256, (20, 20, 3), dtype=np.uint8))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "TIFF", "BMP", "WEBP", "PPM"])
def test_truncated_or_corrupt_data_is_an_image_error_or_an_image(fmt):
    """Every cut and a flipped stretch of bytes: a decoded image of the asked size, or an
    ImageError that says what was expected; never another exception."""
    data = _save(_color_image(), fmt)
    corrupt = bytearray(data)
    for i in range(len(corrupt) // 3, len(corrupt) // 3 + 20):
        corrupt[i] ^= 0xFF
    variants = [data[:cut] for cut in (1, 8, 30, len(data) // 2, len(data) - 5)] + [bytes(corrupt)]
    for variant in variants:
        for formats in (SAFE_FORMATS, None):
            try:
                out = decode_image(variant, (8, 8), "RGB", formats=formats)
            except ImageError as exc:
                assert "expected" in str(exc) and exc.code in ("invalid_image", "unsupported_image_format")
            else:
                assert out.shape == (8, 8, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("make, mode", [
    (lambda: _save(Image.fromarray(np.full((4, 4), np.nan, np.float32)), "TIFF"), "L"),  # float gray, NaN
    (lambda: _save(Image.fromarray(np.arange(16, dtype=">u2").reshape(4, 4) * 4000), "TIFF"), "L"),  # I;16B
    (lambda: _save(Image.fromarray(np.arange(16, dtype=np.int32).reshape(4, 4)), "TIFF"), "L"),  # 32-bit gray
    (lambda: _save(_color_image().convert("CMYK"), "JPEG"), "RGB"),
    (lambda: _save(_color_image().convert("CMYK"), "TIFF"), "RGB"),
    (lambda: _save(_color_image(), "TIFF", save_all=True, append_images=[_color_image()]), "RGB"),  # two pages
    (lambda: _save(_color_image(), "WEBP", save_all=True, append_images=[_color_image()]), "RGB"),  # animated
    (lambda: _save(Image.new("1", (5, 5)), "BMP"), "L"),
    (lambda: b"P5\n2 2\n65535\n" + b"\xff\xff" * 4, "L"),  # 16-bit PGM
    (lambda: b"P4\n8 1\n\xaa", "L"),  # PBM
])
def test_unusual_valid_images_decode(make, mode):
    for target in ("L", "RGB"):
        out = decode_image(make(), (6, 6), target, formats=SAFE_FORMATS)
        assert out.shape == ((6, 6) if target == "L" else (6, 6, 3)) and out.dtype == np.uint8


def test_sixteen_bit_color_pngs_with_and_without_alpha_decode():
    for color_type, channels in ((2, 3), (6, 4), (4, 2)):  # RGB, RGBA, gray + alpha; 16 bits each
        width, height = 4, 4
        row = b"\x00" + b"\xff\xff" * channels * width
        ihdr = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
        data = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(row * height))
                + _chunk(b"IEND", b""))
        out = decode_image(data, (4, 4), "L", formats=SAFE_FORMATS)
        assert out.shape == (4, 4) and out.min() == 255  # white stays white


def test_an_animated_gif_gives_its_first_frame():
    frames = [Image.fromarray(np.full((10, 10), v, np.uint8)) for v in (0, 128, 255)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    np.testing.assert_array_equal(decode_image(buf.getvalue(), (10, 10), "L"), np.zeros((10, 10), np.uint8))


def test_a_palette_with_a_transparent_entry_decodes_its_colors():
    im = Image.new("P", (4, 4), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    out = decode_image(_save(im, "PNG", transparency=1), (4, 4), "RGB")
    np.testing.assert_array_equal(out[..., 0], 255)  # the transparent entry keeps its color, alpha dropped


def test_a_color_space_pillow_cannot_convert_is_an_image_error():
    with pytest.raises(ImageError, match=r"expected a complete TIFF image, got one that fails to decode .*LAB"):
        decode_image(_save(_color_image().convert("LAB"), "TIFF"), (4, 4), "L", formats=SAFE_FORMATS)


@pytest.mark.parametrize("orientation", [0, 9, 255, 65535])
def test_an_orientation_out_of_range_leaves_the_pixels_as_stored(orientation):
    stored = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    exif = Image.Exif()
    exif[0x0112] = orientation
    for fmt in ("PNG", "TIFF"):
        data = _save(Image.fromarray(stored), fmt, exif=exif)
        assert probe_image(data) == ((4, 6), "L")
        np.testing.assert_array_equal(decode_image(data, (4, 6), "L"), stored)


@pytest.mark.parametrize("field_type, value", [(4, 6), (5, None), (11, 6.0)])  # LONG, RATIONAL 6/1, FLOAT
def test_an_orientation_of_another_numeric_type_turns_the_image_as_the_probe_says(field_type, value):
    """The probe (from the header) and the decoder read the same orientation, whatever its TIFF type."""
    stored = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    if field_type == 5:  # a RATIONAL lives at an offset: right after the IFD
        entry, extra = struct.pack("<HHII", 0x0112, 5, 1, 26), struct.pack("<II", 6, 1)
    else:
        entry, extra = struct.pack("<HHI", 0x0112, field_type, 1) + struct.pack(
            "<I" if field_type == 4 else "<f", value), b""
    payload = b"II*\x00\x08\x00\x00\x00\x01\x00" + entry + b"\x00" * 4 + extra
    png = _save(Image.fromarray(stored), "PNG")
    data = png[:33] + _chunk(b"eXIf", payload) + png[33:]  # right after IHDR
    assert probe_image(data) == ((6, 4), "L")
    np.testing.assert_array_equal(decode_image(data, (6, 4), "L"), np.rot90(stored, -1))  # orientation 6


def test_a_garbage_exif_chunk_is_an_image_error_from_the_decoder():
    png = _save(Image.new("L", (6, 4)), "PNG")
    data = png[:33] + _chunk(b"eXIf", b"\xde\xad\xbe\xef" * 4) + png[33:]
    with pytest.raises(ImageError, match="expected a complete PNG image, got one that fails to decode"):
        decode_image(data, (4, 6), "L", formats=SAFE_FORMATS)


@pytest.mark.parametrize("data", [
    _png_claiming(100_000, 100_000), _png_claiming(2**31 - 1, 1), _png_claiming(9000, 9000, color_type=6, depth=16),
    b"P5\n100000 100000\n255\n" + b"\0" * 10,
    b"GIF89a\xff\xff\xff\xff\x00\x00\x00,\x00\x00\x00\x00\xff\xff\xff\xff\x00\x02\x02L\x01\x00;",
])
def test_a_huge_declared_size_is_refused_before_decoding(data):
    with pytest.raises(ImageTooLargeError) as info:
        decode_image(data, (8, 8), "L", formats=SAFE_FORMATS, max_pixels=40_000_000)
    assert info.value.code == "too_many_pixels" and "expected at most 40000000 pixels" in str(info.value)


def test_a_header_beyond_what_pillow_ever_decodes_is_too_large_even_without_a_limit():
    with pytest.raises(ImageTooLargeError, match="more than Pillow ever decodes"):
        decode_image(_png_claiming(100_000, 100_000), (8, 8), "L")


def test_a_zero_by_zero_png_is_an_image_error():
    data = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 0, 8, 0, 0, 0, 0))
            + _chunk(b"IEND", b""))
    with pytest.raises(ImageError, match="expected a complete PNG image, got .*cut short or corrupt"):
        decode_image(data, (8, 8), "L", formats=SAFE_FORMATS)


@pytest.mark.parametrize("data, what", [
    (b"<!DOCTYPE html><html><body>hi</body></html>", "an HTML document"),
    (b"  <html><body>hi</body></html>", "an HTML document"),
    (b"\xef\xbb\xbf<!DOCTYPE html><html></html>", "an HTML document"),  # after a UTF-8 byte-order mark
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "an SVG document"),
    (b"<!-- a comment --><svg/>", "an SVG document"),
    (b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n", "a PDF document"),
    (b"%!PS-Adobe-3.0\n", "a PostScript document"),
    (b"PK\x03\x04" + b"\0" * 30, "a ZIP archive"),
])
def test_documents_are_unsupported_formats_that_say_what_they_are(data, what):
    for formats in (SAFE_FORMATS, None):
        with pytest.raises(UnsupportedImageError, match=what) as info:
            decode_image(data, (8, 8), "L", formats=formats)
        assert info.value.code == "unsupported_image_format"


def test_files_that_are_empty_text_or_a_document_are_image_errors(tmp_path):
    cases = {"empty.png": (b"", "an empty file \\(0 bytes\\)"),
             "notes.png": (b"just some text\n", "bytes of text starting 'just some text"),
             "page.png": (b"<html></html>", "expected an image Pillow can read")}
    for name, (data, match) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageError, match=match):
            decode_image(tmp_path / name, (8, 8), "L", where=name)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_a_device_as_the_path_is_an_image_error_without_reading_it_all(device):
    if not os.path.exists(device):
        pytest.skip(f"no {device} here")
    with pytest.raises(ImageError, match="expected an image file, got a device"):
        decode_image(device, (8, 8), "L", where=device)
