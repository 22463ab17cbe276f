"""ConvNet training and inference throughput against the same architecture in PyTorch, on the CPU.

Same data (the first ``--n`` Fashion-MNIST training images, raw pixels in [0, 1]), same
architecture (by default conv 5x5 16 - pool - relu - conv 3x3 32 - pool - relu - affine 56 -
relu - affine 10, :class:`classifiers.ConvNet`'s defaults; ``--filters`` and
``--kernel-sizes`` change the convolutions, as configs/fashion-mnist-convnet.yaml's
``--filters 32 32 --kernel-sizes 3 3``), same batch size, Adam with the same
learning rate and L2 term, same number of threads (``--threads`` sets OpenBLAS's and
PyTorch's, and ``ConvNet(n_jobs=...)``). cvpipe's figure is ``ConvNet.fit`` itself (with its per-epoch training
accuracy); PyTorch's is a plain loop of forward, backward and step.

    python bench/bench_convnet_speed.py --threads 1
    python bench/bench_convnet_speed.py --threads 2
    python bench/bench_convnet_speed.py --threads 2 --filters 32 32 --kernel-sizes 3 3
    python bench/bench_convnet_speed.py --threads 1 --share-rows 0 16 32 64

``--share-rows`` measures cvpipe alone, its training throughput for each size of the shares
a batch goes through in (``classifiers._cnn.SHARE_ROWS``; 0: the batch whole), the sizes
taken in turn for 3 rounds.

PyTorch is a benchmark-only dependency (``pip install torch``); without it only cvpipe's
figures are printed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--n", type=int, default=10_000, help="training images per epoch")
parser.add_argument("--epochs", type=int, default=2, help="epochs timed (after one warm-up)")
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--filters", type=int, nargs="+", default=[16, 32], help="output channels of each convolution")
parser.add_argument("--kernel-sizes", type=int, nargs="+", default=[5, 3], help="side of each convolution's kernel")
parser.add_argument("--share-rows", type=int, nargs="+", metavar="ROWS")
args = parser.parse_args()
if len(args.filters) != len(args.kernel_sizes):
    parser.error(f"one kernel size per convolution: got {len(args.filters)} --filters and "
                 f"{len(args.kernel_sizes)} --kernel-sizes")
ARCHITECTURE = {"filters": tuple(args.filters), "kernel_sizes": tuple(args.kernel_sizes)}
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)  # before NumPy loads OpenBLAS

import numpy as np  # noqa: E402
from _common import fashion_mnist_raw, machine_line  # noqa: E402

from classifiers import ConvNet  # noqa: E402
from classifiers._sgd import passes_per_epoch  # noqa: E402


def share_figures(X, y):
    """Training images/s of ``ConvNet.fit`` for each ``--share-rows`` (0: whole batches), 3 rounds."""
    import classifiers._cnn as cnn

    ConvNet(**ARCHITECTURE, n_epochs=1, tol=None, device="cpu", random_state=0).fit(X[:2000], y[:2000])  # warm-up
    seen = args.epochs * passes_per_epoch(len(X), args.batch_size) * len(X)
    for round_ in range(3):
        for rows in args.share_rows:
            cnn.SHARE_ROWS = rows or 10**9
            clf = ConvNet(**ARCHITECTURE, batch_size=args.batch_size, n_epochs=args.epochs, tol=None, device="cpu",
                          n_jobs=args.threads, random_state=0)
            t0 = time.perf_counter()
            clf.fit(X, y)
            print(f"round {round_ + 1}, shares of {rows or 'the whole batch'}: "
                  f"{seen / (time.perf_counter() - t0):.0f} training images/s")


def cvpipe_figures(X, y, X_test):
    clf = ConvNet(**ARCHITECTURE, batch_size=args.batch_size, n_epochs=1, tol=None, device="cpu", n_jobs=args.threads,
                  random_state=0)
    clf.fit(X[:2000], y[:2000])  # warm-up: the compiled Adam step, the BLAS buffers
    clf.set_params(n_epochs=args.epochs)
    t0 = time.perf_counter()
    clf.fit(X, y)
    seconds = time.perf_counter() - t0
    seen = args.epochs * passes_per_epoch(len(X), args.batch_size) * len(X)
    t0 = time.perf_counter()
    clf.predict_proba(X_test)
    return clf.n_params_, seen / seconds, len(X_test) / (time.perf_counter() - t0)


def torch_figures(X, y, X_test):
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    nn = torch.nn
    # ConvNet's rule: "same" padding, and a 2x2 pooling where its windows tile the map
    layers, channels, side = [], 1, 28
    for filters, kernel in zip(args.filters, args.kernel_sizes):
        layers.append(nn.Conv2d(channels, filters, kernel, padding=(kernel - 1) // 2))
        if side % 2 == 0:
            layers.append(nn.MaxPool2d(2))
            side //= 2
        layers.append(nn.ReLU())
        channels = filters
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(side * side * channels, 56), nn.ReLU(), nn.Linear(56, 10))
    # ConvNet's reg=5e-5 adds 2 * reg * W to the gradients, as Adam's weight_decay=1e-4 does.
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X.reshape(-1, 1, 28, 28)), torch.from_numpy(y.astype(np.int64))
    rng = np.random.default_rng(0)

    def epoch():
        order = torch.from_numpy(rng.permutation(len(X)))
        for start in range(0, len(X), args.batch_size):
            rows = order[start : start + args.batch_size]
            optimizer.zero_grad()
            loss_fn(model(Xt[rows]), yt[rows]).backward()
            optimizer.step()

    epoch()
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        epoch()
    train = args.epochs * len(X) / (time.perf_counter() - t0)
    model.eval()
    Xq = torch.from_numpy(X_test.reshape(-1, 1, 28, 28))
    t0 = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(Xq), 256):
            model(Xq[start : start + 256])
    n_params = sum(p.numel() for p in model.parameters())
    return n_params, train, len(Xq) / (time.perf_counter() - t0), torch.__version__


def main():
    X_train, y_train, X_test, _ = fashion_mnist_raw()
    X, y = X_train[: args.n], y_train[: args.n]
    print(machine_line())
    print(f"{args.n} training images, batch {args.batch_size}, {args.threads} thread(s), "
          f"{args.epochs} epochs timed; inference on {len(X_test)} test images")
    if args.share_rows:
        share_figures(X, y)
        return
    n_params, train, infer = cvpipe_figures(X, y, X_test)
    print(f"cvpipe ConvNet ({n_params} parameters): training {train:.0f} images/s, inference {infer:.0f} images/s")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed: no comparison (pip install torch)", file=sys.stderr)
        return
    t_params, t_train, t_infer, version = torch_figures(X, y, X_test)
    if t_params != n_params:
        raise SystemExit(f"not the same architecture: cvpipe has {n_params} parameters, PyTorch {t_params}")
    print(f"PyTorch {version} ({t_params} parameters): training {t_train:.0f} images/s, "
          f"inference {t_infer:.0f} images/s")
    print(f"ratio cvpipe / PyTorch: training {train / t_train:.2f}x (target >= 0.5x, stretch >= 1.0x), "
          f"inference {infer / t_infer:.2f}x")


if __name__ == "__main__":
    main()
