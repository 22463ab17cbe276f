"""A dataset split as a chunked, lazy source, and the errors every reader raises.

The leaf of :mod:`pipeline.data`: the readers (:mod:`~pipeline.data.idx`,
:mod:`~pipeline.data.cifar`, :mod:`~pipeline.data.npz`, :mod:`~pipeline.data.digits`,
:mod:`~pipeline.data.files`, :mod:`~pipeline.data.folder`, :mod:`~pipeline.data.shards`,
:mod:`~pipeline.data.listing`) and :mod:`~pipeline.data.datasets` import it; it imports
none of them.

A :class:`Dataset` knows its length, class names, labels, image shape and fingerprint,
and reads any range of rows (:meth:`Dataset.read`); it never needs to hold everything.
:meth:`Dataset.task` describes a range as a small JSON-able dict that another process,
on this machine or another, turns back into the same rows
(:func:`pipeline.data.datasets.read_task`): the batch job ships that description, never
the pixels. :class:`ArrayDataset` is a dataset held in memory (small data, and what
:meth:`Dataset.materialize` gives).
"""
from __future__ import annotations

import hashlib
import logging
import os
from typing import NamedTuple

import numpy as np

logger = logging.getLogger(__name__)

SPLITS = ("train", "test")


class DatasetError(ValueError):
    """A dataset file is missing, malformed or unsafe. ``path`` and ``reason`` say which and why."""

    def __init__(self, path, reason):
        self.path = None if path is None else str(path)
        self.reason = reason
        super().__init__(reason if path is None else f"{path}: {reason}")


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """No source holds the dataset. ``searched`` lists ``(place, what was missing)``."""

    def __init__(self, name, searched, hint=""):
        self.searched = tuple((str(p), why) for p, why in searched)
        lines = "".join(f"\n  {p}: {why}" for p, why in self.searched)
        super().__init__(None, f"dataset {str(name)!r} not found; searched:{lines}{hint}")


class Batch(NamedTuple):
    """Rows read from a dataset.

    Attributes
    ----------
    images : ndarray of uint8, shape (n, *image_shape)
        A row whose item could not be read is all zeros, and listed in ``failed``.
    labels : ndarray of int64, shape (n,)
    failed : tuple of (int, str, str)
        ``(row, item, reason)`` of every item that could not be read (``row`` counts
        from the start of the dataset).
    resized : int
        How many items were resized to the dataset's image shape.
    """

    images: np.ndarray
    labels: np.ndarray
    failed: tuple = ()
    resized: int = 0


def check_images_and_labels(images, labels, class_names, where=None):
    """Validate arrays as a dataset's rows; return ``(images, labels int64, names tuple)``."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise DatasetError(where, f"expected uint8 images of shape (N, H, W) or (N, H, W, C), "
                                  f"got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images) or (labels.size and labels.dtype.kind not in "iu"):
        raise DatasetError(where, f"expected {len(images)} integer labels, got {labels.dtype} {labels.shape}")
    if isinstance(class_names, (str, bytes)):
        raise TypeError(f"class_names must be a sequence of names, got the string {class_names!r}")
    names = tuple(str(n) for n in class_names)
    if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
        raise DatasetError(where, f"labels must be in 0..{len(names) - 1} ({len(names)} classes), "
                                  f"got {labels.min()}..{labels.max()}")
    return images, labels.astype(np.int64, copy=False), names


class Dataset:
    """A dataset split: a chunked, lazy source of uint8 images and their labels.

    Subclasses set the attributes and implement :meth:`task`, :meth:`_read_task` (the
    same reading, done here) and :meth:`_fingerprint`.

    Attributes
    ----------
    name, split : str
    source : str
        The file, folder or listing the data comes from.
    class_names : tuple of str
    image_shape : tuple of int
        ``(height, width)`` or ``(height, width, channels)`` of every image read.
    labels : ndarray of int64, shape (n_samples,)
        Indices into ``class_names``; known without reading any image.
    skipped : tuple of (str, str)
        ``(item, reason)`` of every item left out before any row was counted (a file
        outside the class folders, a FIFO, a symlink loop).
    """

    name = ""
    split = "train"
    source = ""
    class_names = ()
    image_shape = ()
    skipped = ()

    def __len__(self):
        return len(self.labels)

    def __setattr__(self, name, value):
        if self.__dict__.get("_frozen"):
            raise AttributeError(f"a {type(self).__name__} is read-only: cannot set {name!r}")
        object.__setattr__(self, name, value)

    def _freeze(self):
        """Called at the end of a subclass's ``__init__``: nothing is set afterwards."""
        object.__setattr__(self, "_frozen", True)

    def __repr__(self):
        return (f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"image_shape={tuple(self.image_shape)}, n_classes={len(self.class_names)}, "
                f"source={self.source!r}, skipped={len(self.skipped)})")

    @property
    def n_classes(self):
        return len(self.class_names)

    # ---------------------------------------------------------------- reading
    def task(self, start, stop):
        """A JSON-able description of rows ``[start, stop)`` that
        :func:`pipeline.data.datasets.read_task` reads back, in any process."""
        raise NotImplementedError

    def read(self, start, stop):
        """Rows ``[start, stop)`` as a :class:`Batch` (unreadable items zeroed and listed)."""
        start, stop = self._check_range(start, stop)
        return self._read_task(self.task(start, stop))

    def _read_task(self, task):
        raise NotImplementedError

    def chunks(self, size):
        """Yield ``(start, Batch)`` over the whole dataset, ``size`` rows at a time."""
        for start in range(0, len(self), size):
            yield start, self.read(start, min(len(self), start + size))

    def _check_range(self, start, stop):
        start, stop = int(start), int(stop)
        if not 0 <= start <= stop <= len(self):
            raise IndexError(f"rows [{start}, {stop}) are outside the {len(self)} rows of {self.source or self.name}")
        return start, stop

    # ------------------------------------------------------------ in memory
    def materialize(self):
        """Every row in memory, as an :class:`ArrayDataset`; unreadable items are left out
        and added to ``skipped``."""
        parts, skipped, kept, resized = [], list(self.skipped), [], 0
        for start, batch in self.chunks(4096):
            resized += batch.resized
            bad = {row - start for row, _, _ in batch.failed}
            keep = np.array([i not in bad for i in range(len(batch.labels))], dtype=bool)
            parts.append(batch.images[keep])
            kept.append(batch.labels[keep])
            skipped.extend((item, reason) for _, item, reason in batch.failed)
        images = np.concatenate(parts) if parts else np.zeros((0, *self.image_shape), np.uint8)
        labels = np.concatenate(kept) if kept else np.zeros(0, np.int64)
        if not len(labels) and len(self):
            raise DatasetError(self.source or None, f"no readable images among {len(self)}; skipped: {skipped[:3]}")
        if resized:
            height, width = self.image_shape[:2]
            logger.warning("%s: resized %d of %d images to %dx%d (width x height)", self.source, resized,
                           len(labels), width, height)
        for item, reason in skipped[len(self.skipped):]:
            logger.warning("skipped %s: %s", item, reason)
        return ArrayDataset(images, labels, self.class_names, self.name, self.split, self.source, skipped)

    @property
    def images(self):
        """Every image in memory: ``materialize().images`` (for small data)."""
        return self.materialize().images

    def subset(self, indices):
        """An :class:`ArrayDataset` of the rows at ``indices`` (int array, slice or boolean
        mask), in that order; only those rows are read. Unreadable items are left out and
        added to ``skipped``."""
        rows = np.arange(len(self))[indices]
        wanted = np.unique(rows)
        found, skipped = {}, list(self.skipped)
        breaks = np.flatnonzero(np.diff(wanted) != 1) + 1  # runs of consecutive rows: one read each
        for run in np.split(wanted, breaks) if len(wanted) else []:
            batch = self.read(int(run[0]), int(run[-1]) + 1)
            bad = {row for row, _, _ in batch.failed}
            skipped.extend((item, reason) for _, item, reason in batch.failed)
            found.update((int(r), (batch.images[i], batch.labels[i])) for i, r in enumerate(run) if r not in bad)
        kept = [int(r) for r in rows if int(r) in found]
        images = np.stack([found[r][0] for r in kept]) if kept else np.zeros((0, *self.image_shape), np.uint8)
        labels = np.array([found[r][1] for r in kept], dtype=np.int64)
        return ArrayDataset(images, labels, self.class_names, self.name, self.split, self.source, skipped)

    def take(self, n):
        """The first ``n`` samples."""
        return self.subset(slice(0, n))

    # ----------------------------------------------------------- identity
    def fingerprint(self):
        """SHA-256 hex that identifies what this source reads (cached); see ``_fingerprint``."""
        cached = self.__dict__.get("_fingerprint_cache")
        if cached is None:
            cached = self._fingerprint()
            object.__setattr__(self, "_fingerprint_cache", cached)  # a cache, not a change
        return cached

    def _fingerprint(self):
        raise NotImplementedError

    def describe(self):
        """What a job or a model records of this dataset: JSON-able."""
        return {"name": self.name, "split": self.split, "source": str(self.source), "kind": type(self).__name__,
                "n_images": len(self), "image_shape": list(self.image_shape), "class_names": list(self.class_names),
                "fingerprint": self.fingerprint(), "skipped": [list(item) for item in self.skipped]}


class ArrayDataset(Dataset):
    """Images with labels held in memory (or memory-mapped), read-only.

    Parameters
    ----------
    images : array-like of uint8, shape (n_samples, height, width) or (n_samples, height, width, channels)
    labels : array-like of int, shape (n_samples,)
        Indices into ``class_names``.
    class_names : sequence of str
    name, split, source : str
    skipped : sequence of (str, str)
    origin : dict, optional
        A task description (without ``start`` and ``stop``) from which another process
        reads the same rows (a file it was loaded from); without one, :meth:`task` carries
        the rows themselves.
    """

    def __init__(self, images, labels, class_names, name="", split="train", source="", skipped=(), origin=None):
        images, labels, names = check_images_and_labels(images, labels, class_names, source or None)
        images = images.view()
        labels = labels.view()
        images.flags.writeable = labels.flags.writeable = False
        self._images, self.labels, self.class_names = images, labels, names
        self.name, self.split, self.source = name, split, str(source)
        self.skipped = tuple(tuple(item) for item in skipped)
        self.image_shape = tuple(images.shape[1:])
        self.origin = origin
        self._freeze()

    @property
    def images(self):
        return self._images

    def materialize(self):
        return self

    def task(self, start, stop):
        start, stop = self._check_range(start, stop)
        if self.origin is not None:
            return {**self.origin, "start": start, "stop": stop}
        return {"kind": "arrays", "images": self._images[start:stop], "labels": self.labels[start:stop],
                "start": start, "stop": stop}

    def read(self, start, stop):
        start, stop = self._check_range(start, stop)
        return Batch(self._images[start:stop], self.labels[start:stop])

    def subset(self, indices):
        idx = np.arange(len(self))[indices]
        return ArrayDataset(self._images[idx], self.labels[idx], self.class_names, self.name, self.split,
                            self.source, self.skipped)

    def _fingerprint(self):
        return content_fingerprint(self._images.shape, (self._images[i:i + 65536]
                                                        for i in range(0, len(self._images), 65536)), self.labels)


def file_stamp(path):
    """``(inode, size, modification time)`` of a file, or None where it cannot be read.

    What the per-process caches of :func:`read_task` readers are keyed by, beside the
    path: a file replaced since it was opened (a worker kept for the next job) is opened
    again instead of serving the old rows.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def content_fingerprint(shape, image_blocks, labels):
    """SHA-256 hex of images (``shape``, uint8, given as consecutive blocks of rows) and labels.

    The same data gives the same fingerprint in every run and on every machine, however
    it is cut into blocks; one changed pixel or label changes it. Names and sources are
    not part of it.
    """
    h = hashlib.sha256(b"cvpipe.Dataset v1\0")
    h.update(f"images {tuple(shape)} |u1\0".encode())
    for block in image_blocks:
        h.update(np.ascontiguousarray(block, dtype=np.uint8).data)
    h.update(f"labels {tuple(np.shape(labels))} <i8\0".encode())
    h.update(np.asarray(labels).astype("<i8").tobytes())
    return h.hexdigest()
