"""Specifications: the text a user writes to name extractors, classifiers and their parameters.

A feature spec is either a string::

    hog:pixels_per_cell=7x7,orientations=12,color_hist:bins=16

(extractors separated by commas; ``name:key=value`` starts an extractor, further
``key=value`` items belong to the one before; ``7x7`` is the pair ``(7, 7)``), or a
JSON/YAML file holding a list of ``{"name": ..., "params": {...}}`` or a mapping
``{name: {params}}``. A classifier spec is one name and its parameters::

    knn:n_neighbors=5,metric=l1     softmax     svm:reg=1e-4     net:hidden_sizes=256x128
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from classifiers.knn import KNearestNeighbor
from classifiers.linear import LinearSVM, Softmax
from classifiers.net import TwoLayerNet
from features import HOG, BagOfVisualWords, ColorHistogram, FeatureStack, RawPixels

EXTRACTORS = {
    "raw": RawPixels,
    "raw_pixels": RawPixels,
    "color_hist": ColorHistogram,
    "color": ColorHistogram,
    "color_histogram": ColorHistogram,
    "hog": HOG,
    "bovw": BagOfVisualWords,
    "bag_of_visual_words": BagOfVisualWords,
}


CLASSIFIERS = {
    "knn": KNearestNeighbor,
    "kneighbors": KNearestNeighbor,
    "svm": LinearSVM,
    "linear_svm": LinearSVM,
    "softmax": Softmax,
    "net": TwoLayerNet,
    "mlp": TwoLayerNet,
    "two_layer_net": TwoLayerNet,
}


class SpecError(ValueError):
    """A feature or classifier spec that cannot be understood; the message says what was expected."""


def parse_value(text):
    """``7`` -> 7, ``0.5`` and ``1e-3`` -> floats, ``true`` -> True, ``7x7`` -> (7, 7), else the string."""
    if "x" in text and all(part.strip().isdigit() for part in text.split("x")):
        return tuple(int(part) for part in text.split("x"))
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            return value
    return value if isinstance(value, (int, float, bool)) or value is None else text


def _coerce_params(cls, params):
    """Check names against the extractor and widen an int to a pair where the default is a pair."""
    defaults = cls().get_params()
    for key, value in list(params.items()):
        if key not in defaults:
            raise SpecError(
                f"{cls.__name__} has no parameter {key!r}; expected one of {sorted(defaults)}"
            )
        if isinstance(defaults[key], tuple) and isinstance(value, int) and not isinstance(value, bool):
            params[key] = (value, value)
        elif isinstance(value, list):
            params[key] = tuple(value)
    return params


def _build(name, params):
    if name not in EXTRACTORS:
        raise SpecError(f"unknown extractor {name!r}; expected one of {sorted(EXTRACTORS)}")
    cls = EXTRACTORS[name]
    return name, cls(**_coerce_params(cls, dict(params)))


def _parse_string(spec):
    items = []  # [name, params]
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            raise SpecError(f"empty item in feature spec {spec!r}")
        name, sep, rest = token.partition(":")
        if sep or "=" not in token:
            items.append([name.strip(), {}])
            token = rest if sep else ""
        elif not items:
            raise SpecError(f"feature spec {spec!r} starts with a parameter; expected name:key=value")
        if token:
            key, eq, value = token.partition("=")
            if not eq or not key.strip():
                raise SpecError(f"expected key=value in feature spec, got {token!r}")
            items[-1][1][key.strip()] = parse_value(value.strip())
    return items


def _parse_document(doc, source):
    if isinstance(doc, dict):
        return [[name, params or {}] for name, params in doc.items()]
    if isinstance(doc, list) and all(isinstance(d, dict) and "name" in d for d in doc):
        return [[d["name"], d.get("params") or {}] for d in doc]
    raise SpecError(
        f"{source}: expected a list of {{name, params}} or a mapping name -> params, "
        f"got {type(doc).__name__}"
    )


def parse_feature_spec(spec):
    """Turn a spec (string, file path, list or mapping) into named extractors.

    Parameters
    ----------
    spec : str, path, list or dict

    Returns
    -------
    list of (str, transformer)
        Unfitted extractors in the order given; names are made unique (``hog``, ``hog_2``).
    """
    if isinstance(spec, (list, dict)):
        items = _parse_document(spec, "spec")
    elif isinstance(spec, (str, Path)) and str(spec).endswith((".json", ".yaml", ".yml")):
        path = Path(spec)
        if not path.is_file():
            raise SpecError(f"feature spec file {path} does not exist")
        text = path.read_text()
        try:
            doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise SpecError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from exc
        items = _parse_document(doc, str(path))
    elif isinstance(spec, str) and spec.strip():
        items = _parse_string(spec)
    else:
        raise SpecError(f"expected a feature spec such as 'hog:pixels_per_cell=7', got {spec!r}")
    built, seen = [], {}
    for name, params in items:
        step_name, extractor = _build(name, params)
        seen[step_name] = seen.get(step_name, 0) + 1
        built.append((step_name if seen[step_name] == 1 else f"{step_name}_{seen[step_name]}", extractor))
    return built


def build_extractor(spec):
    """One transformer for a spec: the extractor itself, or a ``FeatureStack`` of several."""
    steps = parse_feature_spec(spec)
    return steps[0][1] if len(steps) == 1 else FeatureStack(steps)


def describe_extractor(extractor):
    """JSON-able description: ``[{"name", "class", "params"}]`` for each extractor."""
    steps = extractor.transformer_list if isinstance(extractor, FeatureStack) else [("", extractor)]
    out = []
    for name, step in steps:
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in step.get_params(deep=False).items()}
        out.append({"name": name or type(step).__name__.lower(), "class": type(step).__name__, "params": params})
    return out


def parse_classifier_spec(spec):
    """Split ``"name:key=value,key=value"`` into the classifier class and its parameters.

    Parameters
    ----------
    spec : str
        A name from :data:`CLASSIFIERS`, optionally followed by ``:`` and comma-separated
        ``key=value`` items. Values are numbers, ``true``/``false``, strings, or ``AxB``
        tuples (``hidden_sizes=256x128``); a single int where the default is a tuple
        becomes a 1-tuple (``hidden_sizes=256`` -> ``(256,)``).

    Returns
    -------
    cls : type
    params : dict

    Raises
    ------
    SpecError
        For an unknown name or parameter, or an item that is not ``key=value``.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise SpecError(f"expected a classifier spec such as 'knn:n_neighbors=5', got {spec!r}")
    name, _, rest = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in CLASSIFIERS:
        raise SpecError(f"unknown classifier {name!r} in {spec!r}; expected one of {sorted(CLASSIFIERS)}")
    cls = CLASSIFIERS[name]
    defaults = cls().get_params(deep=False)
    params = {}
    for item in (t.strip() for t in rest.split(",")) if rest.strip() else ():
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise SpecError(f"expected key=value in classifier spec {spec!r}, got {item!r}")
        if key not in defaults:
            raise SpecError(f"{cls.__name__} has no parameter {key!r}; expected one of {sorted(defaults)}")
        value = parse_value(text.strip())
        if isinstance(defaults[key], tuple) and isinstance(value, int) and not isinstance(value, bool):
            value = (value,)
        params[key] = value
    return cls, params


def build_classifier(spec):
    """A new, unfitted classifier from a spec such as ``"knn:n_neighbors=5,metric=l1"``."""
    cls, params = parse_classifier_spec(spec)
    return cls(**params)
