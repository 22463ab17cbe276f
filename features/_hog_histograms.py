"""The array route of :mod:`features.hog`: per-cell orientation histograms of a batch.

Two ways, on NumPy or CuPy alike:

- :class:`_LookupHistograms` for ``uint8`` images without ``transform_sqrt``: integer
  gradients in ``[-255, 255]`` index 511 x 511 tables of bins and magnitudes built once
  with scikit-image's exact ``float64`` formulas, and one ``bincount`` sums them per
  cell. Its buffers are reused chunk after chunk, and per thread across calls on the
  CPU (:func:`_lookup_histograms`).
- :func:`_float_histograms` for everything else: the same steps in floating point.

Gray ``uint8`` images on the CPU take the compiled kernel of :mod:`features._hog_cpu`
instead; these functions are its reference in the tests.
"""
from __future__ import annotations

import functools
import threading

import numpy as np

from compute.backend import array_module_of, get_array_module

_G = 255  # largest |gradient| of a uint8 image
_SIDE = 2 * _G + 1  # gradient table side: -255..255


@functools.lru_cache(maxsize=8)
def _gradient_tables(orientations, module="numpy"):
    """Bin and magnitude of every integer gradient, at ``(g_row + 255) * 511 + g_col + 255``.

    Returns
    -------
    bins : ndarray of shape (511 * 511,), smallest signed int type that fits
        Orientation bin in ``[0, orientations)``, or ``orientations`` for "no bin".
    magnitude : ndarray of shape (511 * 511,), float64
        ``np.hypot(g_row, g_col)``: the very values scikit-image computes.
    """
    if module != "numpy":
        xp = get_array_module("gpu")
        return tuple(xp.asarray(table) for table in _gradient_tables(orientations))
    g = np.arange(-_G, _G + 1, dtype=np.float64)
    g_row, g_col = np.meshgrid(g, g, indexing="ij")
    magnitude, bins = _magnitude_and_bin(g_row.ravel(), g_col.ravel(), orientations, np)
    return bins.astype(np.min_scalar_type(-(orientations + 1))), magnitude


def _magnitude_and_bin(g_row, g_col, orientations, xp):
    """scikit-image's ``float64`` magnitude and hard orientation bin (``orientations``: none)."""
    g_row = g_row.astype(np.float64, copy=False)
    g_col = g_col.astype(np.float64, copy=False)
    orientation = xp.rad2deg(xp.arctan2(g_row, g_col)) % 180
    edges = xp.asarray((180.0 / orientations) * np.arange(orientations + 1))
    return xp.hypot(g_row, g_col), xp.searchsorted(edges, orientation, side="right") - 1


def _gradients(planes, out_row, out_col):
    """Central differences of ``planes`` into the cell-covered ``out_row`` and ``out_col``.

    Parameters
    ----------
    planes : ndarray of shape (n, height, width)
        Signed integer or floating point.
    out_row, out_col : ndarray of shape (n, crop_height, crop_width), C-contiguous
        Written only inside (rows/columns ``1 .. min(crop, size - 1) - 1``): their
        first and last row/column must already hold zeros, as in scikit-image.
    """
    xp = array_module_of(planes)
    n, height, width = planes.shape
    crop_h, crop_w = out_row.shape[1:]
    whole = (crop_h, crop_w) == (height, width) and height > 2 and width > 2
    if whole and planes.flags.c_contiguous:
        # Whole images: shift the raveled images (2-D, long rows: faster), then re-zero
        # the first and last columns that the column shift wrapped into.
        flat, flat_row, flat_col = (a.reshape(n, -1) for a in (planes, out_row, out_col))
        xp.subtract(flat[:, 2 * width:], flat[:, :-2 * width], out=flat_row[:, width:-width])
        xp.subtract(flat[:, 2:], flat[:, :-2], out=flat_col[:, 1:-1])
        out_col[:, :, 0] = 0
        out_col[:, :, -1] = 0
        return
    hi = min(crop_h, height - 1)
    if hi > 1:
        xp.subtract(planes[:, 2:hi + 1, :crop_w], planes[:, :hi - 1, :crop_w], out=out_row[:, 1:hi])
    hi = min(crop_w, width - 1)
    if hi > 1:
        xp.subtract(planes[:, :crop_h, 2:hi + 1], planes[:, :crop_h, :hi - 1],
                    out=out_col[:, :, 1:hi])


def _cell_keys(n, cell, cells, width, xp):
    """``((image * cells_row + cell_row) * cells_col + cell_col) * width``, per pixel.

    Returns
    -------
    ndarray of shape (n, cells_row * cell_row_pixels, cells_col * cell_col_pixels), intp
    """
    rows = xp.arange(cells[0] * cell[0]) // cell[0]
    cols = xp.arange(cells[1] * cell[1]) // cell[1]
    per_image = (rows[:, None] * cells[1] + cols[None, :]) * width
    offsets = xp.arange(n) * (cells[0] * cells[1] * width)
    return (offsets[:, None, None] + per_image[None]).astype(np.intp)


def _histograms(key, magnitude, n, cells, orientations, xp):
    """Sum ``magnitude`` by ``key`` (``_cell_keys`` plus the bin): (n, *cells, orientations).

    Sums, not means: ``_normalize_blocks`` takes the cell area as its ``scale``.
    """
    width = orientations + 1  # a spare bin per cell collects the "no bin" pixels
    sums = xp.bincount(key.ravel(), weights=magnitude.ravel(),
                       minlength=n * cells[0] * cells[1] * width)
    return sums.reshape(n, cells[0], cells[1], width)[..., :orientations]


def _float_histograms(images, cell, cells, orientations, transform_sqrt):
    """Per-cell magnitude sums computed directly, in scikit-image's floating-point types.

    Parameters
    ----------
    images : ndarray of shape (n, height, width) or (n, height, width, 3)
        ``uint8`` or floating point.

    Returns
    -------
    ndarray of shape (n, cells_row, cells_col, orientations), float64
    """
    xp = array_module_of(images)
    dtype = np.float64 if images.dtype in (np.uint8, np.float64) else np.float32
    images = images.astype(dtype, copy=False)
    if transform_sqrt:
        images = xp.sqrt(images)
    planes = [images] if images.ndim == 3 else [images[..., c] for c in range(images.shape[-1])]
    shape = (len(images), cells[0] * cell[0], cells[1] * cell[1])
    g_row, g_col, best = None, None, None
    for plane in planes:
        row, col = xp.zeros(shape, dtype), xp.zeros(shape, dtype)
        _gradients(plane, row, col)
        if g_row is None:
            g_row, g_col = row, col
            best = xp.hypot(row, col) if len(planes) > 1 else None
            continue
        strength = xp.hypot(row, col)  # np.argmax over channels: the first wins ties
        stronger = strength > best
        g_row, g_col = xp.where(stronger, row, g_row), xp.where(stronger, col, g_col)
        best = xp.maximum(best, strength)
    magnitude, bins = _magnitude_and_bin(g_row, g_col, orientations, xp)
    key = bins + _cell_keys(len(images), cell, cells, orientations + 1, xp)
    return _histograms(key, magnitude, len(images), cells, orientations, xp)


class _LookupHistograms:
    """Per-cell magnitude sums of ``uint8`` chunks through the gradient tables.

    Buffers for ``step`` images are allocated once and reused chunk after chunk. Gray
    images gather ``float32`` magnitudes (half the memory traffic; the sums stay within
    float32 rounding of scikit-image's, which accumulates in ``float32`` too); color
    images compare channels on the exact ``float64`` magnitudes, as scikit-image does.

    Parameters
    ----------
    xp : module
    step : int
        Images per chunk (the last chunk may be shorter).
    image_shape : tuple
        ``(height, width)`` or ``(height, width, 3)``.
    cell, cells : tuple of 2 int
    orientations : int
    """

    def __init__(self, xp, step, image_shape, cell, cells, orientations):
        self.xp, self.cells, self.orientations = xp, cells, orientations
        self.channels = image_shape[2] if len(image_shape) == 3 else 0
        self.bin_table, self.magnitude_table = _lookup_tables(orientations, xp.__name__, bool(self.channels))
        shape = (step, cells[0] * cell[0], cells[1] * cell[1])
        self.row = xp.zeros(shape, np.int16)  # borders stay zero: only insides are written
        self.col = xp.zeros(shape, np.int16)
        self.index = xp.empty(shape, np.int32)
        self.bins = xp.empty(shape, self.bin_table.dtype)
        self.key = xp.empty(shape, np.intp)
        self.keys = _cell_keys(step, cell, cells, orientations + 1, xp)
        if self.channels:
            self.magnitude = xp.empty(shape, np.float64)
            self.best_index = xp.empty(shape, np.int32)
            self.candidate = xp.empty(shape, np.float64)
            self.stronger = xp.empty(shape, bool)
        else:
            self.magnitude = xp.empty(shape, np.float32)

    def __call__(self, images):
        """Magnitude sums of a ``uint8`` chunk, (n, cells_row, cells_col, orientations)."""
        xp, n = self.xp, len(images)
        magnitude = self.magnitude[:n]
        if self.channels:
            index = self._strongest_channel(images, magnitude)
        else:
            index = self._index(images.astype(np.int16), self.index[:n])
            _take(self.magnitude_table, index, magnitude)
        _take(self.bin_table, index, self.bins[:n])
        key = xp.add(self.bins[:n], self.keys[:n], out=self.key[:n])
        return _histograms(key, magnitude, n, self.cells, self.orientations, xp)

    def _strongest_channel(self, images, best):
        """Table index of the channel with the largest magnitude (first on ties), per pixel.

        Writes that magnitude into ``best``; returns the index array.
        """
        xp, n = self.xp, len(images)
        planes = xp.ascontiguousarray(xp.moveaxis(images, -1, 0), dtype=np.int16)
        index, other = self.best_index[:n], self.index[:n]
        candidate, stronger = self.candidate[:n], self.stronger[:n]
        self._index(planes[0], index)
        _take(self.magnitude_table, index, best)
        for plane in planes[1:]:
            self._index(plane, other)
            _take(self.magnitude_table, other, candidate)
            xp.greater(candidate, best, out=stronger)  # np.argmax: the first wins ties
            xp.copyto(index, other, where=stronger)
            xp.maximum(best, candidate, out=best)
        return index

    def _index(self, plane, out):
        """Table index ``(g_row + 255) * 511 + g_col + 255`` of int16 ``plane``, into ``out``."""
        n = len(plane)
        row, col = self.row[:n], self.col[:n]
        _gradients(plane, row, col)
        self.xp.multiply(row, _SIDE, out=out, dtype=np.int32)  # int32: 255 * 511 > int16
        out += col
        out += _G * _SIDE + _G
        return out


@functools.lru_cache(maxsize=8)
def _lookup_tables(orientations, module, color):
    """The tables of :func:`_gradient_tables` as :class:`_LookupHistograms` reads them:
    ``float32`` magnitudes for gray images, the exact ``float64`` ones for color."""
    bins, magnitude = _gradient_tables(orientations, module)
    return bins, magnitude if color else magnitude.astype(np.float32)


#: Per thread, the last few CPU plans (buffers of at most ``_CHUNK_PIXELS["numpy"]`` pixels,
#: about 1.5 MB each): a service transforming one image per request reuses its plan
#: instead of allocating and filling the buffers every time. Threads never share one.
_PLANS = threading.local()
_PLANS_PER_THREAD = 4


def _lookup_histograms(xp, step, image_shape, cell, cells, orientations):
    """A :class:`_LookupHistograms` for these sizes: this thread's cached one on the CPU,
    a new one on the GPU (whose chunks are large enough to amortize it)."""
    if xp is not np:
        return _LookupHistograms(xp, step, image_shape, cell, cells, orientations)
    plans = getattr(_PLANS, "plans", None)
    if plans is None:
        plans = _PLANS.plans = {}
    key = (step, tuple(image_shape), cell, cells, orientations)
    plan = plans.pop(key, None)
    if plan is None:
        plan = _LookupHistograms(xp, step, image_shape, cell, cells, orientations)
        while len(plans) >= _PLANS_PER_THREAD:
            plans.pop(next(iter(plans)))  # the least recently used
    plans[key] = plan
    return plan


def _take(table, index, out):
    """``out[...] = table[index]``, without temporaries (``np.take`` with ``mode="clip"``)."""
    if isinstance(table, np.ndarray):
        np.take(table, index, out=out, mode="clip")
    else:
        array_module_of(table).take(table, index, out=out)
