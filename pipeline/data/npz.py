"""One dataset split in a ``.npz`` file: ``images`` (uint8), ``labels`` (ints), optional ``class_names``.

An ``images`` array stored uncompressed (``np.savez``) is memory-mapped from inside the
archive, so a range is read without reading the rest; a compressed one
(``np.savez_compressed``) is read into memory.
"""
from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np

from pipeline.data.dataset import ArrayDataset, DatasetError, file_stamp


def read_npz(path):
    """``(images, labels, class_names)`` from a ``.npz`` file, checked.

    Loaded with ``allow_pickle=False``. ``images``: uint8 of shape (N, H, W) or
    (N, H, W, C) with 1, 3 or 4 channels, N > 0; ``labels``: non-negative integers of
    shape (N,); ``class_names`` (optional): strings, one per class. Without it the
    classes are ``"0"`` .. ``str(max label)``.

    Raises
    ------
    DatasetError
        The file is unreadable, not an archive, or an array is missing or malformed
        (which one, what was expected, what was found).
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not hasattr(npz, "files"):
                raise DatasetError(path, "expected a .npz archive, got a single .npy array")
            missing = {"images", "labels"} - set(npz.files)
            if missing:
                raise DatasetError(path, f"missing arrays {sorted(missing)}; found {sorted(npz.files)}")
            images = _stored_memmap(path, "images.npy")
            images = npz["images"] if images is None else images
            labels = npz["labels"]
            names = npz["class_names"] if "class_names" in npz.files else None
    except DatasetError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(path, f"cannot read ({type(exc).__name__}: {exc})") from exc
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) == 0:
        raise DatasetError(path, f"images: expected a non-empty uint8 array of shape (N, H, W) "
                                 f"or (N, H, W, C), got {images.dtype} {images.shape}")
    if images.ndim == 4 and images.shape[3] not in (1, 3, 4):
        raise DatasetError(path, f"images: expected 1, 3 or 4 channels, got {images.shape[3]}")
    if labels.dtype.kind not in "iu" or labels.shape != images.shape[:1]:
        raise DatasetError(path, f"labels: expected integers of shape ({len(images)},), "
                                 f"got {labels.dtype} {labels.shape}")
    if labels.min() < 0:
        raise DatasetError(path, f"labels: expected non-negative, got minimum {labels.min()}")
    if names is None:
        names = [str(i) for i in range(int(labels.max()) + 1)]
    elif names.ndim != 1 or names.dtype.kind not in "US" or len(names) <= labels.max():
        raise DatasetError(path, f"class_names: expected strings, one per class (> {labels.max()}), "
                                 f"got {names.dtype} {names.shape}")
    return images, labels, [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def _stored_memmap(path, member):
    """A read-only memory map of an archive member stored uncompressed, or None (compressed,
    or not a plain numeric array)."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)  # the local file header: its name and extra field lengths at bytes 26-29
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            return None
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(fh)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(fh)
        offset = fh.tell()
    if dtype.hasobject or fortran or offset + int(np.prod(shape)) * dtype.itemsize > info.header_offset + 30 + \
            name_len + extra_len + info.file_size:
        return None
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


class NpzDataset(ArrayDataset):
    """A ``.npz`` dataset split (see :func:`read_npz`); ``images`` memory-mapped when stored uncompressed."""

    def __init__(self, path, name="", split="train"):
        images, labels, names = read_npz(path)
        super().__init__(images, labels, names, name or Path(path).stem, split, str(path),
                         origin={"kind": "npz", "path": str(path)})


_OPENED = {}  # per process: the dataset read_task opened


def read_task(task):
    """The rows ``[start, stop)`` of a ``.npz`` task."""
    key = (task["path"], file_stamp(task["path"]))
    if key not in _OPENED:
        _OPENED.clear()
        _OPENED[key] = NpzDataset(task["path"])
    return _OPENED[key].read(task["start"], task["stop"])
