"""What the ``cvpipe train | evaluate | predict | report | search`` commands do, as functions.

Each returns a JSON-able dict; the CLI prints it. A config file (YAML or JSON) may
hold the keyword arguments of :func:`train` that :class:`cvpipe.config.TrainConfig`
names (``dataset``, ``features``, ``classifier``, ``out``, ``limit``, ``seed``,
``search``, ``test_split``), e.g.::

    dataset: fashion-mnist
    features: hog:pixels_per_cell=4x4,hog:pixels_per_cell=7x7,raw
    classifier: {name: net, params: {hidden_sizes: [1024], dropout: 0.3, n_epochs: 30}}
    limit: null
    seed: 0
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix
from tqdm.auto import tqdm

from cvpipe.batch_predict import CHUNK_SIZE, check_chunk_size, check_top_k, output_format, write_predictions
from cvpipe.config import TrainConfig, read_document, validate
from features import HOG, FeatureStack, RawPixels
from pipeline._io import read_json
from pipeline.data import DatasetNotFoundError, load_dataset, open_dataset
from pipeline.jobs import train_from_features
from pipeline.model import ArtifactError, build_classifier, build_extractor, load, read_model, save
from pipeline.model.fitting import extract_features, fit_on_features
from pipeline.model.provenance import dataset_record, described_record, record
from pipeline.selection import random_search, stratified_subset

logger = logging.getLogger(__name__)


def read_config(path):
    """A training config file (YAML or JSON mapping) as a dict of the keys it gives.

    Checked against :class:`cvpipe.config.TrainConfig` (unknown keys, wrong types, bad
    values, bad feature and classifier specs).

    Raises
    ------
    cvpipe.config.ConfigError
        One line: ``FILE: key: expected ..., got ...``; also a missing file or bad syntax.
    """
    doc = read_document(path)
    validate(TrainConfig, doc, str(path))
    return doc


def check_model_out(out, overwrite=False):
    """Refuse, before any work, to write a model to ``out`` where that would replace one
    without ``overwrite`` (as ``cvpipe extract`` does), or where no model can go.

    Raises
    ------
    FileExistsError
        ``out`` holds a model and ``overwrite`` is false.
    ArtifactError
        ``out`` is a file, or a non-empty folder that is not a model.
    """
    out = Path(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ArtifactError(f"--out {out} exists and is not a folder; expected a model folder such as models/NAME")
    if (out / "manifest.json").is_file():
        if not overwrite:
            raise FileExistsError(f"--out {out} already holds a model: pass --overwrite to replace it, or choose "
                                  "another --out")
    elif out.is_dir() and any(out.iterdir()):
        raise ArtifactError(f"--out {out} is a non-empty folder without manifest.json, not a model folder; choose "
                            "an empty or new folder")


def _chunks(data, chunk_size, progress, desc):
    """``data.chunks(chunk_size)`` with a progress bar counting images (on a terminal only:
    ``progress`` false, or stderr not a terminal, shows none)."""
    with tqdm(total=len(data), desc=desc, unit="img", disable=None if progress else True, leave=False) as bar:
        for start, batch in data.chunks(chunk_size):
            yield start, batch
            bar.update(len(batch.labels))


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


def _accuracy_report(model, data, chunk_size=4096, progress=False):
    """``(report, confusion)``: accuracy, per-class accuracy and scikit-learn's confusion
    matrix (rows: true class, columns: predicted, in ``classes_`` order) of ``model`` on
    ``data``, read a chunk at a time. Images whose label the model does not know count
    against the accuracy and are left out of the matrix; images that cannot be read are
    left out and counted (``n_unreadable``)."""
    predicted, truth, unreadable = [], [], len(data.skipped)
    for start, batch in _chunks(data, chunk_size, progress, f"predict {data.split}"):
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
    # per-class precision, recall, F1 and support, as scikit-learn gives them (0 where undefined)
    per_class_report = classification_report(labels, pred, labels=model.classes_,
                                             target_names=[str(n) for n in model.class_names_], output_dict=True,
                                             zero_division=0)
    return {"accuracy": float(np.mean(pred == labels)), "n_images": len(labels), "n_unreadable": unreadable,
            "per_class_accuracy": per_class, "classification_report": per_class_report,
            "confusion_matrix": confusion.tolist()}, confusion


def random_search_on_dataset(dataset, features, classifier, space, *, limit=None, seed=0, trials=10, stages=2,
                             folds=0, n_jobs=1, scheduler=None, progress=True):
    """Random search of a classifier's hyperparameters on a dataset's training split
    (see :func:`pipeline.selection.random_search`); returns its result as a dict."""
    data = limited(load_dataset(dataset, "train"), limit, seed)
    Z = build_extractor(features).fit_transform(data.images)
    result = random_search(build_classifier(classifier), Z, data.labels, space, n_trials=trials, n_stages=stages,
                           folds=folds, n_jobs=n_jobs, scheduler=scheduler, random_state=seed, progress=progress)
    return result.to_dict()


def train(dataset, features, classifier, out, *, limit=None, seed=0, search=None, test_split="test", scaler=True,
          n_jobs=1, scheduler=None, progress=True, command=None, overwrite=False):
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
    scaler : bool, default=True
        Standardize the features before the classifier (``StandardScaler``); False gives
        them as they are (a ConvNet learns better from pixels in [0, 1]: BENCHMARKS.md).
    n_jobs, scheduler
        Parallel search trials (joblib, or a Dask scheduler address).
    command : sequence of str, optional
        The command line that asked for this (the CLI passes it); recorded in the model.
    overwrite : bool
        Replace a model already in ``out``; without it that is refused before any work
        (:func:`check_model_out`).

    Returns
    -------
    dict
        Path, metrics, timings and (with a search) the best trial.

    Notes
    -----
    The model's manifest records its provenance (:mod:`pipeline.model.provenance`): the
    training split (fingerprint and size, and those of the ``limit`` subset), the scored
    split, these arguments with the classifier's resolved parameters, the command line,
    the search's best trial; its metrics hold the scored split's ``classification_report``.
    """
    check_model_out(out, overwrite)
    t0 = time.perf_counter()
    whole = open_dataset(dataset, "train")
    full = whole.materialize()  # load_dataset(dataset, "train"), keeping the lazy source's fingerprint
    data = limited(full, limit, seed)
    clf = build_classifier(classifier)
    if "random_state" in clf.get_params():
        clf.set_params(random_state=seed)
    summary = {"model": str(out), "dataset": data.name, "n_train": len(data), "features": features,
               "classifier": classifier}
    extractor = build_extractor(features)
    Z = extract_features(extractor, data.images, data.labels, progress=progress)  # once, for the search too
    if search:
        result = random_search(clf, Z, data.labels, search["space"], n_trials=search.get("trials", 10),
                               n_stages=search.get("stages", 2), folds=search.get("folds", 0),
                               n_jobs=n_jobs, scheduler=scheduler, random_state=seed, scaler=scaler,
                               progress=progress)
        clf.set_params(**result.best["params"])
        summary["search"] = result.to_dict()
    model = fit_on_features(features, clf, extractor, Z, data.images, data.labels, data.class_names,
                            scaler=scaler, progress=progress)
    train_s = time.perf_counter() - t0
    model.metrics_ = {"train_seconds": round(train_s, 1), "n_train": len(data)}
    scored = _score(model, dataset, test_split)
    config = {"dataset": dataset, "features": features, "classifier": classifier,
              "classifier_params": model.classifier_.get_params(deep=False), "limit": limit, "seed": seed,
              "search": search, "test_split": test_split, "scaler": scaler}
    model.provenance_ = record(
        train=dataset_record(whole, used=None if data is full else data), test=scored, config=config,
        command=command, search={"best": summary["search"]["best"], "n_trials": len(summary["search"]["trials"])}
        if search else None)
    save(model, out)
    summary.update(metrics=model.metrics_, seconds=round(time.perf_counter() - t0, 1))
    return summary


def _score(model, dataset, split):
    """Add the accuracy and the classification report on ``split`` of ``dataset`` to
    ``model.metrics_`` (a log line when there is none); returns the split's
    :func:`~pipeline.model.provenance.dataset_record`, or None when nothing was scored."""
    if not split or dataset is None:
        return None
    try:
        data = open_for_model(model, dataset, split)
        report = _accuracy_report(model, data)[0]
    except DatasetNotFoundError as exc:
        logger.info("no %s split to score on (%s)", split, exc)
        return None
    model.metrics_.update({f"{split}_accuracy": report["accuracy"], f"n_{split}": report["n_images"],
                           f"{split}_classification_report": report["classification_report"]})
    return dataset_record(data)


def train_on_features(features_dir, classifier, out, *, dataset=None, test_split="test", seed=0, progress=True,
                      command=None, overwrite=False):
    """Train on the output of ``cvpipe extract`` (memory-mapped, in blocks: see
    :func:`pipeline.jobs.train_from_features`), score it on ``test_split`` of ``dataset``
    when one is given (its images, through the job's extractor), save it.

    The standardized features are written beside ``out`` while the classifier trains. The
    model records its provenance as :func:`train`'s does (the training data as the job
    recorded it; ``command`` is the command line, from the CLI). A model already in
    ``out`` is replaced only with ``overwrite`` (:func:`check_model_out`).

    Returns
    -------
    dict
        Path, the job it was trained from, metrics and timings.
    """
    check_model_out(out, overwrite)
    t0 = time.perf_counter()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = train_from_features(features_dir, classifier, seed=seed, scratch_dir=out.parent, progress=progress)
    job = read_json(Path(features_dir) / "manifest.json")
    scored = _score(model, dataset, test_split)
    model.metrics_["features_job"] = job["job_key"]
    config = {"from_features": str(features_dir), "features": job["features"], "classifier": classifier,
              "classifier_params": model.classifier_.get_params(deep=False), "seed": seed, "dataset": dataset,
              "test_split": test_split}
    model.provenance_ = record(train=described_record(job["dataset"], n_used=model.metrics_["n_train"]),
                               test=scored, config=config, command=command)
    save(model, out)
    return {"model": str(out), "from_features": str(features_dir), "dataset": job["dataset"]["name"],
            "n_train": model.metrics_["n_train"], "features": job["features"], "classifier": classifier,
            "metrics": model.metrics_, "seconds": round(time.perf_counter() - t0, 1)}


def evaluate(model_path, dataset, split="test", progress=False):
    """Accuracy, per-class accuracy and confusion matrix of a saved model on a split."""
    model = load(model_path)
    report = _accuracy_report(model, open_for_model(model, dataset, split), progress=progress)[0]
    return {"model": str(model_path), "dataset": str(dataset), "split": split, **report,
            "class_names": list(model.class_names_)}


def predict(model_path, paths, output=None, *, fmt=None, top_k=None, chunk_size=CHUNK_SIZE, overwrite=False,
            progress=True):
    """Predict the images that files, folders and glob patterns name; write one row per
    image to ``output`` as CSV or JSON Lines, a chunk at a time (see :mod:`cvpipe.batch_predict`).

    Parameters
    ----------
    model_path : path
        A saved model folder.
    paths : iterable of str or path-like
        Files, folders (walked recursively) and glob patterns.
    output : path, optional
        The rows' file; None or ``"-"``: standard output. An existing file is replaced
        only with ``overwrite``.
    fmt : {"csv", "jsonl"}, optional
        Default: from ``output``'s extension, CSV on standard output.
    top_k : int, optional
        Classes per image, from 1 to the model's number of classes (default 5, or all if fewer).
    chunk_size : int
        Images decoded and predicted at a time.
    progress : bool

    Returns
    -------
    dict
        ``model``, ``output``, ``format``, then the counts of
        :func:`cvpipe.batch_predict.write_predictions` (``n_failed`` > 0: some rows are errors).

    Raises
    ------
    ValueError, ArtifactError, OSError
        A usage error, found before a row is written: a model that does not load, a
        ``top_k`` out of range, an unknown format, an existing ``output``.
    """
    model = load(model_path)
    top_k, chunk_size = check_top_k(top_k, len(model.classes_)), check_chunk_size(chunk_size)
    fmt = output_format(output, fmt)
    summary = {"model": str(model_path), "output": "-" if output is None else str(output), "format": fmt}
    options = {"fmt": fmt, "top_k": top_k, "chunk_size": chunk_size, "progress": progress}
    if output is None or str(output) == "-":
        return summary | write_predictions(model, paths, sys.stdout, **options)
    try:  # newline="": the csv module ends its lines; surrogateescape: a file name's bytes, as they are
        stream = open(output, "w" if overwrite else "x", encoding="utf-8", errors="surrogateescape", newline="")
    except FileExistsError:
        raise FileExistsError(f"--output {output} exists: pass --overwrite to replace it") from None
    with stream:
        return summary | write_predictions(model, paths, stream, **options)


def _predictions_for_report(model, data, chunk_size=4096, progress=False):
    """One pass of ``model`` over ``data``, a chunk at a time: ``(labels, predicted,
    confidence, kind, rows, n_unreadable)`` of the readable images.

    ``predicted`` is the class (from ``classes_``) of the highest score and ``confidence``
    that score (:meth:`ImagePipeline.class_scores`: a probability where ``kind`` is
    "probability"), as the service answers ``label`` and ``score``; ``rows`` are the
    images' rows in ``data``."""
    labels, predicted, confidence, rows, kind, unreadable = [], [], [], [], "probability", len(data.skipped)
    for start, batch in _chunks(data, chunk_size, progress, f"predict {data.split}"):
        keep = np.ones(len(batch.labels), dtype=bool)
        keep[[row - start for row, _, _ in batch.failed]] = False
        unreadable += len(batch.failed)
        if not keep.any():
            continue
        scores, kind = model.class_scores(batch.images[keep])
        best = np.argmax(np.where(np.isnan(scores), -np.inf, scores), axis=1)
        predicted.append(model.classes_[best])
        confidence.append(scores[np.arange(len(best)), best])
        labels.append(batch.labels[keep])
        rows.append(start + np.flatnonzero(keep))
    if not labels:
        raise ValueError(f"none of the images of {data.source or data.name} ({data.split}) could be read")
    return (*(np.concatenate(part) for part in (labels, predicted, confidence)), kind, np.concatenate(rows),
            unreadable)


def _evaluate_for_report(model, data, out, n_gallery=24, n_bins=10, progress=False):
    """The classification report (text and JSON files), confusion matrix, reliability
    diagram and gallery of the most confident mistakes of ``model`` on ``data``, written
    in ``out``: ``(evaluation for the page, [(plot, caption)])``."""
    from cvpipe import reports

    labels, predicted, confidence, kind, rows, unreadable = _predictions_for_report(model, data, progress=progress)
    names = dict(zip(model.classes_.tolist(), model.class_names_))
    kw = {"labels": model.classes_, "target_names": model.class_names_, "zero_division": 0}
    (out / "classification_report.txt").write_text(classification_report(labels, predicted, digits=3, **kw))
    table = classification_report(labels, predicted, output_dict=True, **kw)
    (out / "classification_report.json").write_text(json.dumps(table, indent=1) + "\n")
    correct = predicted == labels
    evaluation = {"dataset": data.name or str(data.source), "source": str(data.source), "split": data.split,
                  "accuracy": float(correct.mean()), "n_images": len(labels), "n_unreadable": unreadable,
                  "score_kind": kind, "ece": None, "n_bins": n_bins, "classification_report": table,
                  "misclassified": [], "files": ["classification_report.txt", "classification_report.json"]}
    confusion = confusion_matrix(labels, predicted, labels=model.classes_)
    plots = [(reports.plot_confusion_matrix(confusion, model.class_names_, out / "confusion_matrix.png"),
              "Confusion matrix: true class down, predicted class across.")]
    if kind == "probability" and np.isfinite(confidence).all():
        evaluation["ece"] = reports.expected_calibration_error(confidence, correct, n_bins)
        plots.append((reports.plot_reliability(confidence, correct, out / "reliability.png", n_bins),
                      "Reliability diagram: accuracy against the probability of the predicted class, "
                      "and how many predictions fall in each bin."))
    else:
        logger.info("no reliability diagram: the classifier gives %s scores", kind)
    wrong = np.flatnonzero(~correct)
    worst = wrong[np.argsort(-np.nan_to_num(confidence[wrong], nan=-np.inf), kind="stable")][:n_gallery]
    if len(worst):
        shown = data.subset(rows[worst])  # the images read again: only these few stay in memory
        item = getattr(data, "item", None)
        ids = [item(int(r)) if item else f"{data.split} row {int(r)}" for r in rows[worst]]
        true = [names.get(int(v), f"{data.class_names[int(v)]} (unknown to the model)") for v in labels[worst]]
        pred = [names[v] for v in predicted[worst].tolist()]
        evaluation["misclassified"] = [{"image": i, "true": t, "predicted": p, "score": float(s)}
                                       for i, t, p, s in zip(ids, true, pred, confidence[worst])]
        if len(shown) == len(worst):  # an image that could be read once and not twice: the table alone
            plots.append((reports.plot_misclassified(shown.images, true, pred, confidence[worst],
                                                     out / "misclassified.png", kind, ids, n_errors=len(wrong)),
                          "The most confidently misclassified images, most confident first."))
    return evaluation, plots


def report(model_path, out_dir, dataset=None, split="test", progress=False):
    """Write what a person wants to see of a saved model in ``out_dir``: the training plots
    (per iteration; per epoch for a network), the class templates of a linear model on raw
    pixels, a ConvNet's first-layer filters, and with a ``dataset`` its
    evaluation on ``split`` (classification report as text and JSON, confusion matrix,
    reliability diagram, the most confidently misclassified images, a HOG picture); then
    ``index.html``, one page with the model card and all of them.

    Returns
    -------
    dict
        ``{"model", "index", "plots": [paths], ...}`` and, with a dataset, ``accuracy``,
        ``expected_calibration_error`` and the paths of the classification report files.
    """
    from cvpipe import report_page, reports  # matplotlib: the optional "plot" extra

    model, manifest, sha256 = read_model(model_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clf, plots = model.classifier_, []
    if getattr(clf, "loss_history_", None) is not None and len(clf.loss_history_):
        plots.append((reports.plot_loss_history(clf.loss_history_, out / "loss_history.png"),
                      "Training loss per iteration."))
    if getattr(clf, "train_acc_history_", None):  # the networks, with or without early stopping
        plots.append((reports.plot_epoch_history(clf.loss_history_, clf.train_acc_history_, out / "epoch_history.png",
                                                 clf.val_acc_history_, clf.best_epoch_),
                      "Per epoch: the mean training loss, the training "
                      + ("and validation " if clf.val_acc_history_ else "")
                      + "accuracy; the dashed line marks the epoch whose parameters were kept."))
    params = getattr(clf, "params_", None)
    W1 = params.get("W1") if isinstance(params, dict) else None
    if W1 is not None and np.ndim(W1) == 4 and not np.isfinite(W1).all():
        logger.warning("no filters plot: the first convolution has non-finite weights (training diverged)")
    elif W1 is not None and np.ndim(W1) == 4:  # a ConvNet: its first layer's filters
        pixels = "pixels" if model.scaler_ is None else f"pixels after the {type(model.scaler_).__name__}"
        plots.append((reports.plot_conv_filters(W1, out / "conv_filters.png"),
                      f"The first convolution's {W1.shape[3]} filters of {W1.shape[0]}x{W1.shape[1]} (the weights "
                      f"it applies to the {pixels}), one tile per output channel, all on one scale: mid-gray is "
                      "zero, lighter positive, darker negative."))
    steps = [s for _, s in model.features_.transformer_list] if isinstance(model.features_, FeatureStack) \
        else [model.features_]
    if hasattr(clf, "W_") and len(steps) == 1 and isinstance(steps[0], RawPixels) and steps[0].size is None:
        W = clf.W_ / (model.scaler_.scale_[:, None] if model.scaler_ is not None else 1.0)
        shape = model.input_shape_ + ((3,) if model.color_mode_ == "RGB" else ())
        plots.append((reports.plot_class_templates(W, shape, model.class_names_, out / "class_templates.png"),
                      "The linear classifier's weights in pixel space, one template per class."))
    evaluation, data = None, None
    if dataset is not None:
        data = open_for_model(model, dataset, split)
        evaluation, evaluated = _evaluate_for_report(model, data, out, progress=progress)
        plots += evaluated
    hog = next((s for s in steps if isinstance(s, HOG)), None)
    if hog is not None and data is not None:
        plots.append((reports.plot_hog(data.read(0, 1).images[0], out / "hog.png", hog.orientations,
                                       hog.pixels_per_cell, hog.cells_per_block),
                      "The first image beside its HOG features."))
    index = report_page.write_index(out, manifest, plots, name=Path(model_path).name, sha256=sha256,
                                    evaluation=evaluation)
    logger.info("wrote %d plots and %s", len(plots), index)
    summary = {"model": str(model_path), "index": str(index), "plots": [str(p) for p, _ in plots]}
    if evaluation is not None:
        summary.update(accuracy=evaluation["accuracy"], expected_calibration_error=evaluation["ece"],
                       classification_report=[str(out / f) for f in evaluation["files"]])
    return summary
