"""How a model was made, as plain JSON: what its manifest records beside the model itself.

A model's manifest (:mod:`pipeline.model.artifacts`) records, besides the steps:

- ``environment``: the library versions of the process that saved it
  (:func:`library_versions`; ``cvpipe_version`` stays at the manifest's top level);
- ``metrics``: the trainer's figures, with scikit-learn's ``classification_report`` of the
  scored split (per-class precision, recall, F1 and support);
- ``provenance``: the ``provenance_`` attribute of the saved pipeline, which
  :func:`record` builds: the data of each split (:func:`dataset_record`), the training
  config as resolved, the command line and the search's best trial.

This module only builds dicts; it reads no model and writes no file. The model card
built from a manifest is :mod:`pipeline.model.card`.
"""
from __future__ import annotations

import importlib
import importlib.util
import math
import os
import platform
from importlib import metadata

import numpy as np

__all__ = ["LIBRARIES", "dataset_record", "described_record", "jsonable", "library_versions", "record"]

#: Distributions whose version a manifest records (with Python's; CuPy's where it imports).
LIBRARIES = ("numpy", "scipy", "scikit-learn", "scikit-image", "pillow", "numba")


def library_versions():
    """The versions of Python and of the libraries a model's numbers depend on.

    Returns
    -------
    dict of str to str or None
        ``{"python": "3.11.7", "numpy": "2.4.6", "scipy": ..., "scikit-learn": ...,
        "scikit-image": ..., "pillow": ..., "numba": ...}`` (None for one that is not
        installed), and ``"cupy"`` only where CuPy imports.
    """
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    cupy = _cupy_version()
    if cupy is not None:
        versions["cupy"] = cupy
    return versions


def _cupy_version():
    """CuPy's version where it imports (its wheels have several distribution names), else None."""
    if importlib.util.find_spec("cupy") is None:
        return None
    try:
        return str(importlib.import_module("cupy").__version__)
    except Exception:  # noqa: BLE001 -- a CuPy that fails to import (no CUDA library) is not recorded
        return None


def jsonable(value):
    """``value`` as plain JSON: tuples as lists, paths as strings, NumPy scalars and arrays as
    numbers and lists, NaN and infinities as None; anything else (an estimator given in place
    of a spec) as its ``repr``."""
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return repr(value)


def dataset_record(data, used=None):
    """What a model records of one split of its data.

    Parameters
    ----------
    data : pipeline.data.Dataset
        The whole split as opened (its fingerprint is the one ``cvpipe extract`` records).
    used : pipeline.data.Dataset, optional
        The rows actually used when they are a subset (``--limit``): their number and
        fingerprint are recorded too.

    Returns
    -------
    dict
        ``{"name", "split", "source", "kind", "n_images", "fingerprint", "n_skipped"}``, and
        ``"n_used"``, ``"used_fingerprint"`` with ``used``.
    """
    out = {"name": data.name, "split": data.split, "source": str(data.source), "kind": type(data).__name__,
           "n_images": len(data), "fingerprint": data.fingerprint(), "n_skipped": len(data.skipped)}
    if used is not None and used is not data:
        out.update(n_used=len(used), used_fingerprint=used.fingerprint())
    return out


def described_record(description, n_used=None):
    """:func:`dataset_record` from a dataset's ``describe()`` dict (what a batch job's manifest
    keeps), with ``n_used`` rows used (those of readable images)."""
    out = {key: description.get(key) for key in ("name", "split", "source", "kind", "n_images", "fingerprint")}
    out["n_skipped"] = len(description.get("skipped") or ())
    if n_used is not None:
        out["n_used"] = int(n_used)
    return out


def record(*, train, config, test=None, command=None, search=None):
    """The ``provenance`` a trainer sets as a pipeline's ``provenance_`` before saving it.

    Parameters
    ----------
    train : dict
        :func:`dataset_record` of the training split (or the record a feature job kept).
    config : dict
        The training arguments as resolved (spec strings as given, the classifier's
        ``get_params`` after seeding and search, limit, seed, ...).
    test : dict, optional
        :func:`dataset_record` of the split that was scored.
    command : sequence of str, optional
        The command line (``["cvpipe", "train", ...]``); None from a library call.
    search : dict, optional
        The hyperparameter search's best trial and number of trials.

    Returns
    -------
    dict
        ``{"dataset": {"train", "test"}, "config", "command", "search"}``, plain JSON.
    """
    return jsonable({"dataset": {"train": train, "test": test}, "config": config,
                     "command": None if command is None else list(command), "search": search})
