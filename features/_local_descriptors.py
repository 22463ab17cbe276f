"""Dense local descriptors for the bag of visual words, and ZCA whitening.

Raw pixel patches (brightness/contrast normalized as Coates, Lee & Ng (2011) do) and
HOG-cell descriptors on a dense grid, in NumPy or CuPy (``xp``); :class:`features.bovw.
BagOfVisualWords` learns its codebook on them. The tests hold each against a slow loop.
"""
from __future__ import annotations

import numpy as np

from features.raw import rgb_to_gray

N_ORIENTATIONS = 9  # HOG-cell descriptor: unsigned orientation bins of 20 degrees
PATCH_NORM_EPS = 10.0  # Coates et al.: (x - mean) / sqrt(var + 10), on the 0..255 scale
ZCA_EPS = 0.1  # Coates et al.: regularizer of the whitening, on normalized patches
_HOG_NORM_EPS = 1e-5  # L2 normalization of a HOG-cell descriptor, as skimage's "L2"


def grid_offsets(length, patch_size, stride):
    """Top-left offsets of the patches along one axis."""
    return np.arange(0, length - patch_size + 1, stride)


def patch_descriptors(images255, patch_size, stride, normalize, xp=np):
    """Raw pixel patches on a dense grid, optionally brightness/contrast normalized.

    Parameters
    ----------
    images255 : ndarray of shape (n_samples, height, width[, 3]), float32, 0..255 scale
    patch_size, stride : int
    normalize : bool
        Subtract each patch's mean and divide by ``sqrt(var + 10)`` (``var`` with
        ``ddof=1``, MATLAB's ``var`` as in Coates' code), on the 0..255 scale.
        Without it, patches are returned on the [0, 1] scale.
    xp : module

    Returns
    -------
    ndarray of shape (n_samples, n_positions, patch_size * patch_size * channels)
        Positions in row-major grid order; each patch flattened as (row, col, channel).
    """
    n, height, width = images255.shape[:3]
    ys = xp.asarray(grid_offsets(height, patch_size, stride))
    xs = xp.asarray(grid_offsets(width, patch_size, stride))
    offsets = xp.arange(patch_size)
    rows = (ys[:, None] + offsets[None, :])[:, None, :, None]  # (gh, 1, p, 1)
    cols = (xs[:, None] + offsets[None, :])[None, :, None, :]  # (1, gw, 1, p)
    patches = images255[:, rows, cols]  # (n, gh, gw, p, p[, 3])
    # Contiguous, so that each patch's reductions do not depend on the batch size.
    patches = xp.ascontiguousarray(patches).reshape(n, len(ys) * len(xs), -1)
    if not normalize:
        return patches / np.float32(255)
    dim = patches.shape[2]
    mean = patches.mean(axis=2, keepdims=True)
    var = patches.var(axis=2, keepdims=True, ddof=1 if dim > 1 else 0)
    return (patches - mean) / xp.sqrt(var + np.float32(PATCH_NORM_EPS))


def _orientation_maps(gray, xp):
    """Gradient magnitude split into orientation channels: (n, h, w, N_ORIENTATIONS)."""
    gy = xp.zeros_like(gray)
    gx = xp.zeros_like(gray)
    gy[:, 1:-1, :] = gray[:, 2:, :] - gray[:, :-2, :]
    gx[:, :, 1:-1] = gray[:, :, 2:] - gray[:, :, :-2]
    magnitude = xp.sqrt(gx * gx + gy * gy)
    angle = xp.rad2deg(xp.arctan2(gy, gx)) % 180.0
    bins = xp.clip((angle / (180.0 / N_ORIENTATIONS)).astype(np.int64), 0, N_ORIENTATIONS - 1)
    onehot = bins[..., None] == xp.arange(N_ORIENTATIONS)
    return onehot * magnitude[..., None]


def hog_descriptors(images01, patch_size, stride, normalize, xp=np):
    """Dense HOG-cell descriptors: orientation histograms of the 2x2 cells of each patch.

    Gradients by central differences ``[-1, 0, 1]`` of the ITU-R 601 luma (zero on
    the border rows/columns), unsigned orientation in 9 bins of 20 degrees, each
    pixel voting its gradient magnitude into its bin (no interpolation, as
    ``skimage.feature.hog``). Every patch is split into 2x2 cells at ``patch_size // 2``;
    cell sums come from integral images, so the whole batch is array operations.

    Parameters
    ----------
    images01 : ndarray of shape (n_samples, height, width[, 3]), float32 in [0, 1]
    patch_size, stride : int
    normalize : bool
        L2-normalize each descriptor (``v / sqrt(|v|^2 + 1e-10)``).
    xp : module

    Returns
    -------
    ndarray of shape (n_samples, n_positions, 4 * 9)
        Cells in the order top-left, top-right, bottom-left, bottom-right.
    """
    gray = rgb_to_gray(images01, xp) if images01.ndim == 4 else images01
    n, height, width = gray.shape
    maps = _orientation_maps(gray, xp)
    integral = xp.zeros((n, height + 1, width + 1, N_ORIENTATIONS), dtype=maps.dtype)
    integral[:, 1:, 1:] = maps.cumsum(axis=1).cumsum(axis=2)
    ys = xp.asarray(grid_offsets(height, patch_size, stride))[:, None]
    xs = xp.asarray(grid_offsets(width, patch_size, stride))[None, :]
    half = patch_size // 2
    cells = []
    for r0, r1 in ((0, half), (half, patch_size)):
        for c0, c1 in ((0, half), (half, patch_size)):
            cells.append(
                integral[:, ys + r1, xs + c1]
                - integral[:, ys + r0, xs + c1]
                - integral[:, ys + r1, xs + c0]
                + integral[:, ys + r0, xs + c0]
            )
    desc = xp.concatenate(cells, axis=-1).reshape(n, ys.shape[0] * xs.shape[1], -1)
    if normalize:
        desc = desc / xp.sqrt((desc * desc).sum(axis=2, keepdims=True) + np.float32(_HOG_NORM_EPS**2))
    return desc


def zca_whitening(X, eps=ZCA_EPS):
    """ZCA whitening learned from descriptors, as in Coates et al.

    Parameters
    ----------
    X : ndarray of shape (n_descriptors, n_dims)
    eps : float
        Added to the eigenvalues of the covariance.

    Returns
    -------
    mean : ndarray of shape (n_dims,), float32
    matrix : ndarray of shape (n_dims, n_dims), float32
        ``V diag(1 / sqrt(d + eps)) V^T``; whitened = ``(X - mean) @ matrix``.
    """
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    cov = np.atleast_2d(np.cov(X, rowvar=False)) if X.shape[0] > 1 else np.zeros((X.shape[1],) * 2)
    eigval, eigvec = np.linalg.eigh(cov)
    matrix = (eigvec / np.sqrt(np.maximum(eigval, 0) + eps)) @ eigvec.T
    return mean.astype(np.float32), matrix.astype(np.float32)
