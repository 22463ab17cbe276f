"""kNN cross-validation: one neighbour search per (fold, metric), equal to GridSearchCV."""
import json

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier

from compute.distances import pairwise_distances_reference
from pipeline.model.spec import build_extractor
from pipeline.selection.knn_cv import (
    KnnCVResult,
    cross_validate_knn,
    cv_knn_on_dataset,
    make_folds,
    stratified_subset,
)

KS = (1, 3, 5, 8, 10, 12, 15, 20, 50, 100)
P_OF = {"l1": 1, "l2": 2}


def _grid_search(X, y, ks, weights="uniform", n_folds=5, seed=0):
    """The peer: refit and predict once per (k, p, fold)."""
    search = GridSearchCV(KNeighborsClassifier(algorithm="brute", weights=weights),
                          {"n_neighbors": list(ks), "p": [1, 2]}, cv=make_folds(y, n_folds, seed))
    return search.fit(X, y)


def _assert_equal_to_grid_search(result, search):
    cv = search.cv_results_
    for i, params in enumerate(cv["params"]):
        metric = {1: "l1", 2: "l2"}[params["p"]]
        j = result.ks.index(params["n_neighbors"])
        folds = [cv[f"split{f}_test_score"][i] for f in range(result.n_folds)]
        np.testing.assert_allclose(result.fold_scores[metric][j], folds, rtol=0, atol=1e-12)
        assert abs(result.mean_scores[metric][j] - cv["mean_test_score"][i]) <= 1e-12, params
        assert abs(result.std_scores[metric][j] - cv["std_test_score"][i]) <= 1e-12, params
    metric, k, score = result.best
    assert {"n_neighbors": k, "p": P_OF[metric]} == search.best_params_
    assert score == pytest.approx(search.best_score_, abs=1e-12)


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_equals_grid_search_on_tie_free_random_data(rng, weights):
    X, y = rng.random((300, 12)), rng.integers(0, 4, size=300)
    result = cross_validate_knn(X, y, KS, weights=weights, dtype=np.float64, device="cpu")
    _assert_equal_to_grid_search(result, _grid_search(X, y, KS, weights))


@pytest.mark.slow
def test_equals_grid_search_on_600_fashion_mnist_images(fashion_mnist_test):
    """HOG features: continuous, so no two training images are at exactly the same
    distance from a query. (Raw pixels are multiples of 1/255: exact L1 ties at the
    k-th place occur, and scikit-learn's heap keeps an unspecified one of them; see
    the next test for what we keep.)"""
    result = cv_knn_on_dataset(fashion_mnist_test, "hog", limit=600, dtype=np.float64, device="cpu")
    images = fashion_mnist_test.images[stratified_subset(fashion_mnist_test.labels, 600, seed=0)]
    labels = fashion_mnist_test.labels[stratified_subset(fashion_mnist_test.labels, 600, seed=0)]
    X = build_extractor("hog").fit_transform(images).astype(np.float64)
    assert result.n_samples == 600 and result.n_features == X.shape[1]
    _assert_equal_to_grid_search(result, _grid_search(X, labels, KS))


def _reference_fold_scores(X, y, ks, metric, folds):
    """cs231n's loop: two-loop distances, a stable full sort, a bincount vote per k."""
    out = np.empty((len(ks), len(folds)))
    for f, (train, test) in enumerate(folds):
        order = np.argsort(pairwise_distances_reference(X[test], X[train], metric), axis=1, kind="stable")
        for i, k in enumerate(ks):
            pred = [np.argmax(np.bincount(y[train][row[:k]], minlength=y.max() + 1)) for row in order]
            out[i, f] = np.mean(np.asarray(pred) == y[test])
    return out


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_exact_ties_go_to_the_lower_index_on_raw_pixels(fashion_mnist_test, metric):
    """Pixels as integers in float64: every distance sum is exact, so ties are real ties,
    and the k kept are the k lowest indices among them, as a stable sort keeps."""
    idx = stratified_subset(fashion_mnist_test.labels, 150, seed=1)
    X = fashion_mnist_test.images[idx].reshape(len(idx), -1).astype(np.float64)
    y = fashion_mnist_test.labels[idx]
    ks = (1, 4, 7, 20)
    result = cross_validate_knn(X, y, ks, metrics=[metric], n_folds=3, dtype=np.float64, device="cpu")
    expected = _reference_fold_scores(X, y, ks, metric, make_folds(y, 3))
    np.testing.assert_array_equal(result.fold_scores[metric], expected)


def test_float32_default_agrees_on_random_data(rng):
    X, y = rng.random((200, 10)), rng.integers(0, 3, size=200)
    fast = cross_validate_knn(X, y, (1, 5, 9), device="cpu")
    exact = cross_validate_knn(X, y, (1, 5, 9), device="cpu", dtype=np.float64)
    assert fast.dtype == "float32" and exact.dtype == "float64"
    for m in ("l1", "l2"):
        np.testing.assert_allclose(fast.mean_scores[m], exact.mean_scores[m], atol=0.01)


def test_result_is_json_able_and_round_trips(rng, tmp_path):
    X, y = rng.random((60, 5)), rng.integers(0, 2, size=60)
    result = cross_validate_knn(X, y, (1, 3), metrics="l2", n_folds=3, seed=4, device="cpu")
    doc = json.loads(result.to_json(tmp_path / "cv.json"))
    assert doc["kind"] == "knn_cv" and doc["ks"] == [1, 3] and doc["metrics"] == ["l2"]
    assert len(doc["fold_scores"]["l2"]) == 2 and len(doc["fold_scores"]["l2"][0]) == 3
    assert doc["best"]["k"] == result.best[1] and set(doc["timings"]) >= {"neighbors_s", "scoring_s", "total_s"}
    again = KnnCVResult.read_json(tmp_path / "cv.json")
    assert again.best == result.best and again.seed == 4
    np.testing.assert_array_equal(again.std_scores["l2"], result.std_scores["l2"])
    assert "*" in result.format_table()


def test_best_breaks_ties_in_grid_search_order():
    folds = {"l1": np.array([[0.5, 0.7], [0.6, 0.6], [0.6, 0.6]]), "l2": np.array([[0.6, 0.6], [0.6, 0.6], [0.1, 0.1]])}
    result = KnnCVResult(ks=(5, 1, 9), metrics=("l1", "l2"), fold_scores=folds, n_folds=2)
    assert result.best == ("l1", 5, 0.6)  # first k as given, then the first metric


def test_each_validation_fold_scores_every_k_from_one_search(rng, monkeypatch):
    import pipeline.selection.knn_cv as selection

    calls = []
    real = selection.nearest_neighbors
    monkeypatch.setattr(selection, "nearest_neighbors", lambda *a, **kw: calls.append(a[2]) or real(*a, **kw))
    cross_validate_knn(rng.random((50, 4)), rng.integers(0, 2, size=50), (1, 2, 7), n_folds=4, device="cpu")
    assert calls == [7] * 8  # 4 folds x 2 metrics, k = max(ks)


def test_on_a_named_dataset_with_a_limit():
    result = cv_knn_on_dataset("digits", "raw", limit=200, ks=(1, 3), n_folds=3, device="cpu")
    assert result.n_samples == 200 and result.n_features == 64 and result.n_classes == 10
    assert result.info["dataset"] == "digits" and result.info["limit"] == 200
    assert result.info["features"][0]["class"] == "RawPixels" and "features_s" in result.timings
    json.dumps(result.to_dict())


def test_stratified_subset_keeps_shares_and_is_seeded():
    labels = np.repeat([0, 1, 2], [500, 300, 200])
    idx = stratified_subset(labels, 100, seed=3)
    assert np.array_equal(np.bincount(labels[idx]), [50, 30, 20]) and np.all(np.diff(idx) > 0)
    assert np.array_equal(idx, stratified_subset(labels, 100, seed=3))
    assert not np.array_equal(idx, stratified_subset(labels, 100, seed=4))
    assert len(stratified_subset(labels, 5000)) == 1000


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ks": [0, 3]}, "positive integers"),
        ({"ks": [2.5]}, "positive integers"),
        ({"ks": []}, "positive integers"),
        ({"ks": [3, 3]}, "must not repeat"),
        ({"ks": [1, 49]}, "k=49 is more than the 48 samples of the smallest training fold"),
        ({"metrics": ["cosine"]}, "metrics must be distinct names"),
        ({"weights": "gaussian"}, "weights must be one of"),
        ({"n_folds": 1}, "n_folds must be an integer >= 2"),
        ({"n_folds": 11}, "n_folds=11 is more than the 10 samples of the smallest class"),
    ],
)
def test_bad_parameters_say_what_was_expected(rng, kwargs, match):
    X, y = rng.random((60, 3)), np.repeat([0, 1, 2], [30, 20, 10])
    with pytest.raises(ValueError, match=match):
        cross_validate_knn(X, y, **{"ks": (1,), **kwargs}, device="cpu")


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.zeros(10), np.zeros(10), "2-D array"),
        (np.zeros((10, 2)), np.zeros(9), "one label per row"),
        (np.full((10, 2), np.nan), np.zeros(10), "NaN or infinity"),
        (np.zeros((10, 2)), np.linspace(0, 1, 10), "Unknown label type"),
    ],
)
def test_bad_data_says_what_was_expected(X, y, match):
    with pytest.raises(ValueError, match=match):
        cross_validate_knn(X, y, (1,), n_folds=2, device="cpu")


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        stratified_subset(np.zeros(10), 0)
