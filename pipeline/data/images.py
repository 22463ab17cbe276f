"""The one image decoder: encoded bytes or a file -> a uint8 array in a model's size and mode.

Training (:mod:`pipeline.data.folder`), the command line (``cvpipe predict``) and the
service (:mod:`service.decode`) all go through :func:`decode_image`, so an image is
converted the same way wherever it comes from: EXIF orientation applied, the first
frame of an animation, palette (with transparency) through RGBA, 16-bit gray scaled by
1/257, alpha dropped, converted to the color mode ("L" or "RGB") and resized bilinearly
to ``(height, width)``. Training and serving cannot drift apart.

:func:`open_image` reads the header alone first: with ``formats`` it refuses any other
format before its parser sees more than the header, and with ``max_pixels`` it refuses
an image too large before a pixel is decoded (a decompression bomb). Errors are
:class:`ImageError` subclasses that say what was expected and what arrived; their
``code`` is a stable machine-readable name (the service answers with it).
"""
from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Raster formats a service request may hold (Pillow's names); the parsers of the others
#: (EPS would start Ghostscript, PSD, ICNS, ...) never see request data.
SAFE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM")
#: ``im.format`` of what they open: a camera's multi-picture JPEG opens as "MPO".
_OPENED = SAFE_FORMATS + ("MPO",)
COLOR_MODES = ("L", "RGB")
_GRAY_MODES = {"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"}
#: The first bytes of the raster formats, to say "a truncated PNG" rather than "no format".
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
               (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"RIFF", "WEBP"))
_DOCUMENTS = ((b"%PDF", "a PDF document"), (b"<svg", "an SVG document"), (b"<?xml", "an XML (or SVG) document"),
              (b"<!doctype html", "an HTML document"), (b"<html", "an HTML document"),
              (b"PK\x03\x04", "a ZIP archive"), (b"%!PS", "a PostScript document"))


class ImageError(ValueError):
    """An image that cannot be decoded; ``code`` names the kind, the message what arrived."""

    code = "invalid_image"

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code or type(self).code


class UnsupportedImageError(ImageError):
    """A format outside the allowed ones, or a document that is not a raster image."""

    code = "unsupported_image_format"


class ImageTooLargeError(ImageError):
    """More pixels than allowed, or more than memory can hold."""

    code = "too_many_pixels"


def expected_formats(formats):
    """What a message says was expected: ``"a raster image (PNG, JPEG, ...)"``."""
    return "a raster image (" + ", ".join(formats) + ")" if formats else "an image Pillow can read"


def describe_bytes(data, size=None):
    """A short description of ``data`` for error messages (what arrived).

    ``size`` is the length of the whole when ``data`` is only its beginning.
    """
    size = len(data) if size is None else size
    if not size:
        return "an empty file (0 bytes)"
    head = data[:256].removeprefix(b"\xef\xbb\xbf").lstrip().lower()  # a UTF-8 byte-order mark first
    for magic, what in _DOCUMENTS:
        if head.startswith(magic.lower()) or (magic == b"<svg" and b"<svg" in head):
            return f"{what} ({size} bytes)"
    text = data[:40].decode("utf-8", errors="replace")
    if all(c.isprintable() or c.isspace() for c in text.rstrip("\ufffd")):  # a cut multi-byte char at the end
        return f"{size} bytes of text starting {text[:24]!r}"
    return f"{size} bytes starting with {data[:8].hex(' ')}"


def _is_document(data):
    head = data[:256].removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    return any(head.startswith(m.lower()) for m, _ in _DOCUMENTS) or b"<svg" in head


def _describe(source):
    """What arrived: a description of the bytes, or of the beginning of the file."""
    if isinstance(source, bytes):
        head, size = source[:256], len(source)
    else:
        try:
            with open(source, "rb") as fh:
                head, size = fh.read(256), os.fstat(fh.fileno()).st_size
        except OSError as exc:
            return f"a file that cannot be read ({exc.strerror or exc})"
    return describe_bytes(head, size)


def _signature(source):
    """The raster format whose signature ``source`` starts with, or None."""
    if isinstance(source, bytes):
        head = source[:16]
    else:
        try:
            with open(source, "rb") as fh:
                head = fh.read(16)
        except OSError:
            return None
    return next((name for magic, name in _SIGNATURES if head.startswith(magic)), None)


def _check_regular_file(path, where):
    """Refuse a path that is not a regular file before opening it: opening a FIFO waits
    for a writer forever, a device can be endless."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ImageError(f"{where}: cannot read the file {path} ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(mode):
        raise ImageError(f"{where}: expected an image file, got the folder {path}")
    if not stat.S_ISREG(mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or
                stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise ImageError(f"{where}: expected an image file, got {kind}: {path}")


def open_image(source, *, formats=None, max_pixels=None, where="image"):
    """Open ``source`` and check its header; no pixel is decoded yet.

    Parameters
    ----------
    source : bytes or path-like
        An encoded image, or the path of an image file.
    formats : sequence of str, optional
        Pillow format names the parsers are limited to (:data:`SAFE_FORMATS` for data
        from outside); None lets Pillow try every format it knows.
    max_pixels : int, optional
        Largest ``width * height`` accepted.
    where : str
        Names the image in messages (``"image 2 of 3"``, a file name).

    Returns
    -------
    PIL.Image.Image
        Lazily opened (format, size and mode are known); close it after use.

    Raises
    ------
    ImageError
        Empty, unreadable or a corrupt header.
    UnsupportedImageError
        A format outside ``formats``, or a document (PDF, SVG, HTML, ...).
    ImageTooLargeError
        More than ``max_pixels`` pixels.
    """
    expected = expected_formats(formats)
    if isinstance(source, bytes) and not source:
        raise ImageError(f"{where} is empty: expected {expected}, got 0 bytes", "empty_image")
    if not isinstance(source, bytes):
        _check_regular_file(source, where)
    fh = io.BytesIO(source) if isinstance(source, bytes) else Path(source)
    try:
        im = Image.open(fh, formats=formats)
    except Image.DecompressionBombError as exc:
        limit = f"at most {max_pixels} pixels" if max_pixels is not None else "an image Pillow agrees to decode"
        raise ImageTooLargeError(f"{where}: expected {limit}, got an image header claiming more than Pillow "
                                 f"ever decodes ({exc})") from exc
    except UnidentifiedImageError as exc:
        if isinstance(source, bytes) and _is_document(source):
            raise UnsupportedImageError(f"{where}: expected {expected}, got {describe_bytes(source)}") from exc
        fmt = _signature(source)
        if fmt is not None:
            raise ImageError(f"{where}: expected a complete {fmt} image, got {_describe(source)}: "
                             "its header is cut short or corrupt") from exc
        why = "which is none of these formats" if formats else "which it does not recognize"
        raise ImageError(f"{where}: expected {expected}, got {_describe(source)}, {why}") from exc
    except OSError as exc:
        if exc.errno is not None:  # the system's error (missing, a folder, no permission), not Pillow's
            raise ImageError(f"{where}: cannot read the file {source} ({exc.strerror or exc})") from exc
        raise ImageError(f"{where}: expected {expected}, got a corrupt or truncated header "
                         f"({_describe(source)}; {type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # Pillow raises many types on a corrupt header
        raise ImageError(f"{where}: expected {expected}, got a corrupt or truncated header "
                         f"({_describe(source)}; {type(exc).__name__}: {exc})") from exc
    fmt, (w, h) = im.format, im.size
    if formats and fmt not in _OPENED:
        im.close()
        raise UnsupportedImageError(f"{where}: expected {expected}, got an image in {fmt} format")
    if max_pixels is not None and w * h > max_pixels:
        im.close()
        raise ImageTooLargeError(f"{where}: expected at most {max_pixels} pixels, got a {fmt} image "
                                 f"of {w}x{h} = {w * h} pixels")
    return im


def probe_image(source, where="image"):
    """``((height, width), mode)`` of an image after EXIF orientation, from its header only.

    ``mode`` is Pillow's (``"L"``, ``"RGB"``, ``"P"``, ``"I;16"``, ...); see :func:`is_gray`.
    Raises what :func:`open_image` raises.
    """
    with open_image(source, where=where) as im:
        (w, h), mode = im.size, im.mode
        try:
            orientation = im.getexif().get(0x0112, 1)
        except Exception as exc:  # Pillow raises many types on a corrupt EXIF block
            raise ImageError(f"{where}: a {im.format} image whose EXIF data is corrupt "
                             f"({type(exc).__name__}: {exc})") from exc
        if orientation in (5, 6, 7, 8):  # rotated by 90 degrees
            w, h = h, w
    return (h, w), mode


def is_gray(mode):
    """Whether Pillow's ``mode`` holds grayscale pixels (palette images count as color)."""
    return mode in _GRAY_MODES


def decode_image(source, size, mode, *, formats=None, max_pixels=None, where="image"):
    """Decode one image into a uint8 array of shape ``size`` (+ 3 channels for "RGB").

    Parameters
    ----------
    source : bytes or path-like
        An encoded image or an image file.
    size : (int, int)
        ``(height, width)`` of the result; other sizes are resized bilinearly.
    mode : {"L", "RGB"}
        Color mode of the result.
    formats, max_pixels, where
        As in :func:`open_image`.

    Returns
    -------
    ndarray of uint8, shape (height, width) for "L" or (height, width, 3) for "RGB"

    Raises
    ------
    ImageError
        See :func:`open_image`; also for pixel data that fails to decode (truncated,
        corrupt).
    ImageTooLargeError
        Pixels that do not fit in memory.
    """
    return decode_with_size(source, size, mode, formats=formats, max_pixels=max_pixels, where=where)[0]


def decode_with_size(source, size, mode, *, formats=None, max_pixels=None, where="image"):
    """:func:`decode_image`, and the ``(height, width)`` the image had before any resizing."""
    if mode not in COLOR_MODES:
        raise ValueError(f"mode must be one of {COLOR_MODES}, got {mode!r}")
    with open_image(source, formats=formats, max_pixels=max_pixels, where=where) as im:
        fmt, (w, h) = im.format, im.size
        try:
            array = to_array(im, size, mode)
        except MemoryError as exc:
            raise ImageTooLargeError(f"{where}: a {fmt} image of {w}x{h} is too large to decode") from exc
        except Exception as exc:  # truncated or corrupt pixel data shows only now
            raise ImageError(f"{where}: expected a complete {fmt} image, got one that fails to decode "
                             f"({type(exc).__name__}: {exc})") from exc
        return array, im.size[::-1]  # (height, width) after the EXIF orientation, before resizing


#: Rows of a 16-bit image scaled to 8 bits at a time (bounds the temporary arrays).
_SCALE_ROWS = 256


def _scale_16_to_8(pixels):
    """``rint(pixels / 257)`` as uint8, a block of rows at a time in integers: exactly the
    rounded quotient (257 is odd: no value falls halfway), with temporaries of a few rows,
    where float64 arithmetic on the whole image took 17 bytes a pixel (687 MB for 6324²)."""
    out = np.empty(pixels.shape, np.uint8)
    for start in range(0, pixels.shape[0], _SCALE_ROWS):
        block = pixels[start:start + _SCALE_ROWS].astype(np.uint32)
        out[start:start + _SCALE_ROWS] = (block + 128) // 257
    return out


def to_array(im, size, mode):
    """An opened Pillow image as a uint8 array of ``mode`` and ``size`` ``(height, width)``.

    EXIF orientation applied, 16-bit gray scaled by 1/257, palette through RGBA, alpha
    dropped, resized bilinearly: the one conversion training data and requests share.
    """
    ImageOps.exif_transpose(im, in_place=True)  # in place: no copy of an image without orientation
    if im.mode.startswith("I;16"):
        im = Image.fromarray(_scale_16_to_8(np.asarray(im)))
    elif im.mode == "P":
        im = im.convert("RGBA")
    if im.mode != mode:
        im = im.convert(mode)
    target = (int(size[1]), int(size[0]))  # Pillow's (width, height)
    if im.size != target:
        im = im.resize(target, Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.uint8)
