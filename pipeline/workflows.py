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

import json
import logging
import time
from pathlib import Path

import numpy as np
import yaml

from pipeline.artifacts import load as load_pipeline
from pipeline.datasets import DatasetNotFoundError, load_dataset
from pipeline.image_pipeline import ImagePipeline
from pipeline.spec import build_classifier

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
    from pipeline.selection import stratified_subset

    return data.subset(stratified_subset(data.labels, int(limit), seed=seed))


def _accuracy_report(model, data):
    """``(report, true_indices, predicted_indices)``: the indices (into ``classes_``) of the
    images whose label the model knows, as the confusion matrix counts them."""
    pred = model.predict(data.images)
    n = len(model.classes_)
    index = {c: i for i, c in enumerate(model.classes_)}
    true_i = np.array([index.get(v, -1) for v in data.labels])
    pred_i = np.array([index[v] for v in pred])
    known = true_i >= 0
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (true_i[known], pred_i[known]), 1)
    per_class = {name: float(confusion[i, i] / max(1, confusion[i].sum()))
                 for i, name in enumerate(model.class_names_)}
    return {"accuracy": float(np.mean(pred == data.labels)), "n_images": len(data),
            "per_class_accuracy": per_class, "confusion_matrix": confusion.tolist()}, true_i[known], pred_i[known]


def train(dataset, features, classifier, out, *, limit=None, seed=0, search=None, test_split="test",
          n_jobs=1, scheduler=None, progress=True):
    """Fit an ``ImagePipeline`` on the training split, score it on the test split, save it.

    Parameters
    ----------
    dataset : str or path
    features : feature spec (see :mod:`pipeline.spec`)
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
        from pipeline.search import random_search
        from pipeline.spec import build_extractor

        Z = build_extractor(features).fit_transform(data.images)
        result = random_search(clf, Z, data.labels, search["space"], n_trials=search.get("trials", 10),
                               n_stages=search.get("stages", 2), folds=search.get("folds", 0),
                               n_jobs=n_jobs, scheduler=scheduler, random_state=seed, progress=progress)
        clf.set_params(**result.best["params"])
        summary["search"] = result.to_dict()
    model = ImagePipeline(features, clf).fit(data.images, data.labels, class_names=data.class_names)
    train_s = time.perf_counter() - t0
    model.metrics_ = {"train_seconds": round(train_s, 1), "n_train": len(data)}
    if test_split:
        try:
            test = load_dataset(dataset, test_split)
            report = _accuracy_report(model, test)[0]
            model.metrics_.update({f"{test_split}_accuracy": report["accuracy"], f"n_{test_split}": len(test)})
        except DatasetNotFoundError as exc:
            logger.info("no %s split to score on (%s)", test_split, exc)
    model.save(out)
    summary.update(metrics=model.metrics_, seconds=round(time.perf_counter() - t0, 1))
    return summary


def evaluate(model_path, dataset, split="test"):
    """Accuracy, per-class accuracy and confusion matrix of a saved model on a split."""
    model = load_pipeline(model_path)
    report = _accuracy_report(model, load_dataset(dataset, split))[0]
    return {"model": str(model_path), "dataset": str(dataset), "split": split, **report,
            "class_names": list(model.class_names_)}


def decode_image(path, model):
    """Read an image file as the model's input: EXIF orientation, color mode, size."""
    from pipeline._folder import _decode

    h, w = model.input_shape_
    return _decode(path, model.color_mode_, (w, h))


def class_scores(model, images):
    """``(scores, kind)``: probabilities where the classifier has them, else decision scores."""
    if hasattr(model, "predict_proba"):
        return model.predict_proba(images), "probability"
    scores = model.decision_function(images)
    return (scores if scores.ndim == 2 else np.stack([-scores, scores], axis=1)), "decision"


def predict(model_path, image_paths, top_k=5):
    """Top-k classes for each image file; an unreadable file gets an ``error`` entry."""
    model = load_pipeline(model_path)
    results, images, where = [], [], []
    for path in image_paths:
        try:
            images.append(decode_image(path, model))
            where.append(len(results))
            results.append({"image": str(path)})
        except Exception as exc:  # Pillow raises many types on bad files; report, don't stop
            results.append({"image": str(path), "error": f"{type(exc).__name__}: {exc}"})
    if images:
        scores, kind = class_scores(model, np.stack(images))
        for row, i in zip(scores, where):
            order = np.argsort(-row, kind="stable")[:top_k]
            results[i].update(label=model.class_names_[order[0]], class_index=int(order[0]),
                              score=float(row[order[0]]), score_kind=kind,
                              top_k=[{"label": model.class_names_[j], "score": float(row[j])} for j in order])
    return {"model": str(model_path), "predictions": results}


def report(model_path, out_dir, dataset=None, split="test"):
    """Write the plots a person wants to see for a saved model; returns their paths."""
    from features import HOG, FeatureStack, RawPixels
    from pipeline import reports

    model = load_pipeline(model_path)
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
        data = load_dataset(dataset, split)
        _, true_i, pred_i = _accuracy_report(model, data)  # the label-to-index mapping, done once
        written.append(reports.plot_confusion_matrix(true_i, pred_i, model.class_names_,
                                                     out / "confusion_matrix.png"))
    hog = next((s for s in steps if isinstance(s, HOG)), None)
    if hog is not None and data is not None:
        written.append(reports.plot_hog(data.images[0], out / "hog.png", hog.orientations,
                                        hog.pixels_per_cell, hog.cells_per_block))
    logger.info("wrote %d plots to %s", len(written), out)
    return {"model": str(model_path), "plots": [str(p) for p in written]}


def write_json(obj, path):
    """Write a result as indented JSON (for ``--json OUT``)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2, default=str) + "\n")
