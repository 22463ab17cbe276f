"""Pairwise L1/L2 distances and k-nearest-neighbour search, tiled to a memory budget.

The kNN classifier and the bag-of-visual-words codebook assignment share these
kernels. ``pairwise_distances_reference`` is the slow, obvious two-loop version
(cs231n's ``compute_distances_two_loops``) that the tests hold the fast one to.
"""
from __future__ import annotations

import logging
import math

import numpy as np

from compute.backend import get_array_module, to_device, to_numpy

logger = logging.getLogger(__name__)

METRICS = ("l1", "l2")
DEFAULT_MEMORY_BUDGET = 256 * 2**20  # bytes for one distance tile on the CPU
GPU_MEMORY_BUDGET = 2 * 2**30  # on the GPU, or a quarter of its free memory when that is less


def _check_metric(metric):
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")


def _check_pair(X, Y):
    X = np.asarray(X) if not hasattr(X, "__cuda_array_interface__") else X
    Y = np.asarray(Y) if not hasattr(Y, "__cuda_array_interface__") else Y
    if X.ndim != 2 or Y.ndim != 2:
        raise ValueError(
            f"expected two 2-D arrays (n_samples, n_features), got shapes {X.shape} and {Y.shape}"
        )
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"X and Y must have the same number of features, got {X.shape[1]} and {Y.shape[1]}"
        )
    return X, Y


def pairwise_distances_reference(X, Y, metric="l2"):
    """Distances with two explicit loops, in float64: the test oracle.

    Parameters
    ----------
    X : array-like of shape (n_x, n_features)
    Y : array-like of shape (n_y, n_features)
    metric : {"l1", "l2"}

    Returns
    -------
    ndarray of shape (n_x, n_y), float64
    """
    _check_metric(metric)
    X, Y = _check_pair(np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64))
    out = np.empty((X.shape[0], Y.shape[0]))
    for i in range(X.shape[0]):
        for j in range(Y.shape[0]):
            diff = X[i] - Y[j]
            out[i, j] = np.sum(np.abs(diff)) if metric == "l1" else math.sqrt(np.sum(diff * diff))
    return out


def _tile_l2_squared(xp, X, Y, y_sq_norms):
    """Squared L2 distances through ||x||^2 - 2 x.y + ||y||^2, clamped at zero."""
    x_sq = (X * X).sum(axis=1)[:, None]
    d = X @ Y.T
    d *= -2
    d += x_sq
    d += y_sq_norms[None, :]
    return xp.maximum(d, 0, out=d)


def _l2_rank_products(X, Y):
    """``-2 x.y`` for a tile: with ``||y||^2`` added (inside the top-k selection) it is
    the squared L2 distance less ``||x||^2``, which is constant along a row and so does
    not change the ranking. One matrix product, the -2 folded into the small operand."""
    return (X * X.dtype.type(-2)) @ Y.T


def _tile_l1(xp, X, Y):
    """L1 distances of one tile."""
    if xp is np:
        from compute._l1_cpu import l1_distances_cpu  # compiles on first use

        return l1_distances_cpu(X, Y)
    from compute._l1_gpu import l1_distances_gpu

    return l1_distances_gpu(X, Y)


def _distance_tile(xp, X, Y, metric, y_sq_norms, squared):
    if metric == "l2":
        d = _tile_l2_squared(xp, X, Y, y_sq_norms)
        return d if squared else xp.sqrt(d, out=d)
    return _tile_l1(xp, X, Y)


def _as_float(xp, A, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating type, got {dtype}")
    return to_device(A, xp, dtype=dtype)


def pairwise_distances(X, Y, metric="l2", *, squared=False, dtype=np.float32, device="auto"):
    """Full distance matrix between the rows of ``X`` and the rows of ``Y``.

    Parameters
    ----------
    X : array-like of shape (n_x, n_features)
    Y : array-like of shape (n_y, n_features)
    metric : {"l1", "l2"}
    squared : bool, default=False
        For ``"l2"``, return squared distances (skips the square root).
    dtype : float dtype, default=float32
        Precision of the computation and of the result.
    device : {"auto", "cpu", "gpu"}

    Returns
    -------
    ndarray of shape (n_x, n_y)
        Always a NumPy array.
    """
    _check_metric(metric)
    X, Y = _check_pair(X, Y)
    xp = get_array_module(device)
    Xd, Yd = _as_float(xp, X, dtype), _as_float(xp, Y, dtype)
    y_sq = (Yd * Yd).sum(axis=1) if metric == "l2" else None
    return to_numpy(_distance_tile(xp, Xd, Yd, metric, y_sq, squared))


def _smallest_k(xp, D, k, col_offset, add=None):
    """The k smallest entries of each row of ``D + add``, ascending, ties to the lower index.

    ``add`` (one value per column, optional) may be added to ``D`` in place.
    """
    if xp is np:
        from compute._topk_cpu import smallest_k_cpu  # compiles on first use

        if add is not None:
            D += add[None, :]
        vals, idx = smallest_k_cpu(D, k)
        return vals, idx + col_offset
    from compute._topk_gpu import MAX_K, smallest_k_gpu

    if k <= MAX_K:
        vals, idx = smallest_k_gpu(D, k, add)
        return vals, idx + col_offset
    if add is not None:  # a k too large for the selection kernel: sort (CuPy's argpartition sorts too)
        D += add[None, :]
    order = xp.argsort(D, axis=1)[:, :k]  # CuPy's sort is stable: ties keep the lower column
    return xp.take_along_axis(D, order, axis=1), order + col_offset


def _merge_sorted(xp, vals, idx, k):
    """Sort candidates by (distance, index) and keep the first k of each row."""
    stable = {"kind": "stable"} if xp is np else {}  # CuPy's sort is always stable
    by_index = xp.argsort(idx, axis=1, **stable)
    vals = xp.take_along_axis(vals, by_index, axis=1)
    idx = xp.take_along_axis(idx, by_index, axis=1)
    order = xp.argsort(vals, axis=1, **stable)[:, :k]
    return xp.take_along_axis(vals, order, axis=1), xp.take_along_axis(idx, order, axis=1)


def default_memory_budget(device="auto"):
    """Bytes one distance tile may use by default on ``device``.

    256 MiB on the CPU. On the GPU larger tiles keep the matrix products long (the rates
    by tile size are in BENCHMARKS.md, "GPU"): 2 GiB, or a quarter of the free device
    memory when that is less.
    """
    xp = get_array_module(device)
    if xp is np:
        return DEFAULT_MEMORY_BUDGET
    free, _ = xp.cuda.runtime.memGetInfo()
    return int(min(GPU_MEMORY_BUDGET, free // 4))


def _row_sq_norms(xp, Y, block):
    """``(Y * Y).sum(axis=1)`` a block of rows at a time: the same values (each row is
    summed alone), without a temporary the size of ``Y`` (a memory-mapped training set
    larger than memory)."""
    out = xp.empty(Y.shape[0], dtype=Y.dtype)
    for start in range(0, Y.shape[0], block):
        rows = Y[start : start + block]
        out[start : start + block] = (rows * rows).sum(axis=1)
    return out


def _tile_rows(n_y_tile, budget, itemsize):
    return max(1, int(budget // max(1, n_y_tile * itemsize * 3)))


def nearest_neighbors(
    X,
    Y,
    n_neighbors=1,
    metric="l2",
    *,
    squared=False,
    dtype=np.float32,
    device="auto",
    memory_budget=None,
):
    """The ``n_neighbors`` nearest rows of ``Y`` for every row of ``X``.

    Distances are computed tile by tile so that no tile (with its temporaries)
    exceeds ``memory_budget`` bytes; per tile only the k smallest are kept, by
    partial selection, and merged with the running best. Ties in distance go to
    the lower index of ``Y``.

    Parameters
    ----------
    X : array-like of shape (n_queries, n_features)
    Y : array-like of shape (n_references, n_features)
    n_neighbors : int
        k; at most ``n_references``.
    metric : {"l1", "l2"}
    squared : bool, default=False
        For ``"l2"``, report squared distances.
    dtype : float dtype, default=float32
    device : {"auto", "cpu", "gpu"}
    memory_budget : int, optional
        Bytes one tile of the distance matrix may use; by default
        :func:`default_memory_budget` of the device.

    Returns
    -------
    distances : ndarray of shape (n_queries, n_neighbors)
        Ascending along each row. NumPy.
    indices : ndarray of shape (n_queries, n_neighbors), int64
        Row indices into ``Y``. NumPy.
    """
    _check_metric(metric)
    X, Y = _check_pair(X, Y)
    n_y = Y.shape[0]
    if not isinstance(n_neighbors, (int, np.integer)) or not 1 <= n_neighbors <= n_y:
        raise ValueError(
            f"n_neighbors must be an integer in [1, {n_y}] (the number of reference rows), "
            f"got {n_neighbors!r}"
        )
    k = int(n_neighbors)
    xp = get_array_module(device)
    if memory_budget is None:
        memory_budget = default_memory_budget(device)
    itemsize = np.dtype(dtype).itemsize
    col_tile = n_y if n_y * itemsize * 3 <= memory_budget else max(k, memory_budget // (3 * itemsize))
    row_tile = _tile_rows(min(col_tile, n_y), memory_budget, itemsize)
    Yd = _as_float(xp, Y, dtype)
    y_sq = _row_sq_norms(xp, Yd, _tile_rows(Yd.shape[1], memory_budget, itemsize)) if metric == "l2" else None
    out_d = np.empty((X.shape[0], k), dtype=dtype)
    out_i = np.empty((X.shape[0], k), dtype=np.int64)
    for r0 in range(0, X.shape[0], row_tile):
        Xd = _as_float(xp, X[r0 : r0 + row_tile], dtype)
        best_v = best_i = None
        for c0 in range(0, n_y, col_tile):
            c1 = min(n_y, c0 + col_tile)
            if metric == "l2":  # rank by ||y||^2 - 2 x.y; ||x||^2 is added to the k winners only
                vals, idx = _smallest_k(xp, _l2_rank_products(Xd, Yd[c0:c1]), min(k, c1 - c0), c0,
                                        add=y_sq[c0:c1])
            else:
                vals, idx = _smallest_k(xp, _tile_l1(xp, Xd, Yd[c0:c1]), min(k, c1 - c0), c0)
            if best_v is None:  # the selection comes sorted, ties to the lower index
                best_v, best_i = vals, idx
            else:
                best_v, best_i = _merge_sorted(xp, xp.concatenate([best_v, vals], axis=1),
                                               xp.concatenate([best_i, idx], axis=1), k)
        if metric == "l2":
            best_v = xp.maximum(best_v + (Xd * Xd).sum(axis=1)[:, None], 0)
            best_v = best_v if squared else xp.sqrt(best_v)
        out_d[r0 : r0 + row_tile] = to_numpy(best_v)
        out_i[r0 : r0 + row_tile] = to_numpy(best_i)
    return out_d, out_i
