"""Trained pipelines as safe artifacts: a folder with ``manifest.json`` and ``arrays.npz``.

``save(pipeline, path)`` and ``load(path)``; :func:`read_model` also returns the manifest
and its sha256 (the service's model version), :func:`read_manifest` checks a manifest
without loading arrays, and :func:`describe_steps` gives the extractor and classifier
settings of a manifest as plain JSON.

Saving walks the fitted :class:`~pipeline.model.image_pipeline.ImagePipeline` and every
estimator inside it. Each must be of a class on :data:`ALLOWED_CLASSES`; for each,
the manifest keeps a *step*: its path (``pipeline``, ``features``, ``features/hog``,
``scaler``, ``classifier``), class, ``get_params(deep=False)`` and fitted state (the
attributes ``fit`` set: ending in ``_`` or private such as kNN's ``_X``). Arrays go to
``arrays.npz`` as ``<step>/<attribute>[/<key>]``; everything else is JSON, with a few
one-key tags where JSON alone would lose the type (``{"__tuple__": [7, 7]}``,
``{"__array__": "W_"}``, ``{"__step__": "features/hog"}``, ...; see ``models/README.md``).

Loading reads only data: the manifest (JSON), then ``arrays.npz`` after its sha256
matched the manifest, with ``np.load(allow_pickle=False)``; it rebuilds each step as
``cls(**params)`` from the allow-list, sets its state, and refuses anything else
with an :class:`ArtifactError` naming the file and the reason. No pickle anywhere.

A scikit-learn classifier of the registry (``LogisticRegression``, ``RandomForestClassifier``,
...) is the one step kept elsewhere: in ``<step>.skops`` (``classifier.skops``), whose size and
sha256 the step records; both are checked before skops reads it, and skops reads it only
with that class's explicit allow-list of types (:mod:`pipeline.model.sklearn_codec`).

Saving is atomic: everything is written to a temporary sibling folder, which then
replaces ``path`` (an atomic exchange on Linux, else two renames with the old model
kept aside until the new one is in place).
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from pipeline._io import file_sha256, format_json, fsync_folder, make_sibling_folder, replace_folder
from pipeline.data.images import COLOR_MODES
from pipeline.model import sklearn_codec
from pipeline.model.codec import ALLOWED_CLASSES, CLASS_NAMES, OMITTED, ROOT, ArtifactError, Reader, Writer, plain_value
from pipeline.model.image_pipeline import ImagePipeline
from pipeline.model.provenance import library_versions
from pipeline.version import package_version

__all__ = ["ALLOWED_CLASSES", "ARRAYS", "ArtifactError", "FORMAT_VERSION", "MANIFEST", "describe_steps", "load",
           "load_extractor", "read_manifest", "read_model", "save", "save_extractor"]

FORMAT = "cvpipe-model"
#: A fitted extractor alone (a batch job's, which its workers load): format 1.
EXTRACTOR_FORMAT, EXTRACTOR_FORMAT_VERSION = "cvpipe-extractor", 1
#: 2: ``ImagePipeline`` lives in ``pipeline.model.image_pipeline`` (1: ``pipeline.image_pipeline``),
#: and ``TwoLayerNet``'s ``reg`` is the linear models' (1: half of it, see :func:`_migrate`).
FORMAT_VERSION = 2
#: Versions this cvpipe reads; older ones are brought up to date in memory (:func:`_migrate`).
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"
MAX_MANIFEST_BYTES = 16 * 2**20
#: The root's fitted attributes that live at the manifest's top level, not in its step.
_TOP_LEVEL = ("input_shape_", "color_mode_", "classes_", "class_names_", "metrics_", "provenance_")


# =========================================================================== saving
def _plain_json(value, where):
    """Metrics and names: JSON values only (numpy scalars and arrays become numbers and lists)."""
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain_json(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain_json(v, where) for k, v in value.items()}
    raise ArtifactError(f"cannot save {where}: {type(value).__name__} is not a JSON value")


def build_manifest(pipeline, files=None):
    """The manifest (without the ``arrays`` entry) and the named arrays of a fitted pipeline.

    ``files``, a dict, receives the other files of the folder (name -> bytes): the ``.skops``
    file of a scikit-learn classifier, whose sha256 and size its step records."""
    if type(pipeline) is not ImagePipeline:
        raise ArtifactError(f"expected a fitted ImagePipeline to save, got {type(pipeline).__name__}")
    if not hasattr(pipeline, "classifier_"):
        raise ArtifactError("this ImagePipeline is not fitted yet; call fit before save")
    writer = Writer(root_skip=_TOP_LEVEL)
    writer.add(pipeline, ROOT)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cvpipe_version": package_version(),
        "environment": library_versions(),
        "input": {"size": list(pipeline.input_shape_), "color_mode": pipeline.color_mode_},
        "classes": _plain_json(pipeline.classes_, "classes_"),
        "class_names": _plain_json(pipeline.class_names_, "class_names_"),
        "metrics": _plain_json(pipeline.metrics_, "metrics_"),
        # how it was made (pipeline.model.provenance.record): None where the caller set none
        "provenance": _plain_json(getattr(pipeline, "provenance_", None), "provenance_"),
        "arrays": None,
        "steps": writer.steps,
    }
    if files is not None:
        files.update(writer.files)
    return manifest, writer.arrays


def save(pipeline, path):
    """Write a fitted :class:`ImagePipeline` to the folder ``path``, atomically.

    Parameters
    ----------
    pipeline : ImagePipeline
        Fitted; every estimator inside must be of an allow-listed class.
    path : str or Path
        The model folder (``models/NAME``). An existing model folder there is replaced
        only once the new one is complete; any other existing file or non-empty
        folder is refused.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ArtifactError
        For a step or attribute that cannot be saved without pickle, or a ``path``
        that holds something other than a model.
    """
    files = {}
    manifest, arrays = build_manifest(pipeline, files)  # fails before anything touches the disk
    return _write_folder(path, manifest, arrays, files)


def _write_folder(path, manifest, arrays, files=None):
    """Write ``arrays.npz``, the other ``files`` (name -> bytes) and ``manifest.json`` into a
    temporary sibling, then swap it in."""
    path = Path(path)
    _check_replaceable(path)
    tmp = make_sibling_folder(path)
    try:
        _write_arrays(tmp / ARRAYS, arrays)
        for name, data in (files or {}).items():
            _write_bytes(tmp / name, data)
        manifest["arrays"] = {"file": ARRAYS, "sha256": file_sha256(tmp / ARRAYS),
                              "bytes": (tmp / ARRAYS).stat().st_size, "count": len(arrays)}
        _write_manifest(tmp / MANIFEST, manifest)
        fsync_folder(tmp)
        replace_folder(tmp, path)
        fsync_folder(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # after an exchange it holds the old model
    return path


def _check_replaceable(path):
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise ArtifactError(f"refusing to save a model to {path}: it exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not (path / MANIFEST).is_file():
        raise ArtifactError(f"refusing to replace {path}: it is a non-empty folder without {MANIFEST}, "
                            "not a model folder")


def _write_arrays(file, arrays):
    with open(file, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())


def _write_bytes(file, data):
    with open(file, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _write_manifest(file, manifest):
    with open(file, "w", encoding="utf-8") as fh:  # inside the temporary folder: synced with it
        fh.write(format_json(manifest) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


# ========================================================================== loading
def read_manifest(path):
    """Read and check ``path/manifest.json`` without loading any array.

    Returns
    -------
    dict
        The manifest; its format, version and step classes have been checked, and a
        manifest of an older readable format version is brought up to date.

    Raises
    ------
    ArtifactError
        A missing, oversized or unreadable manifest, another format or version, or a
        step class outside :data:`ALLOWED_CLASSES`.
    """
    return _parse_manifest(_read_manifest_bytes(path), Path(path) / MANIFEST)


def _read_manifest_bytes(path):
    """The bytes of ``path/manifest.json``, refused above ``MAX_MANIFEST_BYTES`` before reading."""
    file = Path(path) / MANIFEST
    try:
        with open(file, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_MANIFEST_BYTES:
                raise ArtifactError(f"{file}: {size} bytes, more than a manifest may hold ({MAX_MANIFEST_BYTES})")
            pieces, read = [], 0
            while read <= MAX_MANIFEST_BYTES:  # a piece at a time: read(n) would take n bytes of memory first
                piece = fh.read(min(1 << 20, MAX_MANIFEST_BYTES + 1 - read))
                if not piece:
                    break
                pieces.append(piece)
                read += len(piece)
            raw = b"".join(pieces)
    except FileNotFoundError:
        raise ArtifactError(f"{file}: missing; expected a model folder with {MANIFEST} and {ARRAYS}") from None
    except IsADirectoryError:
        raise ArtifactError(f"{file}: a folder, expected the model's JSON manifest") from None
    if len(raw) > MAX_MANIFEST_BYTES:  # grew while we read it
        raise ArtifactError(f"{file}: more than a manifest may hold ({MAX_MANIFEST_BYTES} bytes)")
    return raw


#: format -> (the versions read, the top-level keys and their types besides steps and arrays).
_FORMATS = {FORMAT: (READABLE_VERSIONS, (("input", dict), ("classes", list), ("class_names", list), ("metrics", dict))),
            EXTRACTOR_FORMAT: ((EXTRACTOR_FORMAT_VERSION,), (("image_shape", list), ("n_features", int)))}


def _parse_manifest(raw, file, expected=FORMAT):
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, an integer of too many digits, nesting
        raise ArtifactError(f"{file}: not valid JSON ({exc})") from exc
    what = "model" if expected == FORMAT else "extractor"
    if not isinstance(manifest, dict) or manifest.get("format") != expected:
        raise ArtifactError(f"{file}: not a cvpipe {what} manifest (expected \"format\": \"{expected}\")")
    versions, keys = _FORMATS[expected]
    version = manifest.get("format_version")
    if type(version) is not int or version not in versions:  # not 1.0, not True
        raise ArtifactError(f"{file}: format_version {version!r} is not supported; this cvpipe "
                            f"({package_version()}) reads format_version {', '.join(map(str, versions))}")
    for key, kind in (("steps", list), ("arrays", dict), *keys):
        if not isinstance(manifest.get(key), kind):
            raise ArtifactError(f"{file}: {key!r} is missing or not a {kind.__name__}")
    for step in manifest["steps"]:
        if not isinstance(step, dict) or not isinstance(step.get("name"), str):
            raise ArtifactError(f"{file}: every step needs a name, got {str(step)[:80]}")
        if not isinstance(step.get("class"), str):
            raise ArtifactError(f"{file}: step {step['name']!r}: expected a class name (a string), "
                                f"got {str(step.get('class'))[:80]}")
    if expected == FORMAT:
        _migrate(manifest, file)
    for step in manifest["steps"]:
        if step.get("class") not in ALLOWED_CLASSES:
            raise ArtifactError(f"{file}: step {step['name']!r} names class {step.get('class')!r}, which is "
                                "not in the allow-list of model classes; refusing to load it")
        for key, kind in (("params", dict), ("state", dict), ("arrays", list)):
            if not isinstance(step.get(key), kind):
                raise ArtifactError(f"{file}: step {step['name']!r}: {key!r} is missing or not a {kind.__name__}")
    return manifest


#: Format 1 -> 2: class names that moved.
_RENAMED_IN_2 = {"pipeline.image_pipeline.ImagePipeline": CLASS_NAMES[ImagePipeline]}
#: Format 1 -> 2: the net's penalty was ``0.5 * reg * sum(W ** 2)``; now ``reg * sum(W ** 2)``.
_NET = "classifiers.net.TwoLayerNet"


def _migrate(manifest, file):
    """Bring a manifest of an older format version up to :data:`FORMAT_VERSION`, in memory.

    The arrays are the same in every version (a model predicts the same); names and
    parameters change so that the model describes, and a refit of it trains, the same
    thing. The manifest keeps ``migrated_from`` with the version it was written in.
    """
    version = manifest["format_version"]
    if version == FORMAT_VERSION:
        return
    for step in manifest["steps"]:
        step["class"] = _RENAMED_IN_2.get(step["class"], step["class"])
        params = step.get("params")
        if step["class"] != _NET or not isinstance(params, dict) or "reg" not in params:
            continue
        reg = params["reg"]
        try:
            ok = type(reg) in (int, float) and math.isfinite(reg) and reg >= 0
        except OverflowError:  # an integer too large for a float
            ok = False
        if not ok:
            raise ArtifactError(f"{file}: step {step['name']!r}: a format-{version} TwoLayerNet's reg must be a "
                                f"number >= 0, got {str(reg)[:40]}")
        params["reg"] = reg / 2  # the same objective in the linear models' convention
    manifest["format_version"], manifest["migrated_from"] = FORMAT_VERSION, version


def _read_arrays(path, manifest):
    """The arrays of ``arrays.npz``, after its sha256 matched the manifest's."""
    file = Path(path) / ARRAYS
    info = manifest["arrays"]
    if info.get("file") != ARRAYS or not isinstance(info.get("sha256"), str):
        raise ArtifactError(f"{Path(path) / MANIFEST}: 'arrays' must name {ARRAYS} and its sha256")
    if not file.is_file():
        raise ArtifactError(f"{file}: missing; the manifest lists {info.get('count')} arrays in it")
    with open(file, "rb") as fh:  # one descriptor: the bytes hashed are the bytes loaded
        size, digest = os.fstat(fh.fileno()).st_size, file_sha256(fh)
        if digest != info["sha256"]:
            why = (f"{size} bytes where the manifest says {info.get('bytes')}: truncated or extended"
                   if size != info.get("bytes") else "same size, different content")
            raise ArtifactError(f"{file}: sha256 {digest} does not match the manifest's {info['sha256']} "
                                f"({why}); the file changed since it was saved, refusing to load it")
        fh.seek(0)
        arrays = _load_npz(fh, file)
    declared = {f"{s['name']}/{a}" for s in manifest["steps"] for a in s["arrays"]}
    if set(arrays) != declared:
        raise ArtifactError(f"{file}: arrays {sorted(set(arrays) ^ declared)} are in one of the manifest "
                            "and the archive but not the other")
    return arrays


_SKOPS_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*" + re.escape(sklearn_codec.SUFFIX))


def _read_skops(path, manifest):
    """The scikit-learn classifiers of a model folder, by step name: each step's ``.skops``
    file, read only after its size and then its sha256 matched the step's record, and
    rebuilt by :func:`pipeline.model.sklearn_codec.loads` with its class's allow-list."""
    objects = {}
    for step in manifest["steps"]:
        if "skops" not in step:
            continue
        where = f"{Path(path) / MANIFEST}: step {step['name']!r}"
        info, file = step["skops"], step["name"].replace("/", ".") + sklearn_codec.SUFFIX
        if not (isinstance(info, dict) and info.get("file") == file and _SKOPS_FILE.fullmatch(file)
                and isinstance(info.get("sha256"), str) and type(info.get("bytes")) is int):
            raise ArtifactError(f"{where}: 'skops' must name the file {file!r}, its sha256 and its size in bytes, "
                                f"got {str(info)[:120]}")
        cls = ALLOWED_CLASSES[step["class"]]  # on the allow-list: _parse_manifest checked it
        if cls not in sklearn_codec.TRUSTED_TYPES:
            raise ArtifactError(f"{where}: {step['class']} is not one of the scikit-learn classes read from a "
                                ".skops file; refusing to load it")
        data = _read_checked(Path(path) / file, info)
        objects[step["name"]] = sklearn_codec.loads(data, cls, str(Path(path) / file))
    return objects


def _read_checked(file, info):
    """The bytes of ``file``, after its size (before reading) and then its sha256 matched ``info``."""
    try:
        fh = open(file, "rb")
    except FileNotFoundError:
        raise ArtifactError(f"{file}: missing; the manifest lists it ({info['bytes']} bytes)") from None
    except IsADirectoryError:
        raise ArtifactError(f"{file}: a folder, expected the file the manifest lists") from None
    with fh:  # one descriptor: the bytes checked are the bytes loaded
        size = os.fstat(fh.fileno()).st_size
        if size != info["bytes"]:
            raise ArtifactError(f"{file}: {size} bytes where the manifest says {info['bytes']}: truncated or "
                                "extended; the file changed since it was saved, refusing to read it")
        data = fh.read(size + 1)
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != size or digest != info["sha256"]:
        why = "it changed while it was read" if len(data) != size else "same size, different content"
        raise ArtifactError(f"{file}: sha256 {digest} does not match the manifest's {info['sha256']} ({why}); "
                            "the file changed since it was saved, refusing to load it")
    return data


def _check_inflated_size(fh, file):
    """Refuse an archive whose members would unpack to more bytes than the archive holds,
    before any is unpacked: cvpipe stores its arrays uncompressed (``np.savez``), so only a
    crafted file inflates (a 2 MB one to 2.18 GB)."""
    size = os.fstat(fh.fileno()).st_size
    try:
        if not zipfile.is_zipfile(fh):  # not an archive: np.load says what it is
            return
        unpacked = sum(info.file_size for info in zipfile.ZipFile(fh).infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ArtifactError(f"{file}: not a readable .npz archive ({exc})") from exc
    finally:
        fh.seek(0)
    if unpacked > size:
        raise ArtifactError(f"{file}: its arrays would unpack to {unpacked} bytes from {size} on disk; cvpipe "
                            "stores arrays uncompressed, refusing to unpack it")


def _load_npz(fh, file):
    """Every array of an open .npz, read with ``allow_pickle=False``."""
    _check_inflated_size(fh, file)
    try:
        npz = np.load(fh, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{file}: not a readable .npz archive ({exc})") from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ArtifactError(f"{file}: a single .npy array, not the .npz archive of a model")
    arrays = {}
    with npz:
        for name in npz.files:
            try:
                arrays[name] = npz[name]
            except ValueError as exc:
                raise ArtifactError(f"{file}: array {name!r} holds Python objects and would need pickle "
                                    f"to load ({exc}); refusing to load it") from exc
            except (OSError, EOFError, zipfile.BadZipFile) as exc:
                raise ArtifactError(f"{file}: array {name!r} cannot be read ({exc})") from exc
    return arrays


def load(path):
    """Read a model folder written by :func:`save`: the fitted :class:`ImagePipeline`.

    See :func:`read_model` for what is checked, in which order.
    """
    return read_model(path)[0]


def read_model(path):
    """Read a model folder written by :func:`save`, with its manifest and that manifest's sha256.

    The manifest is read once (its size checked before it is read) and checked
    (format, version, allow-listed classes); then the sha256 of ``arrays.npz`` is
    checked against it, and only then is the archive opened, with
    ``np.load(allow_pickle=False)``. The model, the manifest and the sha256 all come
    from the same bytes, whatever replaces the folder meanwhile.

    Parameters
    ----------
    path : str or Path
        The model folder.

    Returns
    -------
    pipeline : ImagePipeline
        Fitted, with ``input_shape_``, ``color_mode_``, ``class_names_`` and
        ``metrics_`` from the manifest.
    manifest : dict
    sha256 : str
        Hex sha256 of the manifest's bytes: it pins every part of the model, the arrays
        through their own sha256.

    Raises
    ------
    ArtifactError
        Naming the file and the reason: missing, changed, truncated or foreign.
    """
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"{path}: no such model folder")
    raw = _read_manifest_bytes(path)
    manifest = _parse_manifest(raw, path / MANIFEST)
    source = str(path / MANIFEST)
    if not manifest["steps"] or manifest["steps"][0].get("name") != ROOT \
            or manifest["steps"][0]["class"] != CLASS_NAMES[ImagePipeline]:
        raise ArtifactError(f"{source}: the first step must be {ROOT!r}, an ImagePipeline")
    reader = Reader(manifest["steps"], _read_arrays(path, manifest), source, _read_skops(path, manifest))
    pipeline = reader.build(ROOT)
    unused = set(reader.entries) - set(reader.built)
    if unused:
        raise ArtifactError(f"{source}: steps {sorted(unused)} are not part of the pipeline")
    _set_top_level(pipeline, manifest, source)
    return pipeline, manifest, file_sha256(io.BytesIO(raw))


def save_extractor(extractor, path):
    """Write a fitted extractor (one of the allow-list, or a ``FeatureStack`` of them) to
    the folder ``path``, atomically, in the artifacts' safe format ("cvpipe-extractor").

    A batch job saves its extractor once; its workers, on any host that sees the folder,
    load it with :func:`load_extractor` instead of receiving a pickle.

    Returns
    -------
    str
        The hex sha256 of the written ``manifest.json`` (it pins the arrays too).
    """
    image_shape = getattr(extractor, "image_shape_", None)
    if image_shape is None and hasattr(extractor, "transformer_list"):
        image_shape = next((getattr(step, "image_shape_", None) for _, step in extractor.transformer_list
                            if hasattr(step, "image_shape_")), None)
    n_features = getattr(extractor, "n_features_out_", None)
    if image_shape is None or n_features is None:
        raise ArtifactError(f"expected a fitted extractor to save, got {type(extractor).__name__} without "
                            "image_shape_ and n_features_out_")
    writer = Writer()
    writer.add(extractor, "features")
    if writer.files:
        raise ArtifactError(f"cannot save {type(extractor).__name__} as an extractor: it holds a scikit-learn "
                            "classifier, which only a model folder keeps")
    manifest = {"format": EXTRACTOR_FORMAT, "format_version": EXTRACTOR_FORMAT_VERSION,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "cvpipe_version": package_version(),
                "image_shape": [int(v) for v in image_shape], "n_features": int(n_features), "arrays": None,
                "steps": writer.steps}
    _write_folder(path, manifest, writer.arrays)
    return file_sha256(Path(path) / MANIFEST)


def load_extractor(path):
    """Read an extractor written by :func:`save_extractor`, with the same checks as :func:`load`.

    Returns
    -------
    extractor : transformer
        Fitted.
    sha256 : str
        Hex sha256 of the manifest's bytes.

    Raises
    ------
    ArtifactError
        Missing, changed, truncated or foreign files, or a class outside the allow-list.
    """
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"{path}: no such extractor folder")
    raw = _read_manifest_bytes(path)
    manifest = _parse_manifest(raw, path / MANIFEST, expected=EXTRACTOR_FORMAT)
    source = str(path / MANIFEST)
    reader = Reader(manifest["steps"], _read_arrays(path, manifest), source)
    if "features" not in reader.entries:
        raise ArtifactError(f"{source}: the first step must be 'features', the extractor")
    extractor = reader.build("features")
    unused = set(reader.entries) - set(reader.built)
    if unused:
        raise ArtifactError(f"{source}: steps {sorted(unused)} are not part of the extractor")
    if not hasattr(extractor, "transform") or getattr(extractor, "n_features_out_", None) != manifest.get("n_features"):
        raise ArtifactError(f"{source}: expected a fitted extractor of {manifest.get('n_features')!r} features, "
                            f"got a {type(extractor).__name__}")
    return extractor, file_sha256(io.BytesIO(raw))


def describe_steps(manifest):
    """The extractors and the classifier of a manifest, as plain JSON for people and APIs.

    Returns
    -------
    dict
        ``{"features": [{"class", "params"}, ...], "classifier": {"class", "params"}}``:
        each step's class and its parameters with plain values (tuples as lists; arrays
        and references to other steps left out); ``features`` is the spec string when the
        pipeline was given one; ``classifier`` is None when absent.
    """
    steps = {s.get("name"): s for s in manifest.get("steps", []) if isinstance(s, dict)}

    def brief(step):
        params = {k: plain_value(v) for k, v in step.get("params", {}).items()}
        return {"class": step.get("class"), "params": {k: v for k, v in params.items() if v is not OMITTED}}

    spec = steps.get(ROOT, {}).get("params", {}).get("features")
    features = spec if isinstance(spec, str) else \
        [brief(s) for n, s in steps.items() if isinstance(n, str) and n.startswith("features")]
    return {"features": features, "classifier": brief(steps["classifier"]) if "classifier" in steps else None}


def _set_top_level(pipeline, manifest, source):
    size, mode = manifest["input"].get("size"), manifest["input"].get("color_mode")
    if not (isinstance(size, list) and len(size) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)):
        raise ArtifactError(f"{source}: input.size must be [height, width], got {size!r}")
    if mode not in COLOR_MODES:
        raise ArtifactError(f"{source}: input.color_mode must be one of {COLOR_MODES}, got {mode!r}")
    classifier = getattr(pipeline, "classifier_", None)
    classes = getattr(classifier, "classes_", None)
    if classes is None:
        raise ArtifactError(f"{source}: the pipeline has no fitted classifier")
    if classes.tolist() != manifest["classes"]:
        raise ArtifactError(f"{source}: classes {manifest['classes']} disagree with the classifier's "
                            f"{classes.tolist()}")
    names = manifest["class_names"]
    if len(names) != len(classes) or not all(isinstance(n, str) for n in names):
        raise ArtifactError(f"{source}: class_names must be {len(classes)} strings, got {names!r}")
    pipeline.input_shape_, pipeline.color_mode_ = tuple(size), mode
    pipeline.classes_, pipeline.class_names_ = classes, list(names)
    pipeline.metrics_ = manifest["metrics"]
    provenance = manifest.get("provenance")  # absent from manifests saved before it was recorded
    if provenance is not None and not isinstance(provenance, dict):
        raise ArtifactError(f"{source}: provenance must be an object or null, got {str(provenance)[:80]}")
    pipeline.provenance_ = provenance
