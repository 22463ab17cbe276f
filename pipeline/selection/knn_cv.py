"""Model selection: k and the distance metric of kNN by stratified k-fold cross-validation.

cs231n's fold loop, without its waste. A grid search refits and re-predicts once per
(k, metric, fold); here each (fold, metric) needs ONE neighbour search with
``k = max(ks)`` (:func:`compute.distances.nearest_neighbors`), and every smaller k is
scored from the prefix of that list with :func:`classifiers.knn.vote`: the k nearest
are the first k of the ``max(ks)`` nearest.

The fold accuracies, their mean and their (population, ``ddof=0``) standard deviation
are computed as ``GridSearchCV(KNeighborsClassifier(algorithm="brute"),
{"n_neighbors": ks, "p": [1, 2]}, cv=make_folds(y))`` computes ``cv_results_``; with
``dtype=np.float64`` they are equal to it bit for bit on data without distance ties.
The float32 default is faster; a near-tie that float32 rounding orders differently
from float64 can move one query's vote.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.multiclass import check_classification_targets
from tqdm.auto import tqdm

from classifiers.knn import WEIGHTS, vote
from compute.backend import resolve_device
from compute.distances import METRICS, nearest_neighbors
from pipeline._io import format_json, write_json
from pipeline.data import Dataset, load_dataset
from pipeline.model.fitting import extract_features
from pipeline.model.spec import build_extractor, describe_extractor

logger = logging.getLogger(__name__)

#: cs231n's ``k_choices``.
DEFAULT_KS = (1, 3, 5, 8, 10, 12, 15, 20, 50, 100)
FORMAT_VERSION = 1


@dataclass
class KnnCVResult:
    """Fold accuracies of every (metric, k), with their summary.

    Attributes
    ----------
    ks : tuple of int
    metrics : tuple of str
    fold_scores : dict of str -> ndarray of shape (n_ks, n_folds)
        Validation accuracy of each k (rows, in ``ks`` order) on each fold, per metric.
    weights, dtype, device : str
    n_folds, seed, n_samples, n_features, n_classes : int
    timings : dict
        Seconds: ``neighbors_s`` (per metric), ``scoring_s``, ``total_s`` and, from
        :func:`cv_knn_on_dataset`, ``features_s``.
    info : dict
        Free JSON-able description (dataset, feature spec, ...).
    """

    ks: tuple
    metrics: tuple
    fold_scores: dict
    weights: str = "uniform"
    n_folds: int = 5
    seed: int = 0
    n_samples: int = 0
    n_features: int = 0
    n_classes: int = 0
    dtype: str = "float32"
    device: str = "cpu"
    timings: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def mean_scores(self):
        """dict of metric -> ndarray of shape (n_ks,): mean fold accuracy (``mean_test_score``)."""
        return {m: np.average(s, axis=1) for m, s in self.fold_scores.items()}

    @property
    def std_scores(self):
        """dict of metric -> ndarray of shape (n_ks,): population std over folds (``std_test_score``)."""
        means = self.mean_scores
        return {m: np.sqrt(np.average((s - means[m][:, None]) ** 2, axis=1)) for m, s in self.fold_scores.items()}

    @property
    def best(self):
        """``(metric, k, mean)`` of the highest mean accuracy.

        Ties go to the first in (k, metric) order, k in ``ks`` order: the candidate
        order of ``GridSearchCV`` over ``{"n_neighbors": ks, "p": [1, 2]}``, whose
        ``best_index_`` is the first of the best.
        """
        table = np.stack([self.mean_scores[m] for m in self.metrics], axis=1)  # (n_ks, n_metrics)
        i_k, i_m = np.unravel_index(int(np.argmax(table)), table.shape)
        return self.metrics[i_m], int(self.ks[i_k]), float(table[i_k, i_m])

    def scores(self, metric, k):
        """Fold accuracies of one (metric, k), ndarray of shape (n_folds,)."""
        return self.fold_scores[metric][list(self.ks).index(k)]

    def to_dict(self):
        """Everything as plain JSON types (fold scores, means, stds, best, timings)."""
        means, stds = self.mean_scores, self.std_scores
        metric, k, mean = self.best
        return {
            "kind": "knn_cv", "format_version": FORMAT_VERSION,
            "ks": [int(k_) for k_ in self.ks], "metrics": list(self.metrics), "weights": self.weights,
            "n_folds": self.n_folds, "seed": self.seed, "n_samples": self.n_samples,
            "n_features": self.n_features, "n_classes": self.n_classes, "dtype": self.dtype,
            "device": self.device,
            "fold_scores": {m: s.tolist() for m, s in self.fold_scores.items()},
            "mean_scores": {m: v.tolist() for m, v in means.items()},
            "std_scores": {m: v.tolist() for m, v in stds.items()},
            "best": {"metric": metric, "k": k, "mean": mean,
                     "std": float(stds[metric][list(self.ks).index(k)])},
            "timings": self.timings, "info": self.info,
        }

    def to_json(self, path=None):
        """The :meth:`to_dict` document as JSON text; also written to ``path`` when given."""
        doc = self.to_dict()
        if path is not None:
            write_json(path, doc)
        return format_json(doc)

    @classmethod
    def from_dict(cls, doc):
        """Rebuild from :meth:`to_dict` output (means and stds are recomputed from the folds)."""
        if doc.get("kind") != "knn_cv":
            raise ValueError(f"expected a kNN cross-validation result (kind 'knn_cv'), got kind {doc.get('kind')!r}")
        keys = ("weights", "n_folds", "seed", "n_samples", "n_features", "n_classes", "dtype", "device",
                "timings", "info")
        return cls(ks=tuple(doc["ks"]), metrics=tuple(doc["metrics"]),
                   fold_scores={m: np.asarray(s, dtype=np.float64) for m, s in doc["fold_scores"].items()},
                   **{k: doc[k] for k in keys if k in doc})

    @classmethod
    def read_json(cls, path):
        """Load a result written by :meth:`to_json`."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def format_table(self):
        """A text table: one row per k, ``mean ± std`` per metric, ``*`` at the best."""
        means, stds = self.mean_scores, self.std_scores
        best_metric, best_k, _ = self.best
        lines = [f"{'k':>5}" + "".join(f"{m + ' mean ± std':>22}" for m in self.metrics)]
        for i, k in enumerate(self.ks):
            cells = [f"{means[m][i]:.4f} ± {stds[m][i]:.4f}{'*' if (m, k) == (best_metric, best_k) else ' '}"
                     for m in self.metrics]
            lines.append(f"{k:>5}" + "".join(f"{c:>22}" for c in cells))
        return "\n".join(lines)


def make_folds(y, n_folds=5, seed=0):
    """The folds every selection here uses: ``StratifiedKFold(n_folds, shuffle=True, random_state=seed)``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
    n_folds : int, at least 2 and at most the size of the smallest class
    seed : int

    Returns
    -------
    list of (train_indices, test_indices)
        ndarrays of int; pass the list as ``cv=`` to scikit-learn to reproduce them.
    """
    y = np.asarray(y)
    if not isinstance(n_folds, (int, np.integer)) or isinstance(n_folds, bool) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    classes, counts = np.unique(y, return_counts=True)
    if n_folds > counts.min():
        raise ValueError(f"n_folds={n_folds} is more than the {counts.min()} samples of the smallest class "
                         f"({classes[np.argmin(counts)]!r}); every fold needs each class")
    return list(StratifiedKFold(n_splits=int(n_folds), shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def _check_data(X, y):
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X must be a non-empty 2-D array (n_samples, n_features), got shape {X.shape}")
    if X.dtype.kind not in "fiub":
        raise ValueError(f"X must be numeric, got dtype {X.dtype}")
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"y must be 1-D with one label per row of X ({len(X)}), got shape {y.shape}")
    check_classification_targets(y)
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinity")
    classes, y_enc = np.unique(y, return_inverse=True)
    return X, y_enc, len(classes)


def _check_grid(ks, metrics, weights):
    ks = (ks,) if isinstance(ks, (int, np.integer)) else tuple(ks)
    if not ks or not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 1 for k in ks):
        raise ValueError(f"ks must be a non-empty sequence of positive integers, got {ks!r}")
    if len(set(ks)) != len(ks):
        raise ValueError(f"ks must not repeat a value, got {ks!r}")
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if not metrics or unknown or len(set(metrics)) != len(metrics):
        raise ValueError(f"metrics must be distinct names from {METRICS}, got {metrics!r}")
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    return tuple(int(k) for k in ks), metrics


def _prefix_accuracies(neighbor_labels, neighbor_dist, y_true, ks, n_classes, weights):
    """Accuracy of every k in ``ks`` from the first k columns of one neighbour list, shape (n_ks,)."""
    out = np.empty(len(ks))
    for i, k in enumerate(ks):
        scores = vote(neighbor_labels[:, :k], neighbor_dist[:, :k], n_classes, weights)
        out[i] = np.average(np.argmax(scores, axis=1) == y_true)  # as sklearn's accuracy_score
    return out


def cross_validate_knn(X, y, ks=DEFAULT_KS, metrics=("l1", "l2"), weights="uniform", n_folds=5, seed=0,
                       device="auto", *, dtype=np.float32, memory_budget=None, progress=False):
    """Cross-validate kNN over every (metric, k) with one neighbour search per (fold, metric).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    ks : sequence of int, default=cs231n's ``(1, 3, 5, 8, 10, 12, 15, 20, 50, 100)``
        Distinct, each at most the size of the smallest training fold.
    metrics : sequence of {"l1", "l2"}
    weights : {"uniform", "distance"}
    n_folds : int, default=5
        At least 2, at most the size of the smallest class.
    seed : int
        ``random_state`` of the shuffled ``StratifiedKFold`` (see :func:`make_folds`).
    device : {"auto", "cpu", "gpu"}
    dtype : float dtype, default=float32
        Precision of the distances; ``np.float64`` to reproduce scikit-learn exactly.
    memory_budget : int, optional
        Bytes one distance tile may use (by default the device's, see
        :func:`compute.distances.default_memory_budget`).
    progress : bool, default=False
        A progress bar of the (fold, metric) searches, on a terminal only.

    Returns
    -------
    KnnCVResult
    """
    t_start = time.perf_counter()
    X, y_enc, n_classes = _check_data(X, y)
    ks, metrics = _check_grid(ks, metrics, weights)
    folds = make_folds(y_enc, n_folds, seed)
    smallest_train = min(len(train) for train, _ in folds)
    if max(ks) > smallest_train:
        raise ValueError(f"k={max(ks)} is more than the {smallest_train} samples of the smallest training fold "
                         f"({len(X)} samples, {n_folds} folds)")
    X = np.ascontiguousarray(X, dtype=dtype)
    k_max = max(ks)
    fold_scores = {m: np.empty((len(ks), n_folds)) for m in metrics}
    neighbors_s, scoring_s = dict.fromkeys(metrics, 0.0), 0.0
    bar = tqdm(total=n_folds * len(metrics), desc="folds", unit="search", disable=None if progress else True,
               leave=False)
    for f, (train, test) in enumerate(folds):
        X_train, X_test, y_train = X[train], X[test], y_enc[train]
        for m in metrics:
            t0 = time.perf_counter()
            dist, idx = nearest_neighbors(X_test, X_train, k_max, m, dtype=dtype, device=device,
                                          memory_budget=memory_budget)
            t1 = time.perf_counter()
            fold_scores[m][:, f] = _prefix_accuracies(y_train[idx], dist, y_enc[test], ks, n_classes, weights)
            neighbors_s[m] += t1 - t0
            scoring_s += time.perf_counter() - t1
            bar.update()
        logger.info("fold %d/%d done (%d train, %d validation)", f + 1, n_folds, len(train), len(test))
    bar.close()
    timings = {"neighbors_s": neighbors_s, "scoring_s": scoring_s, "total_s": time.perf_counter() - t_start}
    result = KnnCVResult(ks=ks, metrics=metrics, fold_scores=fold_scores, weights=weights, n_folds=int(n_folds),
                         seed=int(seed), n_samples=len(X), n_features=X.shape[1], n_classes=n_classes,
                         dtype=np.dtype(dtype).name, device=resolve_device(device), timings=timings)
    logger.info("best: %s k=%d, mean accuracy %.4f", *result.best)
    return result


def stratified_subset(labels, n, seed=0):
    """Indices of ``n`` samples keeping each class's share: a seeded shuffle, then the
    first of each class (largest-remainder quotas).

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
    n : int, at least 1; ``n >= n_samples`` takes everything
    seed : int

    Returns
    -------
    ndarray of int64, shape (min(n, n_samples),)
        Sorted, so the subset keeps the dataset's order.
    """
    labels = np.asarray(labels)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"limit must be a positive integer, got {n!r}")
    if n >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    exact = n * counts / len(labels)
    quota = np.floor(exact).astype(np.int64)
    quota[np.argsort(-(exact - quota), kind="stable")[: n - quota.sum()]] += 1
    perm = np.random.default_rng(seed).permutation(len(labels))
    shuffled = labels[perm]
    return np.sort(np.concatenate([perm[shuffled == c][:q] for c, q in zip(classes, quota)]))


def cv_knn_on_dataset(dataset, features_spec, limit=None, *, split="train", ks=DEFAULT_KS,
                      metrics=("l1", "l2"), weights="uniform", n_folds=5, seed=0, device="auto",
                      dtype=np.float32, progress=False):
    """Extract features from a dataset and cross-validate kNN on them (``cvpipe cv knn``).

    The extractor is fitted on all the (limited) images before the folds are drawn;
    only the bag of visual words learns anything there (its codebook then sees the
    validation folds' descriptors too, without their labels).

    Parameters
    ----------
    dataset : Dataset, or a name/path for :func:`pipeline.data.load_dataset`
    features_spec : str, path, list or dict
        A spec for :func:`pipeline.model.spec.build_extractor`, e.g. ``"raw"`` or ``"hog"``.
    limit : int, optional
        Use a stratified subset of this many images (:func:`stratified_subset` with ``seed``).
    split : {"train", "test"}
        Used only when ``dataset`` is a name or path.
    ks, metrics, weights, n_folds, seed, device, dtype, progress
        As in :func:`cross_validate_knn`; ``progress`` also shows the features' extraction.

    Returns
    -------
    KnnCVResult
        ``info`` names the dataset, split, feature steps and limit; ``timings`` adds
        ``features_s``.
    """
    if not isinstance(dataset, Dataset):
        dataset = load_dataset(dataset, split)
    n_all = len(dataset)
    if limit is not None:
        dataset = dataset.subset(stratified_subset(dataset.labels, limit, seed))
    extractor = build_extractor(features_spec)
    t0 = time.perf_counter()
    X = extract_features(extractor, dataset.images, progress=progress)  # extractor.fit_transform, in chunks
    features_s = time.perf_counter() - t0
    logger.info("features: %d images -> %s in %.2f s", len(dataset), X.shape, features_s)
    result = cross_validate_knn(X, dataset.labels, ks, metrics, weights, n_folds, seed, device, dtype=dtype,
                                progress=progress)
    result.timings["features_s"] = features_s
    result.timings["total_s"] += features_s
    result.info.update(dataset=dataset.name or dataset.source, split=dataset.split, source=dataset.source,
                       n_available=n_all, limit=limit, features=describe_extractor(extractor),
                       class_names=list(dataset.class_names))
    return result
