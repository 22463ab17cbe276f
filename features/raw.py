"""Raw pixels: optionally grayscale, optionally resized, scaled to [0, 1], flattened."""
from __future__ import annotations

from numbers import Integral

import numpy as np

from compute.backend import get_array_module, to_device, to_numpy
from compute.params import Boolean, Interval, TupleOf
from features._base import ImageTransformer, images_to_float

#: ITU-R BT.601 luma weights (R, G, B): what Pillow's ``convert("L")`` and OpenCV's
#: ``COLOR_RGB2GRAY`` use. Note that ``skimage.color.rgb2gray`` uses the BT.709
#: weights (0.2125, 0.7154, 0.0721) instead.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def rgb_to_gray(images, xp=np):
    """ITU-R BT.601 luma of a batch of RGB images.

    Parameters
    ----------
    images : ndarray of shape (n_samples, height, width, 3), float
    xp : module
        ``numpy`` or ``cupy`` (the module that owns ``images``).

    Returns
    -------
    ndarray of shape (n_samples, height, width), same float dtype
    """
    # An explicit weighted sum, not ``images @ weights``: elementwise, so every pixel
    # gets the same rounding whatever the memory layout, batch size or device.
    r, g, b = (images.dtype.type(w) for w in LUMA_WEIGHTS)
    return images[..., 0] * r + images[..., 1] * g + images[..., 2] * b


def _ndimage(xp):
    if xp is np:
        import scipy.ndimage

        return scipy.ndimage
    import cupyx.scipy.ndimage

    return cupyx.scipy.ndimage


def resize_batch(images, size, xp=np):
    """Resize a batch of float images the way ``skimage.transform.resize`` does.

    This is skimage's recipe (``order=1``, ``mode="reflect"``, ``anti_aliasing=True``)
    applied to the whole batch at once: a Gaussian pre-filter with
    ``sigma = max(0, (factor - 1) / 2)`` along each spatial axis, then
    ``ndimage.zoom(..., order=1, mode="mirror", grid_mode=True)``. The sample and
    channel axes have factor 1, hence no smoothing and exact integer sample
    positions along them, so each image comes out as
    ``skimage.transform.resize(image, size, anti_aliasing=True)`` would give it
    (up to float rounding; the tests hold them equal). On the GPU the same calls
    go to ``cupyx.scipy.ndimage``.

    Parameters
    ----------
    images : ndarray of shape (n_samples, height, width[, channels]), float
    size : tuple of int (out_height, out_width)
    xp : module
        ``numpy`` or ``cupy``.

    Returns
    -------
    ndarray of shape (n_samples, out_height, out_width[, channels]), same dtype
    """
    out_shape = (images.shape[0], *size, *images.shape[3:])
    if tuple(out_shape) == tuple(images.shape):
        return images
    ndi = _ndimage(xp)
    factors = np.divide(images.shape, out_shape)
    sigma = np.maximum(0, (factors - 1) / 2)
    if np.any(sigma > 0):
        images = ndi.gaussian_filter(images, tuple(sigma), cval=0, mode="mirror")
    zoom = tuple(1 / f for f in factors)
    return ndi.zoom(images, zoom, order=1, mode="mirror", cval=0, grid_mode=True)


class RawPixels(ImageTransformer):
    """Pixel values as features: the simplest baseline (cs231n's kNN input).

    Parameters
    ----------
    size : int or tuple of int (height, width), default=None
        Resize every image to this size first (see :func:`resize_batch`: skimage's
        bilinear ``resize`` with anti-aliasing, batched). ``None`` keeps the size.
    grayscale : bool, default=False
        Convert RGB images to ITU-R BT.601 luma (``0.299 R + 0.587 G + 0.114 B``)
        first. Grayscale input is left as it is.
    device : {"auto", "cpu", "gpu"}, default="auto"

    Attributes
    ----------
    image_shape_ : tuple of int
        Shape of one input image seen by ``fit``.
    n_features_out_ : int
        ``out_height * out_width * out_channels``.

    Examples
    --------
    >>> import numpy as np
    >>> images = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    >>> RawPixels(size=4, grayscale=True).fit_transform(images).shape
    (2, 16)
    """

    _parameter_constraints = {
        **ImageTransformer._parameter_constraints,
        "size": [None, Interval(Integral, 1, None, closed="left"),
                 TupleOf(Interval(Integral, 1, None, closed="left"), names=("height", "width"))],
        "grayscale": [Boolean()],
    }

    def __init__(self, size=None, grayscale=False, device="auto"):
        self.size = size
        self.grayscale = grayscale
        self.device = device

    def _transform(self, images):
        """Features of shape (n_samples, n_features_out_), float32, values in [0, 1]."""
        xp = get_array_module(self.device)
        x = images_to_float(to_device(images, xp), dtype=np.float32)
        if self.grayscale and x.ndim == 4:
            x = rgb_to_gray(x, xp)
        if self.size is not None:
            size = (self.size, self.size) if isinstance(self.size, Integral) else self.size
            x = resize_batch(x, tuple(int(s) for s in size), xp)
        return to_numpy(x.reshape(x.shape[0], -1))
