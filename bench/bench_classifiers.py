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
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from classifiers import Softmax, TwoLayerNet
from classifiers.knn import KNearestNeighbor
from classifiers.losses import softmax_scores_loss


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


def bench_softmax_hog(data, _, seeds=(0, 1, 2)):
    """Softmax on HOG features against LogisticRegression: its accuracy in a third of its time.

    Ours runs with three seeds (the accuracy differs by a few test images between them).
    A third row minimizes the peer's own objective exactly (float64 L-BFGS to a tight
    tolerance, through our loss): the test accuracy of that optimum shows how much of the
    peer's figure is where its solver happened to stop.
    """
    from sklearn.linear_model import LogisticRegression

    from features import HOG
    from pipeline.data.datasets import load_dataset

    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    hog = HOG(orientations=9, pixels_per_cell=(7, 7), cells_per_block=(2, 2), device="cpu")
    scaler = StandardScaler()
    F_train = scaler.fit_transform(hog.fit_transform(train.images))
    F_test = scaler.transform(hog.transform(test.images))
    print(f"\nSoftmax on HOG ({F_train.shape[1]} features, standardized, full training set), one BLAS thread each")
    settings = dict(learning_rate=1e-2, learning_rate_decay=0.95, n_epochs=80, reg=1e-4)
    ours = []
    for seed in seeds:
        acc, seconds = _fit_and_score(Softmax(random_state=seed, **settings), F_train, train.labels, F_test,
                                      test.labels)
        ours.append((acc, seconds))
        print(f"  ours: Softmax({', '.join(f'{k}={v}' for k, v in settings.items())}, random_state={seed})"
              f"{acc:>8.2%}{seconds:>8.1f} s")
    peer = LogisticRegression(max_iter=2000)
    peer_acc, peer_t = _fit_and_score(peer, F_train, train.labels, F_test, test.labels)
    print(f"  peer: LogisticRegression(max_iter=2000), {int(peer.n_iter_[0])} iterations"
          f"{peer_acc:>31.2%}{peer_t:>8.1f} s   "
          f"objective {_lr_objective(peer.coef_.T, peer.intercept_, F_train, train.labels):.6f}")
    W, b, seconds = _exact_lr_optimum(F_train, train.labels, len(np.unique(train.labels)))
    exact_acc = float(np.mean(np.argmax(F_test @ W + b, axis=1) == test.labels))
    print(f"  exact minimizer of the peer's objective (float64 L-BFGS, gtol 1e-6)"
          f"{exact_acc:>15.2%}{seconds:>8.1f} s   objective {_lr_objective(W, b, F_train, train.labels):.6f}")
    acc, t = statistics.median(a for a, _ in ours), statistics.median(s for _, s in ours)
    print(f"  ours (median of {len(seeds)} seeds) / peer: time {t / peer_t:.2f} (target <= 0.33: "
          f"{'met' if t <= peer_t / 3 else 'NOT met'}); accuracy {acc - peer_acc:+.2%} "
          f"(target >= 0: {'met' if acc >= peer_acc else 'NOT met'})")


def _fit_and_score(model, X_train, y_train, X_test, y_test):
    with threadpool_limits(1):
        t0 = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - t0
    return float(np.mean(model.predict(X_test) == y_test)), seconds


def _lr_objective(W, b, X, y):
    """LogisticRegression's objective with C=1, per sample: mean cross-entropy + ||W||^2 / (2n)."""
    loss, _ = softmax_scores_loss(X.astype(np.float64) @ W + b, np.asarray(y))
    return float(loss) + 0.5 / len(X) * float(np.sum(np.square(W, dtype=np.float64)))


def _exact_lr_optimum(X, y, n_classes):
    """Minimize :func:`_lr_objective` with scipy's L-BFGS in float64; returns (W, b, seconds)."""
    from scipy.optimize import minimize

    X, y, n = X.astype(np.float64), np.asarray(y), len(X)

    def objective_and_gradient(theta):
        W, b = theta[:-n_classes].reshape(-1, n_classes), theta[-n_classes:]
        loss, dscores = softmax_scores_loss(X @ W + b, y)
        grad = np.concatenate([(X.T @ dscores + W / n).ravel(), dscores.sum(axis=0)])
        return float(loss) + 0.5 / n * float(W.ravel() @ W.ravel()), grad

    t0 = time.perf_counter()
    with threadpool_limits(1):
        result = minimize(objective_and_gradient, np.zeros(X.shape[1] * n_classes + n_classes), jac=True,
                          method="L-BFGS-B", options={"maxiter": 5000, "gtol": 1e-6})
    theta = result.x
    return theta[:-n_classes].reshape(-1, n_classes), theta[-n_classes:], time.perf_counter() - t0


def bench_net(data, _, epochs=2, rounds=3):
    """Per-epoch training throughput against MLPClassifier, same layers, batch and solver."""
    from sklearn.neural_network import MLPClassifier

    X_train, y_train, _, _ = data
    print(f"\nTwoLayerNet vs MLPClassifier: samples/s over {epochs} epochs on {len(X_train)} samples, "
          f"median of {rounds} alternating rounds, one BLAS thread each")
    for hidden, batch in [(100, 64), (256, 64), (100, 200)]:
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
        floor = _products_rate(X_train, hidden, batch)
        print(f"  hidden {hidden:>4}, batch {batch:>4}: ours {ours:>9,.0f}/s  MLPClassifier {peer:>9,.0f}/s  "
              f"ratio {ours / peer:.2f}x  (target >= 2.0x: {verdict(ours / peer, 2.0)});  the two first-layer "
              f"products alone {floor:,.0f}/s = {floor / peer:.2f}x the peer")


def _products_rate(X, hidden, batch, rounds=3):
    """Samples/s of the two first-layer matrix products both sides do per batch
    (``X_b @ W1`` and ``X_b.T @ dH``), on one BLAS thread: the ceiling of either."""
    rng = np.random.default_rng(0)
    W, dH = rng.standard_normal((X.shape[1], hidden), dtype=np.float32), rng.standard_normal((batch, hidden),
                                                                                             dtype=np.float32)
    starts = range(0, len(X) - batch + 1, batch)
    best = np.inf
    with threadpool_limits(1):
        for _ in range(rounds):
            t0 = time.perf_counter()
            for start in starts:
                X_b = X[start:start + batch]
                X_b @ W
                X_b.T @ dH
            best = min(best, time.perf_counter() - t0)
    return len(starts) * batch / best


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
