"""CIFAR-10 "python version" batches, read with a restricted unpickler.

The files in ``cifar-10-batches-py`` are pickles (protocol 2, written by Python 2) of
dicts with bytes keys: ``b"data"`` a uint8 array (n, 3072) holding the red, green and
blue 32x32 planes of each image, ``b"labels"`` a list of ints, and in ``batches.meta``
``b"label_names"``. A pickle can run any callable it names, so :class:`RestrictedUnpickler`
resolves only the few globals those files need and refuses every other one before
anything is called.
"""
from __future__ import annotations

import codecs
import pickle
from pathlib import Path

import numpy as np

from pipeline.data.dataset import Batch, Dataset, DatasetError, content_fingerprint, file_stamp

BATCHES_FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
META_FILE = "batches.meta"
SPLIT_FILES = {"train": TRAIN_FILES, "test": TEST_FILES}


def _reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct as fn  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct as fn
    return fn


def _frombuffer(buf, dtype, shape, order):
    """What numpy's protocol-5 ``_frombuffer`` does, without importing private modules."""
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order)


def _latin1_encode(text, encoding="latin1"):
    """``_codecs.encode`` as Python 3 uses it to pickle bytes at protocol 2: latin-1 only."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _allowed_globals():
    reconstruct = _reconstruct()
    allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.numeric", "_frombuffer")] = _frombuffer
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy array reconstruction globals.

    Allowed: ``numpy.ndarray``, ``numpy.dtype``, ``numpy[._]core.multiarray._reconstruct``,
    ``numpy[._]core.numeric._frombuffer`` (protocol 5) and ``_codecs.encode`` restricted
    to latin-1 (how Python 3 writes bytes at protocol 2). Anything else raises
    :class:`pickle.UnpicklingError` naming the refused global; nothing is imported or
    called for it.
    """

    def __init__(self, file, **kwargs):
        kwargs.setdefault("encoding", "bytes")
        super().__init__(file, **kwargs)
        self._allowed = _allowed_globals()

    def find_class(self, module, name):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused persistent id")


def load_pickle(path):
    """Unpickle ``path`` with :class:`RestrictedUnpickler`; any failure is a ``DatasetError``."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return RestrictedUnpickler(fh).load()
    except pickle.UnpicklingError as exc:
        raise DatasetError(path, f"unsafe or invalid pickle: {exc}") from exc
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeError) as exc:
        raise DatasetError(path, f"invalid pickle ({type(exc).__name__}: {exc})") from exc
    except (MemoryError, OverflowError) as exc:  # a length or shape far beyond the file's size
        raise DatasetError(path, f"invalid pickle: it asks for more memory than a batch of "
                                 f"{path.stat().st_size:,} bytes can describe ({type(exc).__name__})") from exc


def _get(entry, key, path):
    if not isinstance(entry, dict):
        raise DatasetError(path, f"expected a dict, got {type(entry).__name__}")
    for k in (key, key.decode()):
        if k in entry:
            return entry[k]
    raise DatasetError(path, f"missing key {key!r}; keys found: {sorted(map(repr, entry))}")


def read_meta(path):
    """Return the class names stored in ``batches.meta``."""
    names = _get(load_pickle(path), b"label_names", path)
    if not isinstance(names, (list, tuple)) or not names:
        raise DatasetError(path, f"expected a non-empty list of label names, got {type(names).__name__}")
    return tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names)


def read_batch(path, n_classes):
    """Read one batch file.

    Returns
    -------
    images : ndarray of uint8, shape (n, 32, 32, 3)
    labels : ndarray of int64, shape (n,)
    """
    path = Path(path)
    entry = load_pickle(path)
    data = _get(entry, b"data", path)
    labels = _get(entry, b"labels", path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetError(path, f"expected data as a uint8 array of shape (n, 3072), got {got}")
    size = path.stat().st_size
    if data.nbytes > size:  # numpy.ndarray((n, 3072), ...) called by the pickle: memory it never held
        raise DatasetError(path, f"invalid pickle: it asks for more memory than a batch of {size:,} bytes can "
                                 f"describe ({data.nbytes:,} bytes of pixels)")
    try:
        labels = np.asarray(labels)
    except (TypeError, ValueError) as exc:
        raise DatasetError(path, f"labels are not a list of ints ({exc})") from exc
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise DatasetError(path, f"expected labels as a list of ints, got dtype {labels.dtype} shape {labels.shape}")
    if len(labels) != len(data):
        raise DatasetError(path, f"count mismatch: {len(labels)} labels but {len(data)} images")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DatasetError(path, f"labels must be in 0..{n_classes - 1} ({n_classes} classes), "
                    f"got {labels.min()}..{labels.max()}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def batches_folder(root):
    """Return ``root/cifar-10-batches-py`` or ``root`` itself if it holds ``batches.meta``, else None."""
    for folder in (Path(root) / BATCHES_FOLDER, Path(root)):
        if (folder / META_FILE).is_file():
            return folder
    return None


def missing_files(folder, split):
    """Files of ``split`` (and the meta file) absent from ``folder``."""
    return [f for f in (META_FILE, *SPLIT_FILES[split]) if not (Path(folder) / f).is_file()]


class CifarDataset(Dataset):
    """One split of a ``cifar-10-batches-py`` folder, read a batch file at a time.

    Opening reads each batch once for its labels (the images are dropped); a range
    reads only the batches it overlaps. Images ``(n, 32, 32, 3)``.
    """

    def __init__(self, folder, split, name="", source=""):
        folder = Path(folder)
        self.folder, self.split, self.name, self.source = folder, split, name, str(source or folder)
        self.class_names = read_meta(folder / META_FILE)
        labels = [read_batch(folder / f, len(self.class_names))[1] for f in SPLIT_FILES[split]]
        self.batch_sizes = tuple(len(part) for part in labels)
        self.labels = np.concatenate(labels)
        self.labels.flags.writeable = False
        self.image_shape = (32, 32, 3)
        self._freeze()

    def task(self, start, stop):
        start, stop = self._check_range(start, stop)
        return {"kind": "cifar", "folder": str(self.folder), "split": self.split,
                "class_names": list(self.class_names), "batch_sizes": list(self.batch_sizes),
                "start": start, "stop": stop}

    def _read_task(self, task):
        return read_task(task)

    def _fingerprint(self):
        blocks = (read_batch(self.folder / f, len(self.class_names))[0] for f in SPLIT_FILES[self.split])
        return content_fingerprint((len(self), *self.image_shape), blocks, self.labels)


_BATCH = {}  # per process: the last batch file read, by its path and file_stamp


def read_task(task):
    """The rows ``[start, stop)`` of a CIFAR task: only the batch files they are in are read."""
    folder, start, stop = Path(task["folder"]), task["start"], task["stop"]
    images, labels, first = [], [], 0
    for name, count in zip(SPLIT_FILES[task["split"]], task["batch_sizes"]):
        last = first + count
        if first < stop and start < last:
            path = folder / name
            key = (str(path), file_stamp(path))
            if key not in _BATCH:
                _BATCH.clear()
                _BATCH[key] = read_batch(path, len(task["class_names"]))
            batch_images, batch_labels = _BATCH[key]
            if len(batch_labels) != count:
                raise DatasetError(path, f"changed since the dataset was opened: {len(batch_labels)} images, "
                                         f"expected {count}")
            lo, hi = max(start, first) - first, min(stop, last) - first
            images.append(batch_images[lo:hi])
            labels.append(batch_labels[lo:hi])
        first = last
        if first >= stop:
            break
    return Batch(np.concatenate(images) if images else np.zeros((0, 32, 32, 3), np.uint8),
                 np.concatenate(labels) if labels else np.zeros(0, np.int64))
