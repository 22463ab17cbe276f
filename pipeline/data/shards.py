"""Tar shards of images in the WebDataset layout: ``NNNN.jpg`` beside ``NNNN.cls``.

A dataset is one ``.tar`` file or a folder of them (sorted by name). In a shard, the
members that share a key (the member's path without its extension, which starts at the
first dot of the path's last component, as WebDataset's ``base_plus_ext`` has it:
``v1.0/0001.jpg`` is key ``v1.0/0001``, extension ``jpg``) are one sample: an image
(``.jpg``, ``.jpeg``, ``.png``, ``.webp``, ``.bmp``, ``.gif``, ``.tif``, ``.tiff``,
``.ppm``) and its class (``.cls``: the class index as text). The classes are ``"0"`` ..
the largest index, which must be below :data:`MAX_CLASSES` (a larger one is an error
naming the shard and the member). Everything is read with the standard library's
``tarfile``: listing reads the members' headers (and the tiny ``.cls`` members); a range
reads its images' bytes at their offsets. A sample without an image or a class, or with
an unreadable class, is recorded in ``skipped``; compressed tars (``.tar.gz``) are refused
(they cannot be read at an offset).
"""
from __future__ import annotations

import hashlib
import os
import re
import tarfile
from pathlib import Path

import numpy as np

from pipeline.data.dataset import Batch, Dataset, DatasetError
from pipeline.data.files import fixed_size_and_mode
from pipeline.data.images import ImageError, decode_with_size

IMAGE_EXTENSIONS = {"jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff", "ppm"}
#: Class indices must be below this. The class names are made for every index up to the
#: largest, and every manifest records them, so one stray ``.cls`` (an image id, a hash, a
#: timestamp) would cost minutes and gigabytes, or all memory, before anything says why.
#: The largest label sets in use (ImageNet-21k: about 21,800 classes; Google Landmarks v2:
#: about 203,000) fit with room to spare, and a million short names are still cheap.
MAX_CLASSES = 1_000_000
#: A member's key and extension, as WebDataset's ``base_plus_ext`` splits them (a folder's
#: dots are not the extension's), so shards written for it pair the same members here.
_KEY_AND_EXTENSION = re.compile(r"((?:.*/|)[^.]+)[.]([^/]*)", re.DOTALL)
#: The longest ``.cls`` read: a class index as text, with some white space around it.
_CLS_BYTES = 64


def shard_files(path):
    """The shards of ``path``: the file itself, or the folder's ``*.tar`` files, sorted."""
    path = Path(path)
    if path.is_file():
        return [path]
    shards = sorted(p for p in path.iterdir() if p.suffix == ".tar" and p.is_file() and not p.name.startswith("."))
    if not shards:
        raise DatasetError(path, "no .tar shards: expected NNNN.tar files of NNNN.jpg + NNNN.cls members")
    return shards


def split_key(name):
    """``(key, extension)`` of a member's path, the extension lowercased.

    The extension starts at the first dot of the last path component: ``a/0001.seg.png``
    is ``("a/0001", "seg.png")``, ``v1.0/0001.jpg`` is ``("v1.0/0001", "jpg")``. A name
    with no extension is its own key, with extension ``""`` (a sample without an image).
    """
    match = _KEY_AND_EXTENSION.fullmatch(name)
    return (match[1], match[2].lower()) if match else (name, "")


def index_shard(path):
    """``([(key, offset, size, label)], skipped)`` of one shard: where each image is, and its class."""
    samples, skipped = {}, []
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, ext = split_key(member.name)
                entry = samples.setdefault(key, {})
                if ext == "cls":
                    label = _read_class(path, tar, member)
                    if label is None:
                        entry["bad_label"] = True
                    else:
                        entry["label"] = label
                elif ext in IMAGE_EXTENSIONS:
                    entry["image"] = (member.offset_data, member.size)
    except tarfile.ReadError as exc:
        raise DatasetError(path, f"not an uncompressed tar file ({exc}); expected a WebDataset shard") from exc
    except OSError as exc:
        raise DatasetError(path, f"cannot read the shard ({exc})") from exc
    rows = []
    for key in sorted(samples):
        entry = samples[key]
        if "image" in entry and entry.get("label", -1) >= 0 and not entry.get("bad_label"):
            rows.append((key, *entry["image"], entry["label"]))
        else:
            why = ("no image member" if "image" not in entry else
                   "an unreadable or negative .cls" if "label" in entry or entry.get("bad_label") else "no .cls member")
            skipped.append((f"{path}:{key}", why))
    return rows, skipped


def _read_class(path, tar, member):
    """The class index of a ``.cls`` member, or None when it is not an integer (or too long to be one).

    Raises
    ------
    DatasetError
        The index is :data:`MAX_CLASSES` or more: refused before any class name is made.
    """
    if member.size > _CLS_BYTES:  # read whole or not at all: a prefix of a long number is another number
        return None
    try:
        label = int(tar.extractfile(member).read().decode("ascii").strip())
    except (ValueError, UnicodeDecodeError):
        return None
    if label >= MAX_CLASSES:
        raise DatasetError(path, f"member {member.name!r}: class index {label:,} is out of range: expected "
                                 f"0..{MAX_CLASSES - 1:,} (at most {MAX_CLASSES:,} classes); a .cls holds the "
                                 "sample's class index as text, not an id or a hash")
    return label


class ShardDataset(Dataset):
    """The samples of one tar shard or a folder of them (see the module docstring)."""

    def __init__(self, path, split="train", *, size=None, mode=None):
        path = Path(path)
        self.shards = shard_files(path)
        rows, skipped = [], []
        for number, shard in enumerate(self.shards):
            shard_rows, shard_skipped = index_shard(shard)
            rows.extend((number, *row) for row in shard_rows)
            skipped.extend(shard_skipped)
        if not rows:
            raise DatasetError(path, f"no samples (an image and its .cls) in {len(self.shards)} shards; "
                                     f"skipped: {skipped[:3]}")
        self._shard = np.array([r[0] for r in rows], dtype=np.int32)
        self._keys = np.array([r[1].encode("utf-8", "surrogateescape") for r in rows], dtype=np.bytes_)
        self._offset = np.array([r[2] for r in rows], dtype=np.int64)
        self._size = np.array([r[3] for r in rows], dtype=np.int64)
        self.labels = np.array([r[4] for r in rows], dtype=np.int64)
        self.labels.flags.writeable = False
        self.class_names = tuple(str(i) for i in range(int(self.labels.max()) + 1))
        self.name, self.split, self.source, self.skipped = path.stem, split, str(path), tuple(skipped)
        try:
            self.size, self.mode, self.size_and_mode_from = fixed_size_and_mode(
                len(rows), lambda row: (_read_member(str(self.shards[self._shard[row]]), self._offset[row],
                                                     self._size[row]), self._name(row)), size, mode)
        except ImageError as exc:
            raise DatasetError(path, f"no readable images among the {len(rows)} samples ({exc})") from exc
        self.image_shape = self.size + ((3,) if self.mode == "RGB" else ())
        self._freeze()

    def _name(self, row):
        return f"{self.shards[self._shard[row]].name}:{self._keys[row].decode('utf-8', 'surrogateescape')}"

    def task(self, start, stop):
        start, stop = self._check_range(start, stop)
        used = sorted(set(self._shard[start:stop].tolist()))
        position = {s: i for i, s in enumerate(used)}
        return {"kind": "tar", "shards": [str(self.shards[s]) for s in used],
                "members": [[position[int(self._shard[r])], int(self._offset[r]), int(self._size[r]), self._name(r)]
                            for r in range(start, stop)],
                "labels": self.labels[start:stop].tolist(), "size": list(self.size), "mode": self.mode,
                "start": start, "stop": stop}

    def _read_task(self, task):
        return read_task(task)

    def _fingerprint(self):
        """SHA-256 of the shards (name, size, modification time) and of the samples found in
        them (key, offset, size, label): it changes when a shard is replaced or rewritten."""
        h = hashlib.sha256(b"cvpipe.Shards v1\0")
        h.update(f"{self.size} {self.mode}\0".encode())
        for shard in self.shards:
            st = os.stat(shard)
            h.update(f"{shard.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode("utf-8", "surrogateescape"))
        for array in (self._shard, self._keys, self._offset, self._size, self.labels):
            h.update(np.ascontiguousarray(array).tobytes())
        return h.hexdigest()

    def describe(self):
        return {**super().describe(), "shards": len(self.shards), "size": list(self.size), "mode": self.mode,
                "size_and_mode_from": self.size_and_mode_from}


def _read_member(shard, offset, size):
    with open(shard, "rb") as fh:
        fh.seek(int(offset))
        data = fh.read(int(size))
    if len(data) != size:
        raise ImageError(f"{shard}: the member at offset {offset} is cut short ({len(data)} of {size} bytes)")
    return data


def read_task(task):
    """Decode the images of a tar task into a :class:`Batch`; an unreadable one is a zero row in ``failed``."""
    size, mode = tuple(task["size"]), task["mode"]
    images = np.zeros((len(task["members"]), *size, *((3,) if mode == "RGB" else ())), dtype=np.uint8)
    failed, resized = [], 0
    for i, (shard, offset, length, name) in enumerate(task["members"]):
        try:
            images[i], original = decode_with_size(_read_member(task["shards"][shard], offset, length), size, mode,
                                                   where=name)
            resized += original != size
        except (ImageError, OSError) as exc:
            failed.append((task["start"] + i, name, str(exc)))
    return Batch(images, np.asarray(task["labels"], dtype=np.int64), tuple(failed), resized)
