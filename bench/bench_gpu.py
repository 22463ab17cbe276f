"""GPU distance + top-k throughput, on a CUDA machine (CuPy required, PyTorch optional).

    python bench/bench_gpu.py [--queries 10000] [--references 60000] [--features 784] [--k 5]

For L2 and L1 it times, in one run and on the same random float32 data:
ours on CuPy (``compute.nearest_neighbors(device="gpu")``), ``torch.cdist`` +
``torch.topk`` where PyTorch is installed, and our CPU path on a slice of the queries
(scaled up). L2 is also given as a fraction of the single-precision matrix-product
rate measured on this GPU with ``cupy.matmul`` (the identity's work is one such
product). Targets: L2 at least 60% of that rate; L1 at least 2x ``torch.cdist(p=1)``.
Timing follows the device tool's METHOD.md: warm-up, CUDA events, median of repeats,
inputs checked against the CPU result first.
"""
from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np
from _common import machine_line, median_time

from compute import gpu_available, nearest_neighbors
from compute.distances import default_memory_budget


def _gpu_median_ms(cp, fn, repeat=10, warmup=2):
    for _ in range(warmup):
        fn()
    cp.cuda.Device().synchronize()
    times = []
    for _ in range(repeat):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop))
    return statistics.median(times)


def _sgemm_tflops(cp, n=8192):
    a = cp.random.standard_normal((n, n), dtype=cp.float32)
    b = cp.random.standard_normal((n, n), dtype=cp.float32)
    ms = _gpu_median_ms(cp, lambda: a @ b)
    return 2 * n**3 / (ms * 1e-3) / 1e12


def _fp32_issue_rate(cp):
    """Single-precision instructions per second the GPU can issue (128 lanes per SM on
    Volta and later), at the clock the driver reports as its maximum."""
    attrs = cp.cuda.Device().attributes
    return attrs["MultiProcessorCount"] * 128 * attrs["ClockRate"] * 1e3


def _check(Xh, Yh, k, metric):
    """Ours on the GPU against float64 references on a slice: relative error of the
    distances and agreement of the neighbour indices with the CPU path."""
    from compute.distances import pairwise_distances, pairwise_distances_reference

    q = Xh[:64]
    ref = pairwise_distances_reference(q, Yh[:2000], metric)
    got = pairwise_distances(q, Yh[:2000], metric, device="gpu")
    rel = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
    _, i_gpu = nearest_neighbors(Xh[:200], Yh, k, metric, device="gpu")
    _, i_cpu = nearest_neighbors(Xh[:200], Yh, k, metric, device="cpu")
    return rel, float(np.mean(i_gpu == i_cpu))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=10000)
    parser.add_argument("--references", type=int, default=60000)
    parser.add_argument("--features", type=int, default=784)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--cpu-queries", type=int, default=500, help="queries timed on the CPU path")
    parser.add_argument("--no-estimators", dest="estimators", action="store_false",
                        help="skip the estimators' GPU-against-CPU timings")
    parser.add_argument("--budget", type=float, default=None,
                        help="GiB one distance tile may use on the GPU "
                             "(default: compute.distances.default_memory_budget)")
    args = parser.parse_args()
    print(machine_line())
    if not gpu_available():
        sys.exit("bench_gpu.py needs CuPy and a CUDA GPU; none here")
    import cupy as cp

    from compute._l1_gpu import l1_distances_gpu

    print(f"GPU: {cp.cuda.runtime.getDeviceProperties(0)['name'].decode()}, CuPy {cp.__version__}")
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    Xh = rng.random((args.queries, args.features), dtype=np.float32)
    Yh = rng.random((args.references, args.features), dtype=np.float32)
    X, Y = cp.asarray(Xh), cp.asarray(Yh)
    tflops = _sgemm_tflops(cp)
    issue = _fp32_issue_rate(cp)
    pairs = float(args.queries) * args.references * args.features
    budget = default_memory_budget("gpu") if args.budget is None else int(args.budget * 2**30)
    print(f"measured FP32 matrix-product rate (cupy.matmul 8192^3): {tflops:.1f} TFLOP/s; "
          f"FP32 issue rate at the reported maximum clock: {issue / 1e12:.1f} T instructions/s")
    ms_product = _gpu_median_ms(cp, lambda: X @ Y.T)
    ms_l1_matrix = _gpu_median_ms(cp, lambda: l1_distances_gpu(X, Y), repeat=5)
    print(f"\n{args.queries} x {args.references} x {args.features}, k={args.k}, tile budget {budget / 2**30:.2f} GiB")
    print(f"  L2's matrix product alone: {ms_product:.1f} ms ({2 * pairs / ms_product / 1e9:.1f} TFLOP/s)")
    print(f"  L1 distance matrix alone: {ms_l1_matrix:.1f} ms "
          f"({2 * pairs / (ms_l1_matrix * 1e-3) / issue:.0%} of the issue rate at 2 instructions a pair)")
    print(f"{'metric':<7}{'ours GPU ms':>12}{'torch ms':>10}{'CPU ms':>10}{'vs torch':>10}{'% sgemm':>9}"
          f"{'rel err':>10}{'same idx':>10}")
    for metric, p in [("l2", 2.0), ("l1", 1.0)]:
        rel, agree = _check(Xh, Yh, args.k, metric)  # correctness first
        ms_ours = _gpu_median_ms(cp, lambda: nearest_neighbors(X, Y, args.k, metric, device="gpu",
                                                               memory_budget=budget), repeat=5)
        ms_torch = float("nan")
        if torch is not None and torch.cuda.is_available():
            tx, ty = torch.as_tensor(Xh, device="cuda"), torch.as_tensor(Yh, device="cuda")

            def torch_knn():
                out = []
                for s in range(0, len(tx), 2048):  # chunked so the full matrix never has to fit
                    out.append(torch.topk(torch.cdist(tx[s:s + 2048], ty, p=p), args.k, largest=False))
                return out

            # torch's p=1 kernel is slow: fewer repeats there
            ms_torch = _gpu_median_ms(cp, torch_knn, repeat=5 if metric == "l2" else 2, warmup=1)
        t_cpu, _ = median_time(lambda: nearest_neighbors(Xh[:args.cpu_queries], Yh, args.k, metric, device="cpu"),
                               repeat=1)
        ms_cpu = t_cpu * 1e3 * args.queries / args.cpu_queries
        pct = (2 * pairs / (ms_ours * 1e-3) / 1e12) / tflops * 100 if metric == "l2" else float("nan")
        print(f"{metric:<7}{ms_ours:>12.1f}{ms_torch:>10.1f}{ms_cpu:>10.0f}{ms_torch / ms_ours:>9.2f}x"
              f"{pct:>8.0f}%{rel:>10.1e}{agree:>10.1%}")
    print("rel err: ||ours - float64 two-loop reference|| / ||reference|| on 64 x 2000; "
          "same idx: neighbour indices equal to our CPU path's on 200 queries")
    print("targets: L2 >= 60% of the sgemm rate; L1 >= 2.0x torch.cdist(p=1)")
    if args.estimators:
        bench_estimators(cp)


def bench_estimators(cp, n_train=60000, n_features=784, n_classes=10, n_queries=2000):
    """The estimators end to end, ``device="gpu"`` against ``device="cpu"`` on this
    machine (all its cores): NumPy data in, NumPy results out, transfers included.
    Random data shaped like Fashion-MNIST: the work does not depend on the values."""
    from classifiers import KNearestNeighbor, Softmax, TwoLayerNet

    rng = np.random.default_rng(1)
    X = rng.random((n_train, n_features), dtype=np.float32)
    y = rng.integers(0, n_classes, n_train)
    Q = rng.random((n_queries, n_features), dtype=np.float32)
    print(f"\nestimators, {n_train} x {n_features} float32, {n_classes} classes; wall time, median of 3 "
          f"after a warm-up, GPU synchronized")
    print(f"{'what':<52}{'GPU s':>9}{'CPU s':>9}{'GPU speed-up':>14}")
    cases = [
        (f"KNearestNeighbor(5, l2).predict({n_queries} queries)", lambda d: KNearestNeighbor(5, device=d).fit(X, y),
         lambda m: m.predict(Q)),
        (f"KNearestNeighbor(5, l1).predict({n_queries} queries)",
         lambda d: KNearestNeighbor(5, metric="l1", device=d).fit(X, y), lambda m: m.predict(Q)),
        ("Softmax(batch 200).fit, 2 epochs", lambda d: Softmax(n_epochs=2, random_state=0, device=d),
         lambda m: m.fit(X, y)),
        ("TwoLayerNet((100,), batch 64).fit, 2 epochs",
         lambda d: TwoLayerNet(n_epochs=2, random_state=0, device=d), lambda m: m.fit(X, y)),
        ("TwoLayerNet((1024,), batch 512).fit, 2 epochs",
         lambda d: TwoLayerNet((1024,), batch_size=512, n_epochs=2, random_state=0, device=d), lambda m: m.fit(X, y)),
    ]
    for name, make, run in cases:
        seconds = {}
        for device in ("gpu", "cpu"):
            model = make(device)

            def call():
                run(model)
                cp.cuda.Device().synchronize()

            seconds[device], _ = median_time(call, repeat=3, warmup=1)
        print(f"{name:<52}{seconds['gpu']:>9.3f}{seconds['cpu']:>9.3f}{seconds['cpu'] / seconds['gpu']:>13.1f}x")


if __name__ == "__main__":
    main()
