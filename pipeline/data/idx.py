"""IDX files (the MNIST / Fashion-MNIST format), read with validation.

An IDX file is a 4-byte magic number ``00 00 <dtype> <ndim>``, then ``ndim`` big-endian
uint32 dimensions, then the data in C order. MNIST-style images are ``dtype=0x08``
(unsigned byte), ``ndim=3`` (magic 2051); labels are ``0x08``, ``ndim=1`` (magic 2049).
Files may be gzipped (``.gz``). Every error names the file and says what was expected
and what was found.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from pipeline.data.dataset import DatasetError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
#: The IDX data-type code of unsigned bytes, the only one read here.
UBYTE = 0x08

#: split -> file-name prefix used by the MNIST family.
SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def split_files(split):
    """Return the (images, labels) file stems of ``split`` ("train" or "test"), without ``.gz``."""
    prefix = SPLIT_PREFIX[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def find_file(folder, stem):
    """Return ``folder/stem`` or ``folder/stem.gz`` (the plain file first), or None."""
    for candidate in (Path(folder) / stem, Path(folder) / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_bytes(path):
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except EOFError as exc:
        raise DatasetError(path, "truncated gzip stream (the compressed file ends early)") from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise DatasetError(path, f"not a valid gzip file ({exc})") from exc
    except OSError as exc:
        raise DatasetError(path, f"cannot read the file ({exc})") from exc


def read_header(path):
    """Return ``(magic, dims)`` from the first bytes of an IDX file, decompressing only those."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(4)
            if len(head) < 4:
                raise DatasetError(path, f"truncated header: expected 4 magic bytes, got {len(head)}")
            ndim = head[3]
            dims = fh.read(4 * ndim)
    except (EOFError, OSError, zlib.error) as exc:
        raise DatasetError(path, f"cannot read the IDX header ({exc})") from exc
    if len(dims) < 4 * ndim:
        raise DatasetError(path, f"truncated header: expected {4 * ndim} bytes of dimensions, got {len(dims)}")
    return struct.unpack(">I", head)[0], struct.unpack(f">{ndim}I", dims)


def read_idx(path, *, expected_magic):
    """Read an unsigned-byte IDX file and validate it against its header.

    Parameters
    ----------
    path : path-like
        Plain or ``.gz`` IDX file.
    expected_magic : int
        2051 for images (3 dims), 2049 for labels (1 dim).

    Returns
    -------
    ndarray of uint8
        Shape ``(n, rows, cols)`` for images, ``(n,)`` for labels.

    Raises
    ------
    DatasetError
        Bad magic number or data type, wrong number of dimensions, a file shorter
        (truncated) or longer than its header says.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DatasetError(path, f"truncated: expected at least a 4-byte magic number, got {len(raw)} bytes")
    magic = struct.unpack(">I", raw[:4])[0]
    if raw[0] != 0 or raw[1] != 0:
        raise DatasetError(path, f"bad magic number: expected {expected_magic} (0x{expected_magic:08x}), "
                    f"got {magic} (0x{magic:08x}); not an IDX file")
    if raw[2] != UBYTE:
        raise DatasetError(path, f"unsupported IDX data type: expected 0x08 (unsigned byte), got 0x{raw[2]:02x}")
    if magic != expected_magic:
        raise DatasetError(path, f"bad magic number: expected {expected_magic} ({expected_magic & 0xFF} dims), "
                    f"got {magic} ({raw[3]} dims)")
    ndim = raw[3]
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DatasetError(path, f"truncated header: expected {header_len} bytes, got {len(raw)}")
    dims = struct.unpack(f">{ndim}I", raw[4:header_len])
    if ndim > 1 and min(dims[1:]) == 0:
        raise DatasetError(path, f"bad dimensions {dims}: every image dimension must be positive")
    expected_len = header_len + int(np.prod(dims, dtype=np.int64))
    if len(raw) < expected_len:
        raise DatasetError(path, f"truncated: header says {dims} -> {expected_len} bytes, got {len(raw)} bytes")
    if len(raw) > expected_len:
        raise DatasetError(path, f"{len(raw) - expected_len} trailing bytes: header says {dims} -> "
                    f"{expected_len} bytes, got {len(raw)} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims)


def read_idx_pair(images_path, labels_path, n_classes=None):
    """Read and cross-check an images file and a labels file.

    Returns
    -------
    images : ndarray of uint8, shape (n, rows, cols)
    labels : ndarray of int64, shape (n,)

    Raises
    ------
    DatasetError
        Anything :func:`read_idx` refuses; image count != label count; a label
        ``>= n_classes`` (when ``n_classes`` is given).
    """
    images = read_idx(images_path, expected_magic=IMAGES_MAGIC)
    labels = read_idx(labels_path, expected_magic=LABELS_MAGIC)
    if len(images) != len(labels):
        raise DatasetError(labels_path, f"count mismatch: {len(labels)} labels but {len(images)} images "
                           f"in {images_path}")
    if n_classes is not None and len(labels) and labels.max() >= n_classes:
        bad = int(np.argmax(labels >= n_classes))
        raise DatasetError(labels_path, f"label {int(labels[bad])} at index {bad}: expected labels in "
                           f"0..{n_classes - 1} ({n_classes} classes)")
    return images, labels.astype(np.int64)
