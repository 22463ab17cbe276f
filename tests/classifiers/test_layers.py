"""Layers: every backward pass against a centered numerical gradient (float64), the fast
kernels against their slow references, and the training/inference behaviour of batch
normalization and dropout.

Tolerance: relative error < 1e-6 everywhere. The kinked activations (ReLU, leaky ReLU;
ELU's second derivative) are evaluated away from their kink at 0 (``_away_from_zero``),
so the centered difference never straddles it and the same bound holds.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from classifiers import _reference as ref
from classifiers import layers
from classifiers._gradcheck import numerical_gradient, numerical_gradient_array, relative_error
from classifiers.losses import softmax, softmax_scores_loss

TOL = 1e-6


def _away_from_zero(x, margin=1e-2):
    """Push entries of ``x`` out of (-margin, margin), keeping their sign."""
    return np.where(x >= 0, x + margin, x - margin)


# ----------------------------------------------------------------------- affine
def test_affine_backward_matches_numerical_gradient(rng):
    x, W, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    dout = rng.standard_normal((5, 3))
    _, cache = layers.affine_forward(x, W, b)
    dx, grads = layers.affine_backward(dout, cache)
    forward = lambda: layers.affine_forward(x, W, b)[0]  # noqa: E731
    assert relative_error(dx, numerical_gradient_array(forward, x, dout)) < TOL
    assert relative_error(grads["W"], numerical_gradient_array(forward, W, dout)) < TOL
    assert relative_error(grads["b"], numerical_gradient_array(forward, b, dout)) < TOL


def test_affine_matches_naive_reference(rng):
    x, W, b = rng.standard_normal((6, 5)), rng.standard_normal((5, 4)), rng.standard_normal(4)
    dout = rng.standard_normal((6, 4))
    out, cache = layers.affine_forward(x, W, b)
    np.testing.assert_allclose(out, ref.affine_forward_naive(x, W, b), rtol=1e-12, atol=1e-12)
    dx, grads = layers.affine_backward(dout, cache)
    for fast, slow in zip((dx, grads["W"], grads["b"]), ref.affine_backward_naive(dout, x, W)):
        np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)


def test_affine_backward_can_skip_dx(rng):
    x, W, b = rng.standard_normal((3, 2)), rng.standard_normal((2, 4)), np.zeros(4)
    dx, grads = layers.affine_backward(np.ones((3, 4)), layers.affine_forward(x, W, b)[1], need_dx=False)
    assert dx is None and grads["W"].shape == (2, 4)


# ------------------------------------------------------------------ activations
@pytest.mark.parametrize("name", sorted(layers.ACTIVATIONS))
def test_activation_backward_matches_numerical_gradient(name, rng):
    forward, backward = layers.ACTIVATIONS[name]
    x = _away_from_zero(rng.standard_normal((4, 6)) * 2)
    dout = rng.standard_normal((4, 6))
    _, cache = forward(x)
    dx, grads = backward(dout, cache)
    assert grads == {}
    assert relative_error(dx, numerical_gradient_array(lambda: forward(x)[0], x, dout)) < TOL


_SCALAR = {
    "relu": lambda v: max(v, 0.0),
    "leaky_relu": lambda v: v if v > 0 else layers.LEAKY_RELU_SLOPE * v,
    "tanh": math.tanh,
    "sigmoid": lambda v: 1 / (1 + math.exp(-v)),
    "elu": lambda v: v if v > 0 else layers.ELU_ALPHA * (math.exp(v) - 1),
}


@pytest.mark.parametrize("name", sorted(layers.ACTIVATIONS))
def test_activation_matches_scalar_formula(name, rng):
    x = rng.standard_normal(50) * 3
    out, _ = layers.ACTIVATIONS[name][0](x)
    np.testing.assert_allclose(out, [_SCALAR[name](v) for v in x], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(layers.ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_in_place_equals_out_of_place_and_keeps_dtype(name, dtype, rng):
    forward, backward = layers.ACTIVATIONS[name]
    x = rng.standard_normal((3, 5)).astype(dtype)
    dout = rng.standard_normal((3, 5)).astype(dtype)
    expected, cache = forward(x)
    dx_expected, _ = backward(dout, cache)
    work = x.copy()
    out, cache = forward(work, out=work)
    assert out is work and out.dtype == dtype
    np.testing.assert_array_equal(out, expected)
    dwork = dout.copy()
    dx, _ = backward(dwork, cache, out=dwork)
    assert dx is dwork and dx.dtype == dtype
    np.testing.assert_array_equal(dx, dx_expected)


@pytest.mark.parametrize("name", sorted(layers.ACTIVATIONS))
def test_activation_finite_for_extreme_inputs(name):
    x = np.array([-1e4, -50.0, 0.0, 50.0, 1e4])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out, cache = layers.ACTIVATIONS[name][0](x)
        dx, _ = layers.ACTIVATIONS[name][1](np.ones_like(x), cache)
    assert np.isfinite(out).all() and np.isfinite(dx).all()


# ---------------------------------------------------------- batch normalization
def _bn_inputs(rng, n=8, d=5):
    x = rng.standard_normal((n, d)) * 3 + 2
    return x, rng.standard_normal(d), rng.standard_normal(d), np.zeros(d), np.ones(d)


def test_batchnorm_backward_matches_numerical_gradient(rng):
    x, gamma, beta, mean, var = _bn_inputs(rng)
    dout = rng.standard_normal(x.shape)
    _, cache = layers.batchnorm_forward(x, gamma, beta, mean, var)
    dx, grads = layers.batchnorm_backward(dout, cache)
    forward = lambda: layers.batchnorm_forward(x, gamma, beta, mean, var)[0]  # noqa: E731
    assert relative_error(dx, numerical_gradient_array(forward, x, dout)) < TOL
    assert relative_error(grads["gamma"], numerical_gradient_array(forward, gamma, dout)) < TOL
    assert relative_error(grads["beta"], numerical_gradient_array(forward, beta, dout)) < TOL


def test_batchnorm_matches_step_by_step_reference(rng):
    x, gamma, beta, mean, var = _bn_inputs(rng)
    dout = rng.standard_normal(x.shape)
    out, cache = layers.batchnorm_forward(x, gamma, beta, mean, var)
    out_ref, cache_ref = ref.batchnorm_forward_naive(x, gamma, beta)
    np.testing.assert_allclose(out, out_ref, rtol=1e-10, atol=1e-12)
    dx, grads = layers.batchnorm_backward(dout, cache)
    for fast, slow in zip((dx, grads["gamma"], grads["beta"]), ref.batchnorm_backward_naive(dout, cache_ref)):
        np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-12)


def test_batchnorm_train_normalizes_and_updates_running_averages(rng):
    x, _, _, mean, var = _bn_inputs(rng, n=200, d=4)
    out, _ = layers.batchnorm_forward(x, np.ones(4), np.zeros(4), mean, var, momentum=0.9)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-3)
    np.testing.assert_allclose(mean, 0.1 * x.mean(axis=0))
    np.testing.assert_allclose(var, 0.9 + 0.1 * x.var(axis=0))


def test_batchnorm_inference_uses_running_averages(rng):
    x, gamma, beta, _, _ = _bn_inputs(rng)
    mean, var = rng.standard_normal(5), rng.random(5) + 0.5
    before = mean.copy(), var.copy()
    out, cache = layers.batchnorm_forward(x, gamma, beta, mean, var, train=False)
    assert cache is None
    np.testing.assert_allclose(out, gamma * (x - mean) / np.sqrt(var + 1e-5) + beta)
    np.testing.assert_array_equal(mean, before[0])  # inference leaves them alone
    np.testing.assert_array_equal(var, before[1])
    # one sample at a time gives the same answer: no batch statistics involved
    one, _ = layers.batchnorm_forward(x[:1], gamma, beta, mean, var, train=False)
    np.testing.assert_allclose(one, out[:1])


# ---------------------------------------------------------------------- dropout
def test_dropout_backward_with_fixed_mask_matches_numerical_gradient(rng):
    x, dout, p = rng.standard_normal((6, 5)), rng.standard_normal((6, 5)), 0.4
    mask = (rng.random((6, 5)) >= p) / (1 - p)
    _, cache = layers.dropout_forward(x, p, mask=mask)
    dx, grads = layers.dropout_backward(dout, cache)
    assert grads == {}
    forward = lambda: layers.dropout_forward(x, p, mask=mask)[0]  # noqa: E731
    assert relative_error(dx, numerical_gradient_array(forward, x, dout)) < TOL


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_is_inverted_and_preserves_the_mean(p, rng):
    x = np.ones((400, 500), dtype=np.float32)
    out, mask = layers.dropout_forward(x, p, rng=rng)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.unique(out), [0, 1 / (1 - p)], rtol=1e-6)
    assert abs((out == 0).mean() - p) < 0.01
    assert abs(out.mean() - 1) < 0.02


def test_dropout_mask_comes_from_the_generator():
    x = np.ones((10, 10))
    a, _ = layers.dropout_forward(x, 0.5, rng=np.random.default_rng(3))
    b, _ = layers.dropout_forward(x, 0.5, rng=np.random.default_rng(3))
    c, _ = layers.dropout_forward(x, 0.5, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ----------------------------------------------------------------- softmax loss
def test_softmax_loss_gradient_matches_numerical_gradient(rng):
    scores, y = rng.standard_normal((7, 4)), rng.integers(0, 4, 7)
    _, dscores = softmax_scores_loss(scores, y)
    assert relative_error(dscores, numerical_gradient(lambda: softmax_scores_loss(scores, y)[0], scores)) < TOL


def test_softmax_loss_matches_naive_reference(rng):
    scores, y = rng.standard_normal((9, 5)) * 4, rng.integers(0, 5, 9)
    loss, dscores = softmax_scores_loss(scores, y)
    loss_ref, dscores_ref = ref.softmax_scores_loss_naive(scores, y)
    assert loss == pytest.approx(loss_ref, rel=1e-12)
    np.testing.assert_allclose(dscores, dscores_ref, rtol=1e-10, atol=1e-15)


def test_softmax_loss_is_stable_and_starts_at_log_c():
    loss, _ = softmax_scores_loss(np.zeros((3, 10)), np.array([0, 4, 9]))
    assert loss == pytest.approx(np.log(10))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, dscores = softmax_scores_loss(np.array([[1e4, -1e4, 0.0]], dtype=np.float32), np.array([1]))
        probs = softmax(np.array([[1e4, -1e4, 0.0]]))
    assert loss == pytest.approx(2e4, rel=1e-6) and np.isfinite(dscores).all()
    np.testing.assert_allclose(probs, [[1, 0, 0]])


# -------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(layers.ACTIVATIONS))
def test_layers_on_gpu_match_numpy(name, rng):
    from compute.backend import get_array_module, to_numpy

    cp = get_array_module("gpu")
    x, dout = rng.standard_normal((16, 8)).astype(np.float32), rng.standard_normal((16, 8)).astype(np.float32)
    gamma, beta, y = rng.standard_normal(8).astype(np.float32), np.zeros(8, np.float32), rng.integers(0, 8, 16)
    forward, backward = layers.ACTIVATIONS[name]
    for run in (lambda xp: backward(xp.asarray(dout), forward(xp.asarray(x))[1])[0],
                lambda xp: layers.batchnorm_backward(xp.asarray(dout), layers.batchnorm_forward(
                    xp.asarray(x), xp.asarray(gamma), xp.asarray(beta), xp.zeros(8, np.float32),
                    xp.ones(8, np.float32))[1])[0],
                lambda xp: softmax_scores_loss(xp.asarray(x), xp.asarray(y))[1]):
        np.testing.assert_allclose(to_numpy(run(cp)), run(np), rtol=1e-4, atol=1e-6)
    out, _ = layers.dropout_forward(cp.asarray(x), 0.5, rng=cp.random.default_rng(0))
    assert isinstance(out, cp.ndarray) and out.dtype == cp.float32
