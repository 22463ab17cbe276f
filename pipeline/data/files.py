"""A dataset that is a list of image files with labels, decoded a range at a time.

The image folders (:mod:`pipeline.data.folder`) and the CSV listings
(:mod:`pipeline.data.listing`) are such lists; they differ only in how the list is made.
Nothing is decoded when the list is made: the image size and color mode are fixed up
front, from parameters or from the headers of a bounded, seeded sample of the files,
and recorded; each range read decodes its files (:func:`pipeline.data.images.decode_with_size`:
EXIF orientation, mode conversion, bilinear resizing), and a file that cannot be read
is a zero row listed in the batch's ``failed``, never a silent gap.

An item is a path relative to the list's root, or an absolute path, or a ``file://``
URL of a file on this machine (RFC 8089: ``file:///abs/path`` or
``file://localhost/abs/path``, percent-encoded as :meth:`pathlib.Path.as_uri` writes it;
one that names another host, or no path (``file://x.png`` is the host ``x.png``), is an
unreadable item that says why), or a URL that fsspec opens (``s3://``, ``https://``, ...
through the library Dask itself uses; the ``dist`` extra installs it).
"""
from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import numpy as np

from pipeline.data.dataset import Batch, Dataset
from pipeline.data.images import COLOR_MODES, ImageError, decode_with_size, is_gray, probe_image

#: Files whose headers are read to fix the size and mode when they are not given.
SAMPLE_SIZE = 256


def is_url(item):
    """Whether ``item`` is a URL for fsspec (``scheme://...``) rather than a local path."""
    return "://" in item and not item.startswith("file://")


def _local(root, item):
    """The local path of an item (see the module docstring).

    Raises
    ------
    ImageError
        A ``file://`` URL that names another host, or no path.
    """
    if item.startswith("file://"):
        return _file_url_path(item)
    path = Path(item)
    return path if path.is_absolute() or root is None else Path(root) / path


def _file_url_path(item):
    # RFC 8089: file://HOST/PATH, where an empty HOST and "localhost" are this machine.
    host, slash, path = item[len("file://"):].partition("/")
    expected = "expected file:///absolute/path or file://localhost/absolute/path, a file on this machine"
    if not slash:  # "file://x.png" is host "x.png" and no path: refused, not guessed to be a relative "x.png"
        raise ImageError(f"{item}: a file URL without a path (its host is {host!r}): {expected}; a "
                         "relative path is written without file://")
    if host.lower() not in ("", "localhost"):
        raise ImageError(f"{item}: a file URL of the host {host!r}: {expected}")
    return Path(unquote(slash + path))  # as Path.as_uri() writes it: "a b" is "a%20b"


def _item_name(root, item):
    """What an item is called in a batch's ``failed``: its local path, or the item as written."""
    if is_url(item):
        return item
    try:
        return str(_local(root, item))
    except ImageError:
        return item


def _source(root, item):
    """What the decoder reads: a local path, or the bytes behind a URL."""
    if not is_url(item):
        return _local(root, item)
    try:
        import fsspec  # the dist extra: only listings of URLs need it
    except ImportError as exc:
        raise ImageError(f"{item}: reading URLs needs fsspec (pip install 'cvpipe[dist]')") from exc
    with fsspec.open(item, "rb") as fh:
        return fh.read()


def fixed_size_and_mode(n, source_of, size=None, mode=None, seed=0):
    """``((height, width), mode, how)``: the given ones, or what a sample of headers says.

    ``source_of(row)`` gives ``(what the decoder reads, the item's name)`` of a row of ``n``.

    The sample is at most :data:`SAMPLE_SIZE` items drawn with ``seed``; the mode is "L"
    when every sampled image is grayscale, else "RGB"; the size is the most common one
    (ties: the first met in list order). ``how`` says which, for the record.

    Raises
    ------
    ImageError
        No sampled file could be read (and no size or mode was given).
    """
    if mode not in (None, *COLOR_MODES):
        raise ValueError(f"mode must be None, 'L' or 'RGB', got {mode!r}")
    if size is not None:
        h, w = (size, size) if np.isscalar(size) else size
        if int(h) < 1 or int(w) < 1:
            raise ValueError(f"size must be positive (height, width), got {size!r}")
        size = (int(h), int(w))
    if size is not None and mode is not None:
        return size, mode, "given"
    rows = np.sort(np.random.default_rng(seed).choice(n, min(n, SAMPLE_SIZE), replace=False)) if n else []
    probed, errors = [], []
    for row in rows:
        try:
            source, item = source_of(int(row))
            probed.append(probe_image(source, where=item))
        except Exception as exc:  # as in read_task: a URL fsspec cannot open (unknown scheme) is one bad item
            errors.append(str(exc))
    if not probed:
        raise ImageError(f"none of the {len(rows)} sampled files is a readable image: expected images whose "
                         f"size and mode fix the dataset's; first errors: {errors[:3]}")
    if size is None:
        size = Counter(hw for hw, _ in probed).most_common(1)[0][0]
    if mode is None:
        mode = "L" if all(is_gray(m) for _, m in probed) else "RGB"
    return size, mode, f"a sample of {len(probed)} of {n} files (seed {seed})"


class FileListDataset(Dataset):
    """Image files with labels, decoded a range at a time.

    Parameters
    ----------
    root : path-like or None
        What relative items are relative to.
    items : sequence of str
        One per row: relative path, absolute path or URL.
    labels : array-like of int
        One per row, indices into ``class_names``.
    class_names : sequence of str
    size : int or (height, width), optional
    mode : {"L", "RGB"}, optional
        Both fixed from a sample of the files when not given (:func:`fixed_size_and_mode`).
    name, split, source : str
    skipped : sequence of (str, str)
        Items left out of the list while making it.
    """

    def __init__(self, root, items, labels, class_names, *, size=None, mode=None, name="", split="train",
                 source="", skipped=()):
        self.root = None if root is None else Path(root)
        # Compact: a dataset of 200,000 files keeps its names in a few megabytes.
        self._items = np.array([str(i).encode("utf-8", "surrogateescape") for i in items], dtype=np.bytes_)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.labels.flags.writeable = False
        self.class_names = tuple(str(c) for c in class_names)
        self.name, self.split, self.source = name, split, str(source or root or "")
        self.skipped = tuple(tuple(s) for s in skipped)
        self.size, self.mode, self.size_and_mode_from = fixed_size_and_mode(
            len(self._items), lambda row: (_source(self.root, self.item(row)), self.item(row)), size, mode)
        self.image_shape = self.size + ((3,) if self.mode == "RGB" else ())
        self._freeze()

    def item(self, row):
        """The item (relative path, path or URL) of ``row``."""
        return self._items[row].decode("utf-8", "surrogateescape")

    def task(self, start, stop):
        start, stop = self._check_range(start, stop)
        return {"kind": "files", "root": None if self.root is None else str(self.root),
                "items": [self.item(r) for r in range(start, stop)], "labels": self.labels[start:stop].tolist(),
                "size": list(self.size), "mode": self.mode, "start": start, "stop": stop}

    def _read_task(self, task):
        return read_task(task)

    def _fingerprint(self):
        """SHA-256 of the list as it stands: each item, its label and, for local files,
        their size and modification time; the fixed size and mode; the class names.

        It changes when a file is added, removed, renamed, relabeled or rewritten. It is
        computed without decoding anything (a file list's pixels are only known once
        read), so it is not the fingerprint of the same images held in memory."""
        h = hashlib.sha256(b"cvpipe.FileList v1\0")
        h.update(f"{self.size} {self.mode} {self.class_names}\0".encode())
        for row in range(len(self)):
            item = self.item(row)
            stamp = ""
            if not is_url(item):
                try:
                    st = os.stat(_local(self.root, item))
                    stamp = f"{st.st_size} {st.st_mtime_ns}"
                except OSError as exc:
                    stamp = f"unreadable {exc.errno}"
                except ImageError:
                    stamp = "not a local file"
            h.update(f"{item}\0{int(self.labels[row])}\0{stamp}\0".encode("utf-8", "surrogateescape"))
        return h.hexdigest()

    def describe(self):
        return {**super().describe(), "size": list(self.size), "mode": self.mode,
                "size_and_mode_from": self.size_and_mode_from}


def read_task(task):
    """Decode the files of a task into a :class:`Batch`; an unreadable file is a zero row in ``failed``."""
    size, mode, root = tuple(task["size"]), task["mode"], task["root"]
    shape = size + ((3,) if mode == "RGB" else ())
    images = np.zeros((len(task["items"]), *shape), dtype=np.uint8)
    failed, resized = [], 0
    for i, item in enumerate(task["items"]):
        name = _item_name(root, item)
        try:
            images[i], original = decode_with_size(_source(root, item), size, mode, where=item)
            resized += original != size
        except ImageError as exc:
            failed.append((task["start"] + i, name, str(exc)))
        except Exception as exc:  # a URL that does not answer, a file gone since it was listed
            failed.append((task["start"] + i, name, f"{type(exc).__name__}: {exc}"))
    return Batch(images, np.asarray(task["labels"], dtype=np.int64), tuple(failed), resized)
