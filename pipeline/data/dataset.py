"""A dataset split in memory, and the errors every reader raises.

The leaf of :mod:`pipeline.data`: the readers (:mod:`~pipeline.data.idx`,
:mod:`~pipeline.data.cifar`, :mod:`~pipeline.data.npz`, :mod:`~pipeline.data.digits`,
:mod:`~pipeline.data.folder`) and :func:`~pipeline.data.datasets.load_dataset` import it;
it imports none of them.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

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


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Images with labels, read-only.

    Attributes
    ----------
    images : ndarray of uint8, shape (n_samples, height, width) or (n_samples, height, width, channels)
    labels : ndarray of int64, shape (n_samples,)
        Indices into ``class_names``.
    class_names : tuple of str
    name, split : str
    source : str
        The file or folder the data came from.
    skipped : tuple of (str, str)
        ``(path, reason)`` of every item that was reported and left out while loading.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple
    name: str = ""
    split: str = "train"
    source: str = ""
    skipped: tuple = ()
    _fingerprint: list = field(default_factory=list, init=False, repr=False)

    def __post_init__(self):
        images, labels = np.asarray(self.images), np.asarray(self.labels)
        if images.dtype != np.uint8 or images.ndim not in (3, 4):
            raise DatasetError(self.source or None, f"expected uint8 images of shape (N, H, W) or "
                               f"(N, H, W, C), got {images.dtype} {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images) or (labels.size and labels.dtype.kind not in "iu"):
            raise DatasetError(self.source or None, f"expected {len(images)} integer labels, "
                               f"got {labels.dtype} {labels.shape}")
        if isinstance(self.class_names, (str, bytes)):
            raise TypeError(f"class_names must be a sequence of names, got the string {self.class_names!r}")
        names = tuple(str(n) for n in self.class_names)
        if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
            raise DatasetError(self.source or None, f"labels must be in 0..{len(names) - 1} "
                               f"({len(names)} classes), got {labels.min()}..{labels.max()}")
        images, labels = images.view(), labels.astype(np.int64)
        images.flags.writeable = labels.flags.writeable = False
        for key, value in (("images", images), ("labels", labels), ("class_names", names),
                           ("source", str(self.source)), ("skipped", tuple(map(tuple, self.skipped)))):
            object.__setattr__(self, key, value)

    def __len__(self):
        return len(self.labels)

    def __repr__(self):
        return (f"Dataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"image_shape={self.images.shape[1:]}, n_classes={len(self.class_names)}, "
                f"source={self.source!r}, skipped={len(self.skipped)})")

    @property
    def n_classes(self):
        return len(self.class_names)

    def fingerprint(self):
        """SHA-256 hex of the images' shape, dtype and bytes and the labels' bytes (cached).

        The same data gives the same fingerprint in every run and on every machine;
        one changed pixel or label changes it. Names and sources are not part of it.
        """
        if not self._fingerprint:
            h = hashlib.sha256(b"cvpipe.Dataset v1\0")
            h.update(f"images {self.images.shape} {self.images.dtype.str}\0".encode())
            h.update(np.ascontiguousarray(self.images).data)
            h.update(f"labels {self.labels.shape} <i8\0".encode())
            h.update(self.labels.astype("<i8").tobytes())
            self._fingerprint.append(h.hexdigest())
        return self._fingerprint[0]

    def subset(self, indices):
        """A new Dataset with the samples at ``indices`` (int array, slice or boolean mask)."""
        idx = np.arange(len(self))[indices]
        return Dataset(self.images[idx], self.labels[idx], self.class_names, self.name,
                       self.split, self.source, self.skipped)

    def take(self, n):
        """The first ``n`` samples."""
        return self.subset(slice(0, n))
