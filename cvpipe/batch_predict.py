"""``cvpipe predict``: the classes of many image files, streamed a chunk at a time.

The arguments are files, folders and glob patterns:

- a **file** is one row, whatever its name (it was named);
- a **folder** is walked recursively, its entries sorted by name at every level (so the
  rows are in path order, component by component), symlinked folders followed once.
  Files whose extension is that of a raster format the service also takes
  (:data:`IMAGE_EXTENSIONS`: ``.png``, ``.jpg``, ...) are rows; any other file (a
  ``labels.csv``, a ``README``), hidden entries (``.DS_Store``, ``.git/``) and a folder
  reached a second time (a symlink loop) are *skipped and counted*: they are not
  pictures the user meant, and an error row for each would make every run over a
  real folder "fail". The count, a reason and the first names are logged as a warning
  and returned in the summary; name such a file, or a pattern matching it, to predict it.
  A folder without any image file is an error row;
- a **pattern** (``'imgs/**/*.png'``, quoted so the shell leaves it alone) is expanded
  with :func:`glob.glob` (``recursive=True``: ``**`` crosses folders), its matches
  sorted like a folder's; every file it matches is a row, a folder it matches is
  skipped and counted, and a pattern matching nothing is an error row. An argument that
  exists as a file is never read as a pattern.

A path that does not exist, a folder that cannot be listed and every file that does not
decode (corrupt, not an image, no permission, a FIFO) is a row with its ``error``:
nothing is dropped silently. Paths are listed lazily (a folder's names when the walk
reaches it; a pattern's matches, names only, at once to sort them);
images are decoded :data:`CHUNK_SIZE` at a time with the one decoder
(:func:`pipeline.data.decode_image`, in the model's size and color mode), predicted as
one batch (:meth:`ImagePipeline.top_classes`) and their rows written and flushed before
the next chunk is read, so a folder of 100,000 images never sits in memory and a run
that is killed keeps the rows it wrote.

Rows, in the order of the arguments:

- **CSV** (a header, then one line per image): ``path, label, class_index, score``, then
  ``label_2, score_2, ..., label_K, score_K`` (the next best classes, one column each so
  a spreadsheet can sort and filter them), ``score_kind`` (``probability`` or
  ``decision``) and ``error`` (empty when the image was predicted; the prediction
  columns are empty when it was not);
- **JSON Lines**: ``{"path", "label", "class_index", "score", "score_kind", "top_k":
  [{"label", "class_index", "score"}, ...], "error"}`` per line, ``null`` where a field
  has no value (the same answer as the service's, plus ``path`` and ``error``).

Cells are written as they are, quoted by the :mod:`csv` module where a comma, a quote or a
newline needs it: a path or a class name starting with ``=``, ``+``, ``-`` or ``@`` is *not*
prefixed with an apostrophe (OWASP's defence against formula injection). The file is data for
programs first (the path must round-trip exactly, to join the rows with other tables, and ``-``
starts negative numbers), and the one source of such names is the user's own file names and the
model's class names; a spreadsheet opening rows from untrusted names should import the columns
as text. JSON Lines carries the same values with no such reading.
"""
from __future__ import annotations

import csv
import glob
import json
import logging
import os
import sys
import time
from itertools import islice

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from pipeline.data import SAFE_FORMATS, ImageError, decode_image

logger = logging.getLogger(__name__)

#: Images decoded and predicted at a time (their rows are then written and flushed).
CHUNK_SIZE = 256
FORMATS = ("csv", "jsonl")
#: File name extensions that make a file in a folder an image to predict: those Pillow
#: registers for the raster formats the service takes (a camera's MPO is a JPEG).
IMAGE_EXTENSIONS = frozenset(ext for ext, fmt in Image.registered_extensions().items()
                             if fmt in (*SAFE_FORMATS, "MPO"))
_EXTENSION_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_EXAMPLES = 3  # names kept per skip reason, for the warning


def check_top_k(top_k, n_classes):
    """``top_k`` checked against the model's classes (None: 5, or all classes if fewer).

    Raises
    ------
    ValueError
        ``top_k`` is not an integer from 1 to ``n_classes``.
    """
    if top_k is None:
        return min(5, n_classes)
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or not 1 <= top_k <= n_classes:
        raise ValueError(f"--top-k must be an integer from 1 to {n_classes} (the model's classes), got {top_k!r}")
    return int(top_k)


def check_chunk_size(chunk_size):
    """``chunk_size`` if it is a positive integer, else a ValueError that says so."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"--chunk-size must be a positive integer, got {chunk_size!r}")
    return int(chunk_size)


def output_format(output, fmt=None):
    """The format rows are written in: ``fmt`` when given, else from ``output``'s
    extension (``.csv``; ``.jsonl`` or ``.ndjson``), else CSV for standard output."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        return fmt
    if output is None or str(output) == "-":
        return "csv"
    ext = os.path.splitext(str(output))[1].lower()
    if ext not in _EXTENSION_FORMATS:
        raise ValueError(f"cannot tell the format of --output {output}: expected a name ending in "
                         f"{', '.join(_EXTENSION_FORMATS)} or a --format ({', '.join(FORMATS)}), got {ext or 'none'!r}")
    return _EXTENSION_FORMATS[ext]


class Skipped:
    """What a walk left out: a count per reason, and the first few paths of each."""

    def __init__(self):
        self.counts, self.examples = {}, {}

    def add(self, reason, path):
        self.counts[reason] = self.counts.get(reason, 0) + 1
        names = self.examples.setdefault(reason, [])
        if len(names) < _EXAMPLES:
            names.append(path)

    def total(self):
        return sum(self.counts.values())

    def to_dict(self):
        return {reason: {"count": n, "examples": self.examples[reason]} for reason, n in self.counts.items()}


def _path_key(path):
    """Sort paths component by component, as a folder walk lists them."""
    return path.split(os.sep)


def _is_dir(entry):
    """``entry.is_dir()`` following symlinks; False for a link that cannot be followed."""
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def _walk(folder, skipped, seen):
    """``(path, None)`` for each image file under ``folder`` (sorted, see the module
    docstring); ``(folder, error)`` for a folder that cannot be listed."""
    real = os.path.realpath(folder)
    if real in seen:
        skipped.add("a folder reached a second time: a symlink loop, or a second link to one folder", folder)
        return
    seen.add(real)
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        yield folder, f"{folder}: cannot list the folder ({exc.strerror or exc})"
        return
    for entry in entries:
        if entry.name.startswith("."):
            skipped.add("hidden: a name starting with '.'", entry.path)
        elif _is_dir(entry):
            yield from _walk(entry.path, skipped, seen)
        elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
            yield entry.path, None
        else:
            skipped.add("not an image file name; name the file, or a pattern matching it, to predict it",
                        entry.path)


def iter_image_paths(arguments, skipped=None):
    """The image files that ``arguments`` name, lazily, in order.

    Parameters
    ----------
    arguments : iterable of str or path-like
        Files, folders (walked recursively) and glob patterns (see the module docstring).
    skipped : Skipped, optional
        Receives what was left out of folders and patterns.

    Yields
    ------
    (str, str or None)
        A path, and the error that already makes it a failed row (a pattern that
        matches nothing, a folder that cannot be listed) or None.
    """
    skipped = Skipped() if skipped is None else skipped
    for argument in map(str, arguments):
        if os.path.isdir(argument):
            before, empty = skipped.total(), True
            for item in _walk(argument, skipped, set()):
                empty = False
                yield item
            if empty:  # the user named it for its images: say there are none
                yield argument, (f"{argument}: expected image files in this folder, found none "
                                 f"({skipped.total() - before} other entries skipped)")
        elif os.path.lexists(argument) or not glob.has_magic(argument):
            yield argument, None  # a missing file fails when it is decoded, with the OS's reason
        else:
            matches = sorted(glob.iglob(argument, recursive=True), key=_path_key)
            if not matches:
                yield argument, f"{argument}: no file matches this pattern"
            for path in matches:
                if os.path.isdir(path):
                    skipped.add("a folder matched by a pattern; name the folder itself to walk it", path)
                else:
                    yield path, None


def _empty_row(path, error):
    return {"path": path, "label": None, "class_index": None, "score": None, "score_kind": None, "top_k": [],
            "error": error}


def predict_chunk(model, items, top_k):
    """Rows for ``items`` (``(path, error)`` pairs): the images decoded, then predicted
    as one batch.

    Returns
    -------
    list of dict
        One per item, in order: ``{"path", "label", "class_index", "score",
        "score_kind", "top_k", "error"}``, the prediction fields None where ``error`` is
        set.
    """
    rows, images, decoded = [], [], []
    for path, error in items:
        row = _empty_row(path, error)
        rows.append(row)
        if error is not None:
            continue
        try:
            images.append(decode_image(path, model.input_shape_, model.color_mode_, where=path))
        except ImageError as exc:
            row["error"] = str(exc)
            continue
        decoded.append(row)
    if images:
        for row, answer in zip(decoded, model.top_classes(np.stack(images), top_k)):
            row.update(answer)
    return rows


def predict_chunks(model, arguments, *, top_k=5, chunk_size=CHUNK_SIZE, skipped=None):
    """The rows of the images ``arguments`` name, a chunk of at most ``chunk_size`` at a time.

    Parameters
    ----------
    model : ImagePipeline
    arguments : iterable of str or path-like
        Files, folders and glob patterns (see :func:`iter_image_paths`).
    top_k : int
        Classes listed per image, from 1 to the model's number of classes.
    chunk_size : int
        Images decoded and predicted together: the memory a run holds is this many
        images in the model's input size, and their features.
    skipped : Skipped, optional

    Yields
    ------
    list of dict
        The rows of one chunk (see :func:`predict_chunk`).
    """
    chunk_size = check_chunk_size(chunk_size)  # now, not when the first chunk is asked for
    return _chunks(model, iter_image_paths(arguments, skipped), top_k, chunk_size)


def _chunks(model, items, top_k, chunk_size):
    while chunk := list(islice(items, chunk_size)):
        yield predict_chunk(model, chunk, top_k)


def _json_line(row):
    line = json.dumps(row, ensure_ascii=False, allow_nan=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not UTF-8: escaped, so the line stays valid JSON
        line = json.dumps(row, allow_nan=False)
    return line + "\n"


class RowWriter:
    """Writes rows to a text stream as CSV or JSON Lines (see the module docstring)."""

    def __init__(self, stream, fmt, top_k):
        self.stream, self.fmt, self.top_k = stream, fmt, top_k
        if fmt == "csv":
            self._csv = csv.writer(stream, lineterminator="\n")
            self._csv.writerow(["path", "label", "class_index", "score",
                                *(f"{name}_{i}" for i in range(2, top_k + 1) for name in ("label", "score")),
                                "score_kind", "error"])
            stream.flush()

    def write(self, rows):
        """Write ``rows`` and flush, so what is written survives a killed run."""
        if self.fmt == "csv":
            self._csv.writerows(self._csv_row(row) for row in rows)
        else:
            self.stream.writelines(_json_line(row) for row in rows)
        self.stream.flush()

    def _csv_row(self, row):
        rest = [value for top in row["top_k"][1:] for value in (top["label"], top["score"])]
        rest += [None] * (2 * (self.top_k - 1) - len(rest))  # an error row: empty cells
        cells = [row["path"], row["label"], row["class_index"], row["score"], *rest, row["score_kind"], row["error"]]
        return ["" if value is None else value for value in cells]


def write_predictions(model, arguments, stream, *, fmt="csv", top_k=5, chunk_size=CHUNK_SIZE, progress=True):
    """Predict the images ``arguments`` name and write their rows to ``stream``, a chunk at a time.

    Parameters
    ----------
    model : ImagePipeline
    arguments : iterable of str or path-like
        Files, folders and glob patterns (see :func:`iter_image_paths`).
    stream : text stream
        Where the rows go (flushed after each chunk).
    fmt : {"csv", "jsonl"}
    top_k, chunk_size
        As in :func:`predict_chunks`.
    progress : bool
        A progress bar on stderr (never when stderr is not a terminal).

    Returns
    -------
    dict
        ``n_images`` (rows written), ``n_predicted``, ``n_failed``, ``n_skipped`` and
        ``skipped`` (per reason: count and first paths), ``seconds``, ``images_per_second``.
    """
    t0, n_images, n_failed, skipped = time.perf_counter(), 0, 0, Skipped()
    writer = RowWriter(stream, fmt, top_k)
    # disable=None: tqdm stays silent when stderr is not a terminal
    with tqdm(desc="predict", unit="img", disable=None if progress else True, file=sys.stderr) as bar:
        for rows in predict_chunks(model, arguments, top_k=top_k, chunk_size=chunk_size, skipped=skipped):
            writer.write(rows)
            n_images += len(rows)
            n_failed += sum(row["error"] is not None for row in rows)
            bar.update(len(rows))
    for reason, count in skipped.counts.items():
        logger.warning("skipped %d (%s): %s", count, reason, ", ".join(skipped.examples[reason]) +
                       (", ..." if count > _EXAMPLES else ""))
    seconds = time.perf_counter() - t0
    return {"n_images": n_images, "n_predicted": n_images - n_failed, "n_failed": n_failed,
            "n_skipped": skipped.total(), "skipped": skipped.to_dict(), "seconds": round(seconds, 3),
            "images_per_second": round(n_images / seconds, 1) if seconds > 0 else None}
