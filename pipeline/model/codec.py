"""The value codec of model artifacts: estimators to JSON steps and named arrays, and back.

Each estimator becomes a *step* ``{"name", "class", "params", "state", "arrays"}``:
``params`` is ``get_params(deep=False)``, ``state`` the attributes ``fit`` set (every
instance attribute that is not a parameter: ``W_``, ``codebook_``, kNN's ``_X``). Values
are plain JSON where JSON keeps their type, else a one-key tag:

``{"__array__": name}`` an ndarray in ``arrays.npz`` at ``<step>/<name>``;
``{"__list__": name}`` a long list of numbers kept as an array; ``{"__tuple__": [...]}``;
``{"__step__": path}`` an estimator (another step); ``{"__clone_of__": path}`` an unfitted
clone of one (a parameter ``features`` whose fitted copy is ``features_``);
``{"__scalar__": [dtype, value]}`` a NumPy scalar; ``{"__float__": "nan"}``;
``{"__dtype__": "float32"}`` / ``{"__type__": "float32"}`` a dtype or a scalar type;
``{"__items__": [[k, v], ...]}`` a dict with non-string keys;
``{"__random_state__": {...}}`` a ``RandomState`` and its state.

Only classes of :data:`ALLOWED_CLASSES` are written or rebuilt; decoding creates data
only (numbers, strings, arrays, containers, allow-listed estimators), never callables.

The scikit-learn classifiers of the registry (``codec="skops"`` in :mod:`pipeline.model.spec`)
are the exception: their fitted state goes to a ``.skops`` file (:mod:`pipeline.model.sklearn_codec`),
and their step has ``"skops": {"file", "sha256", "bytes", "skops_version"}`` instead of ``state``;
``params`` still describe them, and must match the loaded object's.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
from sklearn.base import BaseEstimator, clone

from pipeline.model import sklearn_codec
from pipeline.model.errors import ArtifactError
from pipeline.model.image_pipeline import ImagePipeline
from pipeline.model.spec import model_classes

ROOT = "pipeline"


def class_name(cls):
    """The name a manifest gives ``cls``: its public module and its name
    (``features.hog.HOG``, ``sklearn.preprocessing.StandardScaler``)."""
    module = cls.__module__.split(".")
    public = next((i for i, part in enumerate(module) if part.startswith("_")), len(module))
    # sklearn.preprocessing._data -> sklearn.preprocessing; sklearn.ensemble._forest -> sklearn.ensemble
    return ".".join(module[:public]) + "." + cls.__qualname__


#: The only classes a model may contain, by the name the manifest gives them: the
#: pipeline and the classes of the spec registry (:func:`pipeline.model.spec.model_classes`).
ALLOWED_CLASSES = {class_name(cls): cls for cls in (ImagePipeline, *model_classes())}
CLASS_NAMES = {cls: name for name, cls in ALLOWED_CLASSES.items()}
_ARRAY_KINDS = "biufcUS"  # numbers and strings: what np.load reads without pickle
_SCALAR_KINDS = "biuf"
_BUILTIN_TYPES = {"builtins.float": float, "builtins.int": int, "builtins.bool": bool}
_TAGS = ("__array__", "__list__", "__tuple__", "__step__", "__clone_of__", "__scalar__",
         "__float__", "__dtype__", "__type__", "__items__", "__random_state__")
_LONG_LIST = 16  # longer all-number lists in the fitted state are stored as arrays


class Writer:
    """Turns an estimator tree into manifest steps (JSON) and named arrays."""

    def __init__(self, root_skip=()):
        self.steps, self.arrays = [], {}
        self.files = {}  # file name -> bytes: the .skops files of scikit-learn classifiers
        self._root_skip = tuple(root_skip)  # root attributes kept elsewhere (the manifest's top level)
        self._paths = {}  # id(estimator) -> step path
        self._root_state = False  # encoding the root's fitted steps: they get top-level paths

    def add(self, est, path):
        name = CLASS_NAMES.get(type(est))
        if name is None:
            cls = type(est)
            raise ArtifactError(f"cannot save step {path!r}: {cls.__module__}.{cls.__qualname__} is not "
                                f"in the allow-list of model classes ({sorted(ALLOWED_CLASSES)})")
        self._paths[id(est)] = path
        entry = {"name": path, "class": name, "params": {}, "state": {}, "arrays": []}
        self.steps.append(entry)
        if type(est) in sklearn_codec.TRUSTED_TYPES:
            return self._add_skops(est, path, entry)
        params = est.get_params(deep=False)
        skip = self._root_skip if path == ROOT else ()
        outer, self._root_state = self._root_state, path == ROOT
        for key in [k for k in vars(est) if k not in params and k not in skip]:
            entry["state"][key] = self.encode(getattr(est, key), entry, key, in_state=True)
        self._root_state = outer
        for key, value in params.items():
            fitted = getattr(est, key + "_", None)
            if isinstance(value, BaseEstimator) and type(fitted) is type(value) and id(fitted) in self._paths:
                entry["params"][key] = {"__clone_of__": self._paths[id(fitted)]}  # param X, fitted X_
            else:
                entry["params"][key] = self.encode(value, entry, key)
        return path

    def _add_skops(self, est, path, entry):
        """A scikit-learn classifier: fitted state in ``<path>.skops``, parameters in the manifest."""
        data = sklearn_codec.dumps(est, f"step {path!r}")
        file = path.replace("/", ".") + sklearn_codec.SUFFIX
        self.files[file] = data
        entry["skops"] = {"file": file, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                          "skops_version": sklearn_codec.SKOPS_VERSION}
        for key, value in est.get_params(deep=False).items():
            entry["params"][key] = self.encode(value, entry, key)
        return path

    def _child_path(self, parent, label):
        base = label if parent == ROOT and self._root_state else f"{parent}/{label}"
        taken = set(self._paths.values())
        path, i = base, 2
        while path in taken:
            path, i = f"{base}_{i}", i + 1
        return path

    def _add_array(self, entry, key, array):
        arrays = entry["arrays"]
        name, i = key, 2
        while name in arrays:
            name, i = f"{key}_{i}", i + 1
        arrays.append(name)
        self.arrays[f"{entry['name']}/{name}"] = array
        return name

    def encode(self, value, entry, key, in_state=False, label=None):
        where = f"step {entry['name']!r}, {key}"
        if isinstance(value, np.generic):  # first: np.float64 is also a float
            return self._encode_scalar(value, where)
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, np.ndarray):
            return {"__array__": self._add_array(entry, key, _storable(value, where))}
        if isinstance(value, BaseEstimator):
            if id(value) in self._paths:
                return {"__step__": self._paths[id(value)]}
            return {"__step__": self.add(value, self._child_path(entry["name"], label or key.rstrip("_")))}
        if isinstance(value, np.random.RandomState):
            _, keys, pos, has_gauss, gauss = value.get_state(legacy=True)
            return {"__random_state__": {"keys": self._add_array(entry, key, keys), "pos": int(pos),
                                         "has_gauss": int(has_gauss), "cached_gaussian": float(gauss)}}
        if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
            dtype = np.dtype(value)
            if dtype.kind not in _SCALAR_KINDS:
                raise ArtifactError(f"cannot save {where}: dtype {dtype} (expected a numeric dtype)")
            return {"__dtype__" if isinstance(value, np.dtype) else "__type__": dtype.name}
        if isinstance(value, type) and f"builtins.{value.__name__}" in _BUILTIN_TYPES:
            return {"__type__": f"builtins.{value.__name__}"}
        if isinstance(value, tuple):
            pair_label = value[0] if len(value) == 2 and isinstance(value[0], str) else None
            return {"__tuple__": [self.encode(v, entry, f"{key}/{i}", in_state, pair_label)
                                  for i, v in enumerate(value)]}
        if isinstance(value, list):
            numbers = all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
                          for v in value)
            if in_state and numbers and len(value) > _LONG_LIST:
                return {"__list__": self._add_array(entry, key, np.asarray(value))}
            return [self.encode(v, entry, f"{key}/{i}", in_state) for i, v in enumerate(value)]
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in value):
                return {k: self.encode(v, entry, f"{key}/{k}", in_state) for k, v in value.items()}
            return {"__items__": [[self.encode(k, entry, f"{key}/{i}k"), self.encode(v, entry, f"{key}/{i}", in_state)]
                                  for i, (k, v) in enumerate(value.items())]}
        raise ArtifactError(f"cannot save {where}: a {type(value).__module__}.{type(value).__qualname__} "
                            "(only numbers, strings, arrays, lists, dicts and allow-listed estimators are "
                            "saved; nothing is pickled)")

    def _encode_scalar(self, value, where):
        if isinstance(value, np.str_):
            return str(value)
        if value.dtype.kind not in _SCALAR_KINDS:
            raise ArtifactError(f"cannot save {where}: a numpy {value.dtype} scalar")
        item = value.item()
        if isinstance(item, float) and not math.isfinite(item):
            item = {"__float__": repr(item)}
        return {"__scalar__": [value.dtype.name, item]}


def _storable(array, where):
    """The array as np.load(allow_pickle=False) can read it back, or an ArtifactError."""
    if array.dtype == object:
        if array.size and all(isinstance(v, str) for v in array.flat):
            return array.astype(str)
        raise ArtifactError(f"cannot save {where}: an object array (only numeric and string arrays, "
                            "which load without pickle)")
    if array.dtype.kind not in _ARRAY_KINDS or array.dtype.fields is not None:
        raise ArtifactError(f"cannot save {where}: an array of dtype {array.dtype}")
    return array


class Reader:
    """Rebuilds estimators from manifest steps and loaded arrays, and takes the steps saved
    through skops from ``objects`` (step name -> estimator, loaded and checked by the caller)."""

    def __init__(self, steps, arrays, source, objects=None):
        self.entries, self.arrays, self.source = {}, arrays, source
        self.objects = objects or {}
        for entry in steps:
            if entry["name"] in self.entries:
                raise ArtifactError(f"{source}: two steps are named {entry['name']!r}")
            self.entries[entry["name"]] = entry
        self.built, self._building = {}, set()

    def build(self, name):
        if name in self.built:
            return self.built[name]
        if name not in self.entries:
            raise ArtifactError(f"{self.source}: a step refers to step {name!r}, which is not in the manifest")
        if name in self._building:
            raise ArtifactError(f"{self.source}: step {name!r} refers to itself")
        self._building.add(name)
        entry = self.entries[name]
        cls = ALLOWED_CLASSES[entry["class"]]
        where = f"{self.source}: step {name!r} ({entry['class']})"
        skops_class = cls in sklearn_codec.TRUSTED_TYPES
        if skops_class != ("skops" in entry):
            raise ArtifactError(f"{where}: " + ("a scikit-learn classifier is read only from its .skops file; the "
                                                "step has no 'skops' entry" if skops_class else
                                                "only the scikit-learn classifiers are read from a .skops file"))
        try:
            params = {k: self.decode(v, entry) for k, v in entry["params"].items()}
            if skops_class:
                est = self._from_skops(entry, params, where)
            else:
                est = cls(**params)
                for attr, value in entry["state"].items():
                    _check_attribute(cls, attr, params, where)
                    setattr(est, attr, self.decode(value, entry))
        except ArtifactError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError, OverflowError) as exc:
            raise ArtifactError(f"{where}: cannot rebuild it ({type(exc).__name__}: {exc})") from exc
        self._building.discard(name)
        self.built[name] = est
        return est

    def _from_skops(self, entry, params, where):
        if entry["name"] not in self.objects:
            raise ArtifactError(f"{where}: its .skops file was not loaded (no scikit-learn classifier belongs here)")
        if entry["state"]:
            raise ArtifactError(f"{where}: a step read from a .skops file has no 'state' in the manifest")
        est = self.objects[entry["name"]]
        actual = est.get_params(deep=False)
        differ = sorted(set(params) ^ set(actual)) or [k for k in params if not _same(params[k], actual[k])]
        if differ:
            raise ArtifactError(f"{where}: parameters {differ} in the manifest disagree with its .skops file")
        return est

    def decode(self, value, entry):
        if isinstance(value, list):
            return [self.decode(v, entry) for v in value]
        if not isinstance(value, dict):
            return value
        tags = [k for k in value if k.startswith("__")]
        if not tags:
            return {k: self.decode(v, entry) for k, v in value.items()}
        if len(value) != 1 or tags[0] not in _TAGS:
            raise ArtifactError(f"{self.source}: step {entry['name']!r}: unknown value {value!r}")
        tag, arg = tags[0], value[tags[0]]
        if tag in ("__array__", "__list__"):
            array = self._array(entry, arg)
            return array.tolist() if tag == "__list__" else array
        if tag == "__step__":
            return self.build(arg)
        if tag == "__clone_of__":
            return clone(self.build(arg))
        if tag == "__tuple__":
            return tuple(self.decode(v, entry) for v in arg)
        if tag == "__items__":
            return {self.decode(k, entry): self.decode(v, entry) for k, v in arg}
        if tag == "__float__":
            if arg not in ("nan", "inf", "-inf"):
                raise ValueError(f"__float__ must be nan, inf or -inf, got {arg!r}")
            return float(arg)
        if tag == "__scalar__":
            dtype, item = arg
            return _numeric_dtype(dtype).type(self.decode(item, entry))
        if tag == "__dtype__":
            return _numeric_dtype(arg)
        if tag == "__type__":
            return _BUILTIN_TYPES[arg] if arg in _BUILTIN_TYPES else _numeric_dtype(arg).type
        rs = np.random.RandomState()  # "__random_state__"
        rs.set_state(("MT19937", self._array(entry, arg["keys"]), int(arg["pos"]), int(arg["has_gauss"]),
                      float(arg["cached_gaussian"])))
        return rs

    def _array(self, entry, name):
        if name not in entry["arrays"]:
            raise ArtifactError(f"{self.source}: step {entry['name']!r} uses array {name!r}, "
                                "which it does not declare")
        return self.arrays[f"{entry['name']}/{name}"]


def _same(a, b):
    """Whether two parameter values are equal: arrays by content, NaN equal to NaN, containers item by item."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype
                and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, np.random.RandomState):
        return isinstance(b, np.random.RandomState) and _same(a.get_state(legacy=True), b.get_state(legacy=True))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _numeric_dtype(name):
    dtype = np.dtype(name) if isinstance(name, str) else None
    if dtype is None or dtype.kind not in _SCALAR_KINDS:
        raise ValueError(f"expected a numeric dtype name, got {name!r}")
    return dtype


def _check_attribute(cls, attr, params, where):
    """Only plain fitted attributes may be set: ``name_`` or ``_name``, nothing of the class."""
    ok = (isinstance(attr, str) and attr.isidentifier() and not attr.startswith("__")
          and (attr.endswith("_") or attr.startswith("_")) and attr not in params
          and not hasattr(cls, attr))
    if not ok:
        raise ArtifactError(f"{where}: {attr!r} is not a fitted attribute that may be set")


#: What :func:`plain_value` gives for a value with no plain form (an array, a random state).
OMITTED = object()


def plain_value(value):
    """A manifest value as plain JSON for people, at any depth: tuples as lists, NumPy
    scalars and dtypes as numbers and names, non-finite floats as their names, a reference
    to another step as that step's name; arrays and random states are :data:`OMITTED`
    (left out of the lists and dicts that hold them; the caller leaves out a top-level one)."""
    if isinstance(value, list):
        return [v for v in map(plain_value, value) if v is not OMITTED]
    if not isinstance(value, dict):
        return value
    tags = [k for k in value if k.startswith("__")]
    if not tags:
        return {k: v for k, v in ((k, plain_value(v)) for k, v in value.items()) if v is not OMITTED}
    tag, arg = tags[0], value[tags[0]]
    if tag == "__tuple__":
        return plain_value(arg)
    if tag == "__scalar__":
        return plain_value(arg[1])
    if tag in ("__float__", "__dtype__", "__type__"):
        return arg
    if tag in ("__step__", "__clone_of__") and isinstance(arg, str):
        return arg
    return OMITTED

