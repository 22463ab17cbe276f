"""The softmax cross-entropy and its gradient in one kernel on the GPU (CuPy).

The array form in ``classifiers.losses`` launches about fourteen kernels (row maximum,
shift, exponent, sums, logarithm, gathers and scatters, scaling); for a mini-batch of
64 rows those launches were a quarter of an H100's training step. Here one thread takes
one row and does the arithmetic of the CPU's compiled loop (``classifiers._softmax_cpu``)
in the scores' precision; the per-row losses are summed in float64, as there. The array
form stays as the reference in the tests.
"""
from __future__ import annotations

from compute.backend import raw_kernel

THREADS = 128

_SOURCE = r"""
extern "C" __global__
void softmax_loss_grad_rows(const T* __restrict__ scores, const long long* __restrict__ y,
                            T* __restrict__ grad, double* __restrict__ row_loss,
                            const int n, const int c) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const T* s = scores + (long long)i * c;
    T* g = grad + (long long)i * c;
    const long long label = y[i];
    T row_max = s[0];
    for (int j = 1; j < c; ++j) row_max = s[j] > row_max ? s[j] : row_max;
    T row_sum = 0;
    for (int j = 0; j < c; ++j) {
        const T e = exp(s[j] - row_max);
        g[j] = e;
        row_sum += e;
    }
    const T inv_n = (T)(1.0 / n);
    const T scale = inv_n / row_sum;
    for (int j = 0; j < c; ++j) g[j] *= scale;
    if (label < 0 || label >= c) {  // the callers pass valid indices; a bad one shows as NaN
        row_loss[i] = __longlong_as_double(0x7ff8000000000000LL);
        return;
    }
    const T loss = log(row_sum) - (s[label] - row_max);
    row_loss[i] = (double)loss;
    g[label] -= inv_n;
}
"""


def softmax_loss_grad_gpu(scores, y):
    """Mean cross-entropy of ``softmax(scores)`` against ``y`` and its gradient, on the GPU.

    Parameters
    ----------
    scores : cupy.ndarray of shape (n_samples, n_classes), float32 or float64
    y : cupy.ndarray of int of shape (n_samples,)
        Class indices in ``0 .. n_classes - 1`` (a row with another value gets a NaN loss).

    Returns
    -------
    loss : cupy.ndarray, 0-d, dtype of ``scores``
        ``mean_i (log sum_j exp(s_ij - m_i) - (s_iy_i - m_i))``, ``m_i`` the row maximum.
    dscores : cupy.ndarray of shape (n_samples, n_classes)
        ``(softmax(scores) - onehot(y)) / n_samples``.
    """
    import cupy

    scores = cupy.ascontiguousarray(scores)
    y = cupy.ascontiguousarray(y, dtype=cupy.int64)
    n, c = scores.shape
    grad = cupy.empty_like(scores)
    row_loss = cupy.empty(n, dtype=cupy.float64)
    kernel = raw_kernel(_SOURCE, "softmax_loss_grad_rows", scores.dtype.name)
    kernel(((n + THREADS - 1) // THREADS,), (THREADS,), (scores, y, grad, row_loss, cupy.int32(n), cupy.int32(c)))
    return (row_loss.sum() / n).astype(scores.dtype, copy=False), grad
