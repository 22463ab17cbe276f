"""k-nearest-neighbour classifier with L1/L2 distances on CPU or GPU.

Distances and the top-k selection run in ``compute.nearest_neighbors`` (tiled to a
memory budget; on the GPU only the k indices and distances per query come back).
Voting follows cs231n: the most common label among the k nearest, ties to the
smallest label; ``weights="distance"`` weighs each vote by 1/d as scikit-learn does.
"""
from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from classifiers._validation import check_predict_input
from compute.backend import DEVICES
from compute.distances import METRICS, nearest_neighbors
from compute.params import FloatDtype, Interval, ParameterConstraintsMixin, StrOptions, check_params

WEIGHTS = ("uniform", "distance")


def vote(neighbor_labels, neighbor_distances, n_classes, weights="uniform"):
    """Class scores from the labels of each query's nearest neighbours.

    Parameters
    ----------
    neighbor_labels : ndarray of shape (n_queries, k), int
        Encoded labels (0 .. n_classes-1) of the neighbours, nearest first.
    neighbor_distances : ndarray of shape (n_queries, k)
    n_classes : int
    weights : {"uniform", "distance"}
        ``"distance"``: each vote weighs 1/d; a query with neighbours at distance 0
        counts only those (scikit-learn's rule).

    Returns
    -------
    ndarray of shape (n_queries, n_classes), float64
        Vote totals; ``argmax`` picks the smallest label among tied classes.
    """
    n_queries, k = neighbor_labels.shape
    if weights == "uniform":
        w = np.ones((n_queries, k))
    else:
        with np.errstate(divide="ignore"):
            w = 1.0 / neighbor_distances.astype(np.float64)
        exact = np.isinf(w)
        rows = exact.any(axis=1)
        w[rows] = exact[rows]
    scores = np.zeros((n_queries, n_classes))
    np.add.at(scores, (np.arange(n_queries)[:, None], neighbor_labels), w)
    return scores


class KNearestNeighbor(ParameterConstraintsMixin, ClassifierMixin, BaseEstimator):
    """k-nearest-neighbour classifier.

    Parameters
    ----------
    n_neighbors : int, default=5
    metric : {"l2", "l1"}, default="l2"
    weights : {"uniform", "distance"}, default="uniform"
    device : {"auto", "cpu", "gpu"}, default="auto"
    memory_budget : int, optional
        Bytes one tile of the distance matrix may use. By default 256 MiB on the CPU
        and 2 GiB (or a quarter of the free memory) on the GPU; see
        :func:`compute.distances.default_memory_budget`.
    dtype : {"float32", "float64"}, a NumPy dtype or scalar type, default=np.float32
        Precision of the distance computation.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "metric": [StrOptions(METRICS)],
        "weights": [StrOptions(WEIGHTS)],
        "device": [StrOptions(DEVICES)],
        "memory_budget": [None, Interval(Integral, 1, None, closed="left")],
        "dtype": [FloatDtype()],
    }

    def __init__(self, n_neighbors=5, metric="l2", weights="uniform", device="auto",
                 memory_budget=None, dtype=np.float32):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.weights = weights
        self.device = device
        self.memory_budget = memory_budget
        self.dtype = dtype

    def fit(self, X, y):
        """Store the training set.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        check_params(self)
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        check_classification_targets(y)
        self.classes_, self._y = np.unique(y, return_inverse=True)
        self._X = np.ascontiguousarray(X, dtype=self.dtype)
        return self

    def kneighbors(self, X, n_neighbors=None, return_distance=True):
        """The nearest training samples of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
        n_neighbors : int, optional
            Defaults to ``self.n_neighbors``.
        return_distance : bool, default=True

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors)
            Only when ``return_distance``.
        indices : ndarray of shape (n_queries, n_neighbors)
            Rows of the training set, nearest first.
        """
        check_is_fitted(self, "_X")
        X = check_predict_input(self, X, [np.float32, np.float64])
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        if k > self._X.shape[0]:
            raise ValueError(
                f"n_neighbors={k} is more than the {self._X.shape[0]} training samples the model was fitted on"
            )
        dist, idx = nearest_neighbors(X, self._X, k, self.metric, dtype=self.dtype, device=self.device,
                                      memory_budget=self.memory_budget)
        return (dist, idx) if return_distance else idx

    def predict_proba(self, X):
        """Share of the (weighted) votes for each class.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        ndarray of shape (n_queries, n_classes)
        """
        scores = self._scores(X)
        return scores / scores.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The majority label of the k nearest, ties to the smallest label.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        ndarray of shape (n_queries,)
        """
        scores = self._scores(X)  # checks that the model is fitted
        return self.classes_[np.argmax(scores, axis=1)]

    def _scores(self, X):
        check_is_fitted(self, "_X")
        check_params(self)
        dist, idx = self.kneighbors(X)
        return vote(self._y[idx], dist, len(self.classes_), self.weights)
