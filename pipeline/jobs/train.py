"""Training from what a batch job extracted: features larger than memory, a model that
still predicts from images.

The features of a finished extraction (:mod:`pipeline.jobs.extract`) are opened
memory-mapped and never read whole into memory:

1. a ``StandardScaler`` learns the mean and scale with ``partial_fit``, a block of rows
   at a time;
2. the standardized rows are written, a block at a time, to a float32 scratch file
   (memory-mapped) beside the model, leaving out the rows whose image could not be read
   (NaN, listed in the job's manifest);
3. the classifier trains on that file: the linear models and the net read their
   mini-batches from it (from a shuffle buffer of consecutive blocks when the file is
   larger than ``SHUFFLE_BYTES``: a permutation of all rows would read every row from a
   random place on disk), kNN keeps it and tiles its distances over it.

The extractor comes from the job's folder (its sha256 checked against the manifest),
so the model is an :class:`ImagePipeline` like any other: images in, labels out.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from pipeline.jobs.extract import ExtractionError, load_features
from pipeline.model import ArtifactError, ImagePipeline, build_classifier, load_extractor

logger = logging.getLogger(__name__)

#: Bytes of features read at a time while standardizing.
BLOCK_BYTES = 64 * 2**20
#: Bytes of features in the shuffle buffer of mini-batch training (``shuffle_buffer="auto"``):
#: features larger than this are read a buffer of consecutive blocks at a time.
SHUFFLE_BYTES = 256 * 2**20


def _blocks(n_rows, n_features):
    step = max(1, BLOCK_BYTES // max(1, 4 * n_features))
    return [(start, min(n_rows, start + step)) for start in range(0, n_rows, step)]


def _kept_rows(manifest, n_rows):
    """A boolean mask of the rows to train on: every row but those of unreadable images."""
    keep = np.ones(n_rows, dtype=bool)
    failed = [item["row"] for item in manifest.get("failed_items", [])]
    keep[failed] = False
    return keep


def open_extraction(features_dir, verify=True):
    """The pieces of a finished extraction: ``(features, labels, manifest, extractor)``.

    ``features`` is memory-mapped; with ``verify`` the sha256 of both arrays is checked
    against the manifest first (one sequential read). The extractor is loaded from the
    job's folder and checked against the sha256 the manifest recorded.

    Raises
    ------
    FileNotFoundError
        No finished job in ``features_dir``.
    ExtractionError
        A file changed since the job wrote it, or the extractor is missing or another.
    """
    features, labels, manifest = load_features(features_dir, mmap=True, verify=verify)
    folder = Path(features_dir) / manifest["extractor"]["folder"]
    try:
        extractor, sha256 = load_extractor(folder)
    except ArtifactError as exc:
        raise ExtractionError(f"{features_dir}: the job's extractor cannot be read ({exc})") from exc
    if sha256 != manifest["extractor"]["sha256"]:
        raise ExtractionError(f"{folder}: not the extractor that computed these features (sha256 {sha256[:12]}, "
                              f"the manifest's {manifest['extractor']['sha256'][:12]})")
    return features, labels, manifest, extractor


def _shuffle_buffer(clf, shuffle_buffer, n_rows, n_features):
    """The classifier's ``shuffle_buffer`` for ``n_rows`` features: "auto" sets one (rows of
    ``SHUFFLE_BYTES``) where the features are larger than that and the classifier has none."""
    if "shuffle_buffer" not in clf.get_params() or shuffle_buffer is None:
        return
    if shuffle_buffer == "auto":
        rows = SHUFFLE_BYTES // max(1, 4 * n_features)
        if clf.get_params()["shuffle_buffer"] is None and n_rows > rows:
            clf.set_params(shuffle_buffer=int(rows))
    else:
        clf.set_params(shuffle_buffer=shuffle_buffer)


def train_from_features(features_dir, classifier, *, scaler=True, seed=0, scratch_dir=None, verify=True,
                        shuffle_buffer="auto", progress=True):
    """Train a scaler and a classifier on a finished extraction, without loading it whole.

    Parameters
    ----------
    features_dir : path
        The output folder of ``cvpipe extract`` / :func:`pipeline.jobs.run_extraction`.
    classifier : str or classifier
        A classifier spec (``"softmax"``, ``"net:hidden_sizes=256"``, ``"knn:n_neighbors=5"``) or
        an unfitted classifier; its ``random_state`` (where it has one) is set to ``seed``.
    scaler : bool, default=True
        Standardize the features (``StandardScaler``, fitted with ``partial_fit``).
    seed : int
    scratch_dir : path, optional
        Where the standardized features are written while the classifier trains (as large
        as the kept features). Default: the system's temporary folder; give a folder on a
        disk with room for a features array larger than memory (the CLI uses the model's
        parent folder).
    verify : bool, default=True
        Check the sha256 of the features and labels against the job's manifest first.
    shuffle_buffer : "auto", int or None, default="auto"
        The mini-batch order of the linear models and the net (their ``shuffle_buffer``):
        "auto" shuffles ``SHUFFLE_BYTES`` of rows at a time when the kept features are
        larger than that (and the classifier sets none itself), else all rows; an int, that
        many rows; None leaves the classifier's own setting.
    progress : bool

    Returns
    -------
    ImagePipeline
        Fitted; ``metrics_`` holds ``n_train``, ``n_left_out`` (unreadable images) and
        ``train_seconds``. A kNN classifier keeps the standardized features as its training
        set, memory-mapped from the scratch file: save the model before that folder is
        removed, or expect it to be read again from the open mapping.
    """
    t0 = time.perf_counter()
    features, labels, manifest, extractor = open_extraction(features_dir, verify=verify)
    n_rows, n_features = features.shape
    keep = _kept_rows(manifest, n_rows)
    n_kept = int(keep.sum())
    if n_kept == 0:
        raise ExtractionError(f"{features_dir}: no row to train on: every image of the job was unreadable")
    blocks = _blocks(n_rows, n_features)
    fitted_scaler = StandardScaler() if scaler else None
    if fitted_scaler is not None:
        for start, stop in tqdm(blocks, desc="scaler", unit="block", disable=not progress):
            block = np.asarray(features[start:stop])[keep[start:stop]]
            if len(block):
                fitted_scaler.partial_fit(block)
    clf = build_classifier(classifier) if isinstance(classifier, str) else classifier
    if "random_state" in clf.get_params():
        clf.set_params(random_state=seed)
    _shuffle_buffer(clf, shuffle_buffer, n_kept, n_features)
    scratch = Path(tempfile.mkdtemp(prefix=".cvpipe-train-", dir=scratch_dir))
    try:
        train = np.lib.format.open_memmap(scratch / "standardized.npy", mode="w+", dtype=np.float32,
                                          shape=(n_kept, n_features))
        at = 0
        for start, stop in tqdm(blocks, desc="standardize", unit="block", disable=not progress):
            block = np.asarray(features[start:stop])[keep[start:stop]]
            if fitted_scaler is not None and len(block):
                block = fitted_scaler.transform(block)
            train[at:at + len(block)] = block
            at += len(block)
        train.flush()
        train = np.load(scratch / "standardized.npy", mmap_mode="r")  # read-only from here on
        logger.info("training %s on %d x %d features (%d unreadable images left out; shuffle buffer: %s)",
                    type(clf).__name__, n_kept, n_features, n_rows - n_kept,
                    clf.get_params().get("shuffle_buffer") or "all rows")
        clf.fit(train, labels[keep])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    shape = manifest["dataset"]["image_shape"]
    model = ImagePipeline.from_fitted(extractor, fitted_scaler, clf, input_shape=shape[:2],
                                      color_mode="RGB" if len(shape) == 3 and shape[2] != 1 else "L",
                                      class_names=manifest["dataset"]["class_names"])
    model.metrics_ = {"n_train": n_kept, "n_left_out": n_rows - n_kept,
                      "train_seconds": round(time.perf_counter() - t0, 1)}
    return model
