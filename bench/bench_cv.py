"""kNN cross-validation speed against GridSearchCV, measured side by side in one run.

    python bench/bench_cv.py [--n 10000]

cs231n's grid, ks = 1, 3, 5, 8, 10, 12, 15, 20, 50, 100 x metrics l1, l2, with 5
stratified folds (seed 0) on the first 10,000 Fashion-MNIST training images (raw
pixels, float32 in [0, 1]). Ours: ``cross_validate_knn`` with its float32 default, one
neighbour search per (fold, metric) with k = 100, every k scored from its prefix.
The peer: ``GridSearchCV(KNeighborsClassifier(algorithm="brute"), {"n_neighbors": ks,
"p": [1, 2]}, cv=the same folds, n_jobs=-1)``, which refits and predicts 100 times.
One run each (the peer takes minutes). Target: at least 8x the peer's speed.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from _common import fashion_mnist_raw, machine_line, verdict
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier

from compute.distances import nearest_neighbors
from pipeline.selection.knn_cv import DEFAULT_KS, cross_validate_knn, make_folds

TARGET = 8.0
P_OF = {"l1": 1, "l2": 2}


def _warm_up():
    """Load (or compile, on a first run) the Numba kernels, which sklearn has no equivalent of."""
    X = np.random.default_rng(0).random((64, 8), dtype=np.float32)
    for metric in P_OF:
        nearest_neighbors(X, X, 3, metric)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="first N training images (default 10000)")
    args = parser.parse_args()
    print(machine_line())
    X_train, y_train, _, _ = fashion_mnist_raw()
    X, y = X_train[: args.n], y_train[: args.n]
    ks = list(DEFAULT_KS)
    folds = make_folds(y, 5, seed=0)
    print(f"\nkNN cross-validation: {len(X)} images x {X.shape[1]} raw pixels (float32), 5 folds, "
          f"ks={ks} x metrics l1, l2")

    _warm_up()
    t0 = time.perf_counter()
    ours = cross_validate_knn(X, y, ks, metrics=("l1", "l2"), n_folds=5, seed=0)
    t_ours = time.perf_counter() - t0

    search = GridSearchCV(KNeighborsClassifier(algorithm="brute"), {"n_neighbors": ks, "p": [1, 2]},
                          cv=folds, n_jobs=-1)
    t0 = time.perf_counter()
    search.fit(X, y)
    t_peer = time.perf_counter() - t0

    cv = search.cv_results_
    diffs = []
    for i, params in enumerate(cv["params"]):
        metric = {p: m for m, p in P_OF.items()}[params["p"]]
        diffs.append(abs(ours.mean_scores[metric][ks.index(params["n_neighbors"])] - cv["mean_test_score"][i]))
    metric, k, score = ours.best
    peer_best = (next(m for m, p in P_OF.items() if p == search.best_params_["p"]), search.best_params_["n_neighbors"])
    t = ours.timings
    print(f"ours ({ours.device}, {ours.dtype}): {t_ours:8.2f} s  (neighbours l1 {t['neighbors_s']['l1']:.2f} s, "
          f"l2 {t['neighbors_s']['l2']:.2f} s, voting {t['scoring_s']:.2f} s)")
    print(f"GridSearchCV(n_jobs=-1): {t_peer:8.2f} s")
    ratio = t_peer / t_ours
    print(f"speed-up {ratio:.1f}x, target {TARGET:.1f}x: {verdict(ratio, TARGET)}")
    print(f"best: ours {metric} k={k} ({score:.4f}), GridSearchCV {peer_best[0]} k={peer_best[1]} "
          f"({search.best_score_:.4f}): {'agree' if (metric, k) == peer_best else 'DIFFER'}")
    print(f"per-(metric, k) mean accuracy: max |ours - GridSearchCV| = {max(diffs):.2e}, "
          f"{sum(d == 0 for d in diffs)}/{len(diffs)} identical")
    print("\n" + ours.format_table())


if __name__ == "__main__":
    main()
