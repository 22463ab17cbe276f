"""What the benchmarks share: the Fashion-MNIST arrays, timing, and the machine line."""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.stdout.reconfigure(line_buffering=True)  # a long bench stopped part-way keeps what it printed


def fashion_mnist_raw():
    """Raw pixels in [0, 1], float32: ``X_train (60000, 784), y_train, X_test (10000, 784), y_test``."""
    from pipeline.data.datasets import load_dataset

    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    flat = lambda d: d.images.reshape(len(d), -1).astype(np.float32) / np.float32(255)  # noqa: E731
    return flat(train), train.labels, flat(test), test.labels


def median_time(fn, repeat=3, warmup=1):
    """Median wall time of ``fn()`` over ``repeat`` runs after ``warmup`` runs; returns (seconds, last result)."""
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def machine_line():
    """One line naming the machine and the library versions."""
    import numpy
    import sklearn

    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{platform.node() or 'host'}: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numpy {numpy.__version__}, scikit-learn {sklearn.__version__}")


def verdict(ratio, target):
    """``met`` or ``NOT met`` for a ratio against its target."""
    return "met" if ratio >= target else "NOT met"
