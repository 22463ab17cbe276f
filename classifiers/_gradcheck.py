"""Centered numerical gradients, for checking backward passes (cs231n's ``gradient_check``)."""
from __future__ import annotations

import numpy as np


def numerical_gradient(f, x, h=1e-5):
    """Gradient of the scalar function ``f()`` with respect to the array ``x``.

    ``x`` is perturbed in place (and restored): ``f`` must read it. Centered
    differences, ``(f(x + h) - f(x - h)) / 2h`` per entry.

    Parameters
    ----------
    f : callable
        No arguments, returns a float.
    x : ndarray of float64, any shape
    h : float, default=1e-5

    Returns
    -------
    grad : ndarray, shape of ``x``
    """
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + h
        plus = float(f())
        x[index] = old - h
        minus = float(f())
        x[index] = old
        grad[index] = (plus - minus) / (2 * h)
    return grad


def numerical_gradient_array(f, x, dout, h=1e-5):
    """Gradient of ``sum(f() * dout)`` with respect to ``x``: a vector-Jacobian product.

    Parameters
    ----------
    f : callable
        No arguments, returns an array shaped like ``dout``; it must read ``x``.
    x : ndarray of float64, any shape
    dout : ndarray
        The upstream gradient.
    h : float, default=1e-5

    Returns
    -------
    grad : ndarray, shape of ``x``
    """
    return numerical_gradient(lambda: np.sum(np.asarray(f()) * dout), x, h)


def relative_error(a, b, floor=1e-8):
    """Largest entrywise ``|a - b| / max(floor, |a| + |b|)``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(floor, np.abs(a) + np.abs(b)), initial=0.0))
