"""HSV color histograms: of hue alone (cs231n's ``color_histogram_hsv``) or joint H x S x V."""
from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

from compute.backend import get_array_module, to_device, to_numpy
from compute.params import Boolean, Interval, StrOptions, TupleOf
from features._base import ImageTransformer, images_to_float

MODES = ("hue", "joint")
_CHUNK_PIXELS = 2**21  # pixels converted to HSV at once (float64): bounds the memory


def rgb_to_hsv(rgb, xp=np):
    """HSV of RGB values, as ``skimage.color.rgb2hsv`` / ``matplotlib.colors.rgb_to_hsv``.

    Same formulas and the same tie order (blue, then green, then red wins when two
    channels share the maximum), so the hue of every pixel is bit-identical to
    skimage's. Gray pixels (``max == min``) get hue 0 and saturation 0.

    Parameters
    ----------
    rgb : ndarray of shape (..., 3), float in [0, 1]
    xp : module
        ``numpy`` or ``cupy``.

    Returns
    -------
    ndarray of shape (..., 3)
        Hue in [0, 1), saturation and value in [0, 1].
    """
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(axis=-1)
    delta = v - rgb.min(axis=-1)
    gray = delta == 0
    safe_delta = xp.where(gray, 1.0, delta)
    s = xp.where(gray, 0.0, delta / xp.where(v == 0, 1.0, v))
    h = xp.where(
        b == v,
        4.0 + (r - g) / safe_delta,
        xp.where(g == v, 2.0 + (b - r) / safe_delta, (g - b) / safe_delta),
    )
    h = xp.where(gray, 0.0, (h / 6.0) % 1.0)
    return xp.stack([h, s, v], axis=-1)


def bin_index(values, bins, value_range, xp=np):
    """Histogram bin of each value, exactly as ``np.histogram`` assigns it.

    Bins are ``bins`` equal intervals of ``value_range``, half-open except the
    last, which includes its right edge. The index is corrected against the
    edges ``np.linspace(low, high, bins + 1)`` the way ``np.histogram`` does, so
    values on an edge land in the same bin.

    Parameters
    ----------
    values : ndarray of any shape, float
    bins : int
    value_range : tuple of float (low, high)
    xp : module

    Returns
    -------
    index : ndarray of values' shape, int64
        The bin, clipped to [0, bins - 1] where the value is out of range.
    inside : ndarray of values' shape, bool
        Whether the value lies in ``[low, high]`` (others are not counted).
    """
    low, high = value_range
    edges = xp.asarray(np.linspace(low, high, bins + 1))
    inside = (values >= low) & (values <= high)
    index = ((values - low) / (high - low) * bins).astype(np.int64)
    index = xp.clip(index, 0, bins - 1)
    index -= (values < edges[index]).astype(np.int64)
    index = xp.clip(index, 0, bins - 1)
    index += ((values >= edges[index + 1]) & (index != bins - 1)).astype(np.int64)
    return index, inside


def _batched_histogram(index, weights, n_bins, xp):
    """Counts per (image, bin): ``index``/``weights`` of shape (n_images, n_pixels)."""
    n_images = index.shape[0]
    flat = (index + n_bins * xp.arange(n_images)[:, None]).ravel()
    counts = xp.bincount(flat, weights=weights.ravel().astype(np.float64), minlength=n_images * n_bins)
    return counts.reshape(n_images, n_bins)


class ColorHistogram(ImageTransformer):
    """Color histogram in HSV space.

    ``mode="hue"`` is cs231n's ``color_histogram_hsv``: a histogram of the hue of
    every pixel over ``bins`` equal bins. cs231n takes ``np.histogram(...,
    density=True)`` and multiplies by the bin widths, which makes the fraction of
    pixels per bin (the histogram sums to 1); ``normalize=True`` gives exactly
    that (cs231n scales hue by 255 and its bins by 255 too, the same bins).
    Gray pixels have no hue: like matplotlib's and skimage's conversions they get
    hue 0 and land in the first bin.

    ``mode="joint"`` is a joint H x S x V histogram, ``bins`` per channel, flattened
    in C order (hue slowest, value fastest): ``bins**3`` features.

    **Grayscale input** (``(n, height, width)`` images) has no hue. In ``"hue"``
    mode the histogram is taken over the intensity (the HSV value) instead, with
    the same bins, so a grayscale model still gets a meaningful ``bins``-long
    feature. In ``"joint"`` mode a gray image is an RGB image with R = G = B:
    hue = saturation = 0 and value = intensity, so its features equal those of
    the same image replicated to three channels.

    Parameters
    ----------
    bins : int, default=10
        Bins per histogrammed channel.
    mode : {"hue", "joint"}, default="hue"
    value_range : tuple of float (low, high), default=None
        Range covered by the bins, on the [0, 1] HSV scale, for every histogrammed
        channel (``None`` means (0, 1)). As in ``np.histogram``, values outside it
        are not counted.
    normalize : bool, default=True
        Divide each histogram by its number of counted pixels (it then sums to 1;
        an image with no pixel in ``value_range`` gives zeros). ``False`` gives
        raw pixel counts.
    device : {"auto", "cpu", "gpu"}, default="auto"

    Attributes
    ----------
    image_shape_ : tuple of int
    n_features_out_ : int
        ``bins`` or ``bins**3``.
    """

    _parameter_constraints = {
        **ImageTransformer._parameter_constraints,
        "bins": [Interval(Integral, 1, None, closed="left")],
        "mode": [StrOptions(MODES)],
        "value_range": [None, TupleOf(Interval(Real, -math.inf, math.inf, closed="neither"),
                                      names=("low", "high"), increasing=True)],
        "normalize": [Boolean()],
    }

    def __init__(self, bins=10, mode="hue", value_range=None, normalize=True, device="auto"):
        self.bins = bins
        self.mode = mode
        self.value_range = value_range
        self.normalize = normalize
        self.device = device

    def _transform(self, images):
        """Histograms of shape (n_samples, bins) or (n_samples, bins**3), float32."""
        value_range = (0.0, 1.0) if self.value_range is None else tuple(float(v) for v in self.value_range)
        xp = get_array_module(self.device)
        n_pixels = int(np.prod(images.shape[1:3]))
        step = max(1, _CHUNK_PIXELS // n_pixels)
        out = [
            self._histograms(to_device(images[i : i + step], xp), value_range, xp)
            for i in range(0, images.shape[0], step)
        ]
        return np.concatenate(out, axis=0)

    def _histograms(self, images, value_range, xp):
        """Histograms of one chunk of images (on ``xp``), returned as NumPy float32."""
        x = images_to_float(images, dtype=np.float64)
        n = x.shape[0]
        if x.ndim == 3:  # grayscale: value = intensity, hue = saturation = 0
            v = x.reshape(n, -1)
            hsv = None
        else:
            hsv = rgb_to_hsv(x, xp).reshape(n, -1, 3)
            v = hsv[..., 2]
        bins = self.bins
        if self.mode == "hue":
            index, inside = bin_index(v if hsv is None else hsv[..., 0], bins, value_range, xp)
            counts = _batched_histogram(index, inside, bins, xp)
        else:
            if hsv is None:
                zeros = xp.zeros_like(v)
                channels = (zeros, zeros, v)
            else:
                channels = (hsv[..., 0], hsv[..., 1], hsv[..., 2])
            index = 0
            inside = True
            for channel in channels:
                idx, ok = bin_index(channel, bins, value_range, xp)
                index = index * bins + idx
                inside = inside & ok
            counts = _batched_histogram(index, inside, bins**3, xp)
        if self.normalize:
            totals = counts.sum(axis=1, keepdims=True)
            counts = counts / xp.where(totals > 0, totals, 1.0)
        return to_numpy(counts).astype(np.float32)
