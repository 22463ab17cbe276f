"""The registry of extractor and classifier classes, and the one grammar that names them.

Every class a user can name, and so every class a saved model may contain, is in
:data:`REGISTRY`; the spec parser, the command line's lists of names and the artifact
allow-list (:mod:`pipeline.model.codec`) are derived from it.

A spec is a string::

    hog:pixels_per_cell=7x7,orientations=12,color_hist:bins=16      (features: one or more)
    knn:n_neighbors=5,metric=l1     softmax     net:hidden_sizes=256x128   (a classifier: one)
    logistic_regression:C=0.5     random_forest:n_estimators=200     (scikit-learn's, by their names)

Items are separated by commas; ``name:key=value`` starts a step, further ``key=value``
items belong to the step before. Values are numbers, ``true``/``false``, strings or
``AxB`` tuples (``7x7`` is ``(7, 7)``). One widening rule for both kinds: a single int
where the parameter's default is a tuple fills a tuple of the default's length
(``pixels_per_cell=7`` is ``(7, 7)``, ``hidden_sizes=256`` is ``(256,)``). A feature spec
may also be a JSON/YAML file, a list of ``{"name": ..., "params": {...}}`` or a mapping
``{name: {params}}``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from classifiers import ConvNet, KNearestNeighbor, LinearSVM, Softmax, TwoLayerNet
from features import HOG, BagOfVisualWords, ColorHistogram, FeatureStack, RawPixels

KINDS = ("features", "classifier")


@dataclass(frozen=True)
class Entry:
    """One nameable class: its spec name, other names it answers to, its kind, and how
    a saved model stores it: ``"cvpipe"`` (the JSON + ``arrays.npz`` codec,
    :mod:`pipeline.model.codec`) or ``"skops"`` (a ``.skops`` file read with an explicit
    trusted-type list, :mod:`pipeline.model.sklearn_codec`)."""

    name: str
    cls: type
    kind: str
    aliases: tuple = ()
    codec: str = "cvpipe"


#: Every class a spec can name, in the order the command line lists them. The
#: scikit-learn classifiers are saved through skops; their names are the class names in
#: snake case (``knn``, ``svm`` and ``mlp`` already name cvpipe's own).
REGISTRY = (
    Entry("raw", RawPixels, "features", ("raw_pixels",)),
    Entry("color_hist", ColorHistogram, "features", ("color", "color_histogram")),
    Entry("hog", HOG, "features"),
    Entry("bovw", BagOfVisualWords, "features", ("bag_of_visual_words",)),
    Entry("knn", KNearestNeighbor, "classifier", ("kneighbors",)),
    Entry("svm", LinearSVM, "classifier", ("linear_svm",)),
    Entry("softmax", Softmax, "classifier"),
    Entry("net", TwoLayerNet, "classifier", ("mlp", "two_layer_net")),
    Entry("convnet", ConvNet, "classifier", ("cnn", "conv_net")),
    Entry("logistic_regression", LogisticRegression, "classifier", ("logreg",), codec="skops"),
    Entry("sgd_classifier", SGDClassifier, "classifier", ("sgd",), codec="skops"),
    Entry("linear_svc", LinearSVC, "classifier", codec="skops"),
    Entry("svc", SVC, "classifier", codec="skops"),
    Entry("kneighbors_classifier", KNeighborsClassifier, "classifier", codec="skops"),
    Entry("mlp_classifier", MLPClassifier, "classifier", codec="skops"),
    Entry("random_forest_classifier", RandomForestClassifier, "classifier", ("random_forest", "rf"), codec="skops"),
    Entry("hist_gradient_boosting_classifier", HistGradientBoostingClassifier, "classifier", ("hgb",),
          codec="skops"),
)
_NOUN = {"features": "extractor", "classifier": "classifier"}


def names(kind):
    """The spec names of ``kind`` ("features" or "classifier"), aliases left out."""
    return [e.name for e in REGISTRY if e.kind == kind]


def lookup(kind):
    """``{name or alias: class}`` of ``kind``."""
    return {n: e.cls for e in REGISTRY if e.kind == kind for n in (e.name, *e.aliases)}


def model_classes():
    """Every class a fitted pipeline may hold besides ``ImagePipeline`` itself: the
    registered ones, ``FeatureStack`` (several extractors) and ``StandardScaler``."""
    return (*(e.cls for e in REGISTRY), FeatureStack, StandardScaler)


def skops_classes():
    """The registered classes a saved model stores through skops (``codec="skops"``)."""
    return tuple(e.cls for e in REGISTRY if e.codec == "skops")


class SpecError(ValueError):
    """A feature or classifier spec that cannot be understood; the message says what was expected."""


_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TUPLE = re.compile(r"[0-9]+(?:\s*x\s*[0-9]+)+")
_WORDS = {"true": True, "false": False, "null": None, "none": None, "~": None}


def parse_value(text):
    """The typed value of a spec's ``key=value``: one small grammar, nothing implicit.

    ``7`` -> 7 (decimal, also with leading zeros), ``0.5``, ``1e-3`` -> floats,
    ``true``/``false`` -> bools, ``null`` or ``none`` -> None, ``7x7`` -> (7, 7); anything
    else stays the string it is (``yes``, ``0x1F`` and ``3:4`` too: YAML 1.1 would have
    made them True, 31 and 184).

    Raises
    ------
    SpecError
        A number too long to be one (Python refuses ints of more than 4,300 digits).
    """
    text = text.strip()
    try:
        if _TUPLE.fullmatch(text):
            return tuple(int(part) for part in text.split("x"))
        if _INT.fullmatch(text):
            return int(text)
    except ValueError:
        raise SpecError(f"the value {text[:20]}... has {len(text)} characters: too long for a number") from None
    if _FLOAT.fullmatch(text):
        return float(text)
    return _WORDS[text.lower()] if text.lower() in _WORDS else text


def parse_spec(spec, kind="features"):
    """Split a spec string into steps: ``[(name, {key: value}), ...]``, values typed.

    Names are lower-cased and stripped; neither they nor the keys are checked here
    (see :func:`build`).

    Raises
    ------
    SpecError
        An empty item, a parameter before any name, or an item that is not ``key=value``.
    """
    what = f"{'feature' if kind == 'features' else 'classifier'} spec"
    if not isinstance(spec, str) or not spec.strip():
        example = "hog:pixels_per_cell=7" if kind == "features" else "knn:n_neighbors=5"
        raise SpecError(f"expected a {what} such as {example!r}, got {spec!r}")
    steps = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            raise SpecError(f"empty item in {what} {spec!r}")
        name, sep, rest = token.partition(":")
        if sep or "=" not in token:
            steps.append((name.strip().lower(), {}))
            token = rest.strip() if sep else ""
        elif not steps:
            raise SpecError(f"{what} {spec!r} starts with a parameter; expected name:key=value")
        if token:
            key, eq, value = token.partition("=")
            key = key.strip()
            if not eq or not key or not value.strip():
                raise SpecError(f"expected key=value in {what} {spec!r}, got {token!r}")
            if key in steps[-1][1]:
                raise SpecError(f"{key!r} is given twice for {steps[-1][0]!r} in {what} {spec!r}")
            steps[-1][1][key] = parse_value(value)
    return steps


def build(name, params, kind):
    """A new, unfitted instance of the class ``name`` of ``kind`` with ``params``.

    ``params`` are checked against the class's parameters and widened by the module's
    one rule (an int where the default is a tuple fills a tuple of the default's length;
    a list becomes a tuple).

    Raises
    ------
    SpecError
        An unknown name or parameter.
    """
    classes = lookup(kind)
    if name not in classes:
        raise SpecError(f"unknown {_NOUN[kind]} {name!r}; expected one of {sorted(classes)}")
    cls = classes[name]
    defaults = cls().get_params(deep=False)
    coerced = {}
    for key, value in params.items():
        if key not in defaults:
            raise SpecError(f"{cls.__name__} has no parameter {key!r}; expected one of {sorted(defaults)}")
        default = defaults[key]
        if isinstance(default, tuple) and isinstance(value, int) and not isinstance(value, bool):
            value = (value,) * len(default)
        elif isinstance(value, list):
            value = tuple(value)
        coerced[key] = value
    return cls(**coerced)


def _parse_document(doc, source):
    if isinstance(doc, dict):
        steps = list(doc.items())
    elif isinstance(doc, list) and all(isinstance(d, dict) and "name" in d for d in doc):
        extra = sorted({str(k) for d in doc for k in d} - {"name", "params"})
        if extra:  # a misspelt "params" would otherwise drop the parameters unseen
            raise SpecError(f"{source}: unknown key(s) {extra} in a step; expected name and params")
        steps = [(d["name"], d.get("params")) for d in doc]
    else:
        raise SpecError(f"{source}: expected a list of {{name, params}} or a mapping name -> params, "
                        f"got {type(doc).__name__}")
    for name, params in steps:
        if not isinstance(name, str) or not (params is None or isinstance(params, dict)):
            raise SpecError(f"{source}: expected each extractor as a name and a mapping of parameters, got "
                            f"{name!r} with {type(params).__name__} {str(params)[:40]!r}")
    return [(name, params or {}) for name, params in steps]


def _read_document(path):
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"feature spec file {path} does not exist")
    text = path.read_text()
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError, ValueError) as exc:
        problem = " ".join(str(exc).split())  # one line: YAML's messages span several
        raise SpecError(f"{path}: not valid {path.suffix[1:].upper()}: {problem}") from exc
    return _parse_document(doc, str(path))


def parse_feature_spec(spec):
    """Turn a feature spec (string, file path, list or mapping) into named extractors.

    Parameters
    ----------
    spec : str, path, list or dict

    Returns
    -------
    list of (str, transformer)
        Unfitted extractors in the order given; names are made unique (``hog``, ``hog_2``).
    """
    if isinstance(spec, (list, dict)):
        steps = _parse_document(spec, "spec")
    elif isinstance(spec, (str, Path)) and str(spec).endswith((".json", ".yaml", ".yml")):
        steps = _read_document(spec)
    else:
        steps = parse_spec(spec, "features")
    built, seen = [], {}
    for name, params in steps:
        name = str(name).strip().lower()
        extractor = build(name, dict(params), "features")
        seen[name] = seen.get(name, 0) + 1
        built.append((name if seen[name] == 1 else f"{name}_{seen[name]}", extractor))
    return built


def build_extractor(spec):
    """One transformer for a feature spec: the extractor itself, or a ``FeatureStack`` of several."""
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


def build_classifier(spec):
    """A new, unfitted classifier from a spec such as ``"knn:n_neighbors=5,metric=l1"``,
    or from a mapping in the feature files' grammar: ``{"name": "knn", "params": {...}}``
    or ``{"knn": {...}}`` (as a training config's YAML gives it).

    Raises
    ------
    SpecError
        An unknown name or parameter, an item that is not ``key=value``, or more than
        one classifier.
    """
    if isinstance(spec, dict):
        steps = _parse_document([spec] if "name" in spec else spec, "classifier spec")
        steps = [(str(name).strip().lower(), dict(params)) for name, params in steps]
    else:
        steps = parse_spec(spec, "classifier")
    if len(steps) != 1:
        raise SpecError(f"expected one classifier in {spec!r}, got {len(steps)}: {[n for n, _ in steps]}")
    return build(*steps[0], "classifier")
