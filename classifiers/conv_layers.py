"""Layers of a convolutional network: convolution, max pooling, spatial batch normalization,
dropout, flatten, and the affine layer and activations of :mod:`classifiers.layers` in the
same shape.

Every layer is an object holding only its *hyperparameters* (kernel size, stride,
padding) and the names of its parameters in the network's dicts; the network owns the
parameters (``params``) and the batch-normalization averages (``running``)::

    out, cache = layer.forward(x, params, running, train, rng)
    dx, grads = layer.backward(dout, cache, need_dx=True)

``grads`` maps the network's names (``"W1"``, ``"gamma2"``) to gradients, empty for a
layer without parameters. ``need_dx=False`` lets the first layer skip the gradient of
its input (the network's input needs none).

Layout: images are ``(n_samples, height, width, channels)`` (NHWC, channels last) and
convolution weights ``(kernel_h, kernel_w, in_channels, out_channels)``. Channels last is
the order of the pipeline's features (:class:`features.RawPixels` flattens ``(H, W, C)``),
and it makes the heavy part of a convolution one matrix product whose result is already
the output, with no transposes in either pass: ``im2col`` lays every receptive field out as
a row ``(kernel_h * kernel_w * in_channels)``, one row per output position, and
``rows @ W`` gives ``(n * out_h * out_w, out_channels)``; spatial batch normalization
is the arithmetic of :func:`classifiers.layers.batchnorm_forward` on the
``(n * h * w, channels)`` view.

Sizes follow the lecture: an input of side ``N``, kernel ``F``, padding ``P`` and stride
``S`` gives an output of side ``(N - F + 2P) / S + 1``, which must be a whole number
(:func:`conv_output_size` raises otherwise, naming the numbers); a convolution has
``F * F * C_in * C_out + C_out`` parameters (:func:`conv_param_count`).

The arithmetic works on NumPy and CuPy arrays alike (the module is taken from the input).
The naive loop versions of the convolution and the pooling live in
:mod:`classifiers._reference` (with the step-by-step batch normalization); the tests hold
these layers equal to them and check every backward pass against a centered numerical
gradient.
"""
from __future__ import annotations

from classifiers.layers import (
    ACTIVATIONS,
    affine_backward,
    affine_forward,
    dropout_backward,
    dropout_forward,
)
from compute.backend import array_module_of


# ------------------------------------------------------------------------ sizes
def conv_output_size(size, kernel, stride=1, pad=0, what="convolution"):
    """Output side of a window of ``kernel`` sliding with ``stride`` over ``size`` padded by ``pad``.

    Returns ``(size - kernel + 2 * pad) / stride + 1``.

    Raises
    ------
    ValueError
        When the window does not fit or the stride does not divide the span; the message
        names the numbers.
    """
    span = size - kernel + 2 * pad
    if span < 0 or span % stride:
        raise ValueError(
            f"{what} does not fit: (N - F + 2P) / S + 1 = ({size} - {kernel} + 2*{pad}) / {stride} + 1 "
            f"= {span / stride + 1:g} is not a whole number >= 1 (input side N={size}, kernel F={kernel}, "
            f"padding P={pad}, stride S={stride})")
    return span // stride + 1


def conv_param_count(kernel, in_channels, out_channels):
    """Parameters of a ``kernel x kernel`` convolution: ``F * F * C_in * C_out + C_out``."""
    return kernel * kernel * in_channels * out_channels + out_channels


# ------------------------------------------------------------------ im2col / col2im
#: Inputs of at most this many channels (grayscale images) are laid out kernel offset by
#: kernel offset by :func:`im2col`, one contiguous copy per offset; wider ones as one
#: strided copy, whose inner runs of ``channels`` values are then long enough to beat it
#: (BENCHMARKS.md, "ConvNet").
KERNEL_MAJOR_MAX_CHANNELS = 1


def _pad(x, pad):
    """``x`` with ``pad`` zeros around each image, C-contiguous (a copy into zeros: quicker than ``np.pad``)."""
    xp = array_module_of(x)
    if not pad:
        return xp.ascontiguousarray(x)
    n, h, w, c = x.shape
    out = xp.zeros((n, h + 2 * pad, w + 2 * pad, c), dtype=x.dtype)
    out[:, pad : pad + h, pad : pad + w, :] = x
    return out


def im2col(x, kernel_h, kernel_w, stride=1, pad=0):
    """Every receptive field of ``x`` as a row: the input of the convolution's matrix product.

    Parameters
    ----------
    x : ndarray of shape (n, h, w, c)
    kernel_h, kernel_w, stride, pad : int

    Returns
    -------
    cols : ndarray of shape (n * out_h * out_w, kernel_h * kernel_w * c)
        Row ``(i, y, x)`` holds ``x_padded[i, y*S : y*S + kh, x*S : x*S + kw, :]`` flattened.
        For ``c <= KERNEL_MAJOR_MAX_CHANNELS`` the matrix is built column block by column
        block (a Fortran-ordered array: each kernel offset one contiguous copy); otherwise it
        is a strided view of the padded input reshaped, hence copied once. Matrix products
        take either order as they are.
    """
    xp = array_module_of(x)
    n, h, w, c = x.shape
    out_h = conv_output_size(h, kernel_h, stride, pad)
    out_w = conv_output_size(w, kernel_w, stride, pad)
    x = _pad(x, pad)
    if c <= KERNEL_MAJOR_MAX_CHANNELS:
        cols = xp.empty((kernel_h, kernel_w, c, n, out_h, out_w), dtype=x.dtype)
        for i in range(kernel_h):
            for j in range(kernel_w):
                window = x[:, i : i + stride * out_h : stride, j : j + stride * out_w : stride, :]
                cols[i, j] = window.transpose(3, 0, 1, 2)
        return cols.reshape(kernel_h * kernel_w * c, n * out_h * out_w).T
    s0, s1, s2, s3 = x.strides
    view = xp.lib.stride_tricks.as_strided(
        x, shape=(n, out_h, out_w, kernel_h, kernel_w, c),
        strides=(s0, s1 * stride, s2 * stride, s1, s2, s3))
    return view.reshape(n * out_h * out_w, kernel_h * kernel_w * c)


def col2im(cols, x_shape, kernel_h, kernel_w, stride=1, pad=0):
    """The adjoint of :func:`im2col`: add every row back onto the positions it was read from.

    One vectorized addition of strided slices per kernel offset (``kernel_h * kernel_w`` of
    them), not one scattered addition per element (``np.add.at``).

    Parameters
    ----------
    cols : ndarray of shape (n * out_h * out_w, kernel_h * kernel_w * c)
    x_shape : tuple (n, h, w, c)

    Returns
    -------
    ndarray of shape (n, h, w, c)
    """
    xp = array_module_of(cols)
    n, h, w, c = x_shape
    out_h = conv_output_size(h, kernel_h, stride, pad)
    out_w = conv_output_size(w, kernel_w, stride, pad)
    cols = cols.reshape(n, out_h, out_w, kernel_h, kernel_w, c)
    dx = xp.zeros((n, h + 2 * pad, w + 2 * pad, c), dtype=cols.dtype)
    for i in range(kernel_h):
        for j in range(kernel_w):
            dx[:, i : i + stride * out_h : stride, j : j + stride * out_w : stride, :] += cols[:, :, :, i, j, :]
    return dx[:, pad : pad + h, pad : pad + w, :] if pad else dx


# -------------------------------------------------------------------- convolution
def _column_sums(a):
    """``a.sum(axis=0)`` of a 2-D array as a matrix-vector product: on a tall, narrow matrix
    (a row per sample and position) BLAS's pass is many times quicker than NumPy's reduction."""
    xp = array_module_of(a)
    return xp.ones(a.shape[0], dtype=a.dtype) @ a


def conv_forward(x, W, b, stride=1, pad=0):
    """Convolution (cross-correlation, as every deep-learning library computes it).

    ``out[i, y, x, k] = b[k] + sum_{p, q, c} x_padded[i, y*S + p, x*S + q, c] W[p, q, c, k]``

    Parameters
    ----------
    x : ndarray of shape (n, h, w, c_in)
    W : ndarray of shape (kernel_h, kernel_w, c_in, c_out)
    b : ndarray of shape (c_out,) or None
        None: no bias.
    stride, pad : int

    Returns
    -------
    out : ndarray of shape (n, out_h, out_w, c_out)
    cache : tuple
        Read by :func:`conv_backward`.
    """
    kh, kw, c_in, c_out = W.shape
    if x.shape[3] != c_in:
        raise ValueError(f"the convolution takes {c_in} input channels, got input of shape {x.shape}")
    n, h, w, _ = x.shape
    out_h, out_w = conv_output_size(h, kh, stride, pad), conv_output_size(w, kw, stride, pad)
    cols = im2col(x, kh, kw, stride, pad)
    out = cols @ W.reshape(kh * kw * c_in, c_out)  # the one large product: (n*out_h*out_w, c_out)
    if b is not None:
        out += b
    return out.reshape(n, out_h, out_w, c_out), (cols, x.shape, W, stride, pad)


def conv_backward(dout, cache, need_dx=True):
    """Backward pass of :func:`conv_forward`.

    ``dW`` is one matrix product with the cached ``im2col`` rows. ``dx`` is, for stride 1
    (and ``pad < kernel``), the forward convolution of ``dout`` padded by ``kernel - 1 - pad``
    with the kernel flipped and its channel axes swapped: one more im2col and matrix
    product, where the general route (the product ``dout @ W.T`` then :func:`col2im`)
    spends as long again adding its rows back (BENCHMARKS.md, "ConvNet"). Other strides
    take the general route.

    Returns
    -------
    dx : ndarray of shape (n, h, w, c_in), or None when ``need_dx`` is false
    grads : dict
        ``{"W": (kernel_h, kernel_w, c_in, c_out), "b": (c_out,)}``.
    """
    cols, x_shape, W, stride, pad = cache
    kh, kw, c_in, c_out = W.shape
    d2 = dout.reshape(-1, c_out)
    xp = array_module_of(dout)
    grads = {"W": (cols.T @ d2).reshape(W.shape), "b": _column_sums(d2)}
    if not need_dx:
        return None, grads
    if stride == 1 and pad < min(kh, kw) and kh == kw:
        flipped = W[::-1, ::-1].transpose(0, 1, 3, 2)
        return conv_forward(dout, xp.ascontiguousarray(flipped), None, 1, kh - 1 - pad)[0], grads
    dcols = d2 @ W.reshape(kh * kw * c_in, c_out).T
    return col2im(dcols, x_shape, kh, kw, stride, pad), grads


# ------------------------------------------------------------------------ pooling
def max_pool_forward(x, pool_h, pool_w, stride, train=True):
    """Max pooling over ``pool_h x pool_w`` windows moved by ``stride`` (no padding).

    The maximum over the ``pool_h * pool_w`` strided slices of ``x``, one per window
    offset: as many vectorized operations as the window has cells, whatever the stride.
    In training, the offset of each window's maximum is recorded for the backward pass
    (the first one in row-major order where several cells tie, as ``argmax`` picks).

    Parameters
    ----------
    x : ndarray of shape (n, h, w, c)
    train : bool, default=True
        False skips the record (inference) and returns no cache.

    Returns
    -------
    out : ndarray of shape (n, out_h, out_w, c)
    cache : tuple or None
        ``(argmax offsets (n, out_h, out_w, c) uint8, x.shape, pool_h, pool_w, stride)``.
    """
    xp = array_module_of(x)
    _, h, w, _ = x.shape
    out_h = conv_output_size(h, pool_h, stride, 0, "max pooling")
    out_w = conv_output_size(w, pool_w, stride, 0, "max pooling")
    out = arg = None
    for k in range(pool_h * pool_w):
        i, j = divmod(k, pool_w)
        window = x[:, i : i + stride * out_h : stride, j : j + stride * out_w : stride, :]
        if out is None:
            out = window.copy()
            arg = xp.zeros(out.shape, dtype=xp.uint8) if train else None
            continue
        if train:  # arg = k where this cell beats the maximum so far (k > arg: no wrap-around)
            arg += (window > out) * (xp.uint8(k) - arg)
        xp.maximum(out, window, out=out)
    return out, ((arg, x.shape, pool_h, pool_w, stride) if train else None)


def max_pool_backward(dout, cache):
    """Backward pass of :func:`max_pool_forward` (training mode): each window's gradient goes
    to the cell of its maximum.

    Returns
    -------
    dx : ndarray of shape (n, h, w, c)
    grads : dict
        Empty.
    """
    arg, x_shape, pool_h, pool_w, stride = cache
    xp = array_module_of(dout)
    _, out_h, out_w, _ = dout.shape
    # Windows that tile the input (stride = window) write every cell exactly once.
    tiling = stride == pool_h == pool_w
    dx = (xp.empty if tiling else xp.zeros)(x_shape, dtype=dout.dtype)
    for k in range(pool_h * pool_w):
        i, j = divmod(k, pool_w)
        cells = dx[:, i : i + stride * out_h : stride, j : j + stride * out_w : stride, :]
        if tiling:
            xp.multiply(dout, arg == k, out=cells)
        else:
            cells += dout * (arg == k)
    return dx, {}


# ------------------------------------------------------------ spatial batchnorm
def spatial_batchnorm_forward(x, gamma, beta, running_mean, running_var, train=True, momentum=0.9, eps=1e-5):
    """Batch normalization per channel over samples and positions (cs231n's spatial batchnorm).

    In channels-last layout the ``(n * h * w, channels)`` view of ``x`` (a reshape, no copy)
    is the input of :func:`classifiers.layers.batchnorm_forward`: the same arithmetic, its
    per-channel sums taken by :func:`_column_sums`. Training updates the running averages in
    place, as there.

    Parameters
    ----------
    x : ndarray of shape (n, h, w, channels)
    gamma, beta, running_mean, running_var : ndarray of shape (channels,)

    Returns
    -------
    out : ndarray of shape (n, h, w, channels)
    cache : tuple or None
        ``(x_hat (n * h * w, channels), gamma, inv_std)`` in training.
    """
    xp = array_module_of(x)
    x2 = x.reshape(-1, x.shape[-1])
    if not train:
        scale = gamma / xp.sqrt(running_var + eps)
        out = x2 * scale
        out += beta - running_mean * scale
        return out.reshape(x.shape), None
    m = x2.shape[0]
    mean = _column_sums(x2) / m
    x_hat = x2 - mean
    var = _column_sums(x_hat * x_hat) / m
    inv_std = 1 / xp.sqrt(var + eps)
    x_hat *= inv_std
    out = x_hat * gamma
    out += beta
    running_mean *= momentum
    running_mean += (1 - momentum) * mean
    running_var *= momentum
    running_var += (1 - momentum) * var
    return out.reshape(x.shape), (x_hat, gamma, inv_std)


def spatial_batchnorm_backward(dout, cache):
    """Backward pass of :func:`spatial_batchnorm_forward` (training), the closed form of
    :func:`classifiers.layers.batchnorm_backward` over the ``(n * h * w, channels)`` view.

    Returns
    -------
    dx : ndarray of shape (n, h, w, channels)
    grads : dict
        ``{"gamma": (channels,), "beta": (channels,)}``.
    """
    x_hat, gamma, inv_std = cache
    d2 = dout.reshape(-1, dout.shape[-1])
    m = d2.shape[0]
    dbeta = _column_sums(d2)
    dgamma = _column_sums(d2 * x_hat)
    dx = x_hat * dgamma
    dx += dbeta
    dx -= m * d2
    dx *= -(gamma * inv_std) / m
    return dx.reshape(dout.shape), {"gamma": dgamma, "beta": dbeta}


# ------------------------------------------------------------------ layer objects
class Conv2D:
    """``kernel x kernel`` convolution with ``out_channels`` filters, stride and zero padding.

    Parameters
    ----------
    in_channels, out_channels, kernel : int
    stride : int, default=1
    pad : int, default=0
    name : str
        Suffix of the parameter names: ``W{name}``, ``b{name}``.
    """

    def __init__(self, in_channels, out_channels, kernel, stride=1, pad=0, name="1"):
        self.in_channels, self.out_channels, self.kernel = in_channels, out_channels, kernel
        self.stride, self.pad = stride, pad
        self.names = {"W": f"W{name}", "b": f"b{name}"}

    def output_shape(self, shape):
        """``(out_h, out_w, out_channels)`` for an input ``(h, w, in_channels)`` (raises if it does not fit)."""
        h, w, c = shape
        if c != self.in_channels:
            raise ValueError(f"the convolution takes {self.in_channels} input channels, got {c}")
        return (conv_output_size(h, self.kernel, self.stride, self.pad),
                conv_output_size(w, self.kernel, self.stride, self.pad), self.out_channels)

    def param_shapes(self):
        """``{"W{name}": (F, F, C_in, C_out), "b{name}": (C_out,)}``."""
        return {self.names["W"]: (self.kernel, self.kernel, self.in_channels, self.out_channels),
                self.names["b"]: (self.out_channels,)}

    def forward(self, x, params, running=None, train=False, rng=None):
        return conv_forward(x, params[self.names["W"]], params[self.names["b"]], self.stride, self.pad)

    def backward(self, dout, cache, need_dx=True):
        dx, g = conv_backward(dout, cache, need_dx)
        return dx, {self.names[k]: v for k, v in g.items()}


class MaxPool2D:
    """Max pooling over ``pool x pool`` windows with ``stride`` (default: ``pool``, no overlap)."""

    names = {}

    def __init__(self, pool=2, stride=None):
        self.pool, self.stride = pool, pool if stride is None else stride

    def output_shape(self, shape):
        h, w, c = shape
        return (conv_output_size(h, self.pool, self.stride, 0, "max pooling"),
                conv_output_size(w, self.pool, self.stride, 0, "max pooling"), c)

    def param_shapes(self):
        return {}

    def forward(self, x, params=None, running=None, train=False, rng=None):
        return max_pool_forward(x, self.pool, self.pool, self.stride, train=train)

    def backward(self, dout, cache, need_dx=True):
        return max_pool_backward(dout, cache)


class BatchNorm2D:
    """Spatial batch normalization: one mean and variance per channel, over samples and
    positions (:func:`spatial_batchnorm_forward`).

    Parameters
    ----------
    channels : int
    name : str
        Suffix of ``gamma{name}``, ``beta{name}`` (params) and ``running_mean{name}``,
        ``running_var{name}`` (running).
    momentum : float, default=0.9
    eps : float, default=1e-5
    """

    def __init__(self, channels, name="1", momentum=0.9, eps=1e-5):
        self.channels, self.momentum, self.eps = channels, momentum, eps
        self.names = {"gamma": f"gamma{name}", "beta": f"beta{name}"}
        self.running_names = (f"running_mean{name}", f"running_var{name}")

    def output_shape(self, shape):
        return tuple(shape)

    def param_shapes(self):
        return {self.names["gamma"]: (self.channels,), self.names["beta"]: (self.channels,)}

    def forward(self, x, params, running, train=False, rng=None):
        mean, var = (running[k] for k in self.running_names)
        return spatial_batchnorm_forward(x, params[self.names["gamma"]], params[self.names["beta"]], mean, var,
                                         train=train, momentum=self.momentum, eps=self.eps)

    def backward(self, dout, cache, need_dx=True):
        dx, g = spatial_batchnorm_backward(dout, cache)
        return dx, {self.names[k]: v for k, v in g.items()}


class Dropout:
    """Inverted dropout of each unit with probability ``p`` in training; identity at inference."""

    names = {}

    def __init__(self, p):
        self.p = p

    def output_shape(self, shape):
        return tuple(shape)

    def param_shapes(self):
        return {}

    def forward(self, x, params=None, running=None, train=False, rng=None):
        if not train or self.p == 0:
            return x, None
        return dropout_forward(x, self.p, rng=rng)  # any shape: the mask is drawn like x

    def backward(self, dout, cache, need_dx=True):
        return (dout, {}) if cache is None else dropout_backward(dout, cache)


class Flatten:
    """``(n, h, w, c)`` -> ``(n, h * w * c)``, in the order of :class:`features.RawPixels`."""

    names = {}

    def output_shape(self, shape):
        size = 1
        for s in shape:
            size *= s
        return (size,)

    def param_shapes(self):
        return {}

    def forward(self, x, params=None, running=None, train=False, rng=None):
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, dout, cache, need_dx=True):
        return dout.reshape(cache), {}


class Affine:
    """Fully connected layer :func:`classifiers.layers.affine_forward` on ``W{name}``, ``b{name}``."""

    def __init__(self, n_in, n_out, name="1"):
        self.n_in, self.n_out = n_in, n_out
        self.names = {"W": f"W{name}", "b": f"b{name}"}

    def output_shape(self, shape):
        if tuple(shape) != (self.n_in,):
            raise ValueError(f"the affine layer takes {self.n_in} inputs, got shape {tuple(shape)}")
        return (self.n_out,)

    def param_shapes(self):
        return {self.names["W"]: (self.n_in, self.n_out), self.names["b"]: (self.n_out,)}

    def forward(self, x, params, running=None, train=False, rng=None):
        return affine_forward(x, params[self.names["W"]], params[self.names["b"]])

    def backward(self, dout, cache, need_dx=True):
        dx, g = affine_backward(dout, cache, need_dx)
        return dx, {self.names[k]: v for k, v in g.items()}


class Activation:
    """An activation of :data:`classifiers.layers.ACTIVATIONS`.

    Parameters
    ----------
    name : str, default="relu"
    inplace : bool, default=True
        Overwrite the input (the backward pass needs only the output). Safe after every
        layer here: none keeps its output in its cache.
    """

    names = {}

    def __init__(self, name="relu", inplace=True):
        if name not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
        self.name, self.inplace = name, inplace
        self._forward, self._backward = ACTIVATIONS[name]

    def output_shape(self, shape):
        return tuple(shape)

    def param_shapes(self):
        return {}

    def forward(self, x, params=None, running=None, train=False, rng=None):
        return self._forward(x, out=x if self.inplace else None)

    def backward(self, dout, cache, need_dx=True):
        return self._backward(dout, cache, out=dout)  # dout is the next layer's fresh gradient
