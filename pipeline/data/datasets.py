"""Datasets: one opener for named datasets and files, lazy or in memory.

``open_dataset(name_or_path, split)`` returns a :class:`~pipeline.data.dataset.Dataset`, a
chunked, lazy source that reads a range of rows at a time; ``load_dataset`` returns the
same split in memory (an :class:`~pipeline.data.dataset.ArrayDataset`, for small data:
IDX files stay memory-mapped, nothing is copied). Sources:

- ``"fashion-mnist"``, ``"mnist"``: IDX files (plain or ``.gz``, decompressed once into
  the cache and memory-mapped) in the first data root holding both files of the split
  (see :func:`pipeline.data.paths.data_roots`);
- ``"cifar10"``: ``<root>/cifar10/cifar-10-batches-py`` (or ``<root>/cifar10``), read a
  batch file at a time with a restricted unpickler; images ``(N, 32, 32, 3)``;
- ``"digits"``: scikit-learn's bundled 8x8 digits (see :mod:`pipeline.data.digits`);
- a path to a ``.npz`` file (``images``, ``labels``, optional ``class_names``), a ``.csv``
  listing of ``path,label`` lines (paths may be URLs), a ``.tar`` shard or a folder of
  them (the WebDataset layout), an image folder ``ROOT/<class>/<image>``, a folder of IDX
  files, or a ``cifar-10-batches-py`` folder.

:func:`read_task` reads back the rows a :meth:`Dataset.task` describes, in any process:
what a batch job's workers call. Errors are :class:`DatasetError` (a ``ValueError``)
naming the file and what was wrong; a dataset that cannot be found is
:class:`DatasetNotFoundError` (also a ``FileNotFoundError``) listing every place searched.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from pipeline.data import cifar, digits, files, idx, npz, shards
from pipeline.data.dataset import SPLITS, Batch, DatasetError, DatasetNotFoundError
from pipeline.data.folder import FolderDataset
from pipeline.data.listing import ListingDataset
from pipeline.data.paths import data_roots, default_cache_dir

logger = logging.getLogger(__name__)

__all__ = ["available_datasets", "canonical_name", "data_roots", "default_cache_dir", "load_dataset",
           "open_dataset", "read_task"]

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_CLASSES = digits.CLASS_NAMES
IDX_DATASETS = {"fashion-mnist": FASHION_MNIST_CLASSES, "mnist": MNIST_CLASSES}
NAMED_DATASETS = ("fashion-mnist", "mnist", "cifar10", "digits")
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist",
            "cifar-10": "cifar10", "cifar_10": "cifar10"}


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


def open_dataset(name_or_path, split="train", *, size=None, mode=None):
    """Open a dataset split as a chunked, lazy source.

    Parameters
    ----------
    name_or_path : str or path-like
        ``"fashion-mnist"``, ``"mnist"``, ``"cifar10"``, ``"digits"`` (a string equal to a
        name, in any case, means the named dataset), or a path (a ``pathlib.Path`` is
        always a path): see the module docstring.
    split : {"train", "test"}
        A ``.npz``, ``.csv`` or shard source is one split: it is read as given.
    size : int or (height, width), optional
        Image files only (folders, listings, shards): the size every image is resized
        to (default: the most common among a sample of the files).
    mode : {"L", "RGB"}, optional
        Image files only: the color mode (default: "L" if every sampled image is grayscale).

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
    if path is not None and path.exists() and _is_image_files(path):
        opener = {".csv": ListingDataset, ".tar": shards.ShardDataset}.get(path.suffix.lower(), None)
        if opener is None:
            opener = shards.ShardDataset if _holds_shards(path) else FolderDataset
        return opener(path, split, size=size, mode=mode)
    if size is not None or mode is not None:
        raise ValueError(f"size= and mode= apply to image files (folders, listings, shards) only, "
                         f"not to {name_or_path!r}")
    if name in IDX_DATASETS:
        folder, (images_path, labels_path) = _find_named(name, split)
        return idx.IdxDataset(images_path, labels_path, IDX_DATASETS[name], name, split, str(folder))
    if name == "cifar10":
        folder, _ = _find_named(name, split)
        return cifar.CifarDataset(folder, split, name)
    if name == "digits":
        return digits.open_split(split)
    return _open_path(path, split)


def load_dataset(name_or_path, split="train", *, size=None, mode=None):
    """A dataset split in memory: :func:`open_dataset`, then
    :meth:`~pipeline.data.dataset.Dataset.materialize` (IDX and uncompressed ``.npz``
    images stay memory-mapped; image files are decoded, unreadable ones left out and
    listed in ``skipped``). For data that does not fit in memory, use :func:`open_dataset`."""
    return open_dataset(name_or_path, split, size=size, mode=mode).materialize()


#: task kind -> the reader that turns it back into rows, in any process.
_TASK_READERS = {"idx": idx.read_task, "cifar": cifar.read_task, "npz": npz.read_task, "digits": digits.read_task,
                 "files": files.read_task, "tar": shards.read_task,
                 "arrays": lambda task: Batch(task["images"], task["labels"])}


def read_task(task):
    """The rows a :meth:`Dataset.task` describes, as a :class:`~pipeline.data.dataset.Batch`.

    Raises
    ------
    ValueError
        A task of an unknown kind.
    """
    kind = task.get("kind") if isinstance(task, dict) else None
    if kind not in _TASK_READERS:
        raise ValueError(f"expected a dataset task of kind {sorted(_TASK_READERS)}, got {str(kind)[:40]!r}")
    return _TASK_READERS[kind](task)


def _is_image_files(path):
    """Whether ``path`` is read as image files: a listing, a shard, or a folder that is
    neither a CIFAR batches folder nor a folder of IDX files."""
    if path.is_file():
        return path.suffix.lower() in (".csv", ".tar")
    return path.is_dir() and not cifar.batches_folder(path) and not _has_idx(path)


def _holds_shards(folder):
    return any(p.suffix == ".tar" and p.is_file() for p in folder.iterdir()) and not any(
        p.is_dir() and not p.name.startswith(".") for p in folder.iterdir())


def _has_idx(folder):
    return any(idx.find_file(folder, s) for split in SPLITS for s in idx.split_files(split))


def _open_path(path, split):
    if not path.exists():
        hint = f"\nnamed datasets: {', '.join(NAMED_DATASETS)}"
        raise DatasetNotFoundError(path, [(path, "no such file or folder")], hint)
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise DatasetError(path, "unsupported file: expected a .npz file, a .csv listing, a .tar shard, "
                                     "an image folder, a folder of IDX files or a cifar-10-batches-py folder")
        return npz.NpzDataset(path, split=split)  # one split per file: as given
    batches = cifar.batches_folder(path)
    if batches:
        missing = cifar.missing_files(batches, split)
        if missing:
            raise DatasetNotFoundError(path, [(batches, f"missing {', '.join(missing)}")])
        return cifar.CifarDataset(batches, split, path.name)
    paths, why = _idx_in(path, split)
    if not paths:
        raise DatasetNotFoundError(path, [(path, why)])
    return idx.IdxDataset(*paths, None, path.name, split, str(path))


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
