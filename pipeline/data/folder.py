"""Image folders ``ROOT/<class>/<file>``: any format Pillow reads, bad files reported and skipped."""
from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np

from pipeline.data.dataset import SPLITS, Dataset, DatasetError, DatasetNotFoundError
from pipeline.data.images import ImageError, decode_image, is_gray, probe_image

logger = logging.getLogger(__name__)


def load_image_folder(root, split, *, size=None, mode=None):
    """Read an image folder ``ROOT/<class>/<file>``.

    - Classes are the sorted names of the class subfolders; files in nested folders
      belong to their top class folder. Hidden files and folders (".name") are ignored.
    - Splits: when ROOT has ``train/`` and/or ``test/`` subfolders, ``split`` picks
      ``ROOT/<split>/<class>/<file>`` and the classes are the union over both, so labels
      agree between splits. Otherwise the whole folder is the "train" split.
    - Every file Pillow can open counts (any format). EXIF orientation is applied.
    - Mode: "L" if every image is grayscale, else "RGB" (palette images count as color,
      alpha is dropped, 16-bit grayscale is scaled by 1/257). ``mode=`` forces one.
    - Size: the most common (height, width) (ties: the first met in sorted path order);
      others are resized bilinearly and a warning says how many. ``size=`` (int or
      (height, width)) forces one.
    - A file that cannot be read, or a file outside any class folder, is logged as a
      warning and recorded in ``Dataset.skipped``; no readable image at all is an error.
    """
    if mode not in (None, "L", "RGB"):
        raise ValueError(f"mode must be None, 'L' or 'RGB', got {mode!r}")
    folder, class_names, items, skipped = _folder_items(Path(root), split)
    for path, reason in skipped:
        logger.warning("skipped %s: %s", path, reason)
    probed = []
    for path, label in items:
        try:
            probed.append((path, label, *probe_image(path, where=path.name)))
        except Exception as exc:  # Pillow raises many types on corrupt files; none may stop the load
            _skip(skipped, path, exc)
    if not probed:
        raise DatasetError(folder, f"no readable images among {len(items)} files in "
                                   f"{len(class_names)} class folders; skipped: {skipped[:3]}")
    if mode is None:
        mode = "L" if all(is_gray(m) for *_, m in probed) else "RGB"
    target = _target_size(size, [hw for _, _, hw, _ in probed])
    images, labels, resized = [], [], []
    for path, label, hw, _ in probed:
        try:
            images.append(decode_image(path, target, mode, where=path.name))
        except Exception as exc:  # truncated data shows only when decoding
            _skip(skipped, path, exc)
            continue
        labels.append(label)
        if hw != target:
            resized.append((path, hw))
    if not images:
        raise DatasetError(folder, f"no readable images; skipped: {skipped[:3]}")
    if resized:
        (height, width), (path, (h, w)) = target, resized[0]
        logger.warning("%s: resized %d of %d images to %dx%d (width x height); first: %s was %dx%d",
                       folder, len(resized), len(images), width, height, path, w, h)
    return Dataset(np.stack(images), np.asarray(labels, dtype=np.int64), class_names,
                   Path(root).name, split, str(folder), skipped)


def _skip(skipped, path, exc):
    reason = str(exc) if isinstance(exc, ImageError) else f"{type(exc).__name__}: {exc}"
    logger.warning("skipped %s: %s", path, reason)
    skipped.append((str(path), reason))


def _subdirs(folder):
    return [d.name for d in sorted(folder.iterdir()) if d.is_dir() and not d.name.startswith(".")]


def _walk_files(folder):
    """Files under ``folder``, recursively, in sorted order, without hidden ones."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
    return out


def _folder_items(root, split):
    """``(folder, class_names, [(path, label)], skipped)`` for ``split`` of an image folder."""
    layout = [s for s in SPLITS if (root / s).is_dir()]
    if layout:
        folder = root / split
        if split not in layout:
            raise DatasetNotFoundError(root, [(folder, f"no such folder (found {layout[0]}/ only)")])
        class_names = tuple(sorted(set().union(*(_subdirs(root / s) for s in layout))))
    elif split != "train":
        raise DatasetNotFoundError(root, [(root / split, "no such folder; an image folder without "
                                                         "train/ and test/ subfolders is the 'train' split")])
    else:
        folder, class_names = root, tuple(_subdirs(root))
    if not class_names:
        raise DatasetError(folder, "no class folders: expected ROOT/<class>/<image> "
                                   "or ROOT/<split>/<class>/<image>")
    skipped = [(str(f), "not inside a class folder") for f in sorted(folder.iterdir())
               if f.is_file() and not f.name.startswith(".")]
    items = [(f, label) for label, cls in enumerate(class_names) if (folder / cls).is_dir()
             for f in _walk_files(folder / cls)]
    return folder, class_names, items, skipped


def _target_size(size, sizes):
    """``(height, width)``: the given ``size`` (int or pair) or the most common of ``sizes``."""
    if size is None:
        return Counter(sizes).most_common(1)[0][0]
    h, w = (size, size) if np.isscalar(size) else size
    if int(h) < 1 or int(w) < 1:
        raise ValueError(f"size must be positive (height, width), got {size!r}")
    return int(h), int(w)
