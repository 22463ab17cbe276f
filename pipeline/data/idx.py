"""IDX files (the MNIST / Fashion-MNIST format): checked, then memory-mapped.

An IDX file is a 4-byte magic number ``00 00 <dtype> <ndim>``, then ``ndim`` big-endian
uint32 dimensions, then the data in C order. MNIST-style images are ``dtype=0x08``
(unsigned byte), ``ndim=3`` (magic 2051); labels are ``0x08``, ``ndim=1`` (magic 2049).

A gzipped file (``.gz``) is decompressed once, by streaming, into the cache
(:func:`pipeline.data.paths.decompressed_dir`) and memory-mapped from there, so a
dataset larger than memory reads one range at a time. Before anything is decompressed,
the header's size is checked against what the compressed file can hold (deflate packs
at most 1032 bytes into one): a small file whose header claims gigabytes is refused at
once. A ``.gz`` is read as Python's :mod:`gzip` reads it: every member of a file made of
several (``bgzip``, ``cat a.gz b.gz``), zero bytes after a member skipped. Its last four
bytes record the size of the last member only, so they refute a header that claims less
than they record (trailing data) but cannot confirm one; data that ends before the
header's size, or runs past it, is refused while streaming. Every error names the file
(the one the user has, not the cache's copy) and says what was expected and what was found.
"""
from __future__ import annotations

import gzip
import hashlib
import logging
import struct
import zlib
from pathlib import Path

import numpy as np

from pipeline._io import atomic_path
from pipeline.data.dataset import ArrayDataset, Batch, DatasetError, file_stamp
from pipeline.data.paths import decompressed_dir

logger = logging.getLogger(__name__)

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
#: The IDX data-type code of unsigned bytes, the only one read here.
UBYTE = 0x08
#: split -> file-name prefix used by the MNIST family.
SPLIT_PREFIX = {"train": "train", "test": "t10k"}
#: Deflate's best ratio: no gzip file decompresses to more than this many times its size.
MAX_DEFLATE_RATIO = 1032
_BLOCK = 1 << 20
#: The end of a ``.gz`` read before decompressing: its last member's trailer, unless more
#: zero padding than this follows it.
_TAIL = 1 << 16


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


def _open(path):
    return gzip.open(path, "rb") if Path(path).suffix == ".gz" else open(path, "rb")


def read_header(path):
    """Return ``(magic, dims)`` from the first bytes of an IDX file, decompressing only those."""
    path = Path(path)
    try:
        with _open(path) as fh:
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


def _check_header(path, magic, dims, expected_magic):
    """The header's data size, after checking the header itself."""
    head = struct.pack(">I", magic)
    if head[0] != 0 or head[1] != 0:
        raise DatasetError(path, f"bad magic number: expected {expected_magic} (0x{expected_magic:08x}), "
                                 f"got {magic} (0x{magic:08x}); not an IDX file")
    if head[2] != UBYTE:
        raise DatasetError(path, f"unsupported IDX data type: expected 0x08 (unsigned byte), got 0x{head[2]:02x}")
    if magic != expected_magic:
        raise DatasetError(path, f"bad magic number: expected {expected_magic} ({expected_magic & 0xFF} dims), "
                                 f"got {magic} ({head[3]} dims)")
    if len(dims) > 1 and min(dims[1:]) == 0:
        raise DatasetError(path, f"bad dimensions {dims}: every image dimension must be positive")
    return 4 + 4 * len(dims), int(np.prod(dims, dtype=object))


def _plain_copy(path, total):
    """The decompressed copy of a ``.gz`` IDX file in the cache, made once (atomically).

    ``total`` is the size the header announces. The copy is named by the file's path,
    size, modification time and last bytes (the last member's CRC-32), so a changed file
    gets a new copy.
    """
    st = path.stat()
    if total > MAX_DEFLATE_RATIO * st.st_size + 1024:
        raise DatasetError(path, f"the header claims {total:,} bytes of data, more than a gzip file of "
                                 f"{st.st_size:,} bytes can hold (deflate packs at most {MAX_DEFLATE_RATIO}:1); "
                                 "refused before decompressing it")
    with open(path, "rb") as fh:
        fh.seek(max(0, st.st_size - _TAIL))
        tail = fh.read(_TAIL)
    # The last 4 bytes are the size (modulo 2**32) of the last member, or zero padding, or
    # a member's size shifted by a few zero bytes: in a valid file, never more than the
    # data, nor than deflate's ratio allows. More is refused now; less proves nothing (the
    # other members hold the rest) and is left to the streaming below.
    recorded = struct.unpack("<I", tail[-4:])[0] if len(tail) >= 8 else None
    if recorded is not None and recorded > MAX_DEFLATE_RATIO * st.st_size + 1024:
        raise DatasetError(path, "its last bytes are not a gzip trailer nor zero padding (they claim "
                                 f"{recorded:,} bytes from a file of {st.st_size:,}): a truncated gzip stream, or "
                                 "trailing data; refused before decompressing it")
    if recorded is not None and total < 2**32 and recorded > total:
        raise DatasetError(path, f"{recorded - total} trailing bytes: header says {total:,} bytes, the gzip "
                                 f"trailer records {recorded:,}; refused before decompressing it")
    # The CRC too: a file rewritten with the same size and modification time is not the old copy.
    stamp = f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0".encode()
    key = hashlib.sha256(stamp + tail).hexdigest()[:16]
    target = decompressed_dir() / f"{path.stem}.{key}"
    if target.is_file() and target.stat().st_size == total:
        return target
    with atomic_path(target) as tmp, _open(path) as src, open(tmp, "wb") as out:
        written = 0
        try:
            for block in iter(lambda: src.read(_BLOCK), b""):
                written += len(block)
                if written > total:
                    raise DatasetError(path, f"more than the {total:,} bytes its header says: trailing data")
                out.write(block)
        except EOFError as exc:
            raise DatasetError(path, "truncated gzip stream (the compressed file ends early)") from exc
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise DatasetError(path, f"not a valid gzip file ({exc})") from exc
        if written < total:
            raise DatasetError(path, f"truncated: header says {total:,} bytes, got {written:,}")
    logger.info("decompressed %s into %s", path, target)
    return target


def open_idx(path, *, expected_magic):
    """Memory-map an unsigned-byte IDX file after checking it against its header.

    Parameters
    ----------
    path : path-like
        Plain or ``.gz`` IDX file (a ``.gz`` is decompressed once into the cache; where
        the cache cannot be written, into memory).
    expected_magic : int
        2051 for images (3 dims), 2049 for labels (1 dim).

    Returns
    -------
    ndarray of uint8 (a read-only memory map, or an array)
        Shape ``(n, rows, cols)`` for images, ``(n,)`` for labels.

    Raises
    ------
    DatasetError
        Bad magic number or data type, wrong number of dimensions, impossible
        dimensions, a file shorter (truncated) or longer than its header says, a gzip
        file that cannot hold what its header claims.
    """
    path = Path(path)
    magic, dims = read_header(path)
    header_len, size = _check_header(path, magic, dims, expected_magic)
    total = header_len + size
    if path.suffix == ".gz":
        try:
            plain = _plain_copy(path, total)
        except OSError as exc:  # no writable cache: decompress into memory, as a last resort
            logger.warning("cannot keep a decompressed copy of %s (%s); reading it into memory", path, exc)
            return _in_memory(path, header_len, total, dims)
    else:
        plain = path
    actual = plain.stat().st_size
    if actual < total:
        raise DatasetError(path, f"truncated: header says {dims} -> {total} bytes, got {actual} bytes")
    if actual > total:
        raise DatasetError(path, f"{actual - total} trailing bytes: header says {dims} -> {total} bytes, "
                                 f"got {actual} bytes")
    if size == 0:
        return np.zeros(dims, np.uint8)
    return np.memmap(plain, dtype=np.uint8, mode="r", offset=header_len, shape=tuple(dims))


def _in_memory(path, header_len, total, dims):
    with _open(path) as fh:
        try:
            raw = fh.read(total + 1)
        except EOFError as exc:
            raise DatasetError(path, "truncated gzip stream (the compressed file ends early)") from exc
    if len(raw) != total:
        raise DatasetError(path, f"header says {dims} -> {total} bytes, got {len(raw)} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims)


class IdxDataset(ArrayDataset):
    """An images file and a labels file in IDX format, memory-mapped.

    Parameters
    ----------
    images_path, labels_path : path-like
        Plain or ``.gz`` IDX files.
    class_names : sequence of str, optional
        Default: ``"0"`` .. the largest label.
    name, split, source : str
    """

    def __init__(self, images_path, labels_path, class_names=None, name="", split="train", source=""):
        images = open_idx(images_path, expected_magic=IMAGES_MAGIC)
        labels = open_idx(labels_path, expected_magic=LABELS_MAGIC)
        if len(images) != len(labels):
            raise DatasetError(labels_path, f"count mismatch: {len(labels)} labels but {len(images)} images "
                                            f"in {images_path}")
        if class_names is None:
            class_names = tuple(str(i) for i in range(int(labels.max()) + 1 if len(labels) else 0))
        elif len(labels) and labels.max() >= len(class_names):
            bad = int(np.argmax(labels >= len(class_names)))
            raise DatasetError(labels_path, f"label {int(labels[bad])} at index {bad}: expected labels in "
                                            f"0..{len(class_names) - 1} ({len(class_names)} classes)")
        origin = {"kind": "idx", "images": str(images_path), "labels": str(labels_path),
                  "class_names": list(class_names)}
        super().__init__(images, np.asarray(labels, dtype=np.int64), class_names, name, split,
                         source or str(Path(images_path).parent), origin=origin)


_OPENED = {}  # per process: the datasets read_task opened, by their files


def read_task(task):
    """The rows ``[start, stop)`` of an IDX task (see :meth:`Dataset.task`)."""
    key = (task["images"], task["labels"], file_stamp(task["images"]), file_stamp(task["labels"]))
    if key not in _OPENED:
        _OPENED.clear()  # one dataset open at a time: a worker reads one job's rows
        _OPENED[key] = IdxDataset(task["images"], task["labels"], task["class_names"])
    return _OPENED[key].read(task["start"], task["stop"])


__all__ = ["Batch", "IdxDataset", "open_idx", "read_header", "read_task"]
