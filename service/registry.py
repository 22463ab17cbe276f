"""The models a service answers with: every ``FOLDER/NAME/`` holding a ``manifest.json``.

Models are loaded once, when the app starts (:meth:`ModelRegistry.reload`); a model
that fails to load (a corrupt ``arrays.npz``, a foreign manifest) is logged and kept
as an entry with ``status == "error"`` and its message, and the others serve.

Reloading (``POST /v1/models/reload``, or every ``CVPIPE_RELOAD_INTERVAL`` seconds
with :meth:`ModelRegistry.maybe_reload`) looks for changes cheaply: a ``stat`` of
each ``manifest.json`` and ``arrays.npz`` (device, inode, size, mtime), and where
that moved, the sha256 of the manifest's bytes (which pin ``arrays.npz`` by its own
sha256). A model whose manifest bytes did not change is not loaded again (new
arrays under an old manifest are damage, not a version; the loaded copy serves),
unless it failed before: then it is tried again. Only new or changed models are
loaded, outside any lock the requests take; the new set then replaces the old in
one assignment, so a request sees either the old or the new set, never half of
one. A changed model that fails to load keeps serving its last good version, with
the error shown beside it.

The version of a model is the first 12 hex digits of the sha256 of its
``manifest.json``: any change to the model (arrays, classes, names, metrics) gives a
new version, the same bytes the same version.

Several workers (gunicorn's processes) stay in step through a *generation* file they
share (``CVPIPE_RUN_DIR/models-generation``, set up by :mod:`service.gunicorn_conf`): a
reload asked of one worker (the endpoint, or a background check that found a change)
replaces that file once it has reloaded, and every worker, before it answers a request,
compares the file's identity (one ``stat``) with the one it last followed and reloads
first where it moved. So the first answer any worker gives after a reload comes from the
new models; the reload that follows is cheap where nothing changed for that worker.

Names are only ever looked up in the loaded set, never joined into a path.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from pipeline._io import file_sha256
from pipeline.model.artifacts import (
    ARRAYS,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    ArtifactError,
    describe_steps,
    read_manifest,
    read_model,
)
from pipeline.model.card import model_card

logger = logging.getLogger("service")
VERSION_CHARS = 12


@dataclass(frozen=True)
class ModelEntry:
    """One model folder: the loaded pipeline (or why not) and what its manifest says."""

    name: str
    path: Path
    model: object = None
    manifest: dict = None
    version: str = None
    sha256: str = None
    error: str = None
    fingerprint: tuple = None
    loaded_at: float = None
    tried: tuple = field(default=None, repr=False)  # fingerprint of the last failed attempt

    @property
    def status(self):
        """``"ready"`` when a model serves, else ``"error"``."""
        return "ready" if self.model is not None else "error"

    def summary(self):
        """The ``GET /v1/models`` item."""
        out = {"name": self.name, "status": self.status, "version": self.version}
        if self.manifest is not None:
            out["created"] = self.manifest.get("created")
        if self.error:
            out["error"] = self.error
        return out

    def describe(self):
        """The ``GET /v1/models/<name>`` answer: the summary, the manifest's contract and the
        model card (:func:`pipeline.model.card.model_card`)."""
        out = self.summary()
        m = self.manifest or {}
        size = (m.get("input") or {}).get("size")
        names = m.get("class_names") or []
        out.update({
            "classes": [{"index": i, "label": n, "value": v} for i, (n, v) in
                        enumerate(zip(names, m.get("classes") or []))],
            "input": {"height": size[0], "width": size[1], "color_mode": m["input"].get("color_mode")}
            if isinstance(size, list) and len(size) == 2 else None,
            **describe_steps(m),
            "scores": None if self.model is None else
            ("probability" if hasattr(self.model, "predict_proba") else "decision"),
            "metrics": m.get("metrics"),
            "cvpipe_version": m.get("cvpipe_version"),
            # the model card, as `cvpipe info NAME --json` prints it: provenance, versions, sha256
            "card": None if self.manifest is None else model_card(m, name=self.name, sha256=self.sha256),
        })
        return out


def _fingerprint(folder):
    """``stat`` of the model's two files: (device, inode, size, mtime) each; None for a missing one."""
    def one(file):
        try:
            st = os.stat(file)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns

    manifest = one(folder / MANIFEST)
    if manifest is None:
        raise FileNotFoundError(f"{MANIFEST} is gone")
    return manifest, one(folder / ARRAYS)


class ModelRegistry:
    """The models of ``folder``, by name; safe to read from many threads.

    Parameters
    ----------
    folder : str or Path
        Holds one subfolder per model (``NAME/manifest.json``, ``NAME/arrays.npz``);
        hidden subfolders (``.NAME.tmp`` while a model is being saved) are ignored.
    default : str, optional
        The model ``POST /predict`` uses. None: ``"default"`` when that model is
        ready, else the first ready model by name.
    """

    def __init__(self, folder, default=None, generation_file=None, device=None):
        self.folder = Path(folder)
        self.device = device
        self.default = default or None
        self.generation_file = Path(generation_file) if generation_file else None
        self._entries = {}
        self._lock = threading.Lock()  # one reload at a time; readers never take it
        self._checked = time.monotonic()
        self._followed = self._generation()  # the generation this process's models are from

    # ------------------------------------------------------------------ reading
    def get(self, name):
        """The entry called ``name``, or None."""
        return self._entries.get(name) if isinstance(name, str) else None

    def entries(self):
        """All entries, sorted by name."""
        entries = self._entries
        return [entries[k] for k in sorted(entries)]

    def default_name(self):
        """The name ``POST /predict`` answers with (None when no model is ready)."""
        if self.default:
            return self.default
        ready = [e.name for e in self.entries() if e.status == "ready"]
        return "default" if "default" in ready else (ready[0] if ready else None)

    def ready(self):
        """True when the default model is loaded."""
        entry = self.get(self.default_name())
        return entry is not None and entry.status == "ready"

    # ---------------------------------------------------------------- reloading
    def reload(self, publish=True):
        """Load new and changed models, drop removed ones; returns what changed.

        With ``publish`` (a reload someone asked for), the other workers follow it (see
        the module docstring); a worker's first load at start does not disturb them.

        Returns
        -------
        dict
            ``{"added": [...], "updated": [...], "removed": [...], "failed": [...],
            "unchanged": [...]}``, names.
        """
        with self._lock:
            changes = self._reload()
            if publish:
                self._publish()
            return changes

    # ------------------------------------------------------ workers in step
    def _generation(self):
        """The identity of the generation file (device, inode, mtime), or None."""
        if self.generation_file is None:
            return None
        try:
            st = os.stat(self.generation_file)
        except OSError:
            return None
        return st.st_dev, st.st_ino, st.st_mtime_ns

    def _publish(self):
        """Tell the other workers to reload: a new generation file, in place by a rename
        (a new inode, whatever the clock's resolution). Called holding the lock."""
        if self.generation_file is None:
            return
        tmp = self.generation_file.with_name(f".{self.generation_file.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(f"{os.getpid()} {time.time_ns()}\n")
            os.replace(tmp, self.generation_file)
        except OSError as exc:  # the others then keep their models until their next reload
            logger.error("cannot tell the other workers to reload (%s): %s", self.generation_file, exc)
            return
        self._followed = self._generation()

    def follow(self):
        """Reload first if another worker reloaded since this one last did; returns whether
        it reloaded. One ``stat`` when nothing moved (called before every request)."""
        seen = self._generation()
        if seen == self._followed:
            return False
        with self._lock:
            if self._generation() == self._followed:  # another thread of this worker followed it
                return False
            seen = self._generation()
            changes = self._reload()
            self._followed = seen
        logger.info("models reloaded after another worker's reload: %s",
                    {k: v for k, v in changes.items() if v and k != "unchanged"} or "no change here")
        return True

    def maybe_reload(self, interval):
        """Start a background :meth:`reload` if ``interval`` seconds passed since the last check.

        Never blocks: a reload already running, or a recent check, makes this a no-op.
        """
        if not interval or interval <= 0 or time.monotonic() - self._checked < interval:
            return False
        if not self._lock.acquire(blocking=False):
            return False
        self._checked = time.monotonic()

        def run():
            try:
                before = self._entries
                self._reload()
                after = self._entries
                if any(before.get(name) is not after.get(name) for name in before.keys() | after.keys()):
                    self._publish()  # something was loaded, failed anew or went away
            except Exception:  # a reload must never take the worker down
                logger.exception("background model reload failed")
            finally:
                self._lock.release()

        threading.Thread(target=run, name="cvpipe-model-reload", daemon=True).start()
        return True

    def _reload(self):
        self._checked = time.monotonic()
        old, new = self._entries, {}
        changes = {"added": [], "updated": [], "removed": [], "failed": [], "unchanged": []}
        for name, path in self._scan():
            prev = old.get(name)
            new[name] = entry = self._refresh(prev, name, path)
            if entry is prev:
                kind = "failed" if entry.error else "unchanged"
            elif entry.error:
                kind = "failed"
            else:
                kind = ("added" if prev is None or prev.model is None  # serving for the first time
                        else "updated" if entry.version != prev.version else "unchanged")
            changes[kind].append(name)
        changes["removed"] = sorted(set(old) - set(new))
        self._entries = new  # the swap: one assignment
        for name in changes["removed"]:
            logger.info("model %s: removed (its folder or manifest is gone)", name)
        return changes

    def _scan(self):
        if not self.folder.is_dir():
            logger.warning("models folder %s does not exist; no model to serve", self.folder)
            return []
        return [(p.name, p) for p in sorted(self.folder.iterdir())
                if not p.name.startswith(".") and p.is_dir() and (p / MANIFEST).is_file()]

    def _refresh(self, entry, name, path):
        """``entry`` as it stands on disk now: the same object when nothing changed."""
        try:
            fingerprint = _fingerprint(path)
            if entry is not None and fingerprint in (entry.fingerprint, entry.tried):
                return entry
            size = (path / MANIFEST).stat().st_size
            if size > MAX_MANIFEST_BYTES:  # checked before it is hashed: each worker would read it whole
                return self._failed(entry, name, path, fingerprint, f"{name}/{MANIFEST}: {size} bytes, more than "
                                    f"a manifest may hold ({MAX_MANIFEST_BYTES}); not read")
            sha = file_sha256(path / MANIFEST)
        except OSError as exc:  # removed or replaced while we looked
            return self._failed(entry, name, path, None, f"{name}/{MANIFEST}: {exc.strerror or exc}")
        if entry is not None and entry.model is not None and sha == entry.sha256:  # touched, or restored
            return replace(entry, fingerprint=fingerprint, error=None, tried=None)
        return self._load(entry, name, path, fingerprint, sha)

    def _load(self, entry, name, path, fingerprint, sha):
        try:
            model, manifest, loaded_sha = read_model(path)  # one read: model, manifest and sha agree
            if self.device:
                _place(model, self.device)
            if loaded_sha != sha:  # replaced since it was looked at: serve what was read, and
                sha, fingerprint = loaded_sha, None  # look again at the next reload
            _warm_up(model)
        except ArtifactError as exc:
            return self._failed(entry, name, path, fingerprint, self._relative(exc))
        except Exception as exc:  # a bug or an unexpected file: report it, keep serving others
            logger.exception("model %s: unexpected error while loading", name)
            return self._failed(entry, name, path, fingerprint, f"{type(exc).__name__}: {self._relative(exc)}")
        version = sha[:VERSION_CHARS]
        logger.info("model %s: loaded version %s (%s, %dx%d %s, %d classes)", name, version,
                    "new" if entry is None else f"was {entry.version}", *model.input_shape_,
                    model.color_mode_, len(model.classes_))
        return ModelEntry(name, path, model, manifest, version, sha, None, fingerprint, time.time())

    def _failed(self, entry, name, path, fingerprint, message):
        if entry is not None and entry.model is not None:
            logger.error("model %s: the new files fail to load, still serving version %s: %s",
                         name, entry.version, message)
            return replace(entry, error=f"reload failed, serving version {entry.version}: {message}",
                           tried=fingerprint)
        logger.error("model %s: failed to load: %s", name, message)
        return ModelEntry(name, path, error=message, fingerprint=fingerprint, tried=fingerprint,
                          manifest=_manifest_or_none(path))

    def _relative(self, exc):
        """The message of ``exc`` with the models folder left out of paths."""
        return str(exc).replace(str(self.folder) + os.sep, "")


def _place(model, device):
    """Run every step of ``model`` that has a ``device`` parameter on ``device`` (CVPIPE_DEVICE),
    whatever it was saved with: a model saved with ``device="auto"`` would otherwise move to
    a GPU on a GPU host, where small models run slower."""
    steps = [model.features_, model.scaler_, model.classifier_]
    steps += [step for _, step in getattr(model.features_, "transformer_list", [])]
    for step in steps:
        if step is not None and "device" in step.get_params(deep=False):
            step.set_params(device=device)


def _warm_up(model):
    """Predict one blank image, so that compiled kernels (Numba's, loaded from its cache or
    compiled) are ready before the model serves its first request, and a model that cannot
    predict at all fails here, with the other load errors."""
    shape = (1, *model.input_shape_) + ((3,) if model.color_mode_ == "RGB" else ())
    model.predict(np.zeros(shape, np.uint8))


def _manifest_or_none(path):
    """The manifest of a model that failed, to describe it, or None: its error is reported
    already, and no manifest may stop the others from loading."""
    try:
        return read_manifest(path)
    except Exception:  # whatever the folder holds
        return None
