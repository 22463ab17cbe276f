"""Test accuracy on Fashion-MNIST (official 60,000/10,000 split, raw pixels in [0, 1]),
ours and the scikit-learn peer trained in the same run, with wall times.

    python bench/bench_accuracy.py [--only knn,softmax,svm,net] [--peers]

Softmax, LinearSVM and the net (and their peers) run on one BLAS thread each.

Targets from the Fashion-MNIST benchmark table: kNN >= 85.4% (best of L1/L2 and k),
Softmax >= 84.2%, LinearSVM >= 83.6%, TwoLayerNet >= 88.3%.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from _common import fashion_mnist_raw, machine_line
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from classifiers import LinearSVM, Softmax, TwoLayerNet
from classifiers.knn import KNearestNeighbor, vote

KS = (1, 3, 5, 7, 10)


def _row(name, acc, seconds, target, peer=None):
    peer_txt = "" if peer is None else f"   peer {peer[0]}: {peer[1]:.2%} in {peer[2]:.1f} s"
    ok = "met" if acc >= target else "NOT met"
    print(f"{name:<34}{acc:>8.2%}{seconds:>9.1f} s   target {target:.1%} {ok}{peer_txt}")


def bench_knn(data, peers):
    """Neighbours once per metric with k = max(KS), then every k from the same list."""
    X_train, y_train, X_test, y_test = data
    best = (0.0, None)
    for metric in ("l1", "l2"):
        t0 = time.perf_counter()
        model = KNearestNeighbor(max(KS), metric=metric, device="cpu").fit(X_train, y_train)
        dist, idx = model.kneighbors(X_test)
        seconds = time.perf_counter() - t0
        for weights in ("uniform", "distance"):
            for k in KS:
                pred = vote(y_train[idx[:, :k]], dist[:, :k], 10, weights).argmax(axis=1)  # labels are 0..9
                acc = float(np.mean(pred == y_test))
                print(f"  kNN {metric} k={k:<3} {weights:<9}{acc:>8.2%}")
                if acc > best[0]:
                    best = (acc, f"kNN {metric} k={k} {weights}", seconds)
    peer = None
    if peers:
        from sklearn.neighbors import KNeighborsClassifier

        metric, k, weights = best[1].split()[1], int(best[1].split()[2][2:]), best[1].split()[3]
        t0 = time.perf_counter()
        sk = KNeighborsClassifier(k, p=1 if metric == "l1" else 2, weights=weights, algorithm="brute", n_jobs=-1)
        acc = float(np.mean(sk.fit(X_train, y_train).predict(X_test) == y_test))
        peer = ("KNeighborsClassifier (same k, metric, weights)", acc, time.perf_counter() - t0)
    _row(f"best: {best[1]}", best[0], best[2], 0.854, peer)


def _fit_score(model, data):
    X_train, y_train, X_test, y_test = data
    t0 = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - t0
    return float(np.mean(model.predict(X_test) == y_test)), seconds


def _compare(name, ours, peer_name, peer, target, data, peers):
    with threadpool_limits(1):  # both sides on one BLAS thread: oversubscription on a shared 2-core box
        acc, seconds = _fit_score(ours, data)
        peer_result = (peer_name, *_fit_score(peer, data)) if peers else None
    _row(name, acc, seconds, target, peer_result)


def bench_softmax(data, peers):
    from sklearn.linear_model import LogisticRegression

    _compare("StandardScaler + Softmax()", make_pipeline(StandardScaler(), Softmax(random_state=0)),
             "StandardScaler + LogisticRegression(max_iter=1000)",
             make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), 0.842, data, peers)


def bench_svm(data, peers):
    from sklearn.svm import LinearSVC

    _compare("StandardScaler + LinearSVM()", make_pipeline(StandardScaler(), LinearSVM(random_state=0)),
             "StandardScaler + LinearSVC(dual=False)",
             make_pipeline(StandardScaler(), LinearSVC(dual=False, random_state=0)),
             0.836, data, peers)


def bench_net(data, peers):
    from sklearn.neural_network import MLPClassifier

    _compare("TwoLayerNet() (100 hidden)", TwoLayerNet(random_state=0),
             "MLPClassifier((100,), adam, batch 64, 20 epochs)",
             MLPClassifier((100,), batch_size=64, max_iter=20, random_state=0), 0.883, data, peers)


BENCHES = {"knn": bench_knn, "softmax": bench_softmax, "svm": bench_svm, "net": bench_net}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(BENCHES), help=f"comma list of {sorted(BENCHES)}")
    parser.add_argument("--peers", action="store_true", help="also train the scikit-learn peers")
    args = parser.parse_args()
    print(machine_line())
    data = fashion_mnist_raw()
    for name in args.only.split(","):
        BENCHES[name](data, args.peers)


if __name__ == "__main__":
    main()
