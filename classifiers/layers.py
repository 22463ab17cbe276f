"""Layers of a fully connected network, in the forward/backward style of cs231n.

Every layer is a pair of functions::

    out, cache = <layer>_forward(x, ...)
    dx, grads = <layer>_backward(dout, cache)

``grads`` maps the layer's *local* parameter names (``"W"``, ``"b"``, ``"gamma"``,
``"beta"``) to their gradients; it is empty for layers without parameters. The layers
own no state: the network keeps the parameters in its name-keyed dict (``"W1"``,
``"gamma1"``, ...) and renames the local gradients into a dict with the same keys.

The functions work on NumPy and CuPy arrays alike (the array module is taken from the
input) and keep the input's dtype. The activations accept ``out=`` so that a network
can run them in place on an array it no longer needs; the activations' backward passes
only need the layer's *output*, so an in-place forward loses nothing.

Slow, obvious versions of the affine layer and batch normalization
live in :mod:`classifiers._reference`; the tests hold the two equal, and check every
backward pass here against a centered numerical gradient.
"""
from __future__ import annotations

from compute.backend import array_module_of

#: Slope of :func:`leaky_relu_forward` for negative inputs.
LEAKY_RELU_SLOPE = 0.01
#: Saturation value ``-alpha`` of :func:`elu_forward` for very negative inputs.
ELU_ALPHA = 1.0


# --------------------------------------------------------------------------- affine
def affine_forward(x, W, b):
    """Fully connected layer: ``out = x @ W + b`` (the bias is added in place).

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_in)
    W : ndarray of shape (n_in, n_out)
    b : ndarray of shape (n_out,)

    Returns
    -------
    out : ndarray of shape (n_samples, n_out)
    cache : tuple
        ``(x, W)``, read by :func:`affine_backward`.
    """
    out = x @ W
    out += b
    return out, (x, W)


def affine_backward(dout, cache, need_dx=True):
    """Backward pass of :func:`affine_forward`.

    Parameters
    ----------
    dout : ndarray of shape (n_samples, n_out)
        Upstream gradient.
    cache : tuple
        From :func:`affine_forward`.
    need_dx : bool, default=True
        The first layer of a network has no use for the gradient of its input; skipping
        it saves a matrix product as large as the forward one.

    Returns
    -------
    dx : ndarray of shape (n_samples, n_in), or None when ``need_dx`` is false
    grads : dict
        ``{"W": (n_in, n_out), "b": (n_out,)}``.
    """
    x, W = cache
    grads = {"W": x.T @ dout, "b": dout.sum(axis=0)}
    return (dout @ W.T if need_dx else None), grads


# ---------------------------------------------------------------------- activations
def relu_forward(x, out=None):
    """``max(x, 0)``. Pass ``out=x`` to work in place. Returns ``(out, cache)``; ``x`` any shape."""
    xp = array_module_of(x)
    y = xp.maximum(x, 0, out=out)
    return y, y


def relu_backward(dout, cache, out=None):
    """Backward pass of :func:`relu_forward` (the cache is the output). Returns ``(dx, {})``."""
    xp = array_module_of(dout)
    return xp.multiply(dout, cache > 0, out=out), {}


def leaky_relu_forward(x, out=None, slope=LEAKY_RELU_SLOPE):
    """``x`` where positive, ``slope * x`` elsewhere (``0 < slope < 1``). Returns ``(out, cache)``."""
    xp = array_module_of(x)
    y = xp.maximum(x, slope * x, out=out)
    return y, (y, slope)


def leaky_relu_backward(dout, cache, out=None):
    """Backward pass of :func:`leaky_relu_forward`: the output's sign is the input's."""
    xp = array_module_of(dout)
    y, slope = cache
    one, low = dout.dtype.type(1), dout.dtype.type(slope)
    return xp.multiply(dout, xp.where(y > 0, one, low), out=out), {}


def tanh_forward(x, out=None):
    """Hyperbolic tangent. Returns ``(out, cache)``; the cache is the output."""
    xp = array_module_of(x)
    y = xp.tanh(x, out=out)
    return y, y


def tanh_backward(dout, cache, out=None):
    """Backward pass of :func:`tanh_forward`: ``dout * (1 - y**2)``."""
    xp = array_module_of(dout)
    scale = cache * cache
    xp.subtract(1, scale, out=scale)
    return xp.multiply(dout, scale, out=out), {}


def sigmoid_forward(x, out=None):
    """Logistic function, computed as ``(1 + tanh(x / 2)) / 2`` (no overflow for any ``x``)."""
    xp = array_module_of(x)
    y = xp.multiply(x, 0.5, out=out)
    xp.tanh(y, out=y)
    y *= 0.5
    y += 0.5
    return y, y


def sigmoid_backward(dout, cache, out=None):
    """Backward pass of :func:`sigmoid_forward`: ``dout * y * (1 - y)``."""
    xp = array_module_of(dout)
    scale = 1 - cache
    scale *= cache
    return xp.multiply(dout, scale, out=out), {}


def elu_forward(x, out=None, alpha=ELU_ALPHA):
    """Exponential linear unit: ``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere."""
    xp = array_module_of(x)
    negative = xp.minimum(x, 0)
    xp.expm1(negative, out=negative)
    negative *= alpha
    y = xp.maximum(x, 0, out=out)
    y += negative
    return y, (y, alpha)


def elu_backward(dout, cache, out=None):
    """Backward pass of :func:`elu_forward`: the slope is 1 where ``y > 0``, ``y + alpha`` elsewhere."""
    xp = array_module_of(dout)
    y, alpha = cache
    slope = xp.where(y > 0, dout.dtype.type(1), y + dout.dtype.type(alpha))
    return xp.multiply(dout, slope, out=out), {}


#: Activation name -> (forward, backward).
ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "tanh": (tanh_forward, tanh_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "elu": (elu_forward, elu_backward),
}


# ----------------------------------------------------------------- batch normalization
def batchnorm_forward(x, gamma, beta, running_mean, running_var, train=True, momentum=0.9, eps=1e-5):
    """Batch normalization over the samples of a batch (Ioffe and Szegedy, 2015).

    In training, normalizes with the batch's mean and (biased) variance and updates the
    running averages **in place**: ``running = momentum * running + (1 - momentum) * batch``.
    In inference, normalizes with the running averages and returns no cache.

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_features)
    gamma, beta : ndarray of shape (n_features,)
        Scale and shift.
    running_mean, running_var : ndarray of shape (n_features,)
    train : bool, default=True
    momentum : float, default=0.9
    eps : float, default=1e-5

    Returns
    -------
    out : ndarray of shape (n_samples, n_features)
    cache : tuple or None
        ``(x_hat, gamma, inv_std)`` in training.
    """
    xp = array_module_of(x)
    if not train:
        scale = gamma / xp.sqrt(running_var + eps)
        out = x * scale
        out += beta - running_mean * scale
        return out, None
    mean = x.mean(axis=0)
    x_hat = x - mean
    var = (x_hat * x_hat).mean(axis=0)
    inv_std = 1 / xp.sqrt(var + eps)
    x_hat *= inv_std
    out = x_hat * gamma
    out += beta
    running_mean *= momentum
    running_mean += (1 - momentum) * mean
    running_var *= momentum
    running_var += (1 - momentum) * var
    return out, (x_hat, gamma, inv_std)


def batchnorm_backward(dout, cache):
    """Backward pass of :func:`batchnorm_forward` in training mode, in closed form.

    ``dx = gamma * inv_std / n * (n * dout - sum(dout) - x_hat * sum(dout * x_hat))``

    Returns
    -------
    dx : ndarray of shape (n_samples, n_features)
    grads : dict
        ``{"gamma": (n_features,), "beta": (n_features,)}``.
    """
    x_hat, gamma, inv_std = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = x_hat * dgamma
    dx += dbeta
    dx -= n * dout
    dx *= -(gamma * inv_std) / n
    return dx, {"gamma": dgamma, "beta": dbeta}


# ------------------------------------------------------------------------- dropout
def dropout_forward(x, p, rng=None, mask=None, out=None):
    """Inverted dropout (training only): zero each unit with probability ``p`` and scale
    the survivors by ``1 / (1 - p)``, so the expected output equals the input and
    inference needs no rescaling (the network simply skips this layer then).

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_features)
    p : float in [0, 1)
        **Drop** probability (not keep probability).
    rng : numpy.random.Generator or cupy.random.Generator, optional
        Draws the mask; needed unless ``mask`` is given.
    mask : ndarray of shape (n_samples, n_features), optional
        A fixed mask, already scaled (entries ``0`` or ``1 / (1 - p)``), for tests.
    out : ndarray, optional
        Pass ``out=x`` to work in place.

    Returns
    -------
    out : ndarray of shape (n_samples, n_features)
    cache : ndarray
        The scaled mask.
    """
    xp = array_module_of(x)
    if mask is None:
        mask = rng.random(x.shape, dtype=x.dtype) >= p
        mask = mask.astype(x.dtype)
        mask *= 1 / (1 - p)
    return xp.multiply(x, mask, out=out), mask


def dropout_backward(dout, cache, out=None):
    """Backward pass of :func:`dropout_forward`: ``dout * mask``. Returns ``(dx, {})``."""
    xp = array_module_of(dout)
    return xp.multiply(dout, cache, out=out), {}
