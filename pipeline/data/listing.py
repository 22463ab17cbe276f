"""A CSV listing of images: one ``path,label`` line per image.

A path is a local file (absolute, or relative to the listing's folder), a ``file://``
URL, or any URL fsspec opens (``s3://bucket/key.jpg``, ``https://...``, ``gs://...``:
the library Dask itself uses; the ``dist`` extra installs it). A label is a class name;
the classes are the sorted distinct labels. A first line ``path,label`` is a header and
is skipped. The files are decoded a range at a time (:mod:`pipeline.data.files`).
"""
from __future__ import annotations

import csv
from pathlib import Path

from pipeline.data.dataset import DatasetError
from pipeline.data.files import FileListDataset
from pipeline.data.images import ImageError


def read_listing(path):
    """``(items, label names)`` of a CSV listing, checked: two non-empty fields a line.

    Raises
    ------
    DatasetError
        Unreadable, empty, or a line that is not ``path,label`` (which line, what it holds).
    """
    path = Path(path)
    items, names = [], []
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # a BOM (Excel) is not data
            for number, row in enumerate(csv.reader(fh), start=1):
                if number == 1 and [f.strip().lower() for f in row] == ["path", "label"]:
                    continue
                if not row or all(not f.strip() for f in row):
                    continue
                if len(row) != 2 or not row[0].strip() or not row[1].strip():
                    raise DatasetError(path, f"line {number}: expected 'path,label', got {row!r}"[:200])
                items.append(row[0].strip())
                names.append(row[1].strip())
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(path, f"cannot read the listing ({type(exc).__name__}: {exc})") from exc
    if not items:
        raise DatasetError(path, "no 'path,label' lines: expected one image per line")
    return items, names


class ListingDataset(FileListDataset):
    """The images of a CSV listing (see the module docstring)."""

    def __init__(self, path, split="train", *, size=None, mode=None):
        path = Path(path)
        items, names = read_listing(path)
        class_names = sorted(set(names))
        index = {name: i for i, name in enumerate(class_names)}
        try:
            super().__init__(path.parent, items, [index[n] for n in names], class_names, size=size, mode=mode,
                             name=path.stem, split=split, source=str(path))
        except ImageError as exc:
            raise DatasetError(path, f"no readable images among the {len(items)} listed ({exc})") from exc
