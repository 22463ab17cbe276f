"""Classifier speed against the scikit-learn peers, measured side by side in one run.

    python bench/bench_classifiers.py [--only knn,softmax_hog,net] [--queries 2000]

kNN: predict of 2,000 Fashion-MNIST test images against all 60,000 training images,
k=5, float32 raw pixels, ours against ``KNeighborsClassifier(algorithm="brute",
n_jobs=-1)``. Targets: at least 1.0x its speed for L2, 2.0x for L1.
Softmax on HOG features of the full training set: LogisticRegression's test accuracy in
at most a third of its wall time. TwoLayerNet: at least 2x MLPClassifier's per-epoch
throughput with the same layer sizes, batch size and solver (adam).
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from _common import fashion_mnist_raw, machine_line, median_time, verdict
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from classifiers import Softmax, TwoLayerNet
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


def bench_softmax_hog(data, _):
    """Softmax on HOG features against LogisticRegression: its accuracy in a third of its time."""
    from sklearn.linear_model import LogisticRegression

    from features import HOG
    from pipeline.datasets import load_dataset

    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    hog = HOG(orientations=9, pixels_per_cell=(7, 7), cells_per_block=(2, 2), device="cpu")
    F_train, F_test = hog.fit_transform(train.images), hog.transform(test.images)
    print(f"\nSoftmax on HOG ({F_train.shape[1]} features, full training set), one BLAS thread each")
    rows = []
    for name, model in [
        ("ours: StandardScaler + Softmax(learning_rate=1e-2, n_epochs=50)",
         make_pipeline(StandardScaler(), Softmax(learning_rate=1e-2, n_epochs=50, random_state=0))),
        ("peer: StandardScaler + LogisticRegression(max_iter=2000)",
         make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))),
    ]:
        with threadpool_limits(1):
            t0 = time.perf_counter()
            model.fit(F_train, train.labels)
            seconds = time.perf_counter() - t0
        acc = float(np.mean(model.predict(F_test) == test.labels))
        rows.append((acc, seconds))
        print(f"  {name:<66}{acc:>8.2%}{seconds:>8.1f} s")
    (acc, t), (peer_acc, peer_t) = rows
    print(f"  time ratio ours/peer {t / peer_t:.2f} (target <= 0.33: {'met' if t <= peer_t / 3 else 'NOT met'}); "
          f"accuracy {acc - peer_acc:+.2%} (target >= 0: {'met' if acc >= peer_acc else 'NOT met'})")


def bench_net(data, _, epochs=2, rounds=3):
    """Per-epoch training throughput against MLPClassifier, same layers, batch and solver."""
    from sklearn.neural_network import MLPClassifier

    X_train, y_train, _, _ = data
    print(f"\nTwoLayerNet vs MLPClassifier: samples/s over {epochs} epochs on {len(X_train)} samples, "
          f"median of {rounds} alternating rounds, one BLAS thread each")
    for hidden, batch in [(256, 64), (100, 200)]:
        times = {"ours": [], "peer": []}
        for _ in range(rounds):
            for side, model in [("ours", TwoLayerNet(hidden_sizes=(hidden,), batch_size=batch, n_epochs=epochs,
                                                     random_state=0)),
                                ("peer", MLPClassifier((hidden,), batch_size=batch, max_iter=epochs, tol=0,
                                                       n_iter_no_change=epochs + 1, random_state=0))]:
                with threadpool_limits(1), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # MLPClassifier warns that 2 epochs did not converge
                    t0 = time.perf_counter()
                    model.fit(X_train, y_train)
                    times[side].append(time.perf_counter() - t0)
        ours, peer = (len(X_train) * epochs / statistics.median(times[k]) for k in ("ours", "peer"))
        print(f"  hidden {hidden:>4}, batch {batch:>4}: ours {ours:>9,.0f}/s  MLPClassifier {peer:>9,.0f}/s  "
              f"ratio {ours / peer:.2f}x  (target >= 2.0x: {verdict(ours / peer, 2.0)})")


BENCHES = {"knn": bench_knn, "softmax_hog": bench_softmax_hog, "net": bench_net}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(BENCHES), help=f"comma list of {sorted(BENCHES)}")
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    print(machine_line())
    data = fashion_mnist_raw()
    for name in args.only.split(","):
        BENCHES[name](data, args.queries)


if __name__ == "__main__":
    main()
