"""scikit-learn's bundled 8x8 digits as a cvpipe dataset: uint8 images, a fixed 80/20 split."""
from __future__ import annotations

import numpy as np

from pipeline.data.dataset import ArrayDataset

#: Fraction held out for "test" and the seed of the split.
TEST_SIZE = 0.2
SEED = 0


def split_indices(target):
    """Indices of the train and test parts of ``load_digits`` (sorted).

    The same membership as ``train_test_split(X, y, test_size=0.2, stratify=y,
    random_state=0)``: 1437 train, 360 test, each class in the same proportion.
    """
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(len(target)), test_size=TEST_SIZE, stratify=target,
                                   random_state=SEED)
    return np.sort(train), np.sort(test)


def read_split(split):
    """``(images, labels)`` of ``split``: each value ``v`` in 0..16 becomes ``rint(v * 255 / 16)``.

    So 0 -> 0, 8 -> 128, 16 -> 255. The split is :func:`split_indices` (stratified 80/20,
    seed 0), samples kept in their original order.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * 255.0 / 16.0).astype(np.uint8)
    train, test = split_indices(bunch.target)
    idx = train if split == "train" else test
    return images[idx], bunch.target[idx]


def split_sizes():
    """``{"train": n, "test": n}`` without converting the images."""
    from sklearn.datasets import load_digits

    train, test = split_indices(load_digits().target)
    return {"train": len(train), "test": len(test)}


CLASS_NAMES = tuple("0123456789")


def open_split(split):
    """``split`` of the digits as an :class:`ArrayDataset` (small: 1,437 or 360 images of 8x8)."""
    return ArrayDataset(*read_split(split), CLASS_NAMES, "digits", split, "sklearn.datasets.load_digits",
                        origin={"kind": "digits", "split": split})


_OPENED = {}  # per process: the splits read_task read


def read_task(task):
    """The rows ``[start, stop)`` of a digits task."""
    if task["split"] not in _OPENED:
        _OPENED[task["split"]] = open_split(task["split"])
    return _OPENED[task["split"]].read(task["start"], task["stop"])
