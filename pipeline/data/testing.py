"""Writers of the dataset and image formats cvpipe reads, for tests and small exports.

The production readers (:mod:`pipeline.data.idx`, :mod:`pipeline.data.cifar`) only read;
these write files in the same formats, so tests can build datasets (valid and broken)
without downloading anything.
"""
from __future__ import annotations

import gzip
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np

from pipeline._io import atomic_path
from pipeline.data import idx


def write_idx(path, array):
    """Write a uint8 array as an IDX file (gzipped when ``path`` ends in ``.gz``).

    The write is atomic (temp file + rename).
    """
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 255:
        raise ValueError(f"expected a uint8 array with 1 to 255 dims, got {array.dtype} {array.shape}")
    path = Path(path)
    payload = bytes([0, 0, idx.UBYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    return path


def write_batch(path, images, labels, *, protocol=2):
    """Write a batch in the CIFAR-10 python format (for tests and small exports)."""
    images = np.asarray(images, dtype=np.uint8)
    data = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
    entry = {b"batch_label": Path(path).name.encode(), b"labels": [int(v) for v in labels],
             b"data": data, b"filenames": [f"{i}.png".encode() for i in range(len(images))]}
    with open(path, "wb") as fh:
        pickle.dump(entry, fh, protocol=protocol)


def write_meta(path, class_names, *, protocol=2):
    """Write ``batches.meta`` with ``class_names`` (for tests)."""
    entry = {b"label_names": [n.encode() for n in class_names], b"num_cases_per_batch": 10000,
             b"num_vis": 3072}
    with open(path, "wb") as fh:
        pickle.dump(entry, fh, protocol=protocol)


def png_header(width, height):
    """The bytes of a PNG whose header claims ``width`` x ``height`` 8-bit gray pixels while
    holding almost none (a decompression bomb: a few bytes; its header opens, its pixels
    do not decode)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))
