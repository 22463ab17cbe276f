"""Image folders ``ROOT/<class>/<file>``: a sorted list of files, decoded a range at a time.

- Classes are the sorted names of the class subfolders; files in nested folders belong
  to their top class folder. Hidden files and folders (".name") are ignored.
- Splits: when ROOT has ``train/`` and/or ``test/`` subfolders, ``split`` picks
  ``ROOT/<split>/<class>/<file>`` and the classes are the union over both, so labels
  agree between splits. Otherwise the whole folder is the "train" split.
- Symlinked folders are followed; a folder reached a second time (a symlink loop, or
  two links to one folder) is recorded in ``skipped`` instead of being listed twice.
  Anything that is not a regular file or a folder (a FIFO, a device, a socket, a broken
  link) and any file outside the class folders is recorded in ``skipped``; nothing is
  opened while the list is made.
- Every file Pillow can open counts (any format); size and color mode are fixed up front
  (see :mod:`pipeline.data.files`).
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from pipeline.data.dataset import SPLITS, DatasetError, DatasetNotFoundError
from pipeline.data.files import FileListDataset
from pipeline.data.images import ImageError

logger = logging.getLogger(__name__)


class FolderDataset(FileListDataset):
    """One split of an image folder (see the module docstring).

    Parameters
    ----------
    root : path-like
    split : {"train", "test"}
    size : int or (height, width), optional
    mode : {"L", "RGB"}, optional
    """

    def __init__(self, root, split="train", *, size=None, mode=None):
        root = Path(root)
        folder, class_names, items, labels, skipped = list_folder(root, split)
        for item, reason in skipped:
            logger.warning("skipped %s: %s", item, reason)
        if not items:
            raise DatasetError(folder, f"no image files in the {len(class_names)} class folders; "
                                       f"skipped: {skipped[:3]}")
        try:
            super().__init__(folder, items, labels, class_names, size=size, mode=mode, name=root.name,
                             split=split, source=str(folder), skipped=skipped)
        except ImageError as exc:
            raise DatasetError(folder, f"no readable images among the {len(items)} files in {len(class_names)} "
                                       f"class folders ({exc}); skipped: {skipped[:3]}") from exc


def _is_dir(entry):
    """``entry.is_dir()`` following symlinks; False for a link that cannot be followed
    (one to itself raises ELOOP)."""
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def _is_file(entry):
    try:
        return entry.is_file(follow_symlinks=True)
    except OSError:
        return False


def _subdirs(folder):
    return [e.name for e in sorted(os.scandir(folder), key=lambda e: e.name)
            if not e.name.startswith(".") and _is_dir(e)]


def _kind(path):
    """What a path that is neither a regular file nor a folder is, for the record."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "a broken symlink" if os.path.islink(path) else "unreadable"
    return ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")


def _walk(folder, relative, seen, files, skipped):
    """Append ``folder``'s files (relative paths, sorted: its own, then each subfolder's)."""
    real = os.path.realpath(folder)
    if real in seen:
        skipped.append((str(folder), f"a folder already listed (as {seen[real]}): a symlink loop, or a second "
                                     "link to one folder"))
        return
    seen[real] = str(folder)
    entries = sorted((e for e in os.scandir(folder) if not e.name.startswith(".")), key=lambda e: e.name)
    subfolders = []
    for entry in entries:
        if _is_dir(entry):
            subfolders.append(entry)
        elif _is_file(entry):
            files.append(f"{relative}/{entry.name}")
        else:
            skipped.append((entry.path, f"not an image file: {_kind(entry.path)}"))
    for entry in subfolders:
        _walk(Path(entry.path), f"{relative}/{entry.name}", seen, files, skipped)


def list_folder(root, split):
    """``(folder, class_names, items, labels, skipped)`` of ``split`` of an image folder;
    items are paths relative to ``folder``."""
    root = Path(root)
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
    skipped = [(e.path, "not inside a class folder") for e in sorted(os.scandir(folder), key=lambda e: e.name)
               if not e.name.startswith(".") and not _is_dir(e)]
    real = Path(os.path.realpath(folder))  # a link to the folder listed, or to what holds it, is a loop
    items, labels, seen = [], [], {str(p): str(folder) for p in (real, *real.parents)}
    for label, name in enumerate(class_names):
        if (folder / name).is_dir():
            before = len(items)
            _walk(folder / name, name, seen, items, skipped)
            labels.extend([label] * (len(items) - before))
    return folder, class_names, items, labels, skipped
