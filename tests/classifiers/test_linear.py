"""LinearSVM and Softmax: the scikit-learn contract, training behaviour, errors, devices."""
import math

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from classifiers._gradcheck import numerical_gradient, relative_error
from classifiers._sgd import passes_per_epoch
from classifiers.linear import LinearSVM, Softmax
from classifiers.optim import OPTIMIZERS
from compute.backend import get_array_module, gpu_available

ESTIMATORS = [LinearSVM, Softmax]

_SMALL = dict(n_epochs=10, batch_size=32, learning_rate=1e-2, random_state=0)


@pytest.fixture
def blobs():
    X, y = make_blobs(n_samples=300, centers=4, n_features=6, cluster_std=2.0, random_state=0)
    return X.astype(np.float32), y


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_learns_blobs(cls, optimizer, blobs):
    X, y = blobs
    lr = 1e-1 if optimizer in ("sgd", "momentum", "nesterov") else 1e-2
    model = cls(optimizer=optimizer, learning_rate=lr, n_epochs=15, batch_size=50, random_state=0).fit(X, y)
    assert model.score(X, y) > 0.9
    assert model.loss_history_[-10:].mean() < model.loss_history_[:10].mean()


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fitted_attributes(cls, blobs):
    X, y = blobs
    model = cls(n_epochs=3, batch_size=64, random_state=0).fit(X, y)
    assert model.W_.shape == (6, 4) and model.b_.shape == (4,)
    assert model.W_.dtype == np.float32 and model.b_.dtype == np.float32
    assert model.n_iter_ == 3  # epochs (scikit-learn's meaning); t_ counts the gradient steps
    assert model.t_ == 3 * passes_per_epoch(300, 64) * math.ceil(300 / 64) == len(model.loss_history_)
    assert model.loss_history_.dtype == np.float64 and np.all(np.isfinite(model.loss_history_))
    np.testing.assert_array_equal(model.classes_, [0, 1, 2, 3])
    assert model.n_features_in_ == 6


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_float64_training(cls, blobs):
    X, y = blobs
    model = cls(dtype="float64", n_epochs=3, random_state=0).fit(X, y)
    assert model.W_.dtype == np.float64 and model.decision_function(X).dtype == np.float64


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_arbitrary_labels_are_encoded(cls, blobs):
    X, y = blobs
    names = np.array(["coat", "bag", "shirt", "dress"])
    model = cls(**_SMALL).fit(X, names[y])
    np.testing.assert_array_equal(model.classes_, np.sort(names))
    assert set(model.predict(X)) <= set(names)
    assert model.score(X, names[y]) > 0.9


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_same_seed_same_model_other_seed_other_model(cls, blobs):
    X, y = blobs
    a, b = cls(n_epochs=2, random_state=3).fit(X, y), cls(n_epochs=2, random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.W_, b.W_)
    np.testing.assert_array_equal(a.loss_history_, b.loss_history_)
    c = cls(n_epochs=2, random_state=4).fit(X, y)
    assert not np.array_equal(a.W_, c.W_)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_training_gradients_match_centered_differences(cls, rng):
    """The objective the loop minimizes (bias included, reg on W only) has the right gradients."""
    model = cls(reg=0.05)
    X, y = rng.standard_normal((10, 5)), rng.integers(0, 3, size=10)
    params = {"W": 0.5 * rng.standard_normal((5, 3)), "b": rng.standard_normal(3)}
    _, grads = model._loss_and_grads(params, X, y)
    for name in params:
        numeric = numerical_gradient(lambda: model._loss_and_grads(params, X, y)[0], params[name], h=1e-6)
        assert relative_error(grads[name], numeric) < 1e-6, name


def test_decision_function_shapes_follow_sklearn(blobs):
    X, y = blobs
    multi = Softmax(**_SMALL).fit(X, y)
    assert multi.decision_function(X).shape == (300, 4)
    np.testing.assert_array_equal(multi.predict(X), np.argmax(multi.decision_function(X), axis=1))
    binary = LinearSVM(**_SMALL).fit(X, y % 2)
    decision = binary.decision_function(X)
    assert decision.shape == (300,)
    np.testing.assert_array_equal(binary.predict(X), (decision > 0).astype(int))


def test_softmax_probabilities(blobs):
    X, y = blobs
    model = Softmax(**_SMALL).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (300, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(model.classes_[proba.argmax(axis=1)], model.predict(X))
    np.testing.assert_allclose(np.exp(model.predict_log_proba(X)), proba, rtol=1e-4, atol=1e-7)
    assert not hasattr(LinearSVM(), "predict_proba")


def test_pipeline_cross_val_score(blobs):
    X, y = blobs
    scores = cross_val_score(make_pipeline(StandardScaler(), Softmax(**_SMALL)), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.85


def test_grid_search_over_reg(blobs):
    X, y = blobs
    search = GridSearchCV(LinearSVM(**_SMALL), {"reg": [1e-4, 1e-2, 10.0]}, cv=3).fit(X, y)
    assert search.best_params_["reg"] in (1e-4, 1e-2)
    assert search.cv_results_["mean_test_score"][2] <= search.best_score_
    assert len(search.cv_results_["mean_test_score"]) == 3


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("param, value, message", [
    ("optimizer", "lbfgs", r"optimizer must be one of .*, got 'lbfgs'"),
    ("dtype", "float16", r"dtype must be 'float32' or 'float64', got 'float16'"),
    ("dtype", "no-such-type", r"dtype must be 'float32' or 'float64', got 'no-such-type'"),
    ("dtype", None, r"dtype must be 'float32' or 'float64', got None"),
    ("device", "cuda", r"device must be one of .*, got 'cuda'"),
    ("learning_rate", -1.0, r"learning_rate must be a positive number, got -1.0"),
    ("reg", -0.1, r"reg must be a number >= 0, got -0.1"),
    ("batch_size", 0, r"batch_size must be an integer >= 1, got 0"),
    ("n_epochs", 2.5, r"n_epochs must be an integer >= 1, got 2.5"),
    ("learning_rate_decay", 1.5, r"learning_rate_decay must be a number in \(0, 1\], got 1.5"),
    ("learning_rate", math.nan, r"learning_rate must be a positive number, got nan"),
    ("batch_size", True, r"batch_size must be an integer >= 1, got True"),
])
def test_bad_parameters_say_expected_and_got(cls, param, value, message, blobs):
    X, y = blobs
    with pytest.raises(ValueError, match=message):
        cls(**{param: value}).fit(X, y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_numpy_scalars_and_dtypes_are_accepted(cls, blobs):
    model = cls(learning_rate=np.float32(1e-2), reg=np.float64(0), batch_size=np.int64(32), n_epochs=np.int32(2),
                learning_rate_decay=1, dtype=np.float64, random_state=0).fit(*blobs)
    assert model.W_.dtype == np.float64 and model.n_iter_ == 2
    assert model.t_ == 2 * passes_per_epoch(len(blobs[0]), 32) * math.ceil(len(blobs[0]) / 32)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_bad_data_is_refused(cls, blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="needs at least 2 classes in y, got 1 class"):
        cls().fit(X, np.zeros(len(X)))
    X_nan = X.copy()
    X_nan[3, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        cls().fit(X_nan, y)
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        cls().fit(X[:, 0], y)
    model = cls(n_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features, but .* is expecting 6 features"):
        model.predict(X[:, :5])


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_predict_before_fit(cls, blobs):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        cls().predict(blobs[0])


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_diverging_training_is_reported(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match=r"training loss became (nan|inf) in epoch \d+: expected a finite loss"):
        Softmax(optimizer="sgd", learning_rate=1e30, n_epochs=3).fit(1e10 * X, y)


def test_gpu_without_cupy_is_refused(blobs):
    if gpu_available():
        pytest.skip("a GPU is present here, so device='gpu' is valid")
    with pytest.raises(RuntimeError, match="CuPy and a CUDA device"):
        Softmax(device="gpu").fit(*blobs)


@pytest.mark.slow  # reads Fashion-MNIST
def test_fashion_mnist_sanity(fashion_mnist_test):
    """A quick real-data check: 8,000 test images for training, 2,000 held out."""
    X = fashion_mnist_test.images.reshape(len(fashion_mnist_test), -1) / np.float32(255)
    y = fashion_mnist_test.labels
    model = make_pipeline(StandardScaler(), Softmax(n_epochs=5, random_state=0)).fit(X[:8000], y[:8000])
    assert model.score(X[8000:], y[8000:]) > 0.78


@pytest.mark.gpu
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_gpu_fit_matches_cpu_fit(cls, blobs):
    get_array_module("gpu")
    X, y = blobs
    params = dict(dtype="float64", n_epochs=5, batch_size=50, random_state=0)
    cpu = cls(device="cpu", **params).fit(X, y)
    gpu = cls(device="gpu", **params).fit(X, y)
    assert isinstance(gpu.W_, np.ndarray) and isinstance(gpu.predict(X), np.ndarray)
    np.testing.assert_allclose(gpu.W_, cpu.W_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gpu.loss_history_, cpu.loss_history_, rtol=1e-7)
    np.testing.assert_array_equal(gpu.predict(X), cpu.predict(X))


@pytest.mark.parametrize("cls", [Softmax, LinearSVM])
def test_numpy_scalar_hyperparameters_train_as_their_python_values(cls, blobs):
    X, y = blobs
    numpy_scalars = cls(learning_rate=np.float16(0.0078125), learning_rate_decay=np.float32(0.5), n_epochs=2,
                        random_state=0).fit(X, y)
    plain = cls(learning_rate=0.0078125, learning_rate_decay=0.5, n_epochs=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(numpy_scalars.W_, plain.W_)
