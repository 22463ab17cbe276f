"""Choosing the ConvNet's hyperparameters on a validation split of the Fashion-MNIST
training set; the test set is never read.

    python bench/bench_convnet_selection.py NAME=SPEC [NAME=SPEC ...] [--no-scaler NAME ...]
        [--results bench/results/convnet_selection.jsonl] [--render]

Each candidate is a classifier spec (``"convnet:random_shift=2,random_flip=true"``) trained
on raw pixels in [0, 1], standardized per pixel as ``cvpipe train`` does (or not, for the
names given to ``--no-scaler``), with ``early_stopping=true`` and ``random_state=0``: the
same 6,000 training images (10%, stratified) are held out for every candidate, and its
score is the best validation accuracy of its epochs. For the unscaled candidates the record
also holds the kept network's validation accuracy with test-time mirroring (each image's
class probabilities averaged with its left-right mirror's). One JSON line per candidate is
appended to the results file; a name already there is skipped, so a search can be run in
pieces. ``--render`` prints the table of what the file holds.

Run each candidate on one BLAS thread (``OPENBLAS_NUM_THREADS=1``); two at once on a
2-core machine.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _common import fashion_mnist_raw, machine_line
from sklearn.preprocessing import StandardScaler

from pipeline.model.spec import build_classifier

logger = logging.getLogger("bench_convnet_selection")
RESULTS = Path(__file__).resolve().parent / "results" / "convnet_selection.jsonl"


def _done(path):
    if not path.exists():
        return {}
    return {row["name"]: row for row in map(json.loads, path.read_text().splitlines()) if row}


def run(name, spec, scaled, X, y):
    """Train one candidate; its record (validation accuracy per epoch, time, size)."""
    clf = build_classifier(spec)
    clf.set_params(early_stopping=True, random_state=0, verbose=1)  # epochs logged
    Z = StandardScaler().fit_transform(X) if scaled else X
    t0 = time.perf_counter()
    clf.fit(Z, y, image_shape=(28, 28))
    seconds = time.perf_counter() - t0
    flipped = _val_acc_with_mirror(clf, Z, y) if not scaled else None
    return {"name": name, "spec": spec, "scaler": scaled, "best_val_acc": max(clf.val_acc_history_),
            "best_epoch": clf.best_epoch_ + 1, "epochs": clf.n_iter_, "train_seconds": round(seconds, 1),
            "n_params": clf.n_params_,
            "best_val_acc_with_mirror": flipped, "val_acc": clf.val_acc_history_, "train_acc": clf.train_acc_history_,
            "threads": os.environ.get("OPENBLAS_NUM_THREADS"), "machine": machine_line(),
            "date": datetime.now(timezone.utc).isoformat(timespec="minutes")}


def _val_acc_with_mirror(clf, X, y):
    """Validation accuracy of the kept network when each image's class probabilities are
    averaged with its left-right mirror's (test-time augmentation). The validation rows are
    drawn again as ``fit`` drew them (same seed, same first draw); their plain accuracy is
    checked against the recorded one. Pixels only: a mirrored standardized image is not the
    standardized mirror."""
    _, val_rows = clf._split(np.unique(y, return_inverse=True)[1], clf._generator())
    X_val, y_val = X[val_rows], y[val_rows]
    assert clf.score(X_val, y_val) == max(clf.val_acc_history_), "the validation rows were not redrawn"
    mirrored = X_val.reshape(-1, *clf.input_shape_)[:, :, ::-1].reshape(len(X_val), -1)
    proba = clf.predict_proba(X_val) + clf.predict_proba(mirrored)
    return float(np.mean(clf.classes_[proba.argmax(axis=1)] == y_val))


def render(rows):
    print("| candidate | scaler | parameters | best validation accuracy | same network, mirror averaged in "
          "| at epoch | epochs run | train time |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in sorted(rows.values(), key=lambda r: -r["best_val_acc"]):
        mirrored = row.get("best_val_acc_with_mirror")
        print(f"| {row['name']}: `{row['spec']}` | {'standard' if row['scaler'] else 'none'} | {row['n_params']:,} "
              f"| {row['best_val_acc']:.2%} | {'not measured' if mirrored is None else f'{mirrored:.2%}'} "
              f"| {row['best_epoch']} | {row['epochs']} | {row['train_seconds']:.0f} s |")


def main():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidates", nargs="*", metavar="NAME=SPEC")
    parser.add_argument("--no-scaler", nargs="*", default=[], metavar="NAME")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--render", action="store_true")
    args = parser.parse_args()
    done = _done(args.results)
    if args.render:
        render(done)
        return
    X, y, _, _ = fashion_mnist_raw()  # the test set is loaded with it and left unread
    args.results.parent.mkdir(parents=True, exist_ok=True)
    for item in args.candidates:
        name, _, spec = item.partition("=")
        if name in done:
            logger.info("%s: already in %s, skipped", name, args.results)
            continue
        row = run(name, spec, name not in args.no_scaler, X, y)
        logger.info("%s: best validation accuracy %.4f at epoch %d of %d, %.0f s", name, row["best_val_acc"],
                    row["best_epoch"], row["epochs"], row["train_seconds"])
        with open(args.results, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
