"""GPU L1 distances: a CuPy ``RawKernel`` blocked like a matrix product.

L1 has no matrix-product identity, so the work is ``n_x * n_y * n_features`` pairs of
(subtract, add the absolute value): two single-precision instructions per pair, the
absolute value being a free operand modifier. To keep the arithmetic units busy
rather than the shared memory, each block of 256 threads computes a 128 x 128 tile
of the distance matrix and each thread an 8 x 8 sub-tile in registers: per feature a
thread reads 8 query and 8 reference values from shared memory (four 16-byte loads)
and does 64 pairs with them. Both operand tiles (16 features at a time) are staged in
shared memory feature-major, rows padded by 4 values to keep 16-byte alignment and
spread the stores over banks. Out-of-range rows and features are loaded as zeros
(``|0 - 0| = 0``) and never written. The oracle is
``compute.distances.pairwise_distances_reference``.
"""
from __future__ import annotations

from compute.backend import raw_kernel

BLOCK = 128  # rows and columns of the distance matrix per block
THREADS = 256

_SOURCE = r"""
#define BK 16
#define PAD 4

#ifdef T_IS_FLOAT
#define LOAD4(dst, base, src) { const float4 v_ = *reinterpret_cast<const float4*>(src); \
    dst[base] = v_.x; dst[base + 1] = v_.y; dst[base + 2] = v_.z; dst[base + 3] = v_.w; }
#else
#define LOAD4(dst, base, src) { const double2 v0_ = *reinterpret_cast<const double2*>(src); \
    const double2 v1_ = *reinterpret_cast<const double2*>((src) + 2); \
    dst[base] = v0_.x; dst[base + 1] = v0_.y; dst[base + 2] = v1_.x; dst[base + 3] = v1_.y; }
#endif

extern "C" __global__ void __launch_bounds__(256)
l1_blocked(const T* __restrict__ X, const T* __restrict__ Y, T* __restrict__ out,
           const int n_x, const int n_y, const int n_features) {
    __shared__ __align__(16) T xs[BK][BLOCK + PAD];
    __shared__ __align__(16) T ys[BK][BLOCK + PAD];
    const int tid = threadIdx.x;
    const int tx = tid & 15, ty = tid >> 4;
    const int row0 = blockIdx.y * BLOCK, col0 = blockIdx.x * BLOCK;
    T acc[8][8];
    #pragma unroll
    for (int i = 0; i < 8; ++i) {
        #pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = (T)0;
    }
    for (int k0 = 0; k0 < n_features; k0 += BK) {
        #pragma unroll
        for (int l = 0; l < (BLOCK * BK) / 256; ++l) {
            const int e = tid + l * 256;
            const int m = e / BK, kk = e % BK, k = k0 + kk;
            const int xr = row0 + m, yr = col0 + m;
            xs[kk][m] = (xr < n_x && k < n_features) ? X[(long long)xr * n_features + k] : (T)0;
            ys[kk][m] = (yr < n_y && k < n_features) ? Y[(long long)yr * n_features + k] : (T)0;
        }
        __syncthreads();
        #pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            T a[8], b[8];
            LOAD4(a, 0, &xs[kk][ty * 4]);
            LOAD4(a, 4, &xs[kk][ty * 4 + 64]);
            LOAD4(b, 0, &ys[kk][tx * 4]);
            LOAD4(b, 4, &ys[kk][tx * 4 + 64]);
            #pragma unroll
            for (int i = 0; i < 8; ++i) {
                #pragma unroll
                for (int j = 0; j < 8; ++j) acc[i][j] += fabs(a[i] - b[j]);
            }
        }
        __syncthreads();
    }
    #pragma unroll
    for (int i = 0; i < 8; ++i) {
        const int r = row0 + ty * 4 + (i & 3) + (i >> 2) * 64;
        if (r >= n_x) continue;
        #pragma unroll
        for (int j = 0; j < 8; ++j) {
            const int c = col0 + tx * 4 + (j & 3) + (j >> 2) * 64;
            if (c < n_y) out[(long long)r * n_y + c] = acc[i][j];
        }
    }
}
"""


def l1_distances_gpu(X, Y):
    """L1 distance matrix of two CuPy arrays on the GPU.

    Parameters
    ----------
    X : cupy.ndarray of shape (n_x, n_features), float32 or float64
    Y : cupy.ndarray of shape (n_y, n_features)
        Cast to the dtype of ``X``.

    Returns
    -------
    cupy.ndarray of shape (n_x, n_y), dtype of ``X``
    """
    import cupy

    X = cupy.ascontiguousarray(X)
    Y = cupy.ascontiguousarray(Y, dtype=X.dtype)
    n_x, n_features = X.shape
    n_y = Y.shape[0]
    if max(n_x, n_y, n_features) >= 2**31:
        raise ValueError(f"each dimension must be below 2**31, got {X.shape} and {Y.shape}")
    out = cupy.empty((n_x, n_y), dtype=X.dtype)
    if n_x and n_y:
        grid = ((n_y + BLOCK - 1) // BLOCK, (n_x + BLOCK - 1) // BLOCK)
        kernel = raw_kernel(_SOURCE, "l1_blocked", X.dtype.name, BLOCK=BLOCK)
        kernel(grid, (THREADS,), (X, Y, out, cupy.int32(n_x), cupy.int32(n_y), cupy.int32(n_features)))
    return out
