"""One dataset split in a ``.npz`` file: ``images`` (uint8), ``labels`` (ints), optional ``class_names``."""
from __future__ import annotations

import zipfile

import numpy as np

from pipeline.data.dataset import DatasetError


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
            images, labels = npz["images"], npz["labels"]
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
