"""Datasets: one loader for named datasets, image folders and ``.npz`` files.

``load_dataset(name_or_path, split)`` returns a :class:`Dataset` (uint8 images, int64
labels, class names). Sources:

- ``"fashion-mnist"``, ``"mnist"``: IDX files (plain or ``.gz``) in the first data root
  holding both files of the split (see :func:`data_roots`).
- ``"cifar10"``: ``<root>/cifar10/cifar-10-batches-py`` (or ``<root>/cifar10``), read with
  a restricted unpickler; images ``(N, 32, 32, 3)``.
- ``"digits"``: scikit-learn's bundled 8x8 digits (see :mod:`pipeline.data.digits`).
- a path to a ``.npz`` file (``images``, ``labels``, optional ``class_names``), to an image
  folder ``ROOT/<class>/<image>`` (see :func:`pipeline.data.folder.load_image_folder`), to a folder of IDX
  files, or to a ``cifar-10-batches-py`` folder.

Errors are :class:`DatasetError` (a ``ValueError``) naming the file and what was wrong;
a dataset that cannot be found is :class:`DatasetNotFoundError` (also a
``FileNotFoundError``) listing every place searched.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from pipeline.data import cifar, digits, idx, npz
from pipeline.data.dataset import SPLITS, Dataset, DatasetError, DatasetNotFoundError
from pipeline.data.folder import load_image_folder

logger = logging.getLogger(__name__)

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_CLASSES = tuple("0123456789")
IDX_DATASETS = {"fashion-mnist": FASHION_MNIST_CLASSES, "mnist": MNIST_CLASSES}
NAMED_DATASETS = ("fashion-mnist", "mnist", "cifar10", "digits")
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist",
            "cifar-10": "cifar10", "cifar_10": "cifar10"}

#: Searched last; Debian's ``dataset-fashion-mnist`` installs into it. Patchable in tests.
SYSTEM_DATA_DIR = Path("/usr/share/datasets")


def data_roots():
    """Folders searched for named datasets, in order.

    ``$CVPIPE_DATA`` (when set), ``~/.cache/cvpipe``, then ``/usr/share/datasets``.
    A dataset NAME lives in ``<root>/NAME/``.
    """
    roots = []
    if os.environ.get("CVPIPE_DATA"):
        roots.append(Path(os.environ["CVPIPE_DATA"]).expanduser())
    roots.append(Path.home() / ".cache" / "cvpipe")
    roots.append(Path(SYSTEM_DATA_DIR))
    return roots


def default_cache_dir():
    """Where downloads go: ``$CVPIPE_DATA`` if set, else ``~/.cache/cvpipe``."""
    return data_roots()[0]


def canonical_name(name):
    """``"Fashion_MNIST"`` -> ``"fashion-mnist"``; unknown names come back lower-cased."""
    key = str(name).strip().lower()
    return _ALIASES.get(key, key)


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def _idx_in(folder, split):
    """Return (images_path, labels_path) in ``folder`` or (None, what is missing)."""
    stems = idx.split_files(split)
    found = [idx.find_file(folder, s) for s in stems]
    if all(found):
        return found, None
    missing = [f"{s}[.gz]" for s, f in zip(stems, found) if f is None]
    return None, "no such folder" if not Path(folder).is_dir() else "missing " + ", ".join(missing)


def _find_named(name, split):
    """First data root holding ``split`` of ``name``: (folder, paths) or DatasetNotFoundError."""
    searched = []
    for root in data_roots():
        folder = root / name
        if name == "cifar10":
            batches = cifar.batches_folder(folder)
            missing = cifar.missing_files(batches, split) if batches else None
            if batches and not missing:
                return batches, None
            why = ("no such folder" if not folder.is_dir() else
                   f"missing {', '.join(missing)}" if batches else
                   f"no {cifar.BATCHES_FOLDER}/{cifar.META_FILE}")
        else:
            paths, why = _idx_in(folder, split)
            if paths:
                return folder, paths
        searched.append((folder, why))
    hint = f"\nrun `cvpipe data fetch {name}` or set $CVPIPE_DATA"
    raise DatasetNotFoundError(name, searched, hint)


def load_dataset(name_or_path, split="train", *, size=None, mode=None):
    """Load a dataset split.

    Parameters
    ----------
    name_or_path : str or path-like
        ``"fashion-mnist"``, ``"mnist"``, ``"cifar10"``, ``"digits"`` (a string equal to a
        name, in any case, means the named dataset), or a path (a ``pathlib.Path`` is
        always a path) to a ``.npz`` file, an image folder, a folder of IDX files or a
        CIFAR batches folder.
    split : {"train", "test"}
    size : int or (height, width), optional
        Image folders only: the size every image is resized to (default: the most
        common size among the images).
    mode : {"L", "RGB"}, optional
        Image folders only: the color mode (default: "L" if every image is grayscale).

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetNotFoundError
        Nothing found; the message lists every place searched.
    DatasetError
        A file is malformed, truncated, unsafe or inconsistent (which file, what was
        expected, what was found).
    """
    _check_split(split)
    name = "" if isinstance(name_or_path, os.PathLike) else canonical_name(name_or_path)
    path = None if name in NAMED_DATASETS else Path(name_or_path).expanduser()
    if path is not None and path.is_dir() and not cifar.batches_folder(path) and not _has_idx(path):
        return load_image_folder(path, split, size=size, mode=mode)
    if size is not None or mode is not None:
        raise ValueError(f"size= and mode= apply to image folders only, not to {name_or_path!r}")
    if name in IDX_DATASETS:
        folder, (images_path, labels_path) = _find_named(name, split)
        images, labels = idx.read_idx_pair(images_path, labels_path, len(IDX_DATASETS[name]))
        return Dataset(images, labels, IDX_DATASETS[name], name, split, str(folder))
    if name == "cifar10":
        folder, _ = _find_named(name, split)
        return Dataset(*cifar.read_split(folder, split), name, split, str(folder))
    if name == "digits":
        return Dataset(*digits.read_split(split), MNIST_CLASSES, "digits", split, "sklearn.datasets.load_digits")
    return _load_path(path, split)


def _has_idx(folder):
    return any(idx.find_file(folder, s) for split in SPLITS for s in idx.split_files(split))


def _load_path(path, split):
    if not path.exists():
        hint = f"\nnamed datasets: {', '.join(NAMED_DATASETS)}"
        raise DatasetNotFoundError(path, [(path, "no such file or folder")], hint)
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise DatasetError(path, "unsupported file: expected a .npz file, an image folder, "
                                     "a folder of IDX files or a cifar-10-batches-py folder")
        return Dataset(*npz.read_npz(path), path.stem, split, str(path))  # one split per file: as given
    batches = cifar.batches_folder(path)
    if batches:
        missing = cifar.missing_files(batches, split)
        if missing:
            raise DatasetNotFoundError(path, [(batches, f"missing {', '.join(missing)}")])
        return Dataset(*cifar.read_split(batches, split), path.name, split, str(batches))
    paths, why = _idx_in(path, split)
    if not paths:
        raise DatasetNotFoundError(path, [(path, why)])
    images, labels = idx.read_idx_pair(*paths)
    names = tuple(str(i) for i in range(int(labels.max(initial=-1)) + 1))
    return Dataset(images, labels, names, path.name, split, str(path))


def available_datasets():
    """The named datasets and where they are found.

    Returns
    -------
    list of dict
        One per name in ``NAMED_DATASETS``: ``name``, ``path`` (str, or None when not
        found or bundled), ``splits`` (list of splits found), ``n_images`` (dict split ->
        count, read from the IDX headers; None where counting would mean reading
        everything, as for CIFAR-10), ``searched`` (folders looked in).
    """
    out = []
    for name in NAMED_DATASETS:
        entry = {"name": name, "path": None, "splits": [], "n_images": {},
                 "searched": [str(r / name) for r in data_roots()]}
        if name == "digits":
            entry.update(searched=[], splits=list(SPLITS), n_images=digits.split_sizes())
        else:
            for split in SPLITS:
                try:
                    folder, paths = _find_named(name, split)
                except DatasetNotFoundError:
                    continue
                entry["path"] = entry["path"] or str(folder)
                entry["splits"].append(split)
                entry["n_images"][split] = _idx_count(paths[0]) if paths else None
        out.append(entry)
    return out


def _idx_count(path):
    try:
        return int(idx.read_header(path)[1][0])
    except (DatasetError, IndexError):
        return None
