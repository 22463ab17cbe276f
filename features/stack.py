"""Several extractors side by side: one float32 feature matrix."""
from __future__ import annotations

import numpy as np
from sklearn.pipeline import FeatureUnion
from sklearn.utils.validation import check_is_fitted

from compute.params import ParameterConstraintsMixin, Satisfies, check_params
from features._base import ImageTransformer


def _is_named_list(extractors):
    return (
        isinstance(extractors, (list, tuple))
        and len(extractors) > 0
        and all(isinstance(e, tuple) and len(e) == 2 and isinstance(e[0], str) for e in extractors)
    )


class FeatureStack(ParameterConstraintsMixin, FeatureUnion):
    """Concatenate the features of several extractors, as ``sklearn.pipeline.FeatureUnion``.

    A ``FeatureUnion`` whose list is called ``extractors`` and whose output is
    always a float32 ``(n_samples, n_features)`` array: the columns of the first
    extractor, then those of the second, and so on. Nested parameters work as in
    any union (``stack.set_params(color__bins=16)``, or ``"features__color__bins"``
    in a grid search), and so do ``"drop"`` entries. Like ``FeatureUnion``, it
    fits the extractors it was given (``clone`` it for a fresh copy).

    Like each extractor, a fitted stack has ``n_features_out_`` (the sum of its
    extractors') and ``learns_from_data`` (whether any of them learns in ``fit``).

    Parameters
    ----------
    extractors : list of (str, transformer) tuples
        The extractors and their names, e.g.
        ``[("hog", HOG()), ("color", ColorHistogram())]``.
    n_jobs : int, default=None
        Extractors fitted and applied in parallel by joblib (``None``: one at a time).
    transformer_weights : dict, default=None
        Multiplier of each extractor's features, keyed by name.
    verbose : bool, default=False
    verbose_feature_names_out : bool, default=True
        Prefix feature names with the extractor's name (``"color__colorhistogram3"``).

    Examples
    --------
    >>> import numpy as np
    >>> from features.color import ColorHistogram
    >>> from features.raw import RawPixels
    >>> images = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    >>> stack = FeatureStack([("raw", RawPixels(size=4)), ("color", ColorHistogram())])
    >>> stack.fit_transform(images).shape
    (2, 58)
    """

    # FeatureUnion's other parameters are scikit-learn's to check.
    _parameter_constraints = {
        "extractors": [Satisfies(_is_named_list, "a non-empty list of (name, transformer) tuples")],
    }

    def __init__(
        self,
        extractors,
        *,
        n_jobs=None,
        transformer_weights=None,
        verbose=False,
        verbose_feature_names_out=True,
    ):
        self.extractors = extractors
        self.n_jobs = n_jobs
        self.transformer_weights = transformer_weights
        self.verbose = verbose
        self.verbose_feature_names_out = verbose_feature_names_out

    # FeatureUnion's machinery reads and writes ``transformer_list``: make it ``extractors``.
    @property
    def transformer_list(self):
        return self.extractors

    @transformer_list.setter
    def transformer_list(self, value):
        self.extractors = value

    @property
    def n_features_out_(self):
        """Number of stacked features: the sum over the extractors (fitted only)."""
        check_is_fitted(self)
        total = 0
        for _, est, _ in self._iter():
            n = getattr(est, "n_features_out_", None)
            total += int(n) if n is not None else len(est.get_feature_names_out())
        return total

    @property
    def learns_from_data(self):
        """Whether any extractor learns from the images in ``fit`` (e.g. a codebook)."""
        extractors = self.extractors if isinstance(self.extractors, (list, tuple)) else ()
        return any(
            getattr(item[1], "learns_from_data", False)
            for item in extractors
            if isinstance(item, tuple) and len(item) == 2
        )

    def get_params(self, deep=True):
        """Parameters, with each extractor's as ``<name>__<param>`` when ``deep``."""
        return self._get_params("extractors", deep=deep)

    def set_params(self, **params):
        """Set parameters, including an extractor's (``<name>__<param>``) or an extractor."""
        self._set_params("extractors", **params)
        return self

    def _validate_transformers(self):
        check_params(self)
        super()._validate_transformers()

    def fit(self, X, y=None, **fit_params):
        """Fit every extractor.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels])
        y : ignored

        Returns
        -------
        self
        """
        check_params(self)
        return super().fit(X, y, **fit_params)

    def fit_transform(self, X, y=None, **params):
        """Fit every extractor and stack their features.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels])
        y : ignored

        Returns
        -------
        ndarray of shape (n_samples, sum of the extractors' n_features), float32
        """
        check_params(self)
        return np.asarray(super().fit_transform(X, y, **params), dtype=np.float32)

    def transform(self, X, **params):
        """Stack the fitted extractors' features.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels])

        Returns
        -------
        ndarray of shape (n_samples, sum of the extractors' n_features), float32
        """
        check_params(self)
        steps = [(name, step) for name, step in self.extractors if not _is_str(step, "drop")]
        if params or self.n_jobs not in (None, 1) or not steps \
                or not all(isinstance(step, ImageTransformer) for _, step in steps) \
                or getattr(self, "_sklearn_output_config", {}).get("transform") not in (None, "default"):
            return np.asarray(super().transform(X, **params), dtype=np.float32)
        # In one process, cvpipe's own extractors (2-D float32 output, checked in their transform)
        # are called in turn and weighted as FeatureUnion does:
        # its joblib dispatch costs a one-image /predict about a seventh of the requests a
        # service answers per second (BENCHMARKS.md, "Shortcuts on the service path"). Tests
        # hold the two paths equal.
        weights = self.transformer_weights or {}
        blocks = [step.transform(X) for _, step in steps]
        blocks = [b if weights.get(name) is None else b * weights[name] for (name, _), b in zip(steps, blocks)]
        return np.hstack(blocks).astype(np.float32, copy=False)


def _is_str(step, word):
    """Whether ``step`` is the string ``word`` ("drop", "passthrough"), not a transformer."""
    return isinstance(step, str) and step == word
