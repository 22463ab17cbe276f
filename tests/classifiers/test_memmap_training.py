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


# --- the order of mini-batches for rows read from disk (shuffle_buffer) -----------------------

from classifiers._sgd import BLOCKS_PER_BUFFER, minibatches  # noqa: E402


@pytest.mark.parametrize("n, batch, buffer", [(1000, 64, 80), (1001, 7, 64), (50, 200, 16), (300, 32, 1)])
def test_a_shuffle_buffer_epoch_visits_every_row_once_from_a_few_blocks_at_a_time(n, batch, buffer):
    batches = list(minibatches(n, batch, np.random.default_rng(0), shuffle_buffer=buffer))
    order = np.concatenate(batches)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    assert all(len(b) == min(batch, n) for b in batches[:-1])
    block = max(1, buffer // BLOCKS_PER_BUFFER)
    # each buffer's rows come from BLOCKS_PER_BUFFER blocks of consecutive rows (a window of a
    # buffer's length overlaps two buffers at most: the last block may be short)
    for first in range(0, n, BLOCKS_PER_BUFFER * block):
        window = order[first:first + BLOCKS_PER_BUFFER * block]
        assert len(np.unique(window // block)) <= (BLOCKS_PER_BUFFER if n % block == 0 else 2 * BLOCKS_PER_BUFFER)
    again = np.concatenate(list(minibatches(n, batch, np.random.default_rng(0), shuffle_buffer=buffer)))
    np.testing.assert_array_equal(order, again)
    if n > buffer >= 2 * BLOCKS_PER_BUFFER:  # shuffled within the buffer, not read in file order
        assert not np.array_equal(order[:buffer], np.sort(order[:buffer]))


def test_a_shuffle_buffer_as_large_as_the_data_is_the_full_permutation():
    full = np.concatenate(list(minibatches(500, 50, np.random.default_rng(4))))
    buffered = np.concatenate(list(minibatches(500, 50, np.random.default_rng(4), shuffle_buffer=500)))
    np.testing.assert_array_equal(full, buffered)


BUFFERED = {
    "softmax": lambda: Softmax(n_epochs=3, shuffle_buffer=4096, random_state=0),
    "svm": lambda: LinearSVM(n_epochs=3, shuffle_buffer=4096, random_state=0),
    "net-early-stopping": lambda: TwoLayerNet(hidden_sizes=(16,), n_epochs=3, early_stopping=True,
                                              shuffle_buffer=4096, random_state=0),
}


@pytest.mark.parametrize("name", BUFFERED)
def test_training_with_a_shuffle_buffer_learns_as_well_as_with_a_full_permutation(features, name):
    X, y = features
    test = slice(0, 4000)
    buffered = BUFFERED[name]().fit(X, y).score(np.asarray(X[test]), y[test])
    full = BUFFERED[name]().set_params(shuffle_buffer=None).fit(X, y).score(np.asarray(X[test]), y[test])
    assert buffered > 0.4 and abs(buffered - full) < 0.03, (buffered, full)  # chance: 0.25


def test_a_bad_shuffle_buffer_is_refused_with_what_was_expected():
    X, y = np.zeros((10, 2)), np.arange(10) % 2
    for bad in (0, -3, 2.5, "big"):
        with pytest.raises(ValueError, match="shuffle_buffer"):
            Softmax(shuffle_buffer=bad).fit(X, y)
