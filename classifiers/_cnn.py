"""The network behind :class:`classifiers.convnet.ConvNet`: a stack of layers of
:mod:`classifiers.conv_layers` whose parameters and gradients live in name-keyed dicts,
with the interface of :class:`classifiers._fcnet.FullyConnectedNet` (``scores``, ``loss``,
``l2_strengths``, ``params``, ``running``), so the same training loop drives both.

Architecture, for ``filters = (f_1, ..., f_K)`` and ``hidden_sizes = (h_1, ..., h_M)``::

    {conv k_i x k_i x f_i (stride 1, "same" zero padding (k_i - 1) / 2) - [batchnorm] - [max pool]
     - activation} x K - flatten - {affine h_j - activation - [dropout]} x M - affine n_classes

The activation comes after the pooling, not before as usually drawn: every activation
here is non-decreasing, so it commutes with the maximum and the function is the same,
computed on a quarter of the values (2 x 2 pooling).

A pooling layer follows a convolution block where its window tiles the map (both sides
multiples of ``pool_size``); where it does not (a 7 x 7 map and 2 x 2 windows, or the
1 x 1 maps of features without an image shape) it is left out, and the description
:func:`build_layers` returns (``ConvNet.architecture_``) says so.

Names: convolution ``i`` has ``W{i}``, ``b{i}`` and, with batch normalization,
``gamma{i}``, ``beta{i}`` (params) and ``running_mean{i}``, ``running_var{i}`` (running);
the affine layers continue the numbering (``W{K+1}`` ...). Every weight's name starts
with ``W``: the L2 penalty and the update-ratio history take them by that prefix.
"""
from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from joblib import effective_n_jobs
from threadpoolctl import threadpool_limits

from classifiers._fcnet import init_std
from classifiers.conv_layers import (
    Activation,
    Affine,
    BatchNorm2D,
    Conv2D,
    Dropout,
    Flatten,
    MaxPool2D,
)
from classifiers.losses import softmax_scores_loss
from compute.backend import array_module_of

#: Rows per forward pass at inference: bounds the memory of the im2col buffers.
INFERENCE_BATCH = 256
#: With several threads, a training batch goes through the layers in shares of at most
#: this many rows, one share a thread at a time, whose gradients add up to the batch's
#: (BENCHMARKS.md, "ConvNet": on 2 threads, 3,346-3,507 training images/s with whole
#: batches of 64, 3,764-5,117 in shares of 32; on one thread shares gain nothing).
SHARE_ROWS = 32


def build_layers(input_shape, filters, kernel_sizes, pool_size, hidden_sizes, n_classes,
                 activation="relu", batchnorm=False, dropout=0.0):
    """The layers of the network and a line describing each.

    Parameters
    ----------
    input_shape : tuple (height, width, channels)
    filters, kernel_sizes : sequence of int, same length
        Output channels and kernel side of each convolution.
    pool_size : int
        Side (and stride) of the max-pooling windows; 1 leaves pooling out.
    hidden_sizes : sequence of int
    n_classes : int
    activation : str
    batchnorm : bool
    dropout : float

    Returns
    -------
    layers : list
    description : list of str
        ``"conv 5x5, 1 -> 16 channels: 28x28x16, 416 parameters"`` ...

    Raises
    ------
    ValueError
        Lengths that differ, or a layer whose sizes do not fit (the message names them).
    """
    if len(filters) != len(kernel_sizes):
        raise ValueError(f"filters and kernel_sizes need one entry per convolution, got {len(filters)} "
                         f"filters {tuple(filters)} and {len(kernel_sizes)} kernel sizes {tuple(kernel_sizes)}")
    layers, lines, shape = [], [], tuple(int(s) for s in input_shape)
    for i, (f, k) in enumerate(zip(filters, kernel_sizes), start=1):
        conv = Conv2D(shape[2], int(f), int(k), stride=1, pad=(int(k) - 1) // 2, name=str(i))
        shape = conv.output_shape(shape)
        count = sum(int(np.prod(s)) for s in conv.param_shapes().values())
        lines.append(f"conv {k}x{k}, {conv.in_channels} -> {f} channels: {_side(shape)}, {count} parameters")
        layers.append(conv)
        if batchnorm:
            layers.append(BatchNorm2D(int(f), name=str(i)))
            lines.append(f"batchnorm over {f} channels: {2 * int(f)} parameters")
        if pool_size > 1 and _tiles(shape, pool_size):
            layers.append(MaxPool2D(pool_size))
            shape = layers[-1].output_shape(shape)
            lines.append(f"max pool {pool_size}x{pool_size}: {_side(shape)}")
        elif pool_size > 1:
            lines.append(f"(no max pool: {pool_size}x{pool_size} windows do not tile a {shape[0]}x{shape[1]} map)")
        layers.append(Activation(activation))
    layers.append(Flatten())
    width = layers[-1].output_shape(shape)[0]
    sizes = [width, *(int(h) for h in hidden_sizes), int(n_classes)]
    first = len(filters) + 1
    for j, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Affine(n_in, n_out, name=str(first + j)))
        lines.append(f"affine {n_in} -> {n_out}: {n_in * n_out + n_out} parameters")
        if j < len(sizes) - 2:
            layers.append(Activation(activation))
            if dropout > 0:
                layers.append(Dropout(dropout))
    return layers, lines


def _tiles(shape, pool):
    return shape[0] % pool == 0 and shape[1] % pool == 0 and min(shape[:2]) >= pool


def _side(shape):
    return "x".join(str(s) for s in shape)


def init_params(layers, weight_init, rng, dtype):
    """Initial parameters and running statistics of ``layers``, as NumPy arrays.

    Weights are normal with std ``sqrt(2 / fan_in)`` ("he"), ``sqrt(2 / (fan_in + fan_out))``
    ("xavier") or the given number, where a convolution's fan-in is ``F * F * C_in`` and its
    fan-out ``F * F * C_out``; biases and ``beta`` start at 0, ``gamma`` at 1, running
    means at 0 and running variances at 1.

    Returns
    -------
    params, running : dict of str -> ndarray
    """
    params, running = {}, {}
    for layer in layers:
        for name, shape in layer.param_shapes().items():
            if name.startswith("W"):
                fan_in = int(np.prod(shape[:-1]))
                fan_out = int(np.prod(shape[:-2])) * shape[-1]
                std = init_std(weight_init, fan_in, fan_out)
                params[name] = (std * rng.standard_normal(shape)).astype(dtype)
            else:
                params[name] = (np.ones if name.startswith("gamma") else np.zeros)(shape, dtype=dtype)
        for name in getattr(layer, "running_names", ()):
            running[name] = (np.zeros if name.startswith("running_mean") else np.ones)(layer.channels, dtype=dtype)
    return params, running


class ConvolutionalNet:
    """Forward and backward passes over parameters owned in name-keyed dicts.

    Parameters
    ----------
    layers : list
        From :func:`build_layers`.
    params, running : dict of str -> ndarray
        From :func:`init_params` (or a trained network); updated in place in training.
    input_shape : tuple (height, width, channels)
        The rows of ``X`` are images of this shape, flattened in (height, width, channels) order.
    reg : float
        L2 strength: the loss adds ``reg * sum(W ** 2)`` over every weight (convolutions
        and affine layers), the gradients ``2 * reg * W``.
    executor : concurrent.futures.Executor, optional
        Threads (:func:`share_threads`) that run the shares of a training batch and the
        chunks of ``scores`` at once; None: one thread, whole batches. NumPy arrays only.

    Notes
    -----
    With an executor, a training batch of more than :data:`SHARE_ROWS` rows is cut into
    even shares of at most that many; each goes forward on a thread, the loss is taken on
    all the scores together, each share goes back on a thread, and the shares' gradients
    are added in share order. In exact arithmetic that is the batch's gradient; in float32
    the sums run in another order (a test holds them equal to float32's precision).
    Dropout draws each share's mask from a generator spawned for it. Batch normalization
    needs the statistics of the whole batch, so a network with it takes its batches whole.
    """

    def __init__(self, layers, params, running, input_shape, reg=0.0, executor=None):
        self.layers, self.params, self.running = layers, params, running
        self.input_shape, self.reg, self.executor = tuple(input_shape), reg, executor
        self._whole_batches = any(isinstance(layer, BatchNorm2D) for layer in layers)

    def scores(self, X, train=False, rng=None):
        """Class scores (logits) of ``X`` (n_samples, h * w * c), shape (n_samples, n_classes).

        At inference (``train=False``) the rows go through in chunks of ``INFERENCE_BATCH``.
        """
        if train:
            return self._forward(X, True, rng)[0]
        xp = array_module_of(X)
        if X.shape[0] <= INFERENCE_BATCH:
            return self._forward(X, False, None)[0]
        chunks = [slice(s, s + INFERENCE_BATCH) for s in range(0, X.shape[0], INFERENCE_BATCH)]
        return xp.concatenate(self._map(lambda rows: self._forward(X[rows], False, None)[0], chunks))

    def loss(self, X, y, rng=None, l2_grads=True):
        """Training-mode mean cross-entropy on a batch plus the L2 penalty, and the gradients.

        Same parameters and returns as :meth:`classifiers._fcnet.FullyConnectedNet.loss`;
        the batch goes through in shares (see the class's notes).
        """
        xp = array_module_of(X)
        shares = self._shares(X.shape[0], xp)
        if len(shares) == 1:
            scores, caches = self._forward(X, True, rng)
            loss, dscores = softmax_scores_loss(scores, y)
            grads = self._backward(dscores, caches)
        else:
            rngs = [None] * len(shares) if rng is None else rng.spawn(len(shares))
            outs = self._map(lambda rows, r: self._forward(X[rows], True, r), shares, rngs)
            loss, dscores = softmax_scores_loss(xp.concatenate([scores for scores, _ in outs]), y)
            parts = self._map(lambda rows, out: self._backward(dscores[rows], out[1]), shares, outs)
            grads = parts[0]
            for part in parts[1:]:
                for name, g in part.items():
                    grads[name] += g
        if self.reg > 0:
            for name in self._weights():
                W = self.params[name]
                loss = loss + self.reg * xp.vdot(W, W)
                if l2_grads:
                    grads[name] += (2 * self.reg) * W
        return loss, grads

    def l2_strengths(self):
        """``{"W1": 2 * reg, ...}`` for every weight, or None without L2 (see ``loss(l2_grads=False)``)."""
        return {name: 2 * self.reg for name in self._weights()} if self.reg > 0 else None

    def _weights(self):
        return [name for name in self.params if name.startswith("W")]

    def _shares(self, n, xp):
        """The row slices a training batch of ``n`` rows goes through in: even shares of at
        most :data:`SHARE_ROWS` on the executor's threads; the whole batch without one, on
        a GPU or with batchnorm."""
        if self.executor is None or xp is not np or self._whole_batches or n <= SHARE_ROWS:
            return [slice(0, n)]
        k = -(-n // SHARE_ROWS)
        bounds = [round(i * n / k) for i in range(k + 1)]
        return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]

    def _map(self, fn, *iterables):
        """``list(map(fn, ...))``, on the executor's threads when there is one."""
        if self.executor is None:
            return list(map(fn, *iterables))
        return list(self.executor.map(fn, *iterables))

    def _forward(self, X, train, rng):
        h = X.reshape(X.shape[0], *self.input_shape)
        caches = []
        for layer in self.layers:
            h, cache = layer.forward(h, self.params, self.running, train, rng)
            caches.append(cache)
        return h, caches

    def _backward(self, dscores, caches):
        grads, dh = {}, dscores
        for index in range(len(self.layers) - 1, -1, -1):
            dh, g = self.layers[index].backward(dh, caches[index], need_dx=index > 0)
            grads.update(g)
        return grads


class _OneThreadBLAS:
    """BLAS on one thread while any holder is inside, as it was once the last one leaves.

    threadpoolctl's limit is process-wide: two ConvNets predicting at once in one process
    (the service's request threads) would each save the limit they find and restore it on
    leaving, and the later one to leave would put back the first one's one thread for good.
    Here the first holder sets the limit and the last restores it, under a lock.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._holders = 0
        self._limiter = None

    def __enter__(self):
        with self._lock:
            if self._holders == 0:
                self._limiter = threadpool_limits(1, user_api="blas")
            self._holders += 1
        return self

    def __exit__(self, *exc_info):
        with self._lock:
            self._holders -= 1
            if self._holders == 0:
                self._limiter.restore_original_limits()
                self._limiter = None


_ONE_THREAD_BLAS = _OneThreadBLAS()


@contextlib.contextmanager
def share_threads(n_jobs, xp):
    """The executor of a :class:`ConvolutionalNet` for ``n_jobs`` threads (joblib's meaning:
    None one, -1 every core): a thread pool, and BLAS on one thread each while it lives
    (two callers of a multi-threaded OpenBLAS queue on its one pool); None for one thread
    or a GPU. The BLAS limit is the process's: it holds while any pool of any thread lives,
    and is undone when the last one ends (:class:`_OneThreadBLAS`).

    Yields
    ------
    concurrent.futures.ThreadPoolExecutor or None
    """
    n = effective_n_jobs(n_jobs) if xp is np else 1
    if n <= 1:
        yield None
        return
    with _ONE_THREAD_BLAS, ThreadPoolExecutor(n, thread_name_prefix="convnet") as pool:
        yield pool


def infer_input_shape(n_features):
    """The image shape of ``n_features`` flattened pixels when none is given.

    ``s * s`` features are an ``s x s`` grayscale image, ``3 * s * s`` an ``s x s`` color
    one (never both: 3 is not a square); any other count is a 1 x 1 image with
    ``n_features`` channels, on which every convolution sees one position and the network
    is a fully connected one (the pooling layers are left out).

    Returns
    -------
    tuple (height, width, channels)
    """
    for channels in (1, 3):
        if n_features % channels == 0:
            side = int(round(np.sqrt(n_features // channels)))
            if side * side * channels == n_features:
                return (side, side, channels)
    return (1, 1, int(n_features))


def check_input_shape(input_shape, n_features):
    """``input_shape`` (h, w) or (h, w, c) as (h, w, c), checked against the feature count.

    Raises
    ------
    ValueError
        When ``h * w * c`` is not ``n_features`` (and, for (h, w), ``n_features`` is not a
        multiple of ``h * w``).
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 2:
        h, w = shape
        if n_features % (h * w):
            raise ValueError(f"input_shape {shape} takes a multiple of {h}*{w} = {h * w} features, "
                             f"got {n_features}")
        shape = (h, w, n_features // (h * w))
    if int(np.prod(shape)) != n_features:
        raise ValueError(f"input_shape {shape} takes {int(np.prod(shape))} features (height*width*channels), "
                         f"got {n_features}")
    return shape
