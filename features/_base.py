"""What every feature extractor shares: image validation and the fitted-shape contract."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from compute.backend import DEVICES
from compute.params import ParameterConstraintsMixin, StrOptions, check_params


def check_images(images, *, name="images"):
    """Validate a batch of images and return it as an ndarray.

    Parameters
    ----------
    images : array-like of shape (n_samples, height, width) or (n_samples, height, width, channels)
        ``uint8`` in [0, 255] or floating point in [0, 1]; ``channels`` is 1, 3 or 4.
        A 4th channel is taken to be alpha and is not used: features describe the
        color channels only.

    Returns
    -------
    ndarray of shape (n_samples, height, width) or (n_samples, height, width, 3)
        ``uint8`` or ``float32``/``float64``, unchanged in value.

    Raises
    ------
    ValueError
        With the expected and the received shape, dtype or value range.
    TypeError
        For sparse input, which cannot hold images.
    """
    if sp.issparse(images):
        raise TypeError(f"{name} must be a dense array of images; sparse input is not supported")
    arr = np.asarray(images)
    if arr.dtype == object:
        raise ValueError(f"{name} must be a numeric array, got dtype=object")
    if arr.ndim not in (3, 4):
        raise ValueError(
            f"expected {name} of shape (n_samples, height, width) or "
            f"(n_samples, height, width, channels), got an array of shape {arr.shape}"
        )
    if arr.shape[0] < 1:
        raise ValueError(f"expected at least one image, got {name} of shape {arr.shape}")
    if arr.shape[1] < 1 or arr.shape[2] < 1:
        raise ValueError(f"images must be at least 1x1 pixels, got shape {arr.shape}")
    if arr.ndim == 4:
        channels = arr.shape[3]
        if channels not in (1, 3, 4):
            raise ValueError(f"expected 1, 3 or 4 channels in the last axis, got {channels}")
        arr = arr[..., 0] if channels == 1 else arr[..., :3]
    if arr.dtype == np.bool_ or not (arr.dtype == np.uint8 or arr.dtype.kind == "f"):
        raise ValueError(f"expected uint8 or floating-point images, got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contain NaN or infinite values")
        low, high = float(arr.min()), float(arr.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"floating-point {name} must lie in [0, 1], got values in [{low:g}, {high:g}]; "
                "pass uint8 images for the 0..255 scale"
            )
    return arr


def images_to_float(images, dtype=np.float32):
    """Scale images to [0, 1]: uint8 is divided by 255, floats are cast as they are."""
    if images.dtype == np.uint8:
        return images.astype(dtype) / dtype(255)
    return images.astype(dtype, copy=False)


class ImageTransformer(ParameterConstraintsMixin, TransformerMixin, BaseEstimator):
    """Base of the extractors: ``fit`` records the image shape, ``transform`` checks it.

    Subclasses implement ``_fit(images)`` (optional; only learning extractors need it)
    and ``_transform(images) -> float32 (n_samples, n_features)``.

    ``learns_from_data`` is True for extractors whose ``fit`` learns from the images
    (a codebook, a whitening matrix); batch jobs fit those on the training split.

    ``_parameter_constraints`` (see :mod:`compute.params`) says what each parameter may
    be; subclasses extend this dict. ``fit`` and ``transform`` check them first.
    """

    learns_from_data = False
    _parameter_constraints = {"device": [StrOptions(DEVICES)]}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # features are always float32
        return tags

    def fit(self, X, y=None):
        """Record the input image shape (and learn, for extractors that learn).

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels])
        y : ignored

        Returns
        -------
        self
        """
        check_params(self)
        images = check_images(X)
        self.image_shape_ = tuple(images.shape[1:])
        self._fit(images)
        self.n_features_out_ = int(self._transform(images[:1]).shape[1])
        return self

    def _fit(self, images):
        return None

    def transform(self, X):
        """Extract features.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels])
            The same image shape as seen by ``fit``.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out_), float32
        """
        check_is_fitted(self, "image_shape_")
        check_params(self)  # set_params may have changed them since fit
        images = check_images(X)
        if tuple(images.shape[1:]) != self.image_shape_:
            raise ValueError(
                f"{type(self).__name__} was fitted on images of shape {self.image_shape_}, "
                f"got images of shape {tuple(images.shape[1:])}"
            )
        return np.ascontiguousarray(self._transform(images), dtype=np.float32)

    def get_feature_names_out(self, input_features=None):
        """Names ``<lowercase class name><i>`` for each output feature."""
        check_is_fitted(self, "n_features_out_")
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(self.n_features_out_)], dtype=object)
