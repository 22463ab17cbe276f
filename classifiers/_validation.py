"""The input check of ``predict`` and friends, shortened for the arrays it would pass unchanged."""
from __future__ import annotations

import numpy as np
from sklearn.utils.validation import validate_data


def check_predict_input(estimator, X, dtype):
    """``validate_data(estimator, X, reset=False, dtype=dtype)``, answered at once for an array
    that check would return unchanged.

    scikit-learn's full check (array conversion, dataframe and feature-name inspection,
    finiteness) costs more than a linear model's prediction of a few rows, which is what
    a service request asks for: answering it at once serves about 6% more one-image
    ``/predict`` requests a second (BENCHMARKS.md, "Shortcuts on the service path"), so
    it stays beside the library path, and tests hold the two equal. An ``ndarray`` that is already 2-D, non-empty, of an
    accepted ``dtype``, with the fitted number of features and a finite sum, from an
    estimator fitted without feature names, is returned as is; anything else goes through
    the full check, which converts it or raises its usual error.

    Parameters
    ----------
    estimator : fitted estimator with ``n_features_in_``
    X : object
    dtype : numpy dtype or list of them

    Returns
    -------
    ndarray of shape (n_samples, n_features_in_)
    """
    accepted = dtype if isinstance(dtype, (list, tuple)) else [dtype]
    with np.errstate(over="ignore", invalid="ignore"):
        ready = _ready(estimator, X, accepted)
    return X if ready else validate_data(estimator, X, reset=False, dtype=dtype)


def _ready(estimator, X, accepted):
    return bool(type(X) is np.ndarray and X.ndim == 2 and X.shape[0] > 0
                and X.shape[1] == getattr(estimator, "n_features_in_", None)
                and any(X.dtype == d for d in accepted) and not hasattr(estimator, "feature_names_in_")
                and np.isfinite(X.sum()))  # an overflowing sum of finite values takes the full check
