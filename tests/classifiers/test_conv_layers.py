"""Convolutional layers: the fast kernels against their naive loop references, every backward
pass against a centered numerical gradient (float64), and sizes and parameter counts against
the lecture's formulas ``(N - F + 2P) / S + 1`` and ``F * F * C_in * C_out + C_out``.
"""
from __future__ import annotations

import numpy as np
import pytest

from classifiers import _reference as ref
from classifiers import conv_layers as cl
from classifiers._cnn import ConvolutionalNet, build_layers, init_params
from classifiers._gradcheck import numerical_gradient, numerical_gradient_array, relative_error

TOL = 1e-6

# (channels, kernel, stride, pad): 1 channel takes im2col's kernel-major layout, 3 and 6
# its strided one; stride 1 takes the transposed-convolution dx, stride 2 col2im.
CONV_CASES = [(1, 3, 1, 1), (3, 5, 1, 2), (6, 3, 1, 0), (3, 3, 2, 1), (6, 3, 2, 0), (1, 4, 1, 1), (1, 3, 2, 0)]


def _conv_case(rng, c_in, kernel, stride, pad, h=7, w=7, n=2, c_out=4):
    if (h - kernel + 2 * pad) % stride:
        h = w = h + 1
    x = rng.standard_normal((n, h, w, c_in))
    W = rng.standard_normal((kernel, kernel, c_in, c_out))
    b = rng.standard_normal(c_out)
    return x, W, b


# ------------------------------------------------------------------------ sizes
@pytest.mark.parametrize("n, f, p, s, expected", [(32, 5, 2, 1, 32), (7, 3, 0, 1, 5), (7, 3, 0, 2, 3),
                                                  (28, 2, 0, 2, 14), (227, 11, 0, 4, 55), (5, 3, 1, 2, 3)])
def test_output_size_is_the_lecture_formula(n, f, p, s, expected):
    assert cl.conv_output_size(n, f, s, p) == expected == (n - f + 2 * p) // s + 1


@pytest.mark.parametrize("n, f, p, s, shown", [(7, 3, 0, 3, r"\(7 - 3 \+ 2\*0\) / 3 \+ 1 = 2\.33333"),
                                               (3, 5, 0, 1, r"\(3 - 5 \+ 2\*0\) / 1 \+ 1 = -1")])
def test_a_size_that_does_not_divide_names_the_numbers(n, f, p, s, shown):
    with pytest.raises(ValueError, match=shown + r".*N=" + str(n) + r", kernel F=" + str(f)):
        cl.conv_output_size(n, f, s, p)
    x = np.zeros((1, n, n, 1))
    with pytest.raises(ValueError, match="does not fit"):
        cl.conv_forward(x, np.zeros((f, f, 1, 1)), np.zeros(1), s, p)


def test_max_pool_that_does_not_tile_names_the_numbers():
    with pytest.raises(ValueError, match=r"max pooling does not fit: .*\(7 - 2 \+ 2\*0\) / 2 \+ 1 = 3\.5"):
        cl.max_pool_forward(np.zeros((1, 7, 7, 2)), 2, 2, 2)


@pytest.mark.parametrize("f, c_in, c_out", [(5, 3, 10), (3, 16, 32), (1, 64, 8)])
def test_parameter_count_is_the_lecture_formula(f, c_in, c_out):
    conv = cl.Conv2D(c_in, c_out, f, name="1")
    shapes = conv.param_shapes()
    assert shapes == {"W1": (f, f, c_in, c_out), "b1": (c_out,)}
    assert sum(int(np.prod(s)) for s in shapes.values()) == cl.conv_param_count(f, c_in, c_out) \
        == f * f * c_in * c_out + c_out


def test_cs231n_example_shapes():
    # 32x32x3 input, 10 filters 5x5, stride 1, pad 2: 32x32x10 out, 5*5*3*10 + 10 = 760 parameters.
    conv = cl.Conv2D(3, 10, 5, stride=1, pad=2)
    assert conv.output_shape((32, 32, 3)) == (32, 32, 10)
    assert cl.conv_param_count(5, 3, 10) == 760
    out, _ = conv.forward(np.zeros((2, 32, 32, 3), np.float32), {"W1": np.zeros((5, 5, 3, 10), np.float32),
                                                                   "b1": np.ones(10, np.float32)})
    assert out.shape == (2, 32, 32, 10) and out.dtype == np.float32
    assert cl.MaxPool2D(2).output_shape((32, 32, 10)) == (16, 16, 10)


def test_default_convnet_architecture_counts():
    layers, lines = build_layers((28, 28, 1), (16, 32), (5, 3), 2, (56,), 10)
    params, running = init_params(layers, "he", np.random.default_rng(0), np.float32)
    expected = (5 * 5 * 1 * 16 + 16) + (3 * 3 * 16 * 32 + 32) + (7 * 7 * 32 * 56 + 56) + (56 * 10 + 10)
    assert sum(p.size for p in params.values()) == expected == 93_490 < 100_000
    assert params["W1"].shape == (5, 5, 1, 16) and params["W3"].shape == (1568, 56)
    assert running == {}
    assert lines[0] == "conv 5x5, 1 -> 16 channels: 28x28x16, 416 parameters"
    assert "max pool 2x2: 7x7x32" in lines


# -------------------------------------------------------------------- convolution
@pytest.mark.parametrize("c_in, kernel, stride, pad", CONV_CASES)
def test_conv_matches_naive_reference(rng, c_in, kernel, stride, pad):
    x, W, b = _conv_case(rng, c_in, kernel, stride, pad)
    out, cache = cl.conv_forward(x, W, b, stride, pad)
    np.testing.assert_allclose(out, ref.conv_forward_naive(x, W, b, stride, pad), rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx, grads = cl.conv_backward(dout, cache)
    for fast, slow in zip((dx, grads["W"], grads["b"]), ref.conv_backward_naive(dout, x, W, stride, pad)):
        np.testing.assert_allclose(fast, slow, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("c_in, kernel, stride, pad", CONV_CASES)
def test_conv_backward_matches_numerical_gradient(rng, c_in, kernel, stride, pad):
    x, W, b = _conv_case(rng, c_in, kernel, stride, pad, h=5, w=5, c_out=3)
    out, cache = cl.conv_forward(x, W, b, stride, pad)
    dout = rng.standard_normal(out.shape)
    dx, grads = cl.conv_backward(dout, cache)
    forward = lambda: cl.conv_forward(x, W, b, stride, pad)[0]  # noqa: E731
    assert relative_error(dx, numerical_gradient_array(forward, x, dout)) < TOL
    assert relative_error(grads["W"], numerical_gradient_array(forward, W, dout)) < TOL
    assert relative_error(grads["b"], numerical_gradient_array(forward, b, dout)) < TOL
    assert cl.conv_backward(dout, cache, need_dx=False)[0] is None


@pytest.mark.parametrize("c_in, kernel, stride, pad", CONV_CASES)
def test_col2im_is_the_adjoint_of_im2col(rng, c_in, kernel, stride, pad):
    x, _, _ = _conv_case(rng, c_in, kernel, stride, pad)
    cols = cl.im2col(x, kernel, kernel, stride, pad)
    c = rng.standard_normal(cols.shape)
    assert np.vdot(cols, c) == pytest.approx(np.vdot(x, cl.col2im(c, x.shape, kernel, kernel, stride, pad)))


def test_conv_rejects_wrong_channels():
    with pytest.raises(ValueError, match="takes 3 input channels, got input of shape"):
        cl.conv_forward(np.zeros((1, 4, 4, 2)), np.zeros((3, 3, 3, 1)), np.zeros(1))


def test_conv_keeps_float32(rng):
    x, W, b = (a.astype(np.float32) for a in _conv_case(rng, 3, 3, 1, 1))
    out, cache = cl.conv_forward(x, W, b, 1, 1)
    dx, grads = cl.conv_backward(np.ones_like(out), cache)
    assert out.dtype == dx.dtype == grads["W"].dtype == np.float32


# ------------------------------------------------------------------------ pooling
POOL_CASES = [(2, 2, 8), (3, 2, 7), (2, 3, 8), (3, 3, 9)]  # (pool, stride, side): tiling, overlapping, gaps


@pytest.mark.parametrize("pool, stride, side", POOL_CASES)
def test_max_pool_matches_naive_reference(rng, pool, stride, side):
    x = rng.standard_normal((2, side, side, 3))
    out, cache = cl.max_pool_forward(x, pool, pool, stride)
    np.testing.assert_array_equal(out, ref.max_pool_forward_naive(x, pool, pool, stride))
    dout = rng.standard_normal(out.shape)
    dx, grads = cl.max_pool_backward(dout, cache)
    np.testing.assert_allclose(dx, ref.max_pool_backward_naive(dout, x, pool, pool, stride), rtol=1e-12)
    assert grads == {}
    out_eval, cache_eval = cl.max_pool_forward(x, pool, pool, stride, train=False)
    np.testing.assert_array_equal(out_eval, out)
    assert cache_eval is None


@pytest.mark.parametrize("pool, stride, side", POOL_CASES)
def test_max_pool_ties_go_to_the_first_maximum(rng, pool, stride, side):
    x = rng.integers(0, 2, size=(2, side, side, 2)).astype(np.float64)  # many ties, as after a ReLU
    out, cache = cl.max_pool_forward(x, pool, pool, stride)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(cl.max_pool_backward(dout, cache)[0],
                               ref.max_pool_backward_naive(dout, x, pool, pool, stride), rtol=1e-12)


@pytest.mark.parametrize("pool, stride, side", POOL_CASES)
def test_max_pool_backward_matches_numerical_gradient(rng, pool, stride, side):
    x = rng.permutation(2 * side * side * 2).reshape(2, side, side, 2) / 7.0  # distinct values: no kinks
    out, cache = cl.max_pool_forward(x, pool, pool, stride)
    dout = rng.standard_normal(out.shape)
    forward = lambda: cl.max_pool_forward(x, pool, pool, stride)[0]  # noqa: E731
    assert relative_error(cl.max_pool_backward(dout, cache)[0], numerical_gradient_array(forward, x, dout)) < TOL


# ------------------------------------------------------------- spatial batchnorm
def test_spatial_batchnorm_normalizes_each_channel_as_the_naive_reference(rng):
    bn = cl.BatchNorm2D(3, name="1")
    x = 4 + 3 * rng.standard_normal((6, 5, 5, 3))
    params = {"gamma1": np.ones(3), "beta1": np.zeros(3)}
    running = {"running_mean1": np.zeros(3), "running_var1": np.ones(3)}
    out, cache = bn.forward(x, params, running, train=True)
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 1, 2)), 1, rtol=1e-4)
    np.testing.assert_allclose(running["running_mean1"], 0.1 * x.mean(axis=(0, 1, 2)), rtol=1e-12)
    # The same as 1-D batch normalization over (n*h*w, channels), as cs231n's spatial batchnorm.
    expected, ref_cache = ref.batchnorm_forward_naive(x.reshape(-1, 3), params["gamma1"], params["beta1"])
    np.testing.assert_allclose(out.reshape(-1, 3), expected, rtol=1e-10, atol=1e-12)
    dout = rng.standard_normal(x.shape)
    dx, grads = bn.backward(dout, cache)
    ref_dx, ref_dgamma, ref_dbeta = ref.batchnorm_backward_naive(dout.reshape(-1, 3), ref_cache)
    np.testing.assert_allclose(dx.reshape(-1, 3), ref_dx, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(grads["gamma1"], ref_dgamma, rtol=1e-10)
    np.testing.assert_allclose(grads["beta1"], ref_dbeta, rtol=1e-10)


def test_spatial_batchnorm_eval_uses_running_averages(rng):
    bn = cl.BatchNorm2D(2, name="2")
    x = rng.standard_normal((3, 4, 4, 2))
    params = {"gamma2": np.array([2.0, 0.5]), "beta2": np.array([1.0, -1.0])}
    running = {"running_mean2": np.array([0.3, -0.2]), "running_var2": np.array([1.5, 0.7])}
    out, cache = bn.forward(x, params, running, train=False)
    expected = (x - running["running_mean2"]) / np.sqrt(running["running_var2"] + 1e-5) * params["gamma2"]
    np.testing.assert_allclose(out, expected + params["beta2"], rtol=1e-12)
    assert cache is None and running["running_mean2"].tolist() == [0.3, -0.2]


def test_spatial_batchnorm_backward_matches_numerical_gradient(rng):
    bn = cl.BatchNorm2D(3, name="1")
    x = rng.standard_normal((4, 3, 3, 3))
    params = {"gamma1": rng.standard_normal(3), "beta1": rng.standard_normal(3)}

    def forward():
        running = {"running_mean1": np.zeros(3), "running_var1": np.ones(3)}
        return bn.forward(x, params, running, train=True)[0]

    out, cache = bn.forward(x, params, {"running_mean1": np.zeros(3), "running_var1": np.ones(3)}, train=True)
    dout = rng.standard_normal(out.shape)
    dx, grads = bn.backward(dout, cache)
    assert relative_error(dx, numerical_gradient_array(forward, x, dout)) < TOL
    assert relative_error(grads["gamma1"], numerical_gradient_array(forward, params["gamma1"], dout)) < TOL
    assert relative_error(grads["beta1"], numerical_gradient_array(forward, params["beta1"], dout)) < TOL


# ------------------------------------------------------------- dropout, flatten
def test_dropout_trains_with_a_mask_and_is_the_identity_at_inference(rng):
    layer = cl.Dropout(0.5)
    x = rng.standard_normal((50, 4, 4, 3))
    out, mask = layer.forward(x, train=True, rng=np.random.default_rng(1))
    assert set(np.unique(mask)) == {0.0, 2.0} and 0.4 < (mask == 0).mean() < 0.6
    np.testing.assert_array_equal(out, x * mask)
    dout = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(layer.backward(dout, mask)[0], dout * mask)
    same, cache = layer.forward(x, train=False)
    assert same is x and cache is None and layer.backward(dout, None)[0] is dout


def test_flatten_keeps_the_order_of_raw_pixels(rng):
    from features import RawPixels

    images = rng.integers(0, 256, size=(3, 4, 5, 3), dtype=np.uint8)
    feats = RawPixels().fit_transform(images)
    out, shape = cl.Flatten().forward(feats.reshape(3, 4, 5, 3))
    np.testing.assert_array_equal(out, feats)
    np.testing.assert_array_equal(out.reshape(3, 4, 5, 3)[..., 2], images[..., 2] / np.float32(255))
    assert cl.Flatten().backward(out, shape)[0].shape == (3, 4, 5, 3)
    assert cl.Flatten().output_shape((4, 5, 3)) == (60,)


# ------------------------------------------------------------ the whole network
@pytest.mark.parametrize("batchnorm, dropout", [(False, 0.0), (True, 0.3)])
def test_network_gradients_match_numerical_gradient(rng, batchnorm, dropout):
    shape = (6, 6, 2)
    layers, _ = build_layers(shape, (3, 2), (3, 3), 2, (5,), 3, "relu", batchnorm, dropout)
    params, running = init_params(layers, "he", rng, np.float64)
    for name in params:  # non-trivial gamma and beta
        params[name] += 0.1 * rng.standard_normal(params[name].shape)
    net = ConvolutionalNet(layers, params, running, shape, reg=0.05)
    X, y = rng.standard_normal((4, 72)), np.array([0, 1, 2, 1])
    loss = lambda: net.loss(X, y, rng=np.random.default_rng(3))[0]  # noqa: E731  (same dropout mask)
    _, grads = net.loss(X, y, rng=np.random.default_rng(3))
    assert set(grads) == set(params)
    for name in params:
        numerical = numerical_gradient(loss, params[name])
        if batchnorm and name in ("b1", "b2"):  # batchnorm subtracts the mean: no gradient reaches them
            assert np.abs(grads[name]).max() < 1e-12 and np.abs(numerical).max() < 1e-8, name
        else:
            assert relative_error(grads[name], numerical) < 1e-5, name


def test_network_l2_left_to_the_optimizer_is_the_same_gradient(rng):
    shape = (4, 4, 1)
    layers, _ = build_layers(shape, (2,), (3,), 2, (), 2)
    params, running = init_params(layers, "he", rng, np.float64)
    net = ConvolutionalNet(layers, params, running, shape, reg=0.1)
    X, y = rng.standard_normal((3, 16)), np.array([0, 1, 1])
    _, full = net.loss(X, y)
    _, data = net.loss(X, y, l2_grads=False)
    l2 = net.l2_strengths()
    assert sorted(l2) == ["W1", "W2"]
    for name in params:
        np.testing.assert_allclose(full[name], data[name] + l2.get(name, 0) * params[name], rtol=1e-12)


@pytest.mark.gpu
@pytest.mark.parametrize("batchnorm", [False, True])
def test_gpu_float64_matches_cpu(rng, batchnorm):
    import cupy

    shape = (8, 8, 3)
    layers, _ = build_layers(shape, (4, 6), (3, 3), 2, (5,), 3, "relu", batchnorm)
    params, running = init_params(layers, "he", rng, np.float64)
    X, y = rng.standard_normal((6, 192)), np.array([0, 1, 2, 1, 0, 2])
    cpu = ConvolutionalNet(layers, {k: v.copy() for k, v in params.items()},
                           {k: v.copy() for k, v in running.items()}, shape, reg=0.01)
    gpu = ConvolutionalNet(layers, {k: cupy.asarray(v) for k, v in params.items()},
                           {k: cupy.asarray(v) for k, v in running.items()}, shape, reg=0.01)
    loss_cpu, grads_cpu = cpu.loss(X, y)
    loss_gpu, grads_gpu = gpu.loss(cupy.asarray(X), cupy.asarray(y))
    assert float(loss_gpu) == pytest.approx(float(loss_cpu), rel=1e-12)
    for name in grads_cpu:
        np.testing.assert_allclose(cupy.asnumpy(grads_gpu[name]), grads_cpu[name], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cupy.asnumpy(gpu.scores(cupy.asarray(X))), cpu.scores(X), rtol=1e-10, atol=1e-12)
