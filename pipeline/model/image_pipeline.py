"""``ImagePipeline``: feature extractor(s) -> ``StandardScaler`` -> classifier, one estimator.

The pipeline takes images, not feature vectors: ``fit(images, y)`` fits the extractor
(only bag of visual words learns anything there), standardizes the features and
fits the classifier, and records the *input contract* a caller must meet later
(image size and color mode) together with the class names. ``save``/``load`` write
and read the safe artifact format of :mod:`pipeline.model.artifacts`.

Classifiers can be named by a short spec, as extractors are (:mod:`pipeline.model.spec`)::

    knn:n_neighbors=5,metric=l1     softmax     svm:reg=1e-4     net:hidden_sizes=256x128
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.preprocessing import StandardScaler
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from features import FeatureStack, RawPixels, check_images
from pipeline.model.spec import build_classifier, build_extractor


# --------------------------------------------------------------------- the pipeline
def _build_features(features):
    if isinstance(features, (str, Path, Mapping)):
        return build_extractor(features)
    if isinstance(features, list) and features and all(isinstance(f, tuple) for f in features):
        return FeatureStack([(name, clone(est)) for name, est in features])
    if isinstance(features, list):
        return build_extractor(features)
    if not (hasattr(features, "fit") and hasattr(features, "transform")):
        raise TypeError(f"features must be a feature spec or a transformer, got {features!r}")
    return clone(features)


def _build_classifier(classifier):
    if isinstance(classifier, str):
        return build_classifier(classifier)
    if not (hasattr(classifier, "fit") and hasattr(classifier, "predict")):
        raise TypeError(f"classifier must be a classifier spec or a classifier, got {classifier!r}")
    return clone(classifier)


def image_shape_hint(features, classifier, shape):
    """``{"image_shape": (height, width)}`` for a classifier whose ``fit`` can read its features
    as images (:class:`classifiers.ConvNet`) when the features are the pixels as they are
    (:class:`features.RawPixels` without resizing); else ``{}``. The keyword arguments of
    ``classifier.fit`` wherever a pipeline's classifier is fitted on its features
    (here and :func:`pipeline.model.fitting.fit_on_features`)."""
    if (type(features) is RawPixels and features.size is None
            and "image_shape" in inspect.signature(classifier.fit).parameters):
        return {"image_shape": tuple(int(s) for s in shape)}
    return {}


def _build_scaler(scaler):
    if scaler is True:
        return StandardScaler()
    if scaler is False or scaler is None:
        return None
    if not hasattr(scaler, "fit_transform"):
        raise TypeError(f"scaler must be True, False or a transformer, got {scaler!r}")
    return clone(scaler)


def resolve_class_names(classes, class_names):
    """One name (str) per class of ``classes``.

    ``None`` gives ``str(label)``; a mapping is looked up by label; a sequence is
    indexed by the (integer) label, the dataset convention (``Dataset.class_names``).
    """
    if class_names is None:
        return [str(c) for c in classes]
    if isinstance(class_names, Mapping):
        names = []
        for c in classes:
            for key in (c, c.item() if isinstance(c, np.generic) else c, str(c)):
                if key in class_names:
                    names.append(str(class_names[key]))
                    break
            else:
                raise ValueError(f"class_names has no name for class {c!r}; "
                                 f"it has keys {sorted(map(str, class_names))}")
        return names
    if isinstance(class_names, (str, bytes)):
        raise TypeError(f"class_names must be a sequence or a mapping of names, got the string {class_names!r}")
    names = [str(n) for n in class_names]
    labels = np.asarray(classes)
    if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= len(names):
        raise ValueError(
            f"a class_names sequence is indexed by integer label: expected labels in 0..{len(names) - 1}, "
            f"got classes {labels.tolist()}; pass a mapping label -> name instead")
    return [names[int(c)] for c in labels]


def _describe_input(shape, mode):
    h, w = shape
    return f"{h}x{w} {'grayscale (L)' if mode == 'L' else 'color (RGB)'}"


def _classifier_has(attr):
    """``available_if`` check: the (fitted, or else configured) classifier has ``attr``."""
    def check(self):
        clf = getattr(self, "classifier_", None)
        if clf is None:
            clf = build_classifier(self.classifier) if isinstance(self.classifier, str) else self.classifier
        if not hasattr(clf, attr):
            raise AttributeError(f"{type(clf).__name__} has no {attr}")
        return True
    return check


class ImagePipeline(ClassifierMixin, BaseEstimator):
    """Images in, labels out: feature extractor(s), standardization, classifier.

    Parameters
    ----------
    features : str, list, dict or transformer
        A feature spec (``"hog:pixels_per_cell=7x7,color_hist:bins=16"``, see
        :func:`pipeline.model.spec.build_extractor`), a list of ``(name, transformer)``
        pairs (stacked in a :class:`features.FeatureStack`), or an extractor.
    classifier : str or classifier
        A classifier spec (``"knn:n_neighbors=5,metric=l1"``, ``"softmax"``,
        ``"svm"``, ``"net:hidden_sizes=256"``; see :func:`build_classifier`) or an
        estimator such as ``KNearestNeighbor(n_neighbors=5)``.
    scaler : bool or transformer, default=True
        ``True`` standardizes the features (``sklearn.preprocessing.StandardScaler``);
        ``False`` feeds them to the classifier as they are.
    class_names : sequence or mapping, default=None
        Names of the classes: a sequence indexed by integer label (a dataset's
        ``class_names``) or a mapping label -> name. ``None``: ``str(label)``.
        ``fit(..., class_names=...)`` overrides it.

    Attributes
    ----------
    features_, scaler_, classifier_ : estimators
        The fitted steps (clones of, or built from, the parameters; ``scaler_`` is
        None without a scaler).
    input_shape_ : tuple of int
        ``(height, width)`` of the images seen by ``fit``; ``predict`` requires it.
    color_mode_ : {"L", "RGB"}
        Grayscale (``(n, h, w)`` or 1 channel) or color (3 channels, or 4 with alpha
        ignored) images, as seen by ``fit``; ``predict`` requires the same.
    classes_ : ndarray of shape (n_classes,)
    class_names_ : list of str
        One name per entry of ``classes_``.
    n_features_ : int
        Length of the feature vector the classifier sees.
    metrics_ : dict
        Empty after ``fit``; callers store evaluation results here (``{"test_accuracy":
        0.91}``) and ``save`` writes them to the manifest.
    provenance_ : dict or None
        None after ``fit``; ``cvpipe train`` records how the model was made here (dataset,
        config, command line: :mod:`pipeline.model.provenance`) and ``save`` writes it.

    Notes
    -----
    ``predict_proba`` exists only when the classifier has it (kNN, softmax, the
    network); with ``LinearSVM`` it is absent (``hasattr(pipe, "predict_proba")`` is
    False, as in scikit-learn) and ``decision_function`` gives the class scores.
    SVM scores are margins, not probabilities, so no softmax is made up for them.
    Likewise ``decision_function`` exists only for the linear classifiers.

    Examples
    --------
    >>> from pipeline.data import load_dataset
    >>> from pipeline.model import save
    >>> data = load_dataset("digits")
    >>> pipe = ImagePipeline("hog:pixels_per_cell=4x4", "knn:n_neighbors=3")
    >>> pipe = pipe.fit(data.images, data.labels, class_names=data.class_names)
    >>> pipe.top_classes(data.images[:1], k=2)[0]["label"]
    '0'
    >>> save(pipe, "models/digits-hog-knn")                               # doctest: +SKIP
    """

    def __init__(self, features, classifier, scaler=True, class_names=None):
        self.features = features
        self.classifier = classifier
        self.scaler = scaler
        self.class_names = class_names

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # a batch of images: (n, h, w) or (n, h, w, c)
        tags.input_tags.three_d_array = True
        return tags

    # ---------------------------------------------------------------------- fit
    def fit(self, X, y, class_names=None):
        """Fit the extractor, the scaler and the classifier on images.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels])
            ``uint8`` images (or floats in [0, 1]); 1, 3 or 4 channels.
        y : array-like of shape (n_samples,)
        class_names : sequence or mapping, optional
            Overrides the ``class_names`` parameter (see there).

        Returns
        -------
        self
        """
        images = check_images(X)
        y = column_or_1d(y, warn=True)
        if y.shape[0] != images.shape[0]:
            raise ValueError(f"got {images.shape[0]} images but {y.shape[0]} labels")
        check_classification_targets(y)
        features = _build_features(self.features)
        scaler = _build_scaler(self.scaler)
        classifier = _build_classifier(self.classifier)
        Z = features.fit_transform(images, y)
        if scaler is not None:
            Z = scaler.fit_transform(Z)
        classifier.fit(Z, y, **image_shape_hint(features, classifier, images.shape[1:3]))
        names = self.class_names if class_names is None else class_names
        return self._set_fitted(features, scaler, classifier, images.shape[1:3], "L" if images.ndim == 3 else "RGB",
                                names, int(Z.shape[1]))

    @classmethod
    def from_fitted(cls, features, scaler, classifier, *, input_shape, color_mode, class_names=None):
        """A fitted pipeline of steps fitted apart: the extractor of a batch job, and a scaler and
        a classifier trained on the features it wrote (``cvpipe train --from-features``).

        Parameters
        ----------
        features : transformer
            Fitted (``n_features_out_``).
        scaler : transformer or None
            Fitted on the extractor's features (``n_features_in_``).
        classifier : classifier
            Fitted on the (scaled) features: ``classes_``, ``n_features_in_``.
        input_shape : (int, int)
            ``(height, width)`` of the images the extractor was fitted for.
        color_mode : {"L", "RGB"}
        class_names : sequence or mapping, optional
            See the class parameters.

        Raises
        ------
        ValueError
            Steps that do not fit together (feature counts), or a bad input contract.
        """
        n_out = getattr(features, "n_features_out_", None)
        check_is_fitted(classifier)
        widths = [("the classifier", getattr(classifier, "n_features_in_", None))]
        if scaler is not None:
            check_is_fitted(scaler)
            widths.insert(0, ("the scaler", getattr(scaler, "n_features_in_", None)))
        for step, width in widths:
            if n_out is None or width != n_out:
                raise ValueError(f"{step} takes {width} features, the extractor gives {n_out}")
        if color_mode not in ("L", "RGB") or len(tuple(input_shape)) != 2 or min(input_shape) < 1:
            raise ValueError(f"expected input_shape (height, width) and color_mode 'L' or 'RGB', got "
                             f"{tuple(input_shape)!r} and {color_mode!r}")
        pipe = cls(features, classifier, scaler if scaler is not None else False, class_names)
        return pipe._set_fitted(features, scaler, classifier, input_shape, color_mode, class_names, int(n_out))

    def _set_fitted(self, features, scaler, classifier, input_shape, color_mode, class_names, n_features):
        self.features_, self.scaler_, self.classifier_ = features, scaler, classifier
        self.classes_ = classifier.classes_
        self.class_names_ = resolve_class_names(self.classes_, class_names)
        self.input_shape_ = tuple(int(s) for s in input_shape)
        self.color_mode_ = color_mode
        self.n_features_ = n_features
        self.metrics_ = {}
        self.provenance_ = None  # a refit is a new model: what made the old one no longer holds
        return self

    # --------------------------------------------------------------- inference
    def check_input(self, X):
        """Validate images against the input contract; return them as an ndarray.

        Raises
        ------
        ValueError
            With the expected size and color mode and what arrived.
        """
        check_is_fitted(self, "classifier_")
        expected = (-1, *self.input_shape_) + ((3,) if self.color_mode_ == "RGB" else ())
        if np.ndim(X) == len(expected) - 1 and tuple(np.shape(X)) == expected[1:]:
            raise ValueError(f"expected a batch of images of shape {expected}, got one image of shape "
                             f"{np.shape(X)}; pass images[None] for a batch of one")
        images = check_images(X)
        shape = tuple(images.shape[1:3])
        mode = "L" if images.ndim == 3 else "RGB"
        if shape != self.input_shape_ or mode != self.color_mode_:
            raise ValueError(
                f"this pipeline takes {_describe_input(self.input_shape_, self.color_mode_)} images "
                f"(an array of shape {expected}, -1 any batch size), got "
                f"{_describe_input(shape, mode)} images (shape {np.shape(X)}); resize or convert "
                "them first")
        return images

    def extract_features(self, X):
        """The (standardized) features the classifier sees: (n_samples, n_features_), float32."""
        images = self.check_input(X)  # first: it says "not fitted" before features_ is looked up
        Z = self.features_.transform(images)
        return Z if self.scaler_ is None else self._standardize(Z)

    def _standardize(self, Z):
        """``scaler_.transform(Z)``; for a ``StandardScaler``, its arithmetic alone.

        Our extractors give finite float32 arrays, which the scaler's input checks would
        pass unchanged, and those checks cost a one-image /predict about an eighth of the
        requests a service answers per second (BENCHMARKS.md, "Shortcuts on the service
        path"). Same dtype and rounding as the scaler: its statistics are cast to ``Z``'s
        type first, as it does. Tests hold the two equal. The arithmetic takes only what
        the scaler would pass unchanged: a 2-D array of native float32 or float64 of the
        fitted width with a finite sum (the scaler refuses infinities), that may be
        written when the scaler does not copy; anything else goes through ``transform``.
        """
        s = self.scaler_
        if not (type(s) is StandardScaler and type(Z) is np.ndarray and Z.ndim == 2
                and Z.dtype in (np.float32, np.float64) and Z.shape[1] == getattr(s, "n_features_in_", None)
                and (s.copy or Z.flags.writeable) and np.isfinite(Z.sum())):
            return s.transform(Z)
        out = Z.copy() if s.copy else Z
        if s.with_mean:
            out -= s.mean_.astype(out.dtype)
        if s.with_std:
            out /= s.scale_.astype(out.dtype)
        return out

    def predict(self, X):
        """Labels, shape (n_samples,), from ``classes_``."""
        Z = self.extract_features(X)  # checks first that the pipeline is fitted
        return self.classifier_.predict(Z)

    @available_if(_classifier_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns as ``classes_``."""
        Z = self.extract_features(X)  # checks first that the pipeline is fitted
        return self.classifier_.predict_proba(Z)

    @available_if(_classifier_has("decision_function"))
    def decision_function(self, X):
        """Class scores, as the classifier's ``decision_function`` gives them."""
        Z = self.extract_features(X)  # checks first that the pipeline is fitted
        return self.classifier_.decision_function(Z)

    def class_scores(self, X):
        """``(scores, kind)``: class probabilities where the classifier has them, else its
        decision scores (margins, never turned into made-up probabilities).

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes)
            Columns as ``classes_``; a binary ``decision_function`` gives ``[-s, s]``.
        kind : {"probability", "decision"}
        """
        if hasattr(self, "predict_proba"):
            return self.predict_proba(X), "probability"
        scores = self.decision_function(X)
        return (scores if scores.ndim == 2 else np.stack([-scores, scores], axis=1)), "decision"

    def top_classes(self, X, k=5):
        """The ``k`` best classes of each image, as the service and ``cvpipe predict`` answer.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels])
        k : int
            At least 1; more than the number of classes lists them all.

        Returns
        -------
        list of dict, one per image
            ``{"label", "class_index", "score", "score_kind", "top_k": [{"label",
            "class_index", "score"}, ...]}``: the best class and the ``k`` best in order
            (ties to the lower class index, NaN last); a score that is not finite is
            ``None``.
        """
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        scores, kind = self.class_scores(X)
        return rank_classes(scores, k, self.class_names_, kind)


def rank_classes(scores, k, names, kind):
    """The answer of :meth:`ImagePipeline.top_classes` from scores already computed.

    Plain Python on the few classes of a row: NumPy's per-call overhead costs more.
    """
    answers = []
    for row in np.asarray(scores, dtype=np.float64).tolist():
        order = sorted(range(len(row)), key=lambda j: (row[j] != row[j], -row[j] if row[j] == row[j] else 0.0))[:k]
        top = [{"label": names[j], "class_index": j, "score": row[j] if math.isfinite(row[j]) else None}
               for j in order]
        answers.append({"label": top[0]["label"], "class_index": order[0], "score": top[0]["score"],
                        "score_kind": kind, "top_k": top})
    return answers
