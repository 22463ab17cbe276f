"""The network behind :class:`classifiers.net.TwoLayerNet`: a stack of layers whose
parameters and gradients live in name-keyed dicts (cs231n's ``FullyConnectedNet``).

Architecture, for ``L = len(hidden_sizes) + 1`` affine layers::

    {affine - [batchnorm] - activation - [dropout]} x (L - 1) - affine - softmax

Names: layer ``i`` (1-based) has ``W{i}``, ``b{i}`` and, with batch normalization,
``gamma{i}``, ``beta{i}`` in ``params``, and ``running_mean{i}``, ``running_var{i}`` in
``running`` (not trained by gradient, so kept apart from ``params``). ``grads`` uses the
keys of ``params``. The arrays may be NumPy or CuPy; the network never moves them.
"""
from __future__ import annotations

import numpy as np

from classifiers.layers import (
    ACTIVATIONS,
    affine_backward,
    affine_forward,
    batchnorm_backward,
    batchnorm_forward,
    dropout_backward,
    dropout_forward,
)
from classifiers.losses import softmax_scores_loss
from compute.backend import array_module_of

WEIGHT_INITS = ("he", "xavier")


def init_std(weight_init, fan_in, fan_out):
    """The standard deviation of a weight matrix's initial normal values: ``"he"``
    (sqrt(2 / fan_in), for ReLU), ``"xavier"`` (sqrt(2 / (fan_in + fan_out))) or a number."""
    if weight_init == "he":
        return np.sqrt(2.0 / fan_in)
    if weight_init == "xavier":
        return np.sqrt(2.0 / (fan_in + fan_out))
    return float(weight_init)


def init_params(layer_sizes, weight_init, batchnorm, rng, dtype):
    """Initial parameters and running statistics, as NumPy arrays.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``(n_features, *hidden_sizes, n_classes)``.
    weight_init : {"he", "xavier"} or float
        Standard deviation of the normal weights: ``sqrt(2 / fan_in)`` for "he" (suits
        ReLU-like activations), ``sqrt(2 / (fan_in + fan_out))`` for "xavier" (Glorot;
        suits tanh and sigmoid), or the given number. Biases start at 0, ``gamma`` at 1,
        ``beta`` at 0, running means at 0 and running variances at 1.
    batchnorm : bool
    rng : numpy.random.Generator
    dtype : numpy dtype

    Returns
    -------
    params, running : dict of str -> ndarray
    """
    params, running = {}, {}
    n_layers = len(layer_sizes) - 1
    for i, (fan_in, fan_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:]), start=1):
        std = init_std(weight_init, fan_in, fan_out)
        params[f"W{i}"] = (std * rng.standard_normal((fan_in, fan_out))).astype(dtype)
        params[f"b{i}"] = np.zeros(fan_out, dtype=dtype)
        if batchnorm and i < n_layers:
            params[f"gamma{i}"] = np.ones(fan_out, dtype=dtype)
            params[f"beta{i}"] = np.zeros(fan_out, dtype=dtype)
            running[f"running_mean{i}"] = np.zeros(fan_out, dtype=dtype)
            running[f"running_var{i}"] = np.ones(fan_out, dtype=dtype)
    return params, running


class FullyConnectedNet:
    """Forward and backward passes over parameters owned in name-keyed dicts.

    Parameters
    ----------
    params : dict of str -> ndarray
        From :func:`init_params` (or a trained network); updated in place by optimizers.
    running : dict of str -> ndarray
        Batch-normalization running averages; updated in place in training.
    activation : {"relu", "leaky_relu", "tanh", "sigmoid", "elu"}
    dropout : float in [0, 1)
        Drop probability of the hidden units in training; 0 turns dropout off.
    reg : float
        L2 strength: the loss adds ``reg * sum(W ** 2)`` over the weight matrices (not
        biases, ``gamma`` or ``beta``), the gradients ``2 * reg * W``: cs231n's convention,
        the one of the linear models (:mod:`classifiers.losses`).
    bn_momentum : float
        Momentum of the running averages.
    """

    def __init__(self, params, running, activation="relu", dropout=0.0, reg=0.0, bn_momentum=0.9):
        self.params, self.running = params, running
        self.activation, self.dropout, self.reg, self.bn_momentum = activation, dropout, reg, bn_momentum
        self.n_layers = sum(1 for name in params if name.startswith("W"))
        self.batchnorm = "gamma1" in params

    def scores(self, X, train=False, rng=None):
        """Class scores (logits) of ``X``, shape (n_samples, n_classes).

        Inference (``train=False``) uses the batch-normalization running averages and no
        dropout. Training uses batch statistics (updating the running averages) and
        draws dropout masks from ``rng``.
        """
        return self._forward(X, train, rng)[0]

    def loss(self, X, y, rng=None, l2_grads=True):
        """Training-mode loss on a batch and the gradients of every parameter.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of int of shape (n_samples,)
            Class indices.
        rng : numpy.random.Generator or cupy.random.Generator, optional
            Draws the dropout masks (needed when ``dropout > 0``).
        l2_grads : bool, default=True
            Add the L2 term ``2 * reg * W`` to the weight gradients. Training passes False and
            hands :meth:`l2_strengths` to the optimizer, which adds the term in its own
            pass over the weights (see :meth:`classifiers.optim.SGD.step`).

        Returns
        -------
        loss : scalar
            Mean cross-entropy plus the L2 penalty (a 0-d array on the GPU).
        grads : dict of str -> ndarray
            Same keys and shapes as ``params``.
        """
        scores, caches = self._forward(X, True, rng)
        loss, dscores = softmax_scores_loss(scores, y)  # the linear models' loss: one piece of code
        grads = self._backward(dscores, caches)
        if self.reg > 0:
            xp = array_module_of(scores)
            for i in range(1, self.n_layers + 1):
                W = self.params[f"W{i}"]
                loss = loss + self.reg * xp.vdot(W, W)
                if l2_grads:
                    grads[f"W{i}"] += (2 * self.reg) * W
        return loss, grads

    def l2_strengths(self):
        """``{"W1": 2 * reg, ...}``: the factors of the L2 gradient terms :meth:`loss` leaves out
        with ``l2_grads=False`` (the gradient of ``reg * sum(W ** 2)`` is ``2 * reg * W``)."""
        return {f"W{i}": 2 * self.reg for i in range(1, self.n_layers + 1)} if self.reg > 0 else None

    def _forward(self, X, train, rng):
        p, forward = self.params, ACTIVATIONS[self.activation][0]
        h, caches = X, []
        for i in range(1, self.n_layers):
            h, affine_cache = affine_forward(h, p[f"W{i}"], p[f"b{i}"])
            bn_cache = drop_cache = None
            if self.batchnorm:
                h, bn_cache = batchnorm_forward(
                    h, p[f"gamma{i}"], p[f"beta{i}"], self.running[f"running_mean{i}"],
                    self.running[f"running_var{i}"], train=train, momentum=self.bn_momentum)
            h, act_cache = forward(h, out=h)  # in place: nothing else holds h
            if train and self.dropout > 0:
                # Not in place: the activation's cache is its output.
                h, drop_cache = dropout_forward(h, self.dropout, rng=rng)
            caches.append((affine_cache, bn_cache, act_cache, drop_cache))
        last = self.n_layers
        scores, affine_cache = affine_forward(h, p[f"W{last}"], p[f"b{last}"])
        caches.append(affine_cache)
        return scores, caches

    def _backward(self, dscores, caches):
        backward, grads, last = ACTIVATIONS[self.activation][1], {}, self.n_layers
        dh, g = affine_backward(dscores, caches[-1], need_dx=last > 1)
        grads[f"W{last}"], grads[f"b{last}"] = g["W"], g["b"]
        for i in range(last - 1, 0, -1):
            affine_cache, bn_cache, act_cache, drop_cache = caches[i - 1]
            if drop_cache is not None:
                dh, _ = dropout_backward(dh, drop_cache, out=dh)
            dh, _ = backward(dh, act_cache, out=dh)  # dh is a fresh product: in place is safe
            if bn_cache is not None:
                dh, g = batchnorm_backward(dh, bn_cache)
                grads[f"gamma{i}"], grads[f"beta{i}"] = g["gamma"], g["beta"]
            dh, g = affine_backward(dh, affine_cache, need_dx=i > 1)
            grads[f"W{i}"], grads[f"b{i}"] = g["W"], g["b"]
        return grads
