"""Slow, obvious references for the fast code of :mod:`classifiers`: the losses of
:mod:`classifiers.losses` (cs231n's ``*_loss_naive``) and the layers of
:mod:`classifiers.layers` and :mod:`classifiers.conv_layers` (convolution and max pooling).

Loops over samples and classes, and the step-by-step computational graph of batch
normalization (cs231n's ``batchnorm_backward``), written for reading, not for speed.
NumPy only. The tests hold each fast kernel equal to its reference on random input.
"""
from __future__ import annotations

import math

import numpy as np

from classifiers.losses import DELTA


def affine_forward_naive(x, W, b):
    """``out[i, k] = sum_j x[i, j] W[j, k] + b[k]``, one sample at a time. Shapes as in ``affine_forward``."""
    out = np.zeros((x.shape[0], W.shape[1]), dtype=np.result_type(x, W))
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i] += x[i, j] * W[j]
        out[i] += b
    return out


def affine_backward_naive(dout, x, W):
    """Gradients of :func:`affine_forward_naive` by accumulating one sample at a time.

    Returns
    -------
    dx : ndarray of shape (n_samples, n_in)
    dW : ndarray of shape (n_in, n_out)
    db : ndarray of shape (n_out,)
    """
    dx, dW, db = np.zeros_like(x), np.zeros_like(W), np.zeros(W.shape[1], dtype=dout.dtype)
    for i in range(x.shape[0]):
        dW += np.outer(x[i], dout[i])
        db += dout[i]
        dx[i] = W @ dout[i]
    return dx, dW, db


def batchnorm_forward_naive(x, gamma, beta, eps=1e-5):
    """Training-mode batch normalization, one feature column at a time.

    Returns ``out`` (n_samples, n_features) and the cache read by
    :func:`batchnorm_backward_naive`.
    """
    n, d = x.shape
    out = np.empty_like(x)
    mu, var = np.empty(d), np.empty(d)
    for j in range(d):
        mu[j] = sum(x[:, j]) / n
        var[j] = sum((x[:, j] - mu[j]) ** 2) / n
        out[:, j] = gamma[j] * (x[:, j] - mu[j]) / math.sqrt(var[j] + eps) + beta[j]
    return out, (x, gamma, mu, var, eps)


def batchnorm_backward_naive(dout, cache):
    """Backpropagate through the graph ``xc = x - mu; v = mean(xc**2); s = sqrt(v + eps);
    x_hat = xc / s; out = gamma x_hat + beta`` node by node.

    Returns
    -------
    dx : ndarray of shape (n_samples, n_features)
    dgamma, dbeta : ndarray of shape (n_features,)
    """
    x, gamma, mu, var, eps = cache
    n = x.shape[0]
    xc = x - mu
    s = np.sqrt(var + eps)
    x_hat = xc / s
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    dxc = dx_hat / s  # through x_hat = xc / s, first path
    ds = -(dx_hat * xc).sum(axis=0) / s**2  # through 1 / s
    dv = ds / (2 * s)  # s = sqrt(v + eps)
    dxc += 2 * xc * dv / n  # v = mean(xc ** 2), second path into xc
    dmu = -dxc.sum(axis=0)  # xc = x - mu
    dx = dxc + dmu / n  # mu = mean(x)
    return dx, dgamma, dbeta


def conv_forward_naive(x, W, b, stride=1, pad=0):
    """Convolution with a loop over samples, output positions and filters (cs231n's
    ``conv_forward_naive``, channels last): the reference for
    :func:`classifiers.conv_layers.conv_forward`.

    Parameters
    ----------
    x : ndarray of shape (n, h, w, c_in)
    W : ndarray of shape (kernel_h, kernel_w, c_in, c_out)
    b : ndarray of shape (c_out,)

    Returns
    -------
    out : ndarray of shape (n, out_h, out_w, c_out)
        ``out_h = (h - kernel_h + 2 pad) / stride + 1``, likewise ``out_w``.
    """
    n, h, w, _ = x.shape
    kh, kw, _, c_out = W.shape
    out_h, out_w = (h - kh + 2 * pad) // stride + 1, (w - kw + 2 * pad) // stride + 1
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    out = np.zeros((n, out_h, out_w, c_out), dtype=np.result_type(x, W))
    for i in range(n):
        for r in range(out_h):
            for c in range(out_w):
                field = xp[i, r * stride : r * stride + kh, c * stride : c * stride + kw, :]
                for k in range(c_out):
                    out[i, r, c, k] = np.sum(field * W[..., k]) + b[k]
    return out


def conv_backward_naive(dout, x, W, stride=1, pad=0):
    """Gradients of :func:`conv_forward_naive`, one output cell at a time.

    Returns
    -------
    dx : ndarray of shape (n, h, w, c_in)
    dW : ndarray of shape (kernel_h, kernel_w, c_in, c_out)
    db : ndarray of shape (c_out,)
    """
    n, h, w, _ = x.shape
    kh, kw, _, c_out = W.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dxp, dW, db = np.zeros_like(xp), np.zeros_like(W), np.zeros(c_out, dtype=dout.dtype)
    for i in range(n):
        for r in range(dout.shape[1]):
            for c in range(dout.shape[2]):
                rows, cols = slice(r * stride, r * stride + kh), slice(c * stride, c * stride + kw)
                for k in range(c_out):
                    g = dout[i, r, c, k]
                    dW[..., k] += g * xp[i, rows, cols, :]
                    dxp[i, rows, cols, :] += g * W[..., k]
                    db[k] += g
    return dxp[:, pad : pad + h, pad : pad + w, :], dW, db


def max_pool_forward_naive(x, pool_h, pool_w, stride):
    """Max pooling with a loop over samples, positions and channels (channels last).

    Returns
    -------
    out : ndarray of shape (n, out_h, out_w, c)
    """
    n, h, w, ch = x.shape
    out_h, out_w = (h - pool_h) // stride + 1, (w - pool_w) // stride + 1
    out = np.zeros((n, out_h, out_w, ch), dtype=x.dtype)
    for i in range(n):
        for r in range(out_h):
            for c in range(out_w):
                for k in range(ch):
                    out[i, r, c, k] = x[i, r * stride : r * stride + pool_h, c * stride : c * stride + pool_w, k].max()
    return out


def max_pool_backward_naive(dout, x, pool_h, pool_w, stride):
    """Gradient of :func:`max_pool_forward_naive`: each window's gradient to its ``argmax``
    (the first maximum in row-major order)."""
    dx = np.zeros_like(x)
    n, out_h, out_w, ch = dout.shape
    for i in range(n):
        for r in range(out_h):
            for c in range(out_w):
                for k in range(ch):
                    window = x[i, r * stride : r * stride + pool_h, c * stride : c * stride + pool_w, k]
                    p, q = np.unravel_index(np.argmax(window), window.shape)
                    dx[i, r * stride + p, c * stride + q, k] += dout[i, r, c, k]
    return dx


def softmax_scores_loss_naive(scores, y):
    """Softmax cross-entropy of ``scores`` with a loop over samples and classes (the reference
    for :func:`classifiers.losses.softmax_scores_loss`).

    Returns
    -------
    loss : float
    dscores : ndarray of shape (n_samples, n_classes)
    """
    n, c = scores.shape
    loss, dscores = 0.0, np.zeros_like(scores)
    for i in range(n):
        shift = max(scores[i])
        exps = [math.exp(scores[i, k] - shift) for k in range(c)]
        total = sum(exps)
        loss -= math.log(exps[y[i]] / total)
        for k in range(c):
            dscores[i, k] = (exps[k] / total - (k == y[i])) / n
    return loss / n, dscores


def svm_loss_naive(W, X, y, reg):
    """Multiclass hinge loss with explicit loops (the reference for :func:`classifiers.losses.svm_loss`).

    Same parameters and returns as :func:`classifiers.losses.svm_loss`; NumPy only. ``loss`` is a float.
    """
    W, X = np.asarray(W), np.asarray(X)
    n_samples, n_classes = X.shape[0], W.shape[1]
    loss, dW = 0.0, np.zeros_like(W)
    for i in range(n_samples):
        scores = X[i] @ W
        for j in range(n_classes):
            if j == y[i]:
                continue
            margin = scores[j] - scores[y[i]] + DELTA
            if margin > 0:
                loss += margin
                dW[:, j] += X[i]
                dW[:, y[i]] -= X[i]
    loss = loss / n_samples + reg * np.sum(W * W)
    dW = dW / n_samples + 2 * reg * W
    return float(loss), dW


def softmax_loss_naive(W, X, y, reg):
    """Softmax cross-entropy with explicit loops (the reference for :func:`classifiers.losses.softmax_loss`).

    Same parameters and returns as :func:`classifiers.losses.svm_loss`; NumPy only. ``loss`` is a float.
    """
    W, X = np.asarray(W), np.asarray(X)
    n_samples, n_classes = X.shape[0], W.shape[1]
    loss, dW = 0.0, np.zeros_like(W)
    for i in range(n_samples):
        scores = X[i] @ W
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        loss += math.log(total) - (scores[y[i]] - top)
        for j in range(n_classes):
            p = exps[j] / total
            dW[:, j] += (p - (j == y[i])) * X[i]
    loss = loss / n_samples + reg * np.sum(W * W)
    dW = dW / n_samples + 2 * reg * W
    return float(loss), dW


def shift_and_flip_naive(X, shape, dy, dx, mirror):
    """:func:`classifiers.augment.shift_and_flip` for given draws, one image at a time: the
    image padded by repeating its border, cut at the shifted window, then mirrored.

    ``dy``, ``dx`` (n_samples,) are the shifts (down, right), ``mirror`` (n_samples,) bools.
    """
    h, w, c = shape
    out = np.empty_like(X)
    for r in range(X.shape[0]):
        image = X[r].reshape(h, w, c)
        s = max(abs(int(dy[r])), abs(int(dx[r])))
        padded = np.pad(image, ((s, s), (s, s), (0, 0)), mode="edge")
        top, left = s - int(dy[r]), s - int(dx[r])
        moved = padded[top : top + h, left : left + w]
        out[r] = (moved[:, ::-1] if mirror[r] else moved).reshape(-1)
    return out
