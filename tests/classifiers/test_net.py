"""TwoLayerNet: whole-network gradient checks, training sanity checks, batch norm and
early stopping behaviour, determinism, the scikit-learn contract and error messages."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from classifiers._fcnet import FullyConnectedNet, init_params
from classifiers._gradcheck import numerical_gradient, relative_error
from classifiers._sgd import passes_per_epoch
from classifiers.layers import ACTIVATIONS
from classifiers.net import TwoLayerNet
from classifiers.optim import OPTIMIZERS

# Relative error < 1e-6 per entry, where entries smaller than GRAD_FLOOR in magnitude are
# measured against GRAD_FLOOR: the centered difference of a loss near 1 is only accurate
# to about eps * loss / h ~ 5e-11 in absolute terms, which is a large relative error on an
# entry of 1e-6. A ReLU net's loss has kinks; with these seeds no pre-activation lies
# within the finite-difference step of 0, so the smooth-function bound holds.
GRAD_TOL, GRAD_FLOOR = 1e-6, 1e-4


# ----------------------------------------------------------------- gradient checks
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_network_gradients_match_numerical_gradient(activation, batchnorm, dropout, rng):
    X, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    params, running = init_params((5, 7, 6, 3), "xavier", batchnorm, rng, np.float64)
    for name in params:  # non-trivial biases, gamma and beta
        params[name] += 0.1 * rng.standard_normal(params[name].shape)
    net = FullyConnectedNet(params, running, activation=activation, dropout=dropout, reg=0.3)
    loss = lambda: net.loss(X, y, rng=np.random.default_rng(7))[0]  # noqa: E731 (same mask each call)
    _, grads = net.loss(X, y, rng=np.random.default_rng(7))
    assert grads.keys() == params.keys()
    for name in params:
        assert relative_error(grads[name], numerical_gradient(loss, params[name]), GRAD_FLOOR) < GRAD_TOL, name


def test_initial_loss_is_log_of_class_count(rng):
    X, y = rng.standard_normal((200, 20)), np.arange(200) % 10
    clf = TwoLayerNet(weight_init=1e-4, reg=0.0, n_epochs=1, batch_size=200, random_state=0).fit(X, y)
    assert clf.loss_history_[0] == pytest.approx(np.log(10), rel=1e-3)


# -------------------------------------------------------------------- training
def _random_problem(rng, n=50, d=20, c=5):
    return rng.standard_normal((n, d)).astype(np.float32), np.arange(n) % c


_LR = {"sgd": 0.2, "momentum": 0.05, "nesterov": 0.05, "rmsprop": 1e-2, "adam": 1e-2}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_each_optimizer_overfits_50_samples(optimizer, rng):
    X, y = _random_problem(rng)
    clf = TwoLayerNet((64,), optimizer=optimizer, learning_rate=_LR[optimizer], learning_rate_decay=1.0,
                      reg=0.0, batch_size=25, n_epochs=60, random_state=0).fit(X, y)
    assert clf.score(X, y) == 1.0 and clf.train_acc_history_[-1] == 1.0


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("batchnorm, dropout", [(False, 0.0), (True, 0.2)])
def test_each_architecture_overfits_50_samples(activation, batchnorm, dropout, rng):
    X, y = _random_problem(rng)
    clf = TwoLayerNet((64, 32), activation=activation, batchnorm=batchnorm, dropout=dropout,
                      weight_init="xavier" if activation in ("tanh", "sigmoid") else "he",
                      learning_rate=1e-2, learning_rate_decay=1.0, reg=0.0, batch_size=25,
                      n_epochs=80, random_state=0).fit(X, y)
    assert clf.score(X, y) == 1.0


@pytest.mark.slow  # reads Fashion-MNIST
def test_overfits_50_fashion_mnist_images(fashion_mnist_test):
    X = fashion_mnist_test.images[:50].reshape(50, -1) / np.float32(255)
    y = fashion_mnist_test.labels[:50]
    clf = TwoLayerNet((100,), learning_rate_decay=1.0, reg=0.0, batch_size=10, n_epochs=40, random_state=0)
    assert clf.fit(X, y).score(X, y) == 1.0


def test_histories_and_fitted_attributes(rng):
    X, y = _random_problem(rng, n=90)
    clf = TwoLayerNet((8, 6), batch_size=20, n_epochs=3, random_state=0).fit(X, y)
    assert clf.n_iter_ == 3 and clf.best_epoch_ == 2
    assert len(clf.loss_history_) == 3 * 5 * passes_per_epoch(90, 20)  # ceil(90 / 20) batches per pass
    assert len(clf.train_acc_history_) == 3 and clf.val_acc_history_ == []
    assert [sorted(r) for r in clf.update_ratio_history_] == [["W1", "W2", "W3"]] * 3
    assert all(0 < v < 1 for r in clf.update_ratio_history_ for v in r.values())
    assert sorted(clf.params_) == ["W1", "W2", "W3", "b1", "b2", "b3"] and clf.running_ == {}
    assert clf.params_["W2"].shape == (8, 6) and clf.params_["W1"].dtype == np.float32
    proba = clf.predict_proba(X)
    assert proba.shape == (90, 5) and isinstance(proba, np.ndarray) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)  # float32 rounding of 5 terms
    net64 = TwoLayerNet((4,), n_epochs=1, dtype="float64").fit(X, y)
    assert net64.params_["W1"].dtype == np.float64 and net64.predict_proba(X).dtype == np.float64


def test_batchnorm_inference_uses_running_averages(rng):
    X, y = _random_problem(rng, n=120)
    X = X * 3 + 1
    clf = TwoLayerNet((10,), batchnorm=True, n_epochs=5, batch_size=30, random_state=0).fit(X, y)
    p, r = clf.params_, clf.running_
    assert sorted(r) == ["running_mean1", "running_var1"]
    assert np.abs(r["running_mean1"]).max() > 0.1  # moved away from its start, 0
    h = X @ p["W1"] + p["b1"]
    h = np.maximum(p["gamma1"] * (h - r["running_mean1"]) / np.sqrt(r["running_var1"] + 1e-5) + p["beta1"], 0)
    scores = h @ p["W2"] + p["b2"]
    expected = np.exp(scores - scores.max(axis=1, keepdims=True))
    np.testing.assert_allclose(clf.predict_proba(X), expected / expected.sum(axis=1, keepdims=True), rtol=1e-4)
    np.testing.assert_allclose(clf.predict_proba(X[:1]), clf.predict_proba(X)[:1], rtol=1e-5)


def test_early_stopping_keeps_the_best_epoch(rng):
    X, y = rng.standard_normal((300, 10)).astype(np.float32), rng.integers(0, 3, 300)  # labels are noise
    settings = dict(hidden_sizes=(64,), learning_rate=3e-2, learning_rate_decay=1.0, reg=0.0,
                    early_stopping=True, validation_fraction=0.3, batch_size=32, random_state=0)
    clf = TwoLayerNet(n_epochs=40, n_iter_no_change=3, **settings).fit(X, y)
    assert clf.n_iter_ < 40 and clf.n_iter_ == clf.best_epoch_ + 1 + 3
    assert clf.best_epoch_ == int(np.argmax(clf.val_acc_history_))
    # Retraining for exactly best_epoch_ + 1 epochs reproduces the kept parameters.
    ref = TwoLayerNet(n_epochs=clf.best_epoch_ + 1, n_iter_no_change=100, **settings).fit(X, y)
    for name, value in ref.params_.items():
        np.testing.assert_array_equal(clf.params_[name], value)


def test_same_random_state_same_model(rng):
    X, y = _random_problem(rng, n=80)
    make = lambda seed: TwoLayerNet((12,), dropout=0.3, early_stopping=True, n_epochs=4,  # noqa: E731
                                    batch_size=16, random_state=seed).fit(X, y)
    a, b, c = make(3), make(3), make(4)
    assert a.loss_history_ == b.loss_history_ and a.val_acc_history_ == b.val_acc_history_
    for name in a.params_:
        np.testing.assert_array_equal(a.params_[name], b.params_[name])
    assert not np.array_equal(a.params_["W1"], c.params_["W1"])


def test_works_in_a_pipeline_with_cross_validation():
    X, y = load_digits(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), TwoLayerNet((32,), learning_rate=1e-2, n_epochs=10, random_state=0))
    assert cross_val_score(pipe, X, y, cv=3).mean() > 0.9


def test_divergence_warns_and_stops(rng):
    X, y = _random_problem(rng)
    match = r"training diverged in epoch \d: the loss became (nan|inf); lower learning_rate \(got 1e\+30\)"
    with pytest.warns(ConvergenceWarning, match=match):
        clf = TwoLayerNet((8,), optimizer="sgd", learning_rate=1e30, n_epochs=5, random_state=0).fit(X * 1e10, y)
    assert clf.n_iter_ < 5


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("param, value, match", [
    ("hidden_sizes", (10, 0), r"hidden_sizes must be a tuple of integers >= 1, got \(10, 0\)"),
    ("hidden_sizes", 10, r"hidden_sizes must be a tuple of integers >= 1, got 10"),
    ("activation", "softplus", r"activation must be one of \('relu', .*\), got 'softplus'"),
    ("optimizer", "lbfgs", r"optimizer must be one of \('sgd', .*\), got 'lbfgs'"),
    ("dtype", "float16", r"dtype must be 'float32' or 'float64', got 'float16'"),
    ("weight_init", "zeros", r"weight_init must be one of \('he', 'xavier'\) or a positive number, got 'zeros'"),
    ("weight_init", -0.1, r"weight_init must be .* or a positive number, got -0.1"),
    ("dropout", 1.0, r"dropout must be a number in \[0, 1\), got 1.0"),
    ("validation_fraction", 0.0, r"validation_fraction must be a number in \(0, 1\), got 0.0"),
    ("n_iter_no_change", 0, r"n_iter_no_change must be an integer >= 1, got 0"),
    ("learning_rate", -1.0, r"learning_rate must be a positive number, got -1.0"),
    ("batch_size", 0, r"batch_size must be an integer >= 1, got 0"),
    ("batchnorm", "yes", r"batchnorm must be True or False, got 'yes'"),
    ("device", "tpu", r"device must be one of \('auto', 'cpu', 'gpu'\), got 'tpu'"),
    ("reg", -0.1, r"reg must be a number >= 0, got -0.1"),
    ("n_epochs", 0, r"n_epochs must be an integer >= 1, got 0"),
    ("learning_rate_decay", 0.0, r"learning_rate_decay must be a number in \(0, 1\], got 0.0"),
    ("early_stopping", 1, r"early_stopping must be True or False, got 1"),
    ("dropout", True, r"dropout must be a number in \[0, 1\), got True"),
    ("n_iter_no_change", True, r"n_iter_no_change must be an integer >= 1, got True"),
    ("dtype", None, r"dtype must be 'float32' or 'float64', got None"),
])
def test_bad_parameters_say_what_was_expected(param, value, match, rng):
    X, y = _random_problem(rng)
    with pytest.raises(ValueError, match=match):
        TwoLayerNet(**{param: value}).fit(X, y)


def test_numpy_scalars_lists_and_dtypes_are_accepted(rng):
    X, y = _random_problem(rng)
    clf = TwoLayerNet(hidden_sizes=[np.int64(4)], weight_init=np.float32(0.01), dropout=np.float64(0.1),
                      n_epochs=np.int32(1), batchnorm=np.bool_(True), dtype=np.float64, random_state=0).fit(X, y)
    assert clf.params_["W1"].shape == (20, 4) and clf.params_["W1"].dtype == np.float64


def test_bad_data_says_what_was_expected(rng):
    X, y = _random_problem(rng)
    with pytest.raises(ValueError, match=r"needs samples of at least 2 classes in y, got 1 class: \[3\]"):
        TwoLayerNet().fit(X, np.full(len(X), 3))
    clf = TwoLayerNet((4,), n_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but TwoLayerNet is expecting 20 features"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match=r"early stopping needs at least 1 training and 1 validation sample; "
                                         r"got 2 samples with validation_fraction=0.9"):
        TwoLayerNet(early_stopping=True, validation_fraction=0.9).fit(X[:2], y[:2])


# ------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gpu_training_matches_cpu_and_returns_numpy(rng, dtype):
    """In float64 both devices compute the same training to rounding. In float32 Adam
    turns rounding differences in near-zero gradients into whole steps (its update is
    about lr * sign(g)), so there the two trainings only stay close."""
    X, y = _random_problem(rng, n=200)
    settings = dict(hidden_sizes=(32,), batchnorm=True, n_epochs=3, batch_size=50, random_state=0, dtype=dtype)
    cpu = TwoLayerNet(device="cpu", **settings).fit(X, y)
    gpu = TwoLayerNet(device="gpu", **settings).fit(X, y)
    proba = gpu.predict_proba(X)
    assert type(proba) is np.ndarray and type(gpu.params_["W1"]) is np.ndarray
    assert gpu.params_["W1"].dtype == np.dtype(dtype)
    tight = dtype == "float64"
    np.testing.assert_allclose(proba, cpu.predict_proba(X), atol=1e-9 if tight else 0.05)
    assert gpu.loss_history_ == pytest.approx(cpu.loss_history_, rel=1e-9 if tight else 0.02)


def test_reg_means_what_it_means_in_the_linear_models(rng):
    """cs231n's convention everywhere: the objective adds ``reg * sum(W ** 2)`` over the weights."""
    X, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    params, running = init_params((5, 7, 3), "he", False, rng, np.float64)
    with_reg = FullyConnectedNet(params, running, reg=0.3).loss(X, y)[0]
    without = FullyConnectedNet(params, running, reg=0.0).loss(X, y)[0]
    assert with_reg - without == pytest.approx(0.3 * sum(np.sum(params[w] ** 2) for w in ("W1", "W2")), rel=1e-12)


def test_l2_strengths_complete_the_gradients_left_without_l2(rng):
    X, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    params, running = init_params((5, 7, 3), "he", False, rng, np.float64)
    net = FullyConnectedNet(params, running, reg=0.3)
    loss, grads = net.loss(X, y)
    loss_without, grads_without = net.loss(X, y, l2_grads=False)
    assert loss_without == loss  # the penalty stays in the loss
    l2 = net.l2_strengths()
    assert l2 == {"W1": 0.6, "W2": 0.6}  # the gradient of reg * sum(W ** 2) is 2 * reg * W
    for name in params:
        np.testing.assert_allclose(grads_without[name] + l2.get(name, 0) * params[name], grads[name], rtol=1e-12)
    assert FullyConnectedNet(params, running, reg=0.0).l2_strengths() is None


def test_parameters_changed_after_fit_are_checked_when_predicting(rng):
    X, y = rng.standard_normal((30, 4)), np.arange(30) % 2
    net = TwoLayerNet((4,), n_epochs=1, random_state=0).fit(X, y)
    net.set_params(activation="nope")
    with pytest.raises(ValueError, match="activation must be one of"):
        net.predict(X)
    for name, value in [("learning_rate", np.inf), ("reg", np.inf), ("weight_init", np.inf)]:
        with pytest.raises(ValueError, match=f"{name} must be"):
            TwoLayerNet(**{name: value}).fit(X, y)
