"""Histogram of Oriented Gradients on a whole batch at once, equal to scikit-image's.

``HOG`` computes, for every image of a batch, the vector of
``skimage.feature.hog(image, ..., feature_vector=True)`` (to float rounding), with
array operations over the batch instead of a Python loop over images.

scikit-image's algorithm (0.26), reproduced step by step:

1. the image as floating point (``uint8`` and ``float64`` -> ``float64``, other floats
   -> ``float32``), optionally its square root (``transform_sqrt``);
2. central differences, zero on the first/last row (``g_row``) and column (``g_col``);
   for color, per pixel the channel with the largest ``hypot`` (first on ties);
3. in ``float64``: magnitude ``hypot(g_row, g_col)``, orientation
   ``rad2deg(arctan2(g_row, g_col)) % 180``; *hard* binning: a pixel votes into bin
   ``i`` iff ``e[i] <= orientation < e[i + 1]`` with ``e[i] = (180 / n) * i`` in
   ``float64``; an orientation at or above ``e[n]`` votes nowhere;
4. per cell (only the top-left ``(H // ch) * ch`` x ``(W // cw) * cw`` pixels), the
   sum of the magnitudes in each bin divided by the cell area;
5. blocks of ``cells_per_block`` cells sliding by one cell, each normalized
   (``L1``, ``L1-sqrt``, ``L2``, ``L2-Hys``; ``eps = 1e-5``), raveled in the order
   ``(block_row, block_col, cell_row, cell_col, orientation)``.

For ``uint8`` images without ``transform_sqrt`` the gradients are integers in
``[-255, 255]``, so step 3 is a lookup in 511 x 511 tables built once with the exact
``float64`` formulas (bins and channel choices bit-equal to scikit-image's). Gray ones
on the CPU then go through one compiled pass per image (:mod:`features._hog_cpu`);
the others through array operations over chunks of the batch, on NumPy or CuPy
(``device``): step 4 as one ``bincount`` (:mod:`features._hog_histograms`), other
inputs by the direct floating-point route. Block normalization runs in ``float32``.
Results agree with scikit-image to about 1e-7.
"""
from __future__ import annotations

import functools
import importlib
import logging
from numbers import Integral

import numpy as np

from compute.backend import array_module_of, get_array_module, to_numpy
from compute.params import Boolean, Interval, StrOptions, TupleOf
from features._base import ImageTransformer
from features._hog_histograms import _float_histograms, _gradient_tables, _lookup_histograms

logger = logging.getLogger(__name__)

BLOCK_NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")
_EPS = 1e-5
# Pixels per chunk: on the CPU, chunk buffers stay in cache (measured best on 28x28 images);
# on the GPU, large enough to fill it and bounded to about 50 bytes a pixel.
_CHUNK_PIXELS = {"numpy": 1 << 16, "cupy": 1 << 23}


def hog_reference(images, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2),
                  block_norm="L2-Hys", transform_sqrt=False):
    """The slow, obvious HOG: ``skimage.feature.hog`` called image by image.

    Parameters
    ----------
    images : ndarray of shape (n_samples, height, width) or (n_samples, height, width, 3)
    orientations, pixels_per_cell, cells_per_block, block_norm, transform_sqrt
        As for :class:`HOG`.

    Returns
    -------
    ndarray of shape (n_samples, n_features), float32
    """
    from skimage.feature import hog

    channel_axis = -1 if images.ndim == 4 else None
    return np.stack([
        hog(image, orientations=orientations, pixels_per_cell=pixels_per_cell,
            cells_per_block=cells_per_block, block_norm=block_norm,
            transform_sqrt=transform_sqrt, feature_vector=True, channel_axis=channel_axis)
        for image in images
    ]).astype(np.float32)


class HOG(ImageTransformer):
    """Histogram of Oriented Gradients, batched, equal to ``skimage.feature.hog``.

    Parameters
    ----------
    orientations : int, default=9
        Number of orientation bins over [0, 180) degrees.
    pixels_per_cell : tuple of 2 int, default=(8, 8)
        Cell size (rows, columns) in pixels.
    cells_per_block : tuple of 2 int, default=(2, 2)
        Block size (rows, columns) in cells; blocks slide by one cell.
    block_norm : {"L1", "L1-sqrt", "L2", "L2-Hys"}, default="L2-Hys"
        Block normalization, as in scikit-image.
    transform_sqrt : bool, default=False
        Take the square root of the image first (power-law compression).
    device : {"auto", "cpu", "gpu"}, default="auto"
        Where the arrays are computed; results come back as NumPy.

    Attributes
    ----------
    image_shape_ : tuple
        ``(height, width)`` or ``(height, width, 3)`` seen by ``fit``.
    n_features_out_ : int
        ``n_blocks_row * n_blocks_col * cells_per_block[0] * cells_per_block[1] * orientations``.

    Examples
    --------
    >>> import numpy as np
    >>> images = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    >>> HOG(pixels_per_cell=(7, 7), device="cpu").fit_transform(images).shape
    (4, 324)
    """

    _parameter_constraints = {
        **ImageTransformer._parameter_constraints,
        "orientations": [Interval(Integral, 1, None, closed="left")],
        "pixels_per_cell": [TupleOf(Interval(Integral, 1, None, closed="left"), length=2)],
        "cells_per_block": [TupleOf(Interval(Integral, 1, None, closed="left"), length=2)],
        "block_norm": [StrOptions(BLOCK_NORMS)],
        "transform_sqrt": [Boolean()],
    }

    def __init__(self, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2),
                 block_norm="L2-Hys", transform_sqrt=False, device="auto"):
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.block_norm = block_norm
        self.transform_sqrt = transform_sqrt
        self.device = device

    def _geometry(self, image_shape):
        """Cells and blocks on images of ``(height, width[, 3])`` (parameters already checked).

        Returns
        -------
        cell, block, cells : tuple of 2 int
            Pixels per cell, cells per block, number of cells (rows, columns).

        Raises
        ------
        ValueError
            If the images hold less than one block.
        """
        cell = tuple(int(v) for v in self.pixels_per_cell)
        block = tuple(int(v) for v in self.cells_per_block)
        height, width = image_shape[:2]
        cells = (height // cell[0], width // cell[1])
        if cells[0] < block[0] or cells[1] < block[1]:
            raise ValueError(
                f"images must be at least {block[0] * cell[0]}x{block[1] * cell[1]} pixels "
                f"(cells_per_block={block} times pixels_per_cell={cell}), got {height}x{width}"
            )
        return cell, block, cells

    def _fit(self, images):
        self._geometry(images.shape[1:])

    def _transform(self, images):
        """HOG vectors of a batch on ``self.device``.

        Gray ``uint8`` images on the CPU take the compiled one-pass kernel
        (:meth:`_transform_gray_uint8`); everything else, the array route
        (:meth:`_transform_arrays`), which is also the kernel's reference in the tests.

        Parameters
        ----------
        images : ndarray of shape (n_samples, height, width) or (n_samples, height, width, 3)
            ``uint8`` or floating point (as ``check_images`` returns them).

        Returns
        -------
        ndarray of shape (n_samples, n_features_out_), float32
        """
        cell, block, cells = self._geometry(images.shape[1:])
        if (images.dtype == np.uint8 and images.ndim == 3 and not self.transform_sqrt
                and get_array_module(self.device) is np):
            return self._transform_gray_uint8(images, cell, block, cells)
        return self._transform_arrays(images, cell, block, cells)

    def _transform_arrays(self, images, cell, block, cells):
        """Array operations over chunks of the batch, in NumPy or CuPy."""
        xp = get_array_module(self.device)
        n_features = ((cells[0] - block[0] + 1) * (cells[1] - block[1] + 1)
                      * block[0] * block[1] * self.orientations)
        step = max(1, _CHUNK_PIXELS[xp.__name__] // int(np.prod(images.shape[1:])))
        step = min(step, len(images))
        logger.debug("HOG of %d images %s, %d per chunk, on %s",
                     len(images), images.shape[1:], step, xp.__name__)
        if images.dtype == np.uint8 and not self.transform_sqrt:
            histograms = _lookup_histograms(xp, step, images.shape[1:], cell, cells,
                                            self.orientations)
        else:
            histograms = functools.partial(_float_histograms, cell=cell, cells=cells,
                                           orientations=self.orientations,
                                           transform_sqrt=self.transform_sqrt)
        out = np.empty((len(images), n_features), dtype=np.float32)
        for start in range(0, len(images), step):
            hist = histograms(xp.asarray(images[start:start + step]))
            rows = out[start:start + len(hist)]
            blocks = _normalize_blocks(hist, block, self.block_norm, scale=cell[0] * cell[1],
                                       out=rows if xp is np else None)
            if xp is not np:
                rows[...] = to_numpy(blocks.reshape(rows.shape))
        return out

    def _transform_gray_uint8(self, images, cell, block, cells):
        """The compiled one-pass kernel (``features._hog_cpu``) for gray ``uint8`` on the CPU."""
        from features._hog_cpu import METHOD_CODES, hog_gray_uint8  # compiled on first use

        bins, _ = _gradient_tables(self.orientations)  # the kernel computes magnitudes itself
        n_features = ((cells[0] - block[0] + 1) * (cells[1] - block[1] + 1)
                      * block[0] * block[1] * self.orientations)
        out = np.empty((len(images), n_features), dtype=np.float32)
        hog_gray_uint8(np.ascontiguousarray(images), bins, cell, cells, block, self.orientations,
                       METHOD_CODES[self.block_norm], _EPS, out)
        return out


def _normalize_blocks(hist, block, method, scale=1, out=None):
    """Overlapping blocks of cells, each normalized as scikit-image's ``_hog_normalize_block``.

    Parameters
    ----------
    hist : ndarray of shape (n, cells_row, cells_col, orientations), non-negative
        Cell histograms times ``scale``.
    block : tuple of 2 int
    method : {"L1", "L1-sqrt", "L2", "L2-Hys"}
    scale : float, default=1
        Normalizing ``hist`` with ``eps * scale`` equals normalizing ``hist / scale``
        with ``eps``, which saves dividing the histograms by the cell area.
    out : ndarray of shape (n, n_features), float32, C-contiguous, optional
        Where to write the result; a new array if None.

    Returns
    -------
    ndarray of shape (n, n_blocks_row, n_blocks_col, block[0] * block[1] * orientations), float32
        Computed in ``float32`` (scikit-image's cell sums are ``float32`` too): within
        about 1e-7 of scikit-image's values, which are at most 1.
    """
    xp = array_module_of(hist)
    hist = xp.ascontiguousarray(hist, dtype=np.float32)  # contiguous, for _block_view
    n, cells_row, cells_col, orientations = hist.shape
    shape = (cells_row - block[0] + 1, cells_col - block[1] + 1)
    if method in ("L1", "L1-sqrt"):  # |h| = h: magnitudes are >= 0
        norm = _block_sums(hist.sum(axis=-1), block, shape)
        norm += np.float32(_EPS * scale)
    else:
        norm = _block_sums(_squared_norm(hist), block, shape)
        norm += np.float32((_EPS * scale) ** 2)
        xp.sqrt(norm, out=norm)
    flat_shape = (n, *shape, block[0], block[1] * orientations)
    blocks = xp.empty(flat_shape, np.float32) if out is None else out.reshape(flat_shape)
    xp.divide(_block_view(hist, block, shape), norm[..., None, None], out=blocks)
    blocks = blocks.reshape(n, *shape, -1)
    if method == "L1-sqrt":
        xp.sqrt(blocks, out=blocks)
    elif method == "L2-Hys":
        xp.minimum(blocks, np.float32(0.2), out=blocks)
        norm = _squared_norm(blocks)
        norm += np.float32(_EPS ** 2)
        blocks /= xp.sqrt(norm, out=norm)[..., None]
    return blocks


def _block_view(hist, block, shape):
    """A view ``(n, *shape, block[0], block[1] * orientations)`` of contiguous ``hist``.

    ``view[i, r, c, k, m] = hist[i, r + k, c + m // orientations, m % orientations]``:
    the cells of block ``(r, c)``, row by row, each row one contiguous run.
    """
    n, _, _, orientations = hist.shape
    s_image, s_row, s_col, s_bin = hist.strides
    stride_tricks = importlib.import_module(array_module_of(hist).__name__ + ".lib.stride_tricks")
    return stride_tricks.as_strided(
        hist, shape=(n, *shape, block[0], block[1] * orientations),
        strides=(s_image, s_row, s_col, s_row, s_bin))


def _block_sums(per_cell, block, shape):
    """Sum of ``per_cell`` (n, cells_row, cells_col) over each block: (n, *shape)."""
    total = per_cell[:, :shape[0], :shape[1]].copy()
    for r in range(block[0]):
        for c in range(block[1]):
            if r or c:
                total += per_cell[:, r:r + shape[0], c:c + shape[1]]
    return total


def _squared_norm(array):
    """``sum(array ** 2, axis=-1)`` without the temporary square."""
    return array_module_of(array).einsum("...i,...i->...", array, array)
