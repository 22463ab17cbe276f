"""Pieces of mini-batch training shared by the linear models and the neural net."""
from __future__ import annotations

import numbers

import numpy as np


def minibatches(n_samples, batch_size, rng, xp=np):
    """Yield index arrays covering a shuffled epoch in batches of ``batch_size``.

    Parameters
    ----------
    n_samples : int
    batch_size : int
        Clipped to ``n_samples``.
    rng : numpy.random.Generator
        Draws the permutation; the same generator state gives the same batches.
    xp : module, default=numpy
        Where the index arrays live. For CuPy the epoch's permutation is copied to the
        GPU once and sliced there (a copy per batch cost more than the batch's work).
    """
    order = rng.permutation(n_samples)
    if xp is not np:
        order = xp.asarray(order)
    step = max(1, min(int(batch_size), n_samples))
    for start in range(0, n_samples, step):
        yield order[start : start + step]


def decayed_learning_rate(learning_rate, decay, epoch):
    """Step decay per epoch: ``learning_rate * decay ** epoch``."""
    return learning_rate * decay ** epoch


def _real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_training_params(est):
    """Validate the hyperparameters the SGD-trained estimators share; errors say what arrived."""
    checks = [
        ("learning_rate", est.learning_rate, lambda v: _real(v) and v > 0, "a positive number"),
        ("reg", est.reg, lambda v: _real(v) and v >= 0, "a number >= 0"),
        ("batch_size", est.batch_size, lambda v: _integer(v) and v >= 1, "an integer >= 1"),
        ("n_epochs", est.n_epochs, lambda v: _integer(v) and v >= 1, "an integer >= 1"),
        ("learning_rate_decay", est.learning_rate_decay, lambda v: _real(v) and 0 < v <= 1, "a number in (0, 1]"),
    ]
    for name, value, ok, expected in checks:
        if not ok(value):
            raise ValueError(f"{name} must be {expected}, got {value!r}")
