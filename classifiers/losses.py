"""Loss functions of the linear classifiers, with their gradients (cs231n's ``linear_svm.py``
and ``softmax.py``).

Every loss comes in three forms:

- ``*_loss_naive(W, X, y, reg)`` in :mod:`classifiers._reference`: explicit loops over
  samples and classes; slow and obvious, kept as the test oracle.
- ``*_loss(W, X, y, reg)``: the vectorized version of the same function.
- ``*_scores_loss(scores, y)``: the data part only, as a function of the class scores;
  the estimators call it with ``scores = X @ W + b`` and chain the gradient themselves.

Conventions (cs231n's): ``W`` has shape ``(n_features, n_classes)``, ``y`` holds class
indices in ``0 .. n_classes - 1``, and the loss is the *mean* data loss over the samples
plus ``reg * sum(W * W)`` (no factor 0.5, so the regularization gradient is ``2 * reg * W``).
The vectorized functions work on NumPy and CuPy arrays alike (the module of ``scores`` or
``W`` does the arithmetic) and keep the dtype of their inputs.
"""
from __future__ import annotations

import numpy as np

from compute.backend import array_module_of

#: Multiclass hinge margin (Weston-Watkins): a wrong class costs ``max(0, s_j - s_y + DELTA)``.
DELTA = 1.0


def _with_l2(data_loss, dscores, W, X, reg):
    """Chain ``dscores`` through ``scores = X @ W`` and add ``reg * sum(W * W)``."""
    xp = array_module_of(W)
    loss = data_loss + reg * xp.sum(W * W)
    dW = X.T @ dscores + (2 * reg) * W
    return loss, dW


def svm_scores_loss(scores, y):
    """Mean multiclass hinge loss of ``scores`` and its gradient with respect to them.

    Parameters
    ----------
    scores : ndarray of shape (n_samples, n_classes)
    y : ndarray of int of shape (n_samples,)
        The index of the correct class of each sample.

    Returns
    -------
    loss : 0-d array
        ``mean_i sum_{j != y_i} max(0, s_ij - s_iy_i + 1)``.
    dscores : ndarray of shape (n_samples, n_classes)
        A subgradient: where a margin is exactly 0 the hinge counts as inactive.
    """
    xp = array_module_of(scores)
    n = scores.shape[0]
    rows = xp.arange(n)
    correct = scores[rows, y][:, None]
    margins = xp.maximum(scores - correct + DELTA, 0)
    margins[rows, y] = 0
    active = (margins > 0).astype(scores.dtype)
    active[rows, y] = -active.sum(axis=1)
    return margins.sum() / n, active / n


def softmax_scores_loss(scores, y):
    """Mean cross-entropy of the softmax of ``scores`` and its gradient.

    The row maximum is subtracted before exponentiating, so huge scores neither overflow
    nor produce NaN.

    Parameters
    ----------
    scores : ndarray of shape (n_samples, n_classes)
    y : ndarray of int of shape (n_samples,)

    Returns
    -------
    loss : 0-d array
        ``mean_i (log sum_j exp(s_ij) - s_iy_i)``.
    dscores : ndarray of shape (n_samples, n_classes)
        ``(softmax(scores) - onehot(y)) / n_samples``.

    Notes
    -----
    One pass computes the same quantities: a compiled loop on C-contiguous NumPy floats
    (``classifiers._softmax_cpu``), a kernel on CuPy floats (``classifiers._softmax_gpu``).
    :func:`softmax_scores_loss_arrays` is their reference.
    """
    if _fused_cpu(scores):
        from classifiers._softmax_cpu import softmax_loss_grad  # compiled on first use

        loss, dscores = softmax_loss_grad(scores, y)
        return np.asarray(loss, dtype=scores.dtype), dscores
    if _fused_gpu(scores):
        from classifiers._softmax_gpu import softmax_loss_grad_gpu

        return softmax_loss_grad_gpu(scores, y)
    return softmax_scores_loss_arrays(scores, y)


def softmax_scores_loss_arrays(scores, y):
    """:func:`softmax_scores_loss` in whole-array operations (NumPy or CuPy): the reference
    of the one-pass forms, and the route for anything they do not take."""
    xp = array_module_of(scores)
    n = scores.shape[0]
    rows = xp.arange(n)
    shifted = scores - scores.max(axis=1, keepdims=True)
    probs = xp.exp(shifted)
    sums = probs.sum(axis=1)
    loss = (xp.log(sums) - shifted[rows, y]).sum() / n
    probs /= sums[:, None]  # in place: the softmax becomes the gradient without new arrays
    probs[rows, y] -= 1
    probs /= n
    return loss, probs


def _fused_cpu(scores):
    """Whether the compiled CPU loss can take ``scores`` (2-D C-contiguous NumPy floats)."""
    return (isinstance(scores, np.ndarray) and scores.ndim == 2 and scores.flags.c_contiguous
            and scores.dtype.kind == "f" and scores.shape[0] > 0 and scores.shape[1] > 0)


def _fused_gpu(scores):
    """Whether the GPU kernel can take ``scores`` (2-D CuPy float32/float64, not empty)."""
    return (array_module_of(scores) is not np and scores.ndim == 2 and scores.dtype.kind == "f"
            and scores.dtype.itemsize in (4, 8) and scores.shape[0] > 0 and scores.shape[1] > 0)


def softmax(scores):
    """Row-wise softmax of ``scores`` (n_samples, n_classes), shifted by the row maximum
    so ``exp`` cannot overflow. Returns a new array of the same shape."""
    xp = array_module_of(scores)
    probs = scores - scores.max(axis=1, keepdims=True)
    xp.exp(probs, out=probs)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs


def svm_loss(W, X, y, reg):
    """Multiclass hinge loss, vectorized.

    Parameters
    ----------
    W : ndarray of shape (n_features, n_classes)
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of int of shape (n_samples,)
    reg : float
        L2 strength: ``reg * sum(W * W)`` is added.

    Returns
    -------
    loss : 0-d array
    dW : ndarray of shape (n_features, n_classes)
    """
    data_loss, dscores = svm_scores_loss(X @ W, y)
    return _with_l2(data_loss, dscores, W, X, reg)


def softmax_loss(W, X, y, reg):
    """Softmax cross-entropy loss, vectorized; same parameters and returns as :func:`svm_loss`."""
    data_loss, dscores = softmax_scores_loss(X @ W, y)
    return _with_l2(data_loss, dscores, W, X, reg)
