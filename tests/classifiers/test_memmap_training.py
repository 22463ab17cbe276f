"""Training from a memory-mapped features array (a batch job's output, possibly larger
than memory) reads it in batches: the same model as from an in-memory array, and no copy
of the whole array is ever made."""
import tracemalloc

import numpy as np
import pytest

from classifiers.knn import KNearestNeighbor
from classifiers.linear import LinearSVM, Softmax
from classifiers.net import TwoLayerNet

N, D = 40_000, 128  # 20 MB of float32


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    path = tmp_path_factory.mktemp("features") / "features.npy"
    rng = np.random.default_rng(0)
    y = np.arange(N) % 4
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(N, D))
    for start in range(0, N, 10_000):
        block = rng.standard_normal((10_000, D), dtype=np.float32)
        block[:, 0] += y[start:start + 10_000]  # learnable
        mm[start:start + 10_000] = block
    mm.flush()
    del mm
    return np.load(path, mmap_mode="r"), y


ESTIMATORS = {
    "softmax": lambda: Softmax(n_epochs=2, random_state=0),
    "svm": lambda: LinearSVM(n_epochs=2, random_state=0),
    "net": lambda: TwoLayerNet(hidden_sizes=(16,), n_epochs=2, random_state=0),
    "net-early-stopping": lambda: TwoLayerNet(hidden_sizes=(16,), n_epochs=3, early_stopping=True, batchnorm=True,
                                              random_state=0),
    "knn": lambda: KNearestNeighbor(n_neighbors=3),
    "knn-l1": lambda: KNearestNeighbor(n_neighbors=3, metric="l1"),
}


def _peak_bytes(function):
    tracemalloc.start()
    try:
        result = function()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", ESTIMATORS)
def test_fit_on_a_memmap_copies_no_whole_array_and_learns_the_same(features, name):
    X, y = features
    queries = np.asarray(X[:300])
    # kNN tiles the distances to a budget: keep it small here so its tiles are small too
    budget = {"memory_budget": 2**20} if name.startswith("knn") else {}
    ESTIMATORS[name]().fit(np.asarray(X[:500]), y[:500]).predict(queries)  # compiled kernels and caches first
    model, peak = _peak_bytes(lambda: ESTIMATORS[name]().set_params(**budget).fit(X, y).predict(queries))
    assert peak < X.nbytes / 4, f"{name}: {peak / 1e6:.1f} MB allocated while training on {X.nbytes / 1e6:.0f} MB"
    in_memory = ESTIMATORS[name]().set_params(**budget).fit(np.asarray(X).copy(), y).predict(queries)
    np.testing.assert_array_equal(model, in_memory)
