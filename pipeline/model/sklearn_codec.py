"""scikit-learn classifiers in a model artifact: a ``.skops`` file, read with an explicit trusted list.

cvpipe's own estimators are saved by the JSON + ``arrays.npz`` codec (:mod:`pipeline.model.codec`),
which rebuilds each as ``cls(**params)`` and sets plain attributes. The fitted state of a
scikit-learn classifier holds objects that codec cannot rebuild without knowing each class's
internals (a forest's Cython ``Tree``, a histogram GBM's ``TreePredictor`` records and loss
objects, an MLP's optimizer, SGD's loss), so the classifiers of the registry marked
``codec="skops"`` (:func:`pipeline.model.spec.skops_classes`) are saved with ``skops.io``, the
pickle-free format scikit-learn's documentation points to. :func:`dumps` gives a step's bytes;
:func:`loads` rebuilds the estimator from bytes whose size and sha256
:mod:`pipeline.model.artifacts` has already checked against the manifest.

skops trusts, by default, every scikit-learn estimator and many NumPy and SciPy functions, and
``trusted=`` only adds to that. So the allow-list is cvpipe's own, one per class
(:data:`TRUSTED_TYPES`, derived from the registry): containers, scalars and NumPy arrays
(:data:`COMMON_TYPES`), the class itself, and the parts its fitted state holds
(:data:`FITTED_PARTS`). :func:`loads`, in order:

1. refuses bytes that are not a zip archive, or whose members would unpack to more bytes
   than the archive holds (skops stores them uncompressed; only a crafted file inflates);
2. reads ``schema.json`` and refuses, by name, any node whose type is not on the class's
   list or whose skops loader is not one of :data:`LOADERS` (functions, methods,
   ``functools.partial``, generic ``__reduce__`` objects...) -- before skops builds anything;
3. refuses any type ``skops.io.get_untrusted_types`` reports that is not on the list (skops'
   own audit also declares names a schema would resolve without a node of their own, such as
   a ``Generator``'s bit generator);
4. builds the object with ``skops.io.loads(data, trusted=<the list>)`` and checks it is of the
   step's class;
5. checks the parts scikit-learn's compiled code indexes without bounds checks (skops warns
   about them: a crafted file loads, then crashes ``predict``): a tree's child and feature
   indices (``Tree``, ``TreePredictor``) and libsvm's support-vector counts and shapes
   (:func:`check_fitted`; saving runs the same checks).

A ``KNeighborsClassifier`` is saved without its search tree (a ``KDTree``/``BallTree``, whose
index arrays are also read unchecked) and refitted on load on its stored training set, which
rebuilds the same tree.
"""
from __future__ import annotations

import copy
import importlib
import io
import json
import math
import re
import zipfile
from importlib import metadata

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.linear_model import SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
from sklearn.tree._tree import TREE_LEAF, Tree

from pipeline.model.errors import ArtifactError
from pipeline.model.spec import skops_classes

__all__ = ["COMMON_TYPES", "FITTED_PARTS", "LOADERS", "SKOPS_VERSION", "SUFFIX", "TRUSTED_TYPES", "check_fitted",
           "dumps", "loads", "type_name"]

SUFFIX = ".skops"
#: The members a skops file may hold: its schema and its arrays, by plain names.
_MEMBER_NAME = re.compile(r"schema\.json|[0-9A-Za-z_-]+\.npy")
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
#: The skops that writes the files (recorded in the manifest, for people).
SKOPS_VERSION = metadata.version("skops")


def _skops_io():
    """``skops.io``, imported on first use: its import lists every scikit-learn estimator
    (``all_estimators``), most of a second that every start of the CLI and the service
    would otherwise pay for models without a scikit-learn classifier."""
    return importlib.import_module("skops.io")


def type_name(cls):
    """A type's name as skops writes it in ``schema.json``: module and name."""
    return f"{cls.__module__}.{cls.__qualname__}"


#: The skops loaders a classifier's file may use. Left out: ``FunctionNode``, ``MethodNode``,
#: ``PartialNode``, ``OperatorFuncNode``, ``ReduceNode`` (any ``__reduce__``), sparse matrices,
#: sets, slices, bytes and the loaders of old skops protocols.
LOADERS = frozenset({"ObjectNode", "DictNode", "ListNode", "TupleNode", "JsonNode", "NdArrayNode", "TypeNode",
                     "CachedNode", "LossNode", "TreeNode", "RandomStateNode", "RandomGeneratorNode"})

#: What every classifier's file may hold: containers, Python scalars, NumPy arrays and scalars
#: of numbers (booleans, integers, floats).
COMMON_TYPES = frozenset(
    [f"builtins.{t}" for t in ("dict", "list", "tuple", "str", "int", "float", "bool")]
    + ["numpy.ndarray"]
    + [f"numpy.{np.dtype(c).type.__name__}" for c in "?" + np.typecodes["AllInteger"] + np.typecodes["Float"]])

_SGD_LOSSES = tuple(f"sklearn.linear_model._sgd_fast.{name}" for name in
                    ("Hinge", "SquaredHinge", "ModifiedHuber", "EpsilonInsensitive", "SquaredEpsilonInsensitive"))
_CY_LOSSES = tuple(f"sklearn._loss._loss.Cy{name}" for name in
                   ("HalfBinomialLoss", "HalfMultinomialLoss", "HalfSquaredError", "HuberLoss"))

#: Besides :data:`COMMON_TYPES` and the class itself, the types a fitted classifier of the
#: registry holds, by class (names as skops writes them). A class of the registry that is not
#: here may hold only the common types (LogisticRegression, LinearSVC, SVC, KNeighborsClassifier:
#: the latter's search tree is not saved, see :func:`dumps`).
FITTED_PARTS = {
    SGDClassifier: _SGD_LOSSES + _CY_LOSSES,  # loss_function_, by `loss`
    MLPClassifier: ("sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
                    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
                    "sklearn.preprocessing._label.LabelBinarizer", "numpy.random.mtrand.RandomState"),
    RandomForestClassifier: (type_name(DecisionTreeClassifier), type_name(Tree)),
    HistGradientBoostingClassifier: (
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper", type_name(TreePredictor),
        "sklearn.preprocessing._label.LabelEncoder",
        "sklearn._loss.loss.HalfBinomialLoss", "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss._loss.CyHalfBinomialLoss", "sklearn._loss._loss.CyHalfMultinomialLoss",
        "sklearn._loss.link.LogitLink", "sklearn._loss.link.MultinomialLogit", "sklearn._loss.link.Interval",
        "numpy.random._generator.Generator"),
}

#: The one allow-list of this codec: for each class the registry saves through skops, every
#: type its file may hold.
TRUSTED_TYPES = {cls: frozenset(COMMON_TYPES | {type_name(cls)} | set(FITTED_PARTS.get(cls, ())))
                 for cls in skops_classes()}


# =========================================================================== saving
def dumps(est, where):
    """The skops bytes of a fitted classifier of :data:`TRUSTED_TYPES`, checked as :func:`loads` would.

    Parameters
    ----------
    est : estimator
        Fitted; its class must be a key of :data:`TRUSTED_TYPES`.
    where : str
        What to call it in messages (``step 'classifier'``).

    Returns
    -------
    bytes
        A ``.skops`` archive (uncompressed zip).

    Raises
    ------
    ArtifactError
        A class outside the allow-list, a fitted state skops cannot write, or one that holds a
        type :func:`loads` would refuse (named in the message).
    """
    cls = type(est)
    if cls not in TRUSTED_TYPES:
        raise ArtifactError(f"cannot save {where}: {type_name(cls)} is not one of the scikit-learn classes saved "
                            f"through skops ({sorted(type_name(c) for c in TRUSTED_TYPES)})")
    check_fitted(est, f"cannot save {where}")
    if cls is KNeighborsClassifier:
        est = copy.copy(est)  # shallow: the same arrays, without the search tree (rebuilt on load)
        est._tree = None
    try:
        data = _skops_io().dumps(est)
    except (TypeError, ValueError, AttributeError) as exc:
        raise ArtifactError(f"cannot save {where}: skops cannot write this {cls.__name__} ({exc})") from exc
    _audit(data, cls, f"cannot save {where}")
    return data


# ========================================================================== loading
def loads(data, cls, source):
    """Rebuild a classifier of class ``cls`` from skops bytes, refusing anything off its allow-list.

    Parameters
    ----------
    data : bytes
        The file's content, already checked against the manifest's size and sha256.
    cls : type
        The class the manifest names; a key of :data:`TRUSTED_TYPES`.
    source : str
        The file, for messages.

    Returns
    -------
    estimator
        Fitted, of class ``cls``.

    Raises
    ------
    ArtifactError
        Naming the file and the reason: not a skops archive, a type or loader off the
        allow-list (named), an object of another class, or fitted arrays that disagree.
    """
    if cls not in TRUSTED_TYPES:
        raise ArtifactError(f"{source}: {type_name(cls)} is not one of the scikit-learn classes loaded through skops")
    trusted = _audit(data, cls, source)
    try:
        est = _skops_io().loads(data, trusted=sorted(trusted))
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError, OverflowError,
            OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{source}: skops cannot rebuild it ({type(exc).__name__}: {exc})") from exc
    if type(est) is not cls:
        raise ArtifactError(f"{source}: holds a {type_name(type(est))} where the manifest names {type_name(cls)}")
    check_fitted(est, source)
    if cls is KNeighborsClassifier:
        _refit_neighbors(est, source)
    return est


def _audit(data, cls, source):
    """Steps 1-3 of :func:`loads` (see the module's notes); returns ``cls``'s trusted types."""
    trusted = TRUSTED_TYPES[cls]
    what = f"a {cls.__name__}"
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > len(data):
            raise ArtifactError(f"{source}: its members would unpack to {unpacked} bytes from {len(data)}; skops "
                                "files are stored uncompressed, refusing to unpack it")
        _check_members(archive, source)
        raw = archive.read("schema.json")
    except ArtifactError:
        raise  # a ValueError too: said once, not wrapped in the next clause
    except KeyError:
        raise ArtifactError(f"{source}: not a skops file (no schema.json)") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ArtifactError(f"{source}: not a readable skops (zip) file ({exc})") from exc
    try:
        schema = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ArtifactError(f"{source}: its schema.json is not valid JSON ({exc})") from exc
    _check_schema(schema, trusted, what, source)
    try:
        untrusted = set(_skops_io().get_untrusted_types(data=data))
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError, OSError, EOFError,
            zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{source}: skops cannot read its schema ({type(exc).__name__}: {exc})") from exc
    refused = sorted(untrusted - trusted)
    if refused:
        raise ArtifactError(f"{source}: holds {', '.join(refused)}, not on the allow-list of types {what} may "
                            "hold; refusing to load it")
    return trusted


def _check_members(archive, source):
    """Each member named once, by a plain name (skops writes ``schema.json`` and ``<id>.npy``),
    and each ``.npy`` member holding the bytes its header's shape and dtype promise: NumPy
    allocates what the header says before it reads, so a header promising terabytes in a
    member of a few bytes would otherwise be a huge allocation."""
    names = archive.namelist()
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ArtifactError(f"{source}: members named more than once ({', '.join(map(repr, repeated[:3]))}); "
                            "readers may disagree on which is meant, refusing to load it")
    odd = [name for name in names if not _MEMBER_NAME.fullmatch(name)]
    if odd:
        raise ArtifactError(f"{source}: member {odd[0][:80]!r} is not a plain file name (expected schema.json and "
                            "<id>.npy); refusing to load it")
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            continue
        with archive.open(info) as fh:
            try:
                version = np.lib.format.read_magic(fh)
                if version not in _NPY_HEADERS:
                    raise ValueError(f"format version {version}, expected 1.0 or 2.0")
                shape, _, dtype = _NPY_HEADERS[version](fh)
                header = fh.tell()
            except (ValueError, TypeError, SyntaxError, OverflowError, EOFError) as exc:
                raise ArtifactError(f"{source}: member {info.filename} is not a NumPy array file ({exc})") from exc
        promised = math.prod(shape) * dtype.itemsize
        if not dtype.hasobject and promised > info.file_size - header:
            raise ArtifactError(f"{source}: member {info.filename} promises a {'x'.join(map(str, shape))} array of "
                                f"{dtype} ({promised} bytes) in {info.file_size - header} bytes; refusing to load it")


def _check_schema(schema, trusted, what, source):
    """Every node of a skops schema: a loader of :data:`LOADERS` and a type of ``trusted``."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if any(key in node for key in ("__loader__", "__module__", "__class__")):
            loader, module, name = (node.get(k) for k in ("__loader__", "__module__", "__class__"))
            if not all(isinstance(v, str) for v in (loader, module, name)):
                raise ArtifactError(f"{source}: a node of its schema lacks a loader, module or class name: "
                                    f"{str(node)[:80]}")
            if f"{module}.{name}" not in trusted:
                raise ArtifactError(f"{source}: holds {module}.{name}, not on the allow-list of types {what} may "
                                    "hold; refusing to load it")
            if loader not in LOADERS:
                raise ArtifactError(f"{source}: holds a node built by skops' {loader}, not one of the loaders "
                                    f"{sorted(LOADERS)}; refusing to load it")
        stack.extend(node.values())


def _refit_neighbors(est, source):
    """Rebuild a kNN's search tree: refit on its stored training set (``fit`` keeps it as is)."""
    X, y, classes = getattr(est, "_fit_X", None), getattr(est, "_y", None), getattr(est, "classes_", None)
    ok = (isinstance(X, np.ndarray) and X.ndim == 2 and isinstance(y, np.ndarray) and y.ndim == 1
          and len(y) == len(X) and y.dtype.kind in "iu" and isinstance(classes, np.ndarray) and classes.ndim == 1)
    if not ok:
        raise ArtifactError(f"{source}: a KNeighborsClassifier needs its training set (_fit_X 2-d, _y of class "
                            "indices, classes_ 1-d) to be rebuilt")
    if len(y) and (y.min() < 0 or y.max() >= len(classes)):
        raise ArtifactError(f"{source}: the KNeighborsClassifier's _y holds class indices outside "
                            f"0..{len(classes) - 1}")
    try:
        est.fit(X, classes[y])
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{source}: the KNeighborsClassifier cannot be rebuilt ({exc})") from exc


# ================================================================= content checks
def check_fitted(est, where):
    """Check the fitted parts scikit-learn's compiled code reads without bounds checks.

    A ``RandomForestClassifier``'s trees and a ``HistGradientBoostingClassifier``'s
    predictors: every split node's children come after it and within the tree, and its
    feature is one of the ``n_features_in_`` (so ``predict`` walks down and stops); an
    ``SVC``: libsvm's arrays have the shapes its class count and support-vector count
    imply. Other classes predict with NumPy alone, whose indexing is checked.

    Raises
    ------
    ArtifactError
        Naming the part that disagrees.
    """
    cls = type(est)
    if cls is RandomForestClassifier:
        _check_forest(est, where)
    elif cls is HistGradientBoostingClassifier:
        _check_hist_gbm(est, where)
    elif cls is SVC:
        _check_svc(est, where)


def _n_features(est, where):
    n = getattr(est, "n_features_in_", None)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ArtifactError(f"{where}: n_features_in_ must be a positive integer, got {n!r}")
    return int(n)


def _check_nodes(left, right, feature, split, n_features, where):
    """Split nodes (``split``) point to later nodes of the same tree and to a known feature."""
    n_nodes = len(split)
    index = np.arange(n_nodes)
    left, right, feature = (np.asarray(a, dtype=np.int64) for a in (left, right, feature))
    good = ((left > index) & (left < n_nodes) & (right > index) & (right < n_nodes)
            & (feature >= 0) & (feature < n_features))
    bad = np.flatnonzero(split & ~good)
    if bad.size:
        i = int(bad[0])
        raise ArtifactError(f"{where}: node {i} of {n_nodes} splits on feature {int(feature[i])} into nodes "
                            f"{int(left[i])} and {int(right[i])}; expected a feature below {n_features} and "
                            "children after it within the tree")


def _check_forest(est, where):
    n_features = _n_features(est, where)
    trees = getattr(est, "estimators_", None)
    if not isinstance(trees, list) or not trees:
        raise ArtifactError(f"{where}: a RandomForestClassifier needs a non-empty list estimators_")
    for k, tree in enumerate(trees):
        at = f"{where}: estimators_[{k}]"
        if type(tree) is not DecisionTreeClassifier or type(getattr(tree, "tree_", None)) is not Tree:
            raise ArtifactError(f"{at}: expected a DecisionTreeClassifier with a Tree, got {type(tree).__name__}")
        t = tree.tree_
        if t.node_count < 1 or t.capacity != t.node_count or t.n_features != n_features:
            raise ArtifactError(f"{at}: a Tree of {t.node_count} nodes in a capacity of {t.capacity} and "
                                f"{t.n_features} features; expected at least one node, all of them used, and "
                                f"{n_features} features")
        left, right = t.children_left, t.children_right
        leaf = left == TREE_LEAF
        if np.any(leaf & (right != TREE_LEAF)):
            raise ArtifactError(f"{at}: a node with a right child but no left child")
        _check_nodes(left, right, t.feature, ~leaf, n_features, at)


def _check_hist_gbm(est, where):
    n_features = _n_features(est, where)
    categorical = getattr(getattr(est, "_bin_mapper", None), "is_categorical_", None)
    if categorical is not None and np.any(categorical):
        raise ArtifactError(f"{where}: a HistGradientBoostingClassifier with categorical features; cvpipe's "
                            "features are numeric, and categorical splits are not saved")
    iterations = getattr(est, "_predictors", None)
    if not isinstance(iterations, list) or not iterations:
        raise ArtifactError(f"{where}: a HistGradientBoostingClassifier needs a non-empty list _predictors")
    for i, predictors in enumerate(iterations):
        if not isinstance(predictors, list) or len(predictors) != est.n_trees_per_iteration_:
            raise ArtifactError(f"{where}: _predictors[{i}] must be a list of {est.n_trees_per_iteration_} "
                                "TreePredictor")
        for k, predictor in enumerate(predictors):
            at = f"{where}: _predictors[{i}][{k}]"
            nodes = getattr(predictor, "nodes", None)
            if (type(predictor) is not TreePredictor or not isinstance(nodes, np.ndarray)
                    or nodes.dtype != PREDICTOR_RECORD_DTYPE or nodes.ndim != 1 or nodes.size < 1):
                raise ArtifactError(f"{at}: expected a TreePredictor with a 1-d array of nodes of its record dtype")
            if np.any(nodes["is_categorical"]):
                raise ArtifactError(f"{at}: a categorical split; categorical splits are not saved")
            _check_nodes(nodes["left"], nodes["right"], nodes["feature_idx"], nodes["is_leaf"] == 0, n_features, at)


def _check_svc(est, where):
    n_features = _n_features(est, where)
    if est.kernel not in ("linear", "poly", "rbf", "sigmoid"):
        raise ArtifactError(f"{where}: an SVC with kernel {est.kernel!r}; expected linear, poly, rbf or sigmoid")
    if getattr(est, "_sparse", None) is not False or getattr(est, "_impl", None) != "c_svc":
        raise ArtifactError(f"{where}: an SVC fitted on sparse data or of another libsvm type")
    classes, sv = getattr(est, "classes_", None), getattr(est, "support_vectors_", None)
    if not isinstance(classes, np.ndarray) or classes.ndim != 1 or len(classes) < 2 \
            or not isinstance(sv, np.ndarray) or sv.ndim != 2:
        raise ArtifactError(f"{where}: an SVC needs classes_ (1-d, at least 2) and support_vectors_ (2-d)")
    k, n_sv = len(classes), sv.shape[0]
    expected = {"support_vectors_": (n_sv, n_features), "support_": (n_sv,), "_n_support": (k,),
                "_dual_coef_": (k - 1, n_sv), "_intercept_": (k * (k - 1) // 2,)}
    for name, shape in expected.items():
        value = getattr(est, name, None)
        got = value.shape if isinstance(value, np.ndarray) else type(value).__name__
        if got != shape:
            raise ArtifactError(f"{where}: SVC.{name} has shape {got}; expected {shape} for {k} classes, "
                                f"{n_sv} support vectors and {n_features} features")
    n_support = est._n_support
    if np.any(n_support < 0) or int(n_support.sum()) != n_sv:
        raise ArtifactError(f"{where}: SVC._n_support {n_support.tolist()} does not add up to its {n_sv} "
                            "support vectors")
    for name in ("_probA", "_probB"):
        value = getattr(est, name, None)
        if not isinstance(value, np.ndarray) or value.shape not in ((0,), expected["_intercept_"]):
            raise ArtifactError(f"{where}: SVC.{name} must be empty or of shape {expected['_intercept_']}")
