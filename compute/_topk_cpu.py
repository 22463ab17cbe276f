"""CPU top-k selection compiled with Numba: one pass per row, k candidates kept sorted.

``numpy.argpartition`` along the rows of a wide tile costs far more than the matrix
product that made it; for the small k of nearest-neighbour search a single scan that
keeps the k best in a sorted buffer (insertion when a value beats the worst) touches
each distance once. A value equal to one already kept goes after it, so ties resolve
to the lower index, as the reference ``numpy.argsort(kind="stable")`` does.
"""
from __future__ import annotations

import numba
import numpy as np

from compute.backend import cpu_kernel


@cpu_kernel(parallel=True, nogil=True)
def _smallest_k(D, k, vals, idx):  # pragma: no cover - compiled; tested through its callers
    n_rows, n_cols = D.shape
    for r in numba.prange(n_rows):
        row = D[r]
        v = vals[r]
        ix = idx[r]
        filled = 0
        for c in range(n_cols):
            x = row[c]
            if filled == k and not x < v[k - 1]:
                continue
            pos = filled if filled < k else k - 1
            while pos > 0 and x < v[pos - 1]:
                v[pos] = v[pos - 1]
                ix[pos] = ix[pos - 1]
                pos -= 1
            v[pos] = x
            ix[pos] = c
            if filled < k:
                filled += 1


def smallest_k_cpu(D, k):
    """The k smallest entries of each row of ``D``, ascending, ties to the lower column.

    Parameters
    ----------
    D : ndarray of shape (n_rows, n_cols), float
    k : int, at most ``n_cols``

    Returns
    -------
    values : ndarray of shape (n_rows, k), dtype of ``D``
    indices : ndarray of shape (n_rows, k), int64
    """
    D = np.ascontiguousarray(D)
    vals = np.empty((D.shape[0], k), dtype=D.dtype)
    idx = np.empty((D.shape[0], k), dtype=np.int64)
    _smallest_k(D, k, vals, idx)
    return vals, idx
