"""Classifier speed against the scikit-learn peers, measured side by side in one run.

    python bench/bench_classifiers.py [--only knn,softmax,net] [--queries 2000]

kNN: predict of 2,000 Fashion-MNIST test images against all 60,000 training images,
k=5, float32 raw pixels, ours against ``KNeighborsClassifier(algorithm="brute",
n_jobs=-1)``. Targets: at least 1.0x its speed for L2, 2.0x for L1.
"""
from __future__ import annotations

import argparse

import numpy as np
from _common import fashion_mnist_raw, machine_line, median_time, verdict
from sklearn.neighbors import KNeighborsClassifier

from classifiers.knn import KNearestNeighbor


def bench_knn(data, n_queries):
    X_train, y_train, X_test, _ = data
    Q = X_test[:n_queries]
    print(f"\nkNN predict: {n_queries} queries x {len(X_train)} references x {X_train.shape[1]} features, k=5")
    print(f"{'metric':<7}{'ours s':>9}{'sklearn s':>11}{'speed-up':>10}{'target':>8}  {'agree':>6}")
    for metric, p, target in [("l2", 2, 1.0), ("l1", 1, 2.0)]:
        ours = KNearestNeighbor(5, metric=metric, device="cpu").fit(X_train, y_train)
        peer = KNeighborsClassifier(5, p=p, algorithm="brute", n_jobs=-1).fit(X_train, y_train)
        t_ours, pred_ours = median_time(lambda: ours.predict(Q), repeat=3)
        t_peer, pred_peer = median_time(lambda: peer.predict(Q), repeat=1 if metric == "l1" else 3,
                                        warmup=0 if metric == "l1" else 1)
        ratio = t_peer / t_ours
        print(f"{metric:<7}{t_ours:>9.2f}{t_peer:>11.2f}{ratio:>9.1f}x{target:>7.1f}x  "
              f"{np.mean(pred_ours == pred_peer):>6.1%}  {verdict(ratio, target)}")


BENCHES = {"knn": bench_knn}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(BENCHES), help=f"comma list of {sorted(BENCHES)}")
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    print(machine_line())
    data = fashion_mnist_raw()
    for name in args.only.split(","):
        BENCHES[name](data, args.queries) if name == "knn" else BENCHES[name](data)


if __name__ == "__main__":
    main()
