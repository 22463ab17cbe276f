"""GPU L1 distances: a CuPy ``RawKernel`` tiled through shared memory.

Each block computes a TILE x TILE tile of the distance matrix. Both operand tiles
(TILE rows x TILE features) are staged in shared memory, padded by one column so
that threads of a warp read different banks, and every thread accumulates
``|x - y|`` for its (query, reference) pair over the feature axis, TILE features at
a time. Out-of-range rows and features are loaded as zeros (``|0 - 0| = 0``) and
never written. The oracle is ``compute.distances.pairwise_distances_reference``.
"""
from __future__ import annotations

import functools

TILE = 16

_SOURCE = r"""
extern "C" __global__
void l1_tile(const T* __restrict__ X, const T* __restrict__ Y, T* __restrict__ out,
             const int n_x, const int n_y, const int n_features) {
    __shared__ T xs[TILE][TILE + 1];
    __shared__ T ys[TILE][TILE + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int row = blockIdx.y * TILE + ty;      // query index of this thread
    const int col = blockIdx.x * TILE + tx;      // reference index of this thread
    const int y_row = blockIdx.x * TILE + ty;    // reference row this thread stages
    T acc = 0;
    for (int k0 = 0; k0 < n_features; k0 += TILE) {
        const int k = k0 + tx;
        xs[ty][tx] = (row < n_x && k < n_features) ? X[(long long)row * n_features + k] : (T)0;
        ys[ty][tx] = (y_row < n_y && k < n_features) ? Y[(long long)y_row * n_features + k] : (T)0;
        __syncthreads();
        #pragma unroll
        for (int kk = 0; kk < TILE; ++kk) {
            acc += fabs(xs[ty][kk] - ys[tx][kk]);
        }
        __syncthreads();
    }
    if (row < n_x && col < n_y) {
        out[(long long)row * n_y + col] = acc;
    }
}
"""


@functools.lru_cache(maxsize=2)
def _kernel(dtype_name):
    import cupy

    ctype = {"float32": "float", "float64": "double"}[dtype_name]
    return cupy.RawKernel(f"#define T {ctype}\n#define TILE {TILE}\n" + _SOURCE, "l1_tile")


def l1_distances_gpu(X, Y):
    """L1 distance matrix of two CuPy arrays of one float dtype, shape (n_x, n_y), on the GPU."""
    import cupy

    X = cupy.ascontiguousarray(X)
    Y = cupy.ascontiguousarray(Y, dtype=X.dtype)
    n_x, n_features = X.shape
    n_y = Y.shape[0]
    out = cupy.empty((n_x, n_y), dtype=X.dtype)
    grid = ((n_y + TILE - 1) // TILE, (n_x + TILE - 1) // TILE)
    _kernel(X.dtype.name)(grid, (TILE, TILE), (X, Y, out, n_x, n_y, n_features))
    return out
