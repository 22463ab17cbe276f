import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from classifiers.knn import KNearestNeighbor, vote
from compute.distances import pairwise_distances_reference

P = {"l1": 1, "l2": 2}


@pytest.fixture
def tie_free(rng):
    """Continuous random data: no two distances are equal."""
    X = rng.random((400, 16))
    y = rng.integers(0, 5, 400)
    return X, y, rng.random((150, 16))


@pytest.mark.parametrize("metric", ["l1", "l2"])
@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("k", [1, 4, 7])
def test_predict_equals_scikit_learn_brute(tie_free, metric, weights, k):
    X, y, Q = tie_free
    ours = KNearestNeighbor(k, metric=metric, weights=weights, device="cpu").fit(X, y)
    peer = KNeighborsClassifier(k, weights=weights, p=P[metric], algorithm="brute").fit(X, y)
    np.testing.assert_array_equal(ours.predict(Q), peer.predict(Q))
    np.testing.assert_allclose(ours.predict_proba(Q), peer.predict_proba(Q), atol=1e-6)


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_kneighbors_match_the_two_loop_reference(tie_free, metric):
    X, y, Q = tie_free
    dist, idx = KNearestNeighbor(6, metric=metric, device="cpu", memory_budget=4096).fit(X, y).kneighbors(Q)
    ref = pairwise_distances_reference(Q, X, metric)
    expected = np.argsort(ref, axis=1)[:, :6]
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_allclose(dist, np.take_along_axis(ref, expected, axis=1), rtol=1e-5)


def test_vote_ties_go_to_the_smallest_label():
    labels = np.array([[2, 1, 1, 2], [3, 0, 3, 0]])
    scores = vote(labels, np.ones((2, 4)), 4)
    assert list(scores.argmax(axis=1)) == [1, 0]


def test_distance_weights_count_only_exact_matches():
    scores = vote(np.array([[0, 1, 1]]), np.array([[0.0, 0.5, 0.5]]), 2, "distance")
    np.testing.assert_array_equal(scores, [[1.0, 0.0]])


def test_string_labels_and_k_larger_than_training_set(rng):
    X = rng.random((6, 3))
    y = np.array(["cat", "dog"] * 3)
    model = KNearestNeighbor(3, device="cpu").fit(X, y)
    assert set(model.predict(X)) <= {"cat", "dog"}
    with pytest.raises(ValueError, match="n_neighbors=7 is more than the 6 training samples"):
        model.kneighbors(X, n_neighbors=7)


@pytest.mark.parametrize(
    "params, match",
    [({"n_neighbors": 0}, "n_neighbors must be an integer >= 1"), ({"metric": "cosine"}, "metric must be one of"),
     ({"weights": "gaussian"}, "weights must be one of"), ({"device": "tpu"}, "device must be one of"),
     ({"n_neighbors": True}, "n_neighbors must be an integer >= 1, got True"),
     ({"memory_budget": 0}, "memory_budget must be None or an integer >= 1, got 0"),
     ({"memory_budget": 1.5e9}, "memory_budget must be None or an integer >= 1, got 1500000000.0"),
     ({"dtype": "float16"}, "dtype must be 'float32' or 'float64', got 'float16'"),
     ({"dtype": None}, "dtype must be 'float32' or 'float64', got None")],
)
def test_bad_parameters_say_what_was_expected(rng, params, match):
    with pytest.raises(ValueError, match=match):
        KNearestNeighbor(**params).fit(rng.random((10, 2)), np.arange(10) % 2)


@pytest.mark.parametrize("dtype", ["float64", np.float64, np.dtype("float64")])
def test_dtype_as_name_type_or_dtype(rng, dtype):
    X = rng.random((10, 2))
    model = KNearestNeighbor(3, dtype=dtype, memory_budget=np.int64(4096), device="cpu").fit(X, np.arange(10) % 2)
    assert model.kneighbors(X)[0].dtype == np.float64


def test_parameters_are_checked_again_at_predict(rng):
    X, y = rng.random((10, 2)), np.arange(10) % 2
    model = KNearestNeighbor(3, device="cpu").fit(X, y).set_params(weights="gaussian")
    with pytest.raises(ValueError, match=r"weights must be one of \('uniform', 'distance'\), got 'gaussian'"):
        model.predict(X)


def test_works_in_pipeline_grid_search_and_cross_validation(rng):
    X = np.vstack([rng.normal(0, 1, (40, 4)), rng.normal(3, 1, (40, 4))])
    y = np.repeat([0, 1], 40)
    pipe = make_pipeline(StandardScaler(), KNearestNeighbor(device="cpu"))
    assert cross_val_score(pipe, X, y, cv=4).mean() > 0.9
    search = GridSearchCV(pipe, {"knearestneighbor__n_neighbors": [1, 3, 5],
                                 "knearestneighbor__metric": ["l1", "l2"]}, cv=3).fit(X, y)
    assert search.best_score_ > 0.9


@pytest.mark.gpu
@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_gpu_predicts_what_the_cpu_predicts(tie_free, metric):
    X, y, Q = tie_free
    cpu = KNearestNeighbor(5, metric=metric, device="cpu").fit(X, y)
    gpu = KNearestNeighbor(5, metric=metric, device="gpu").fit(X, y)
    np.testing.assert_array_equal(gpu.predict(Q), cpu.predict(Q))
    np.testing.assert_allclose(gpu.kneighbors(Q)[0], cpu.kneighbors(Q)[0], rtol=1e-5)
