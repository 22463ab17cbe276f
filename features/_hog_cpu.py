"""HOG of gray ``uint8`` images in one compiled pass per image on the CPU (Numba).

The array route in :mod:`features.hog` (:class:`~features._hog_histograms._LookupHistograms`, then
``_normalize_blocks``) runs some thirty NumPy calls per chunk: cheap per image on a big
batch, but most of the 80 microseconds a single 28x28 image costs, which is what a
service request pays. This kernel does the same arithmetic pixel by pixel: central
differences, the 511 x 511 bin table, the ``float32`` magnitude (the square root of the
exact integer ``g_row**2 + g_col**2``, rounded once, as the array route's ``float32``
magnitude table holds it), per-cell sums accumulated in ``float64`` in pixel order as
``bincount`` does, then block normalization in ``float32``. The array route stays as its reference (the tests hold
the two equal to float32 rounding) and serves color images, ``transform_sqrt``, float
images and CuPy.
"""
from __future__ import annotations

import numpy as np

from compute.backend import cpu_kernel
from features._hog_histograms import _G, _SIDE  # the bin table's layout

#: ``block_norm`` names -> the kernel's method codes.
METHOD_CODES = {"L1": 0, "L1-sqrt": 1, "L2": 2, "L2-Hys": 3}


@cpu_kernel(nogil=True, error_model="numpy")
def hog_gray_uint8(images, bin_table, cell, cells, block, orientations, method, eps,
                   out):  # pragma: no cover - compiled
    """HOG vectors of gray ``uint8`` images, written into ``out``.

    Parameters
    ----------
    images : ndarray of shape (n, height, width), uint8, C-contiguous
    bin_table : ndarray of shape (511 * 511,), signed int
        Orientation bin of each integer gradient (``orientations``: no bin).
    cell, cells, block : tuple of 2 int
        Pixels per cell, cells per image (rows, columns), cells per block.
    orientations : int
    method : int
        A value of :data:`METHOD_CODES`.
    eps : float
        scikit-image's ``eps`` (1e-5); the cell sums are not divided by the cell area,
        so the block norms use ``eps * cell area`` instead (the same result).
    out : ndarray of shape (n, n_features), float32
    """
    n, height, width = images.shape
    cell_r, cell_c = cell
    cells_r, cells_c = cells
    block_r, block_c = block
    blocks_r, blocks_c = cells_r - block_r + 1, cells_c - block_c + 1
    f32 = np.float32
    eps_scaled = f32(eps * cell_r * cell_c)
    sums = np.zeros((cells_r, cells_c, orientations), np.float64)
    hist = np.empty((cells_r, cells_c, orientations), np.float32)
    for i in range(n):
        image = images[i]
        sums[:] = 0.0
        for r in range(cells_r * cell_r):
            row_inside = 0 < r < height - 1
            for c in range(cells_c * cell_c):
                g_row = (np.int32(image[r + 1, c]) - np.int32(image[r - 1, c])) if row_inside else 0
                g_col = (np.int32(image[r, c + 1]) - np.int32(image[r, c - 1])) if 0 < c < width - 1 else 0
                index = (g_row + _G) * _SIDE + g_col + _G
                b = bin_table[index]
                if b < orientations:
                    # the square root of an exact integer, rounded once to float32
                    sums[r // cell_r, c // cell_c, b] += np.sqrt(np.float32(g_row * g_row + g_col * g_col))
        for cr in range(cells_r):
            for cc in range(cells_c):
                for o in range(orientations):
                    hist[cr, cc, o] = f32(sums[cr, cc, o])
        k = 0
        for br in range(blocks_r):
            for bc in range(blocks_c):
                norm = f32(0.0)
                for r in range(br, br + block_r):
                    for c in range(bc, bc + block_c):
                        for o in range(orientations):
                            v = hist[r, c, o]
                            norm += v if method <= 1 else v * v
                if method <= 1:
                    norm += eps_scaled
                else:
                    norm = np.sqrt(norm + eps_scaled * eps_scaled)
                start = k
                for r in range(br, br + block_r):
                    for c in range(bc, bc + block_c):
                        for o in range(orientations):
                            v = hist[r, c, o] / norm
                            if method == 1:
                                v = np.sqrt(v)
                            elif method == 3 and v > f32(0.2):
                                v = f32(0.2)
                            out[i, k] = v
                            k += 1
                if method == 3:  # L2-Hys: clipped at 0.2, normalized again
                    norm = f32(0.0)
                    for j in range(start, k):
                        norm += out[i, j] * out[i, j]
                    norm = np.sqrt(norm + f32(eps * eps))
                    for j in range(start, k):
                        out[i, j] /= norm
