"""The linear losses: vectorized equals naive, gradients equal numerical ones, and sanity values."""
import math

import numpy as np
import pytest

from classifiers._gradcheck import numerical_gradient, relative_error
from classifiers._reference import softmax_loss_naive, svm_loss_naive
from classifiers.losses import DELTA, softmax, softmax_loss, softmax_scores_loss, svm_loss, svm_scores_loss
from compute.backend import get_array_module, to_numpy

LOSSES = {"svm": (svm_loss, svm_loss_naive), "softmax": (softmax_loss, softmax_loss_naive)}
H = 1e-6


def _problem(rng, n_samples=12, n_features=7, n_classes=4, scale=1.0):
    W = scale * rng.standard_normal((n_features, n_classes))
    X = rng.standard_normal((n_samples, n_features))
    y = rng.integers(0, n_classes, size=n_samples)
    return W, X, y


def _hinge_margins(W, X, y):
    """Every margin ``s_j - s_y + DELTA`` (j != y): the hinge has a kink where one is 0."""
    scores = X @ W
    margins = scores - scores[np.arange(len(y)), y][:, None] + DELTA
    return np.delete(margins.ravel(), np.ravel_multi_index((np.arange(len(y)), y), scores.shape))


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("reg", [0.0, 0.1])
def test_vectorized_equals_naive(name, reg, rng):
    fast, naive = LOSSES[name]
    W, X, y = _problem(rng, n_samples=30, n_features=11, n_classes=6)
    loss, dW = fast(W, X, y, reg)
    loss_ref, dW_ref = naive(W, X, y, reg)
    assert float(loss) == pytest.approx(loss_ref, rel=1e-12)
    np.testing.assert_allclose(dW, dW_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("which", ["vectorized", "naive"])
def test_gradient_matches_centered_differences(name, which, rng):
    fast, naive = LOSSES[name]
    loss_fn = fast if which == "vectorized" else naive
    W, X, y = _problem(rng, scale=0.5)
    if name == "svm":  # evaluate where the hinge is differentiable: no margin within h of 0
        assert np.min(np.abs(_hinge_margins(W, X, y))) > 1e3 * H
        assert np.any(_hinge_margins(W, X, y) > 0)  # some hinges are active: the check is not vacuous
    _, dW = loss_fn(W, X, y, 0.05)
    dW_num = numerical_gradient(lambda: loss_fn(W, X, y, 0.05)[0], W, h=H)
    assert relative_error(dW, dW_num) < 1e-6


@pytest.mark.parametrize("scores_loss", [svm_scores_loss, softmax_scores_loss])
def test_scores_gradient_matches_centered_differences(scores_loss, rng):
    scores = rng.standard_normal((9, 5))
    y = rng.integers(0, 5, size=9)
    _, dscores = scores_loss(scores, y)
    dscores_num = numerical_gradient(lambda: scores_loss(scores, y)[0], scores, h=H)
    assert relative_error(dscores, dscores_num) < 1e-6


def test_softmax_initial_loss_is_log_n_classes(rng):
    W, X, y = _problem(rng, n_samples=500, n_features=50, n_classes=10, scale=1e-4)
    loss, _ = softmax_loss(W, X, y, 0.0)
    assert float(loss) == pytest.approx(math.log(10), abs=1e-2)


def test_svm_initial_loss_is_n_classes_minus_one(rng):
    W, X, y = _problem(rng, n_samples=500, n_features=50, n_classes=10, scale=1e-4)
    loss, _ = svm_loss(W, X, y, 0.0)
    assert float(loss) == pytest.approx(10 - 1, abs=1e-2)


def test_regularization_is_reg_times_squared_norm(rng):
    W, X, y = _problem(rng)
    for fast, _ in LOSSES.values():
        assert float(fast(W, X, y, 0.3)[0] - fast(W, X, y, 0.0)[0]) == pytest.approx(0.3 * np.sum(W * W))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_is_stable_for_huge_logits(dtype, rng):
    scores = (1e4 * rng.standard_normal((20, 6))).astype(dtype)
    scores[0] = [3e38 if dtype == np.float32 else 1e300, 0, 0, 0, 0, -1e4]
    y = rng.integers(0, 6, size=20)
    loss, dscores = softmax_scores_loss(scores, y)
    assert np.isfinite(loss) and np.all(np.isfinite(dscores))
    proba = softmax(scores)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert proba[0, 0] == 1


@pytest.mark.parametrize("scores_loss", [svm_scores_loss, softmax_scores_loss])
def test_float32_in_float32_out(scores_loss, rng):
    scores = rng.standard_normal((8, 3)).astype(np.float32)
    loss, dscores = scores_loss(scores, rng.integers(0, 3, size=8))
    assert loss.dtype == np.float32 and dscores.dtype == np.float32


def test_hinge_loss_of_a_known_case():
    scores = np.array([[3.0, 1.0, 2.5], [0.0, 0.0, 0.0]])
    y = np.array([0, 2])
    # row 0: max(0, 1-3+1) + max(0, 2.5-3+1) = 0 + 0.5; row 1: 1 + 1
    loss, dscores = svm_scores_loss(scores, y)
    assert float(loss) == pytest.approx((0.5 + 2.0) / 2)
    np.testing.assert_allclose(dscores, np.array([[-1, 0, 1], [1, 1, -2]]) / 2)


@pytest.mark.gpu
@pytest.mark.parametrize("name", LOSSES)
def test_gpu_loss_equals_cpu(name, rng):
    cp = get_array_module("gpu")
    fast, _ = LOSSES[name]
    W, X, y = _problem(rng, n_samples=64, n_features=20, n_classes=5)
    loss, dW = fast(W, X, y, 0.1)
    loss_gpu, dW_gpu = fast(cp.asarray(W), cp.asarray(X), cp.asarray(y), 0.1)
    assert float(loss_gpu) == pytest.approx(float(loss), rel=1e-10)
    np.testing.assert_allclose(to_numpy(dW_gpu), dW, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_compiled_softmax_loss_equals_the_array_form(dtype, scale, rng):
    import classifiers.losses as losses

    scores = (scale * rng.standard_normal((64, 10))).astype(dtype)
    y = rng.integers(0, 10, size=64)
    fused = softmax_scores_loss(scores, y)
    array_form = losses.softmax_scores_loss_arrays(scores, y)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert fused[0].dtype == array_form[0].dtype == dtype and fused[1].dtype == dtype
    np.testing.assert_allclose(fused[0], array_form[0], rtol=rtol)
    np.testing.assert_allclose(fused[1], array_form[1], rtol=rtol, atol=1e-7 if dtype == np.float32 else 1e-15)


def test_compiled_softmax_loss_refuses_a_class_index_out_of_range(rng):
    with pytest.raises(ValueError, match="outside 0 .. n_classes - 1"):
        softmax_scores_loss(rng.standard_normal((4, 3)), np.array([0, 1, 3, 2]))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(64, 10), (1, 1), (300, 257)])
@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_gpu_softmax_kernel_equals_the_array_form(dtype, shape, scale, rng):
    import classifiers.losses as losses

    cp = get_array_module("gpu")
    scores = cp.asarray((scale * rng.standard_normal(shape)).astype(dtype))
    y = cp.asarray(rng.integers(0, shape[1], size=shape[0]))
    loss, grad = softmax_scores_loss(scores, y)
    ref_loss, ref_grad = losses.softmax_scores_loss_arrays(scores, y)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert loss.dtype == grad.dtype == dtype and isinstance(grad, cp.ndarray)
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=rtol, atol=1e-7)
    np.testing.assert_allclose(to_numpy(grad), to_numpy(ref_grad), rtol=rtol,
                               atol=1e-7 if dtype == np.float32 else 1e-15)
