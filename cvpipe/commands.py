"""What the ``cvpipe train | evaluate | predict | report | search`` commands do, as functions.

Each returns a JSON-able dict; the CLI prints it. A config file (YAML or JSON) may
hold any of the keyword arguments of :func:`train`, e.g.::

    dataset: fashion-mnist
    features: hog:pixels_per_cell=4x4,hog:pixels_per_cell=7x7,raw
    classifier: net:hidden_sizes=1024,dropout=0.3,n_epochs=30
    limit: null
    seed: 0
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import yaml
from sklearn.metrics import confusion_matrix

from features import HOG, FeatureStack, RawPixels
from pipeline._io import read_json
from pipeline.data import DatasetNotFoundError, ImageError, decode_image, load_dataset, open_dataset
from pipeline.jobs import train_from_features
from pipeline.model import ImagePipeline, build_classifier, build_extractor, load, save
from pipeline.selection import random_search, stratified_subset

logger = logging.getLogger(__name__)


def read_config(path):
    """A training config (YAML or JSON mapping) as a dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping of train() arguments, got {type(doc).__name__}")
    return doc


def limited(data, limit, seed):
    """A stratified subset of ``limit`` items of ``data`` (all of it when ``limit`` is None)."""
    if limit is None or limit >= len(data):
        return data
    return data.subset(stratified_subset(data.labels, int(limit), seed=seed))


def open_for_model(model, dataset, split):
    """A split of ``dataset``, opened lazily; image files are decoded to the model's input
    contract (its size and color mode), as the service decodes what it is sent."""
    data = open_dataset(dataset, split)
    if hasattr(data, "mode") and (tuple(data.size), data.mode) != (model.input_shape_, model.color_mode_):
        data = open_dataset(dataset, split, size=model.input_shape_, mode=model.color_mode_)
    return data


def _accuracy_report(model, data, chunk_size=4096):
    """``(report, confusion)``: accuracy, per-class accuracy and scikit-learn's confusion
    matrix (rows: true class, columns: predicted, in ``classes_`` order) of ``model`` on
    ``data``, read a chunk at a time. Images whose label the model does not know count
    against the accuracy and are left out of the matrix; images that cannot be read are
    left out and counted (``n_unreadable``)."""
    predicted, truth, unreadable = [], [], len(data.skipped)
    for start, batch in data.chunks(chunk_size):
        keep = np.ones(len(batch.labels), dtype=bool)
        keep[[row - start for row, _, _ in batch.failed]] = False
        unreadable += len(batch.failed)
        if keep.any():
            predicted.append(model.predict(batch.images[keep]))
            truth.append(batch.labels[keep])
    if not predicted:
        raise ValueError(f"none of the images of {data.source or data.name} ({data.split}) could be read")
    pred, labels = np.concatenate(predicted), np.concatenate(truth)
    confusion = confusion_matrix(labels, pred, labels=model.classes_)
    per_class = {name: float(confusion[i, i] / max(1, confusion[i].sum()))
                 for i, name in enumerate(model.class_names_)}
    return {"accuracy": float(np.mean(pred == labels)), "n_images": len(labels), "n_unreadable": unreadable,
            "per_class_accuracy": per_class, "confusion_matrix": confusion.tolist()}, confusion


def random_search_on_dataset(dataset, features, classifier, space, *, limit=None, seed=0, trials=10, stages=2,
                             folds=0, n_jobs=1, scheduler=None, progress=True):
    """Random search of a classifier's hyperparameters on a dataset's training split
    (see :func:`pipeline.selection.random_search`); returns its result as a dict."""
    data = limited(load_dataset(dataset, "train"), limit, seed)
    Z = build_extractor(features).fit_transform(data.images)
    result = random_search(build_classifier(classifier), Z, data.labels, space, n_trials=trials, n_stages=stages,
                           folds=folds, n_jobs=n_jobs, scheduler=scheduler, random_state=seed, progress=progress)
    return result.to_dict()


def train(dataset, features, classifier, out, *, limit=None, seed=0, search=None, test_split="test",
          n_jobs=1, scheduler=None, progress=True):
    """Fit an ``ImagePipeline`` on the training split, score it on the test split, save it.

    Parameters
    ----------
    dataset : str or path
    features : feature spec (see :mod:`pipeline.model.spec`)
    classifier : classifier spec, e.g. ``"softmax"`` or ``"net:hidden_sizes=512"``
    out : path
        The model folder (``models/NAME``).
    limit : int, optional
        Train on a stratified subset of this many images.
    seed : int
    search : dict, optional
        ``{"space": "...", "trials": 10, "stages": 2, "folds": 0}``: a coarse-to-fine random
        search of the classifier's parameters on the training split first; the best
        setting is then trained on the whole split.
    test_split : str or None
        Split scored after training (skipped with a log line when the dataset has none).
    n_jobs, scheduler
        Parallel search trials (joblib, or a Dask scheduler address).

    Returns
    -------
    dict
        Path, metrics, timings and (with a search) the best trial.
    """
    t0 = time.perf_counter()
    data = limited(load_dataset(dataset, "train"), limit, seed)
    clf = build_classifier(classifier)
    if "random_state" in clf.get_params():
        clf.set_params(random_state=seed)
    summary = {"model": str(out), "dataset": data.name, "n_train": len(data), "features": features,
               "classifier": classifier}
    if search:
        Z = build_extractor(features).fit_transform(data.images)
        result = random_search(clf, Z, data.labels, search["space"], n_trials=search.get("trials", 10),
                               n_stages=search.get("stages", 2), folds=search.get("folds", 0),
                               n_jobs=n_jobs, scheduler=scheduler, random_state=seed, progress=progress)
        clf.set_params(**result.best["params"])
        summary["search"] = result.to_dict()
    model = ImagePipeline(features, clf).fit(data.images, data.labels, class_names=data.class_names)
    train_s = time.perf_counter() - t0
    model.metrics_ = {"train_seconds": round(train_s, 1), "n_train": len(data)}
    _score(model, dataset, test_split)
    save(model, out)
    summary.update(metrics=model.metrics_, seconds=round(time.perf_counter() - t0, 1))
    return summary


def _score(model, dataset, split):
    """Add the accuracy on ``split`` of ``dataset`` to ``model.metrics_`` (a log line when there is none)."""
    if not split or dataset is None:
        return
    try:
        report = _accuracy_report(model, open_for_model(model, dataset, split))[0]
    except DatasetNotFoundError as exc:
        logger.info("no %s split to score on (%s)", split, exc)
        return
    model.metrics_.update({f"{split}_accuracy": report["accuracy"], f"n_{split}": report["n_images"]})


def train_on_features(features_dir, classifier, out, *, dataset=None, test_split="test", seed=0, progress=True):
    """Train on the output of ``cvpipe extract`` (memory-mapped, in blocks: see
    :func:`pipeline.jobs.train_from_features`), score it on ``test_split`` of ``dataset``
    when one is given (its images, through the job's extractor), save it.

    The standardized features are written beside ``out`` while the classifier trains.

    Returns
    -------
    dict
        Path, the job it was trained from, metrics and timings.
    """
    t0 = time.perf_counter()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = train_from_features(features_dir, classifier, seed=seed, scratch_dir=out.parent, progress=progress)
    job = read_json(Path(features_dir) / "manifest.json")
    _score(model, dataset, test_split)
    model.metrics_["features_job"] = job["job_key"]
    save(model, out)
    return {"model": str(out), "from_features": str(features_dir), "dataset": job["dataset"]["name"],
            "n_train": model.metrics_["n_train"], "features": job["features"], "classifier": classifier,
            "metrics": model.metrics_, "seconds": round(time.perf_counter() - t0, 1)}


def evaluate(model_path, dataset, split="test"):
    """Accuracy, per-class accuracy and confusion matrix of a saved model on a split."""
    model = load(model_path)
    report = _accuracy_report(model, open_for_model(model, dataset, split))[0]
    return {"model": str(model_path), "dataset": str(dataset), "split": split, **report,
            "class_names": list(model.class_names_)}


def predict(model_path, image_paths, top_k=5):
    """Top-k classes for each image file; an unreadable file gets an ``error`` entry."""
    model = load(model_path)
    results, images, where = [], [], []
    for path in image_paths:
        try:
            images.append(decode_image(path, model.input_shape_, model.color_mode_, where=str(path)))
            where.append(len(results))
            results.append({"image": str(path)})
        except ImageError as exc:
            results.append({"image": str(path), "error": str(exc)})
    if images:
        for i, answer in zip(where, model.top_classes(np.stack(images), top_k)):
            results[i].update(answer)
    return {"model": str(model_path), "predictions": results}


def report(model_path, out_dir, dataset=None, split="test"):
    """Write the plots a person wants to see for a saved model; returns their paths."""
    from cvpipe import reports  # matplotlib: the optional "plot" extra

    model = load(model_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clf, written = model.classifier_, []
    if getattr(clf, "loss_history_", None) is not None and len(clf.loss_history_):
        written.append(reports.plot_loss_history(clf.loss_history_, out / "loss_history.png"))
    if getattr(clf, "val_acc_history_", None):
        written.append(reports.plot_accuracy_history(clf.train_acc_history_, clf.val_acc_history_,
                                                     out / "accuracy_history.png"))
    steps = [s for _, s in model.features_.transformer_list] if isinstance(model.features_, FeatureStack) \
        else [model.features_]
    if hasattr(clf, "W_") and len(steps) == 1 and isinstance(steps[0], RawPixels) and steps[0].size is None:
        W = clf.W_ / (model.scaler_.scale_[:, None] if model.scaler_ is not None else 1.0)
        shape = model.input_shape_ + ((3,) if model.color_mode_ == "RGB" else ())
        written.append(reports.plot_class_templates(W, shape, model.class_names_, out / "class_templates.png"))
    data = None
    if dataset is not None:
        data = open_for_model(model, dataset, split)
        confusion = _accuracy_report(model, data)[1]
        written.append(reports.plot_confusion_matrix(confusion, model.class_names_, out / "confusion_matrix.png"))
    hog = next((s for s in steps if isinstance(s, HOG)), None)
    if hog is not None and data is not None:
        written.append(reports.plot_hog(data.read(0, 1).images[0], out / "hog.png", hog.orientations,
                                        hog.pixels_per_cell, hog.cells_per_block))
    logger.info("wrote %d plots to %s", len(written), out)
    return {"model": str(model_path), "plots": [str(p) for p in written]}
