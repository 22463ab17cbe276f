"""Where a batch job's files live: a local (or shared) folder, or an fsspec URL.

A job names its files relative to its output location (``"chunks/00012.npy"``,
``"manifest.json"``) and reads and writes them through a store; the coordinator and
every worker open the same store from the location a task carries. Both kinds write a
file whole or not at all: a local folder through a temporary sibling and a rename
(:func:`pipeline._io.atomic_path`), an fsspec location by writing a temporary sibling
object and moving it (on an object store, where a write is one object, the move is a
copy: the final name appears complete or not at all). A write cut short leaves only a
``.NAME.<random>.tmp`` sibling, which the job removes when it runs again.

fsspec (the library Dask itself uses, in the ``dist`` extra) is imported only for a URL.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from pipeline._io import atomic_path, file_sha256, format_json, sibling_path

logger = logging.getLogger(__name__)


def is_url(location):
    """Whether ``location`` is an fsspec URL (``scheme://...``) rather than a local path."""
    return isinstance(location, str) and "://" in location


def open_store(location):
    """The store of ``location``: a local path (made absolute) or an fsspec URL."""
    return RemoteStore(location) if is_url(location) else LocalStore(location)


class LocalStore:
    """A job's files in a local or shared folder (every worker sees it at the same path)."""

    def __init__(self, location):
        self.root = Path(location).resolve()
        self.location = str(self.root)

    def __str__(self):
        return self.location

    def where(self, name=""):
        """The path of ``name``, for messages."""
        return str(self.root / name) if name else self.location

    def is_folder(self):
        return self.root.is_dir()

    def exists(self):
        return self.root.exists()

    def names(self, folder=""):
        """The names of the entries directly in ``folder`` (none where it does not exist)."""
        path = self.root / folder
        return sorted(p.name for p in path.iterdir()) if path.is_dir() else []

    def has(self, name):
        return (self.root / name).exists()

    def sha256(self, name):
        """Hex sha256 of the file ``name`` (read a block at a time), or None where it is missing."""
        path = self.root / name
        return file_sha256(path) if path.is_file() else None

    def read_bytes(self, name):
        """The bytes of ``name``, or None where there is no such file."""
        try:
            return (self.root / name).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    @contextmanager
    def writer(self, name, durable=True):
        """A binary file to write ``name`` through, in place at the end of the block or not at all."""
        with atomic_path(self.root / name, durable=durable) as tmp, open(tmp, "wb") as fh:
            yield fh

    def make_folder(self, name=""):
        (self.root / name).mkdir(parents=True, exist_ok=True)

    def remove(self, name):
        """Remove the file or folder ``name``, if there is one."""
        path = self.root / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    @contextmanager
    def local_folder(self, name):
        """A local path holding the files of the folder ``name`` (here: the folder itself)."""
        yield self.root / name

    def put_folder(self, local, name):
        """Nothing to copy: the folder was written in place (see :meth:`staging_folder`)."""

    @contextmanager
    def staging_folder(self, name):
        """Where to write a folder that becomes ``name``: here the final path itself (the
        writer, :func:`pipeline.model.save_extractor`, is atomic on its own)."""
        yield self.root / name


class RemoteStore:
    """A job's files under an fsspec URL (``s3://bucket/prefix``, ``file:///shared/out``, ...)."""

    def __init__(self, location):
        try:
            from fsspec.core import url_to_fs
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(f"--out {location}: writing to a URL needs fsspec (pip install 'cvpipe[dist]')") \
                from exc
        scheme, rest = location.split("://", 1)
        rest = rest.rstrip("/")
        if not scheme or not rest or (scheme in ("file", "local") and not rest.startswith("/")):
            # "s3://" stripped would be "s3:", which fsspec takes for a relative local path
            raise RuntimeError(f"--out {location}: expected a folder under the URL (s3://bucket/prefix, "
                               "file:///absolute/path), got none")
        self.location = f"{scheme}://{rest}"
        try:
            self.fs, self.root = url_to_fs(self.location)
        except (ImportError, ValueError) as exc:  # an unknown scheme, or its package missing (s3fs, gcsfs, ...)
            raise RuntimeError(f"--out {location}: fsspec cannot open it ({exc})") from exc
        self.root = self.root.rstrip("/")
        try:  # first contact: missing credentials, an unreachable endpoint or bucket say so here
            self.fs.exists(self.root)
        except Exception as exc:  # each backend raises its own kinds
            raise RuntimeError(f"--out {location}: cannot reach it ({type(exc).__name__}: {exc})") from exc

    def __str__(self):
        return self.location

    def _path(self, name):
        return f"{self.root}/{name}" if name else self.root

    def where(self, name=""):
        return f"{self.location}/{name}" if name else self.location

    def is_folder(self):
        return self.fs.isdir(self.root)

    def exists(self):
        return self.fs.exists(self.root)

    def names(self, folder=""):
        self.fs.invalidate_cache(self._path(folder))  # other processes (the workers) write here too
        try:
            entries = self.fs.ls(self._path(folder), detail=False, refresh=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted({entry.rstrip("/").rsplit("/", 1)[-1] for entry in entries})

    def has(self, name):
        self.fs.invalidate_cache(self._path(name))
        return self.fs.exists(self._path(name))

    def sha256(self, name):
        try:
            with self.fs.open(self._path(name), "rb") as fh:
                return file_sha256(fh)
        except FileNotFoundError:
            return None

    def read_bytes(self, name):
        try:
            return self.fs.cat_file(self._path(name))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    @contextmanager
    def writer(self, name, durable=True):
        # ``durable`` is the object store's: a finished upload is stored; a local filesystem
        # behind file:// is not synced (use a plain path for that).
        final = self._path(name)
        parent, base = final.rsplit("/", 1)
        tmp = f"{parent}/{sibling_path(Path(base)).name}"
        self.fs.makedirs(parent, exist_ok=True)
        try:
            with self.fs.open(tmp, "wb") as fh:
                yield fh
            self.fs.mv(tmp, final)
        except BaseException:
            try:
                self.fs.rm(tmp)
            except (FileNotFoundError, OSError):
                pass
            raise

    def make_folder(self, name=""):
        self.fs.makedirs(self._path(name), exist_ok=True)

    def remove(self, name):
        path = self._path(name)
        try:
            self.fs.rm(path, recursive=self.fs.isdir(path))
        except FileNotFoundError:
            pass

    @contextmanager
    def local_folder(self, name):
        """A temporary local copy of the folder ``name`` (removed after the block)."""
        with tempfile.TemporaryDirectory(prefix=".cvpipe-") as tmp:
            local = Path(tmp) / (Path(name).name or "folder")
            local.mkdir()
            for entry in self.names(name):
                data = self.read_bytes(f"{name}/{entry}" if name else entry)
                if data is not None:
                    (local / entry).write_bytes(data)
            yield local

    def put_folder(self, local, name):
        """Upload the files of the local folder ``local`` as the folder ``name``."""
        self.remove(name)
        for path in sorted(Path(local).iterdir()):
            with self.writer(f"{name}/{path.name}") as fh:
                fh.write(path.read_bytes())

    @contextmanager
    def staging_folder(self, name):
        """A local folder to write what becomes ``name``; uploaded with :meth:`put_folder`."""
        with tempfile.TemporaryDirectory(prefix=".cvpipe-") as tmp:
            yield Path(tmp) / (Path(name).name or "folder")


def write_bytes(store, name, data, durable=True):
    """Write ``data`` as the file ``name`` of ``store``, whole or not at all."""
    with store.writer(name, durable=durable) as fh:
        fh.write(data)


def write_json(store, name, obj, durable=True):
    """:func:`pipeline._io.write_json` for a store: strict JSON, whole or not at all."""
    write_bytes(store, name, (format_json(obj) + "\n").encode(), durable=durable)


def read_json(store, name):
    """The JSON value of ``name``, or None where there is no such file."""
    data = store.read_bytes(name)
    return None if data is None else json.loads(data)
