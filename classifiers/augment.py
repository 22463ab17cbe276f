"""Label-preserving random changes to training images, drawn afresh for every mini-batch:
the data augmentation of :class:`classifiers.ConvNet`.

A shift moves each image by a whole number of pixels drawn uniformly in
``[-max_shift, max_shift]`` along each axis, the border pixels repeated into the gap it
opens (not zeros: after :class:`features.RawPixels` with standardization a zero is no
longer the background, while the repeated border of a centred object still is). A flip
mirrors each image left to right with probability 1/2: the right change for photographs
and clothing, the wrong one for text and digits, so it is the user's choice.

The rows hold images flattened in (height, width, channels) order, as the networks take
them; the result has the input's shape and dtype and lives on its device (NumPy or CuPy).
The draws come from a NumPy ``Generator`` on the host, so the CPU and the GPU change the
same images in the same way.
"""
from __future__ import annotations

import numpy as np

from compute.backend import array_module_of, to_device


def shift_and_flip(X, shape, max_shift, flip, rng):
    """Each row's image shifted by up to ``max_shift`` pixels and, with ``flip``, mirrored at random.

    Parameters
    ----------
    X : ndarray of shape (n_samples, height * width * channels)
        NumPy or CuPy.
    shape : tuple (height, width, channels)
    max_shift : int
        Largest shift along each axis, in pixels; 0 leaves the positions alone.
    flip : bool
        Mirror each image left to right with probability 1/2.
    rng : numpy.random.Generator
        Draws, per row: the vertical then the horizontal shift, then (with ``flip``) whether
        to mirror.

    Returns
    -------
    ndarray of shape (n_samples, height * width * channels)
        A new array; ``X`` is not changed.
    """
    xp = array_module_of(X)
    n = X.shape[0]
    h, w, c = shape
    images = X.reshape(n, h, w, c)
    s = int(max_shift)
    dy = rng.integers(-s, s + 1, size=n) if s else np.zeros(n, dtype=np.int64)
    dx = rng.integers(-s, s + 1, size=n) if s else np.zeros(n, dtype=np.int64)
    mirror = rng.random(n) < 0.5 if flip else np.zeros(n, dtype=bool)
    # Output pixel (i, j) of image r reads input pixel (i - dy, j - dx), clipped into the
    # image (the repeated border); a mirrored image reads column w - 1 - j of the shifted one.
    cols = np.arange(w)[None, :]
    cols = np.where(mirror[:, None], w - 1 - cols, cols)
    rows = np.clip(np.arange(h)[None, :] - dy[:, None], 0, h - 1)
    cols = np.clip(cols - dx[:, None], 0, w - 1)
    rows, cols = to_device(rows, xp), to_device(cols, xp)
    out = images[xp.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.reshape(n, h * w * c)


class ImageAugmenter:
    """:func:`shift_and_flip` with its settings, as the training loop calls it on each batch.

    Parameters
    ----------
    shape : tuple (height, width, channels)
    max_shift : int
    flip : bool
    """

    def __init__(self, shape, max_shift, flip):
        self.shape, self.max_shift, self.flip = tuple(shape), int(max_shift), bool(flip)

    def __call__(self, X, rng):
        """The batch ``X`` (n_samples, height * width * channels) changed with draws from ``rng``."""
        return shift_and_flip(X, self.shape, self.max_shift, self.flip, rng)
