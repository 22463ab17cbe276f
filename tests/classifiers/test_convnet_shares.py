"""The ConvNet's batches in shares of rows, one after the other or on several threads: the
gradient is the whole batch's, the predictions do not depend on the threads, and the
threads leave BLAS as they found it."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_info, threadpool_limits

from classifiers import ConvNet
from classifiers._cnn import ConvolutionalNet, build_layers, init_params, share_threads

SMALL = {"filters": (6,), "kernel_sizes": (3,), "hidden_sizes": (16,), "n_epochs": 2, "tol": None,
         "batch_size": 100, "random_state": 0}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


def _net(dtype, batchnorm=False, dropout=0.0, executor=None):
    rng = np.random.default_rng(0)
    layers, _ = build_layers((8, 8, 1), (4, 6), (3, 3), 2, (12,), 10, batchnorm=batchnorm, dropout=dropout)
    params, running = init_params(layers, "he", rng, np.dtype(dtype))
    return ConvolutionalNet(layers, params, running, (8, 8, 1), reg=1e-3, executor=executor)


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 2e-5)])
def test_the_shares_gradient_is_the_whole_batchs(dtype, rtol):
    X = np.random.default_rng(1).random((100, 64)).astype(dtype)
    y = np.random.default_rng(2).integers(0, 10, 100)
    whole_loss, whole = _net(dtype).loss(X, y)
    with share_threads(2, np) as pool:
        net = _net(dtype, executor=pool)
        assert [s.stop - s.start for s in net._shares(100, np)] == [25, 25, 25, 25]  # even shares of <= 32
        loss, grads = net.loss(X, y)
    np.testing.assert_allclose(loss, whole_loss, rtol=rtol)
    for name in whole:
        np.testing.assert_allclose(grads[name], whole[name], rtol=rtol, atol=rtol * np.abs(whole[name]).max())


def test_one_thread_takes_the_batch_whole():
    assert _net("float32")._shares(100, np) == [slice(0, 100)]


def test_the_shares_are_the_same_on_any_number_of_threads():
    """Two threads or three, the same shares summed in the same order: the same numbers."""
    X = np.random.default_rng(1).random((100, 64)).astype(np.float32)
    y = np.random.default_rng(2).integers(0, 10, 100)
    results = []
    for n_jobs in (2, 3):
        with share_threads(n_jobs, np) as pool:
            results.append(_net("float32", dropout=0.3, executor=pool).loss(X, y, rng=np.random.default_rng(5)))
    assert results[0][0] == results[1][0]
    for name in results[0][1]:
        np.testing.assert_array_equal(results[0][1][name], results[1][1][name])


def test_batchnorm_takes_its_batches_whole():
    with share_threads(2, np) as pool:
        assert _net("float32", batchnorm=True, executor=pool)._shares(100, np) == [slice(0, 100)]


def test_predictions_do_not_depend_on_the_threads(digits):
    X, y = digits
    clf = ConvNet(**SMALL).fit(X[:1000], y[:1000])
    one = clf.predict_proba(X)
    np.testing.assert_array_equal(clf.set_params(n_jobs=2).predict_proba(X), one)
    np.testing.assert_array_equal(clf.set_params(n_jobs=-1).predict(X), clf.set_params(n_jobs=1).predict(X))


@pytest.mark.parametrize("params", [{}, {"dropout": 0.3}, {"batchnorm": True}])
def test_training_on_threads_learns_and_repeats_itself(digits, params):
    X, y = digits
    a = ConvNet(**SMALL, **params, n_jobs=2).fit(X[:1000], y[:1000])
    b = ConvNet(**SMALL, **params, n_jobs=2).fit(X[:1000], y[:1000])
    for name in a.params_:
        np.testing.assert_array_equal(a.params_[name], b.params_[name])
    assert a.score(X[1000:], y[1000:]) > 0.85
    with threadpool_limits(1, user_api="blas"):
        one = ConvNet(**SMALL, **params, n_jobs=1).fit(X[:1000], y[:1000])
    # batchnorm takes its batches whole: the same network; else the shares' sums round
    # otherwise (and dropout draws other masks), but it learns as well
    same = all(np.array_equal(a.params_[n], one.params_[n]) for n in a.params_)
    assert same is bool(params.get("batchnorm"))
    assert abs(a.score(X[1000:], y[1000:]) - one.score(X[1000:], y[1000:])) < 0.05


def test_the_threads_leave_blas_as_they_found_it(digits):
    X, y = digits
    before = [(p["user_api"], p["num_threads"]) for p in threadpool_info()]
    ConvNet(**SMALL, n_jobs=2).fit(X[:300], y[:300]).predict(X[:300])
    assert [(p["user_api"], p["num_threads"]) for p in threadpool_info()] == before


@pytest.mark.parametrize("n_jobs", [0, 1.5, "2"])
def test_a_bad_n_jobs_is_refused(digits, n_jobs):
    X, y = digits
    with pytest.raises(ValueError, match="n_jobs"):
        ConvNet(**SMALL, n_jobs=n_jobs).fit(X[:50], y[:50])


def _blas_threads():
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_overlapping_pools_restore_blas_when_the_last_one_ends():
    """Two pools that overlap (A enters, B enters, A leaves, B leaves): BLAS stays on one
    thread until B leaves, then comes back to what it was, not to A's one thread."""
    with threadpool_limits(2, user_api="blas"):
        a, b = share_threads(2, np), share_threads(2, np)
        a.__enter__()
        b.__enter__()
        assert set(_blas_threads()) <= {1}
        a.__exit__(None, None, None)
        assert set(_blas_threads()) <= {1}  # B's threads still run
        b.__exit__(None, None, None)
        assert set(_blas_threads()) <= {2}


def test_concurrent_predictions_leave_blas_as_they_found_it(digits):
    """The service's request threads predicting with one ConvNet at once."""
    import threading

    X, y = digits
    clf = ConvNet(**SMALL, n_jobs=2).fit(X[:300], y[:300])
    expected = clf.predict(X[:200])
    start = threading.Barrier(6)
    answers, errors = [], []

    def client():
        try:
            start.wait()
            for _ in range(10):
                answers.append(clf.predict(X[:200]))
        except Exception as error:  # reported below, not lost in the thread
            errors.append(error)

    with threadpool_limits(2, user_api="blas"):
        threads = [threading.Thread(target=client) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert set(_blas_threads()) <= {2}
    assert not errors
    assert len(answers) == 60
    for answer in answers:
        np.testing.assert_array_equal(answer, expected)
