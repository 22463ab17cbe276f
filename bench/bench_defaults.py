"""Default parameters against default parameters: cvpipe's Softmax, LinearSVM and TwoLayerNet
and their scikit-learn peers, on three datasets, trained in the same run, with wall times.

    python bench/bench_defaults.py [--only digits_hog,fmnist_hog,fmnist_raw] [--seeds 0,1,2]
                                   [--peer-seeds 0,1,2] [--svc-subset 10000]

Pairs (both sides inside ``StandardScaler``, the step ``ImagePipeline`` puts before the
classifier; every estimator with its default parameters, only ``random_state`` set):
``Softmax()`` vs ``LogisticRegression()``, ``LinearSVM()`` vs ``LinearSVC()``,
``TwoLayerNet()`` vs ``MLPClassifier()``.

Datasets: scikit-learn's 8x8 digits through ``HOG(pixels_per_cell=(4, 4))`` (36 features;
the stratified 80/20 split of :mod:`pipeline.data.digits`: 1,437 / 360), Fashion-MNIST
through ``HOG(pixels_per_cell=(7, 7))`` (324 features) and Fashion-MNIST raw pixels in
[0, 1] (784 features), both on the official 60,000 / 10,000 split.

``LinearSVC()`` (liblinear, primal for n_samples > n_features) had not finished on the
60,000 standardized Fashion-MNIST pixels after 26 minutes (BENCHMARKS.md, issue 3), so on
both Fashion-MNIST sets the LinearSVM pair trains on a stratified subset of
``--svc-subset`` training rows (the same rows for both sides) and is tested on the full
test set; every other pair trains on the full training set.

cvpipe's side runs once per seed of ``--seeds`` (mean and standard deviation);
``MLPClassifier`` once per seed of ``--peer-seeds``; ``LogisticRegression`` (lbfgs) and
``LinearSVC`` (primal liblinear) once, their result not depending on a seed. The
"unconverged" columns count the fits that warned with ``ConvergenceWarning``.
Everything runs on one BLAS thread, as bench_accuracy.py does. The verdict of a cell is
"met" when cvpipe's mean is at least the peer's accuracy minus 0.5 points.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from _common import fashion_mnist_raw, machine_line
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from classifiers import LinearSVM, Softmax, TwoLayerNet

#: Points below the peer's test accuracy that still count as met.
MARGIN = 0.005


def digits_hog():
    from features import HOG
    from pipeline.data.digits import read_split

    (X_train, y_train), (X_test, y_test) = read_split("train"), read_split("test")
    hog = HOG(pixels_per_cell=(4, 4), device="cpu").fit(X_train)
    return hog.transform(X_train), y_train, hog.transform(X_test), y_test


def fmnist_hog():
    from features import HOG
    from pipeline.data.datasets import load_dataset

    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    hog = HOG(pixels_per_cell=(7, 7), device="cpu").fit(train.images[:1])
    return hog.transform(train.images), train.labels, hog.transform(test.images), test.labels


DATASETS = {"digits_hog": digits_hog, "fmnist_hog": fmnist_hog, "fmnist_raw": fashion_mnist_raw}

PAIRS = [  # (name, ours, peer name, peer, whether the peer's result depends on its seed)
    ("Softmax", lambda seed: Softmax(random_state=seed), "LogisticRegression",
     lambda seed: LogisticRegression(), False),
    ("LinearSVM", lambda seed: LinearSVM(random_state=seed), "LinearSVC",
     lambda seed: LinearSVC(random_state=seed), False),  # (primal liblinear: no randomness)
    ("TwoLayerNet", lambda seed: TwoLayerNet(random_state=seed), "MLPClassifier",
     lambda seed: MLPClassifier(random_state=seed), True),
]


def _fit_score(clf, X_train, y_train, X_test, y_test):
    """Test accuracy, fit seconds, and whether fit warned that it had not converged."""
    model = make_pipeline(StandardScaler(), clf)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        t0 = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - t0
    unconverged = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return float(np.mean(model.predict(X_test) == y_test)), seconds, unconverged


def _subset(X, y, size):
    if size >= len(y):
        return X, y
    keep, _ = train_test_split(np.arange(len(y)), train_size=size, stratify=y, random_state=0)
    keep = np.sort(keep)
    return X[keep], y[keep]


def _summary(runs):
    accs = [r[0] for r in runs]
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    per_seed = f" ({', '.join(f'{a:.2%}' for a in accs)})" if len(accs) > 1 else ""
    return statistics.fmean(accs), f"{statistics.fmean(accs):.2%} ± {sd:.2%}{per_seed}"


def run_pair(dataset, data, pair, seeds, peer_seeds, svc_subset):
    name, ours, peer_name, peer, seeded = pair
    X_train, y_train, X_test, y_test = data
    rows = "full"
    if name == "LinearSVM" and dataset.startswith("fmnist"):
        X_train, y_train = _subset(X_train, y_train, svc_subset)
        rows = f"stratified {len(y_train):,}"
    runs = [_fit_score(ours(seed), X_train, y_train, X_test, y_test) for seed in seeds]
    peer_runs = [_fit_score(peer(seed), X_train, y_train, X_test, y_test) for seed in (peer_seeds if seeded else [0])]
    (mean, text), (peer_mean, peer_text) = _summary(runs), _summary(peer_runs)
    verdict = "met" if mean >= peer_mean - MARGIN else "NOT met"
    print(f"| {dataset} | {rows} | {name}() | {text} | {statistics.fmean(r[1] for r in runs):.1f} "
          f"| {sum(r[2] for r in runs)}/{len(runs)} | {peer_name}() | {peer_text} "
          f"| {statistics.fmean(r[1] for r in peer_runs):.1f} | {sum(r[2] for r in peer_runs)}/{len(peer_runs)} "
          f"| {mean - peer_mean:+.2%} | {verdict} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(DATASETS), help=f"comma list of {list(DATASETS)}")
    parser.add_argument("--classifiers", default="Softmax,LinearSVM,TwoLayerNet")
    parser.add_argument("--seeds", default="0,1,2", help="cvpipe's random_state values")
    parser.add_argument("--peer-seeds", default="0,1,2",
                        help="random_state values of MLPClassifier (the one peer whose result depends on it)")
    parser.add_argument("--svc-subset", type=int, default=10_000,
                        help="training rows of the LinearSVM pair on Fashion-MNIST (stratified)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    peer_seeds = [int(s) for s in args.peer_seeds.split(",")]
    print(machine_line())
    print("| dataset | training rows | cvpipe | test accuracy, mean ± s.d. (per seed) | fit (s, mean) "
          "| unconverged | peer | peer accuracy | peer fit (s, mean) | peer unconverged | difference | verdict |")
    print("| --- | --- | --- | --- | ---: | ---: | --- | --- | ---: | ---: | ---: | --- |")
    wanted = args.classifiers.split(",")
    with threadpool_limits(1):  # one BLAS thread for both sides, as bench_accuracy.py
        for dataset in args.only.split(","):
            data = DATASETS[dataset]()
            for pair in PAIRS:
                if pair[0] in wanted:
                    run_pair(dataset, data, pair, seeds, peer_seeds, args.svc_subset)


if __name__ == "__main__":
    main()
