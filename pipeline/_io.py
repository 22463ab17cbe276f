"""Files cvpipe writes and checks: atomic writes of a file (a temporary one beside it,
then a rename) or a whole folder (a temporary sibling, then an exchange), the one JSON
writer, and the one sha256 of a file.

The temporary file or folder is created the way any new one is (``open``, ``mkdir``), so
what lands at the final path has the permissions the umask gives, as if written in
place: not ``mkstemp``'s 0600 or ``mkdtemp``'s 0700, which would hide a model or a
dataset from the service account or container user that reads it.
"""
from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def sibling_path(path, suffix=".tmp"):
    """A new hidden name beside ``path``, ``.NAME.<random>SUFFIX``; nothing is created."""
    path = Path(path)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{suffix}")


@contextmanager
def atomic_path(path, durable=True):
    """Yield a path beside ``path`` for the body to write; on success sync it and rename it over ``path``.

    The body creates the file (``open(tmp, "wb")``, ``np.save``, ...). On an exception the
    temporary file is removed and ``path`` is left as it was. With ``durable=False`` the
    file is not synced to disk before the rename: a crash of the machine may then leave it
    empty or partial under its final name, so only a file whose content is checked before
    it is used (a batch job's chunk, against its sha256) may be written so.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = sibling_path(path)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def make_sibling_folder(path):
    """Create a new, empty hidden folder beside ``path`` (see :func:`sibling_path`) and return it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = sibling_path(path)
        try:
            tmp.mkdir()
            return tmp
        except FileExistsError:  # 48 random bits taken already: draw again
            continue


def save_npy_atomic(path, array):
    """``np.save`` that never leaves a half-written file at ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array), allow_pickle=False)


def format_json(value, indent=""):
    """Strict JSON (no NaN or infinity), indented, where a value that fits in the rest of
    its line stays on one line: readable manifests without a line per number."""
    flat = json.dumps(value, allow_nan=False, default=_plain)
    if not isinstance(value, (list, tuple, dict)) or len(indent) + len(flat) <= 88:
        return flat
    inner = indent + "  "
    if not isinstance(value, dict):
        items = [inner + format_json(v, inner) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    items = [f"{inner}{json.dumps(str(k))}: {format_json(v, inner)}" for k, v in value.items()]
    return "{\n" + ",\n".join(items) + "\n" + indent + "}"


def _plain(value):
    """What ``json`` cannot write itself: paths as strings, NumPy scalars and arrays as numbers."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def write_json(path, obj, durable=True):
    """Write ``obj`` as :func:`format_json` text to ``path``, atomically (every JSON file cvpipe writes);
    ``durable`` as for :func:`atomic_path`.

    Raises
    ------
    ValueError
        ``obj`` holds NaN or infinity (not JSON).
    TypeError
        ``obj`` holds something that is not a JSON value.
    """
    text = format_json(obj) + "\n"  # first: a bad value leaves the disk untouched
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def file_sha256(file):
    """Hex sha256 of a path, or of an open binary file read from where it stands."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as fh:
            return file_sha256(fh)
    digest = hashlib.sha256()
    for block in iter(lambda: file.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def read_json(path):
    """Read a JSON file, or return None when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def fsync_folder(folder):
    """Flush a folder's entries (new names, renames) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not supported (Windows): the data files were synced
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def exchange_paths(a, b):
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_folder(new, path):
    """Put the folder ``new`` at ``path``; an old ``path`` ends up at ``new`` or is removed."""
    if not path.exists():
        os.rename(new, path)
        return
    if exchange_paths(new, path):
        return
    old = sibling_path(path, ".old")
    os.rename(path, old)
    try:
        os.rename(new, path)
    except BaseException:
        os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)
