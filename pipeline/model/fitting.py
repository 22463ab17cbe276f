"""Fitting an :class:`~pipeline.model.ImagePipeline` in its steps, so that a person
watching sees them: the features extracted a chunk at a time under a progress bar, the
classifier's epochs under another (``cvpipe train``, ``cvpipe cv knn``).

:func:`extract_features` then :func:`fit_on_features` give the pipeline that
``ImagePipeline(features, classifier).fit(images, labels)`` gives (a test holds them
equal); the features, computed once, can serve a search first. Bars are drawn only on a
terminal (tqdm's ``disable=None``) and only when ``progress`` is true.
"""
from __future__ import annotations

import logging
import sys
from contextlib import contextmanager

import numpy as np
from sklearn.base import clone
from tqdm.auto import tqdm

from classifiers._sgd import EPOCH_LOGGER
from pipeline.model.image_pipeline import ImagePipeline, _build_scaler, image_shape_hint

__all__ = ["epoch_bar", "extract_features", "fit_on_features"]


def extract_features(extractor, images, labels=None, *, chunk_size=4096, progress=False):
    """Fit ``extractor`` on ``images``, then transform them a chunk at a time under a
    progress bar: what ``extractor.fit_transform(images, labels)`` returns.

    Parameters
    ----------
    extractor : transformer
        Unfitted; fitted here.
    images : ndarray of shape (n_samples, height, width[, channels])
    labels : ndarray of shape (n_samples,), optional
    chunk_size : int
        Images transformed at a time (every extractor transforms each image alone).
    progress : bool
        Show a bar (on a terminal only).

    Returns
    -------
    ndarray of shape (n_samples, n_features), float32
    """
    extractor.fit(images, labels)
    Z = None
    with tqdm(total=len(images), desc="features", unit="img", disable=None if progress else True,
              leave=False) as bar:
        for start in range(0, len(images), chunk_size):
            part = extractor.transform(images[start:start + chunk_size])
            if Z is None:
                Z = np.empty((len(images), part.shape[1]), dtype=part.dtype)
            Z[start:start + len(part)] = part
            bar.update(len(part))
    return Z


def fit_on_features(features, classifier, extractor, Z, images, labels, class_names=None, *, scaler=True,
                    progress=False):
    """The fitted ``ImagePipeline(features, classifier)`` that ``fit(images, labels,
    class_names=class_names)`` returns, from ``extractor`` already fitted on ``images``
    and their features ``Z`` (:func:`extract_features`), the classifier's epochs under a
    progress bar (a test holds the two equal).

    Parameters
    ----------
    features : feature spec
        The pipeline's ``features`` parameter, as ``fit`` would have been given it.
    classifier : classifier
        Unfitted; a clone of it is fitted.
    extractor : transformer
        Fitted on ``images``.
    Z : ndarray of shape (n_samples, n_features)
    images : ndarray of shape (n_samples, height, width[, channels])
    labels : ndarray of shape (n_samples,)
    class_names : sequence or mapping, optional
    scaler : bool, default=True
        Standardize the features (``StandardScaler``) before the classifier, as
        ``ImagePipeline(scaler=True)`` does; False gives the classifier ``Z`` as it is.
    progress : bool

    Returns
    -------
    ImagePipeline
    """
    fitted_scaler = _build_scaler(bool(scaler))  # as ImagePipeline.fit builds it
    fitted = clone(classifier)
    with epoch_bar(fitted, progress):
        fitted.fit(Z if fitted_scaler is None else fitted_scaler.fit_transform(Z), labels,
                   **image_shape_hint(extractor, fitted, images.shape[1:3]))
    model = ImagePipeline.from_fitted(extractor, fitted_scaler, fitted, input_shape=images.shape[1:3],
                                      color_mode="L" if images.ndim == 3 else "RGB", class_names=class_names)
    return model.set_params(features=features, classifier=classifier, scaler=bool(scaler), class_names=None)


class _EpochHandler(logging.Handler):
    def __init__(self, bar):
        super().__init__(logging.DEBUG)
        self.bar = bar

    def emit(self, record):
        epoch = getattr(record, "epoch", None)
        if epoch is not None and epoch > self.bar.n:
            self.bar.update(epoch - self.bar.n)


@contextmanager
def epoch_bar(classifier, progress):
    """A progress bar of ``classifier``'s training epochs while the block runs (on a
    terminal only), from the epochs cvpipe's classifiers report
    (:data:`classifiers._sgd.EPOCH_LOGGER`); others show none."""
    if not progress or not sys.stderr.isatty() or not hasattr(classifier, "n_epochs"):
        yield
        return
    bar = tqdm(total=classifier.n_epochs, desc=f"train {type(classifier).__name__}", unit="epoch", leave=False)
    handler, saved = _EpochHandler(bar), (EPOCH_LOGGER.level, EPOCH_LOGGER.propagate)
    EPOCH_LOGGER.addHandler(handler)
    EPOCH_LOGGER.setLevel(logging.DEBUG)
    EPOCH_LOGGER.propagate = False  # the bar says it; the log need not say it again
    try:
        yield
    finally:
        EPOCH_LOGGER.removeHandler(handler)
        EPOCH_LOGGER.setLevel(saved[0])
        EPOCH_LOGGER.propagate = saved[1]
        bar.close()
