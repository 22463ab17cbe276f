"""Bag of visual words: dense local descriptors, a k-means codebook, pooled codes.

The recipe of Coates, Lee & Ng (2011), "An Analysis of Single-Layer Networks in
Unsupervised Feature Learning": dense patches, brightness/contrast normalized and
ZCA-whitened, a k-means dictionary, hard or "triangle" (soft) encoding, sum
pooling over the image or over a 1x1 + 2x2 spatial pyramid.
"""
from __future__ import annotations

import logging
from numbers import Integral

import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from compute.backend import get_array_module, to_device, to_numpy
from compute.distances import nearest_neighbors, pairwise_distances
from compute.params import Boolean, Interval, StrOptions
from features._base import ImageTransformer, check_images
from features._local_descriptors import (
    N_ORIENTATIONS,
    grid_offsets,
    hog_descriptors,
    patch_descriptors,
    zca_whitening,
)

logger = logging.getLogger(__name__)

DESCRIPTORS = ("patch", "hog")
ASSIGNMENTS = ("hard", "soft")
_CHUNK_BYTES = 64 * 2**20  # working memory of one chunk of images in transform/fit


class BagOfVisualWords(ImageTransformer):
    """Bag of visual words over dense local descriptors.

    ``fit`` samples at most ``n_fit_descriptors`` local descriptors from the
    images (with ``random_state``), learns the ZCA whitening on them (if
    ``whiten``) and a codebook of ``n_words`` centres with
    ``MiniBatchKMeans(n_init=3)``. ``transform`` encodes every descriptor against
    the codebook and pools the codes per image (or per pyramid region).

    Parameters
    ----------
    n_words : int, default=100
        Size of the codebook (k-means clusters).
    descriptor : {"patch", "hog"}, default="patch"
        ``"patch"``: raw pixel patches, all channels (see :func:`patch_descriptors`);
        ``"hog"``: orientation histograms of the 2x2 cells of each patch, 36 values
        (see :func:`hog_descriptors`).
    patch_size : int, default=6
        Side of the square patch, in pixels (at least 2 for ``"hog"``).
    stride : int, default=2
        Step of the dense grid, in pixels.
    normalize_patches : bool, default=True
        ``"patch"``: per-patch brightness/contrast normalization (Coates et al.:
        ``(x - mean) / sqrt(var + 10)`` on the 0..255 scale); without it patches
        stay on the [0, 1] scale. ``"hog"``: L2 normalization of each descriptor.
    whiten : bool, default=True
        ZCA-whiten the descriptors (learned in ``fit``, ``eps = 0.1`` as Coates et
        al. use on normalized patches; the same ``eps`` is used in every case).
    assignment : {"hard", "soft"}, default="hard"
        ``"hard"``: each descriptor votes for its nearest centre (squared L2, ties to
        the lower index, through :func:`compute.distances.nearest_neighbors`); each
        pooled histogram is L1-normalized (sums to 1; an empty region gives zeros).
        ``"soft"``: Coates' triangle encoding ``f_k = max(0, mean_j(z_j) - z_k)``,
        ``z_k`` the L2 distance to centre ``k`` (through
        :func:`compute.distances.pairwise_distances`), sum-pooled, then each pooled
        region L2-normalized (zeros stay zeros). The per-region normalization keeps
        the whole-image block and the quadrant blocks, which pool different numbers
        of descriptors, on one scale; standardize downstream as usual.
    spatial_pyramid : bool, default=False
        Pool over the whole image only (``n_words`` features), or over the 1x1 + 2x2
        pyramid: blocks ``[whole, top-left, top-right, bottom-left, bottom-right]``
        of ``n_words`` each (``5 * n_words`` features). A descriptor belongs to the
        quadrant that holds its patch centre (a centre on the midline counts as
        bottom / right).
    n_fit_descriptors : int, default=100000
        At most this many descriptors (sampled uniformly without replacement over
        all images and grid positions) learn the whitening and the codebook.
    batch_size : int, default=4096
        ``MiniBatchKMeans`` batch size.
    random_state : int, RandomState instance or None, default=None
        Drives the descriptor sample and k-means: the same seed gives the same
        codebook and the same features.
    device : {"auto", "cpu", "gpu"}, default="auto"
        Where the descriptors and distances are computed. The distance kernels
        return NumPy, so encoding and pooling after them run on the CPU; k-means
        is scikit-learn's (CPU).

    Attributes
    ----------
    codebook_ : ndarray of shape (n_words, n_dims), float32
        The visual words, in the (whitened) descriptor space.
    whitening_mean_ : ndarray of shape (n_dims,), float32, or None
    whitening_matrix_ : ndarray of shape (n_dims, n_dims), float32, or None
        ``None`` when ``whiten=False``.
    n_fit_descriptors_ : int
        How many descriptors were sampled to fit.
    image_shape_ : tuple of int
    n_features_out_ : int
        ``n_words``, or ``5 * n_words`` with the spatial pyramid.

    Notes
    -----
    Images are processed in chunks sized so that one chunk's descriptors and
    codes take about 64 MiB, whatever the number of images.
    """

    learns_from_data = True  # the whitening and the codebook come from the images
    _parameter_constraints = {
        **ImageTransformer._parameter_constraints,
        "n_words": [Interval(Integral, 1, None, closed="left")],
        "descriptor": [StrOptions(DESCRIPTORS)],
        "patch_size": [Interval(Integral, 1, None, closed="left")],
        "stride": [Interval(Integral, 1, None, closed="left")],
        "normalize_patches": [Boolean()],
        "whiten": [Boolean()],
        "assignment": [StrOptions(ASSIGNMENTS)],
        "spatial_pyramid": [Boolean()],
        "n_fit_descriptors": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_words=100,
        descriptor="patch",
        patch_size=6,
        stride=2,
        normalize_patches=True,
        whiten=True,
        assignment="hard",
        spatial_pyramid=False,
        n_fit_descriptors=100000,
        batch_size=4096,
        random_state=None,
        device="auto",
    ):
        self.n_words = n_words
        self.descriptor = descriptor
        self.patch_size = patch_size
        self.stride = stride
        self.normalize_patches = normalize_patches
        self.whiten = whiten
        self.assignment = assignment
        self.spatial_pyramid = spatial_pyramid
        self.n_fit_descriptors = n_fit_descriptors
        self.batch_size = batch_size
        self.random_state = random_state
        self.device = device

    # ------------------------------------------------------------------ checks
    def _check_patch_size(self, image_shape):
        """What ``patch_size`` needs beyond its own constraint: the descriptor's and the images'."""
        if self.descriptor == "hog" and self.patch_size < 2:
            raise ValueError(
                f"patch_size must be an integer >= 2 with descriptor='hog' (2x2 cells), "
                f"got {self.patch_size!r}"
            )
        height, width = image_shape[:2]
        if self.patch_size > min(height, width):
            raise ValueError(
                f"patch_size={self.patch_size} does not fit in images of "
                f"{height}x{width} pixels; use a patch_size of at most {min(height, width)}"
            )

    def _n_positions(self, image_shape):
        height, width = image_shape[:2]
        return len(grid_offsets(height, self.patch_size, self.stride)) * len(
            grid_offsets(width, self.patch_size, self.stride)
        )

    def _n_dims(self, image_shape):
        if self.descriptor == "hog":
            return 4 * N_ORIENTATIONS
        channels = image_shape[2] if len(image_shape) == 3 else 1
        return self.patch_size * self.patch_size * channels

    def _chunk_images(self, image_shape, n_dims):
        """Images per chunk so that one chunk's working arrays stay near _CHUNK_BYTES."""
        height, width = image_shape[:2]
        codes = max(n_dims, self.n_words * (2 if self.assignment == "soft" else 1))
        per_image = 4 * max(
            3 * self._n_positions(image_shape) * codes,
            height * width * (3 * N_ORIENTATIONS + 8),
        )
        return max(1, _CHUNK_BYTES // per_image)

    # ------------------------------------------------------------ descriptors
    def _raw_descriptors(self, images, xp):
        """Unwhitened descriptors of a chunk: (n, n_positions, n_dims) float32 on ``xp``."""
        x = xp.ascontiguousarray(to_device(images, xp))
        if self.descriptor == "patch":
            x255 = x.astype(np.float32) if x.dtype == np.uint8 else x.astype(np.float32) * 255
            return patch_descriptors(x255, self.patch_size, self.stride, self.normalize_patches, xp)
        x01 = x.astype(np.float32) / np.float32(255) if x.dtype == np.uint8 else x.astype(np.float32)
        return hog_descriptors(x01, self.patch_size, self.stride, self.normalize_patches, xp)

    def _whitened(self, desc, xp):
        if self.whitening_matrix_ is None:
            return desc
        mean = xp.asarray(self.whitening_mean_)
        return (desc - mean) @ xp.asarray(self.whitening_matrix_)

    def _check_fitted_params(self, image_shape):
        """The parameters now must describe the codebook that was fitted (``set_params`` after
        ``fit`` could change the descriptor's size or the number of words)."""
        self._check_patch_size(image_shape)
        fitted, now = self.codebook_.shape, (self.n_words, self._n_dims(image_shape))
        if fitted != now:
            raise ValueError(
                f"{type(self).__name__} was fitted with {fitted[0]} words of {fitted[1]} dimensions; its "
                f"parameters now give {now[0]} words of {now[1]} (n_words={self.n_words}, patch_size="
                f"{self.patch_size}, descriptor={self.descriptor!r}): fit it again after changing them")

    def _descriptor_chunks(self, images, xp):
        """Yield (start, whitened descriptors of images[start:start + step])."""
        self._check_fitted_params(images.shape[1:])
        n_dims = self.codebook_.shape[1]
        step = self._chunk_images(images.shape[1:], n_dims)
        for start in range(0, images.shape[0], step):
            desc = self._raw_descriptors(images[start : start + step], xp)
            yield start, self._whitened(desc, xp)

    def local_descriptors(self, X):
        """The local descriptors the codebook sees (normalized and whitened).

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels])

        Returns
        -------
        ndarray of shape (n_samples, n_positions, n_dims), float32
            Grid positions in row-major order.
        """
        check_is_fitted(self, "codebook_")
        images = self._checked_images(X)
        xp = get_array_module(self.device)
        parts = [to_numpy(d) for _, d in self._descriptor_chunks(images, xp)]
        return np.concatenate(parts, axis=0).astype(np.float32, copy=False)

    def _checked_images(self, X):
        images = check_images(X)
        if tuple(images.shape[1:]) != self.image_shape_:
            raise ValueError(
                f"{type(self).__name__} was fitted on images of shape {self.image_shape_}, "
                f"got images of shape {tuple(images.shape[1:])}"
            )
        return images

    # -------------------------------------------------------------------- fit
    def _sample_descriptors(self, images, xp, rng):
        """At most n_fit_descriptors unwhitened descriptors, uniformly sampled: (m, n_dims)."""
        n_positions = self._n_positions(images.shape[1:])
        total = images.shape[0] * n_positions
        n_sample = min(self.n_fit_descriptors, total)
        if n_sample < self.n_words:
            raise ValueError(
                f"n_words={self.n_words} needs at least {self.n_words} descriptors to learn "
                f"the codebook, got {n_sample} ({images.shape[0]} images x {n_positions} "
                f"positions, at most n_fit_descriptors={self.n_fit_descriptors})"
            )
        if n_sample == total:
            chosen = np.arange(total)
        else:
            chosen = np.sort(rng.choice(total, size=n_sample, replace=False))
        step = self._chunk_images(images.shape[1:], self._n_dims(images.shape[1:]))
        parts = []
        for start in range(0, images.shape[0], step):
            stop = min(images.shape[0], start + step)
            lo, hi = np.searchsorted(chosen, [start * n_positions, stop * n_positions])
            if lo == hi:
                continue
            desc = self._raw_descriptors(images[start:stop], xp)
            desc = desc.reshape(-1, desc.shape[2])
            parts.append(to_numpy(desc[xp.asarray(chosen[lo:hi] - start * n_positions)]))
        return np.concatenate(parts, axis=0).astype(np.float32, copy=False)

    def _fit(self, images):
        self._check_patch_size(images.shape[1:])
        xp = get_array_module(self.device)
        rng = check_random_state(self.random_state)
        sample = self._sample_descriptors(images, xp, rng)
        if self.whiten:
            self.whitening_mean_, self.whitening_matrix_ = zca_whitening(sample)
            sample = (sample - self.whitening_mean_) @ self.whitening_matrix_
        else:
            self.whitening_mean_ = self.whitening_matrix_ = None
        logger.info(
            "learning %d visual words from %d %s descriptors of %d dimensions",
            self.n_words, sample.shape[0], self.descriptor, sample.shape[1],
        )
        kmeans = MiniBatchKMeans(
            n_clusters=self.n_words, batch_size=self.batch_size, n_init=3, random_state=rng
        ).fit(sample)
        self.codebook_ = kmeans.cluster_centers_.astype(np.float32)
        self.n_fit_descriptors_ = int(sample.shape[0])
        return self

    # -------------------------------------------------------------- transform
    def _quadrants(self, image_shape):
        """Quadrant (0 TL, 1 TR, 2 BL, 3 BR) of each grid position: (n_positions,)."""
        height, width = image_shape[:2]
        cy = grid_offsets(height, self.patch_size, self.stride) + self.patch_size / 2
        cx = grid_offsets(width, self.patch_size, self.stride) + self.patch_size / 2
        return (2 * (cy[:, None] >= height / 2) + (cx[None, :] >= width / 2)).ravel()

    def _encode_hard(self, desc, quadrants):
        """L1-normalized word counts per region: (n, n_regions, n_words)."""
        n, n_positions, n_dims = desc.shape
        k = self.codebook_.shape[0]
        _, words = nearest_neighbors(
            desc.reshape(-1, n_dims), self.codebook_, n_neighbors=1, metric="l2",
            squared=True, device=self.device,
        )
        words = words.reshape(n, n_positions)
        image = np.arange(n)[:, None]
        pooled = np.bincount((image * k + words).ravel(), minlength=n * k).reshape(n, 1, k)
        if quadrants is not None:
            flat = ((image * 4 + quadrants[None, :]) * k + words).ravel()
            quads = np.bincount(flat, minlength=n * 4 * k).reshape(n, 4, k)
            pooled = np.concatenate([pooled, quads], axis=1)
        pooled = pooled.astype(np.float64)
        totals = pooled.sum(axis=2, keepdims=True)
        return pooled / np.where(totals > 0, totals, 1.0)

    def _encode_soft(self, desc, quadrants):
        """L2-normalized sum-pooled triangle codes per region: (n, n_regions, n_words)."""
        n, n_positions, n_dims = desc.shape
        z = pairwise_distances(
            desc.reshape(-1, n_dims), self.codebook_, metric="l2", device=self.device
        ).reshape(n, n_positions, self.codebook_.shape[0])
        codes = np.maximum(0.0, z.mean(axis=2, keepdims=True) - z)
        pooled = codes.sum(axis=1, keepdims=True, dtype=np.float64)
        if quadrants is not None:
            membership = (quadrants[:, None] == np.arange(4)).astype(codes.dtype)  # (P, 4)
            quads = np.matmul(membership.T[None], codes, dtype=np.float64)  # (n, 4, k)
            pooled = np.concatenate([pooled, quads], axis=1)
        norms = np.sqrt((pooled * pooled).sum(axis=2, keepdims=True))
        return pooled / np.where(norms > 0, norms, 1.0)

    def _transform(self, images):
        """Pooled codes of shape (n_samples, n_words or 5 * n_words), float32."""
        xp = get_array_module(self.device)
        quadrants = self._quadrants(images.shape[1:]) if self.spatial_pyramid else None
        encode = self._encode_hard if self.assignment == "hard" else self._encode_soft
        out = []
        for _, desc in self._descriptor_chunks(images, xp):
            pooled = encode(desc, quadrants)
            out.append(pooled.reshape(pooled.shape[0], -1).astype(np.float32))
        return np.concatenate(out, axis=0)
