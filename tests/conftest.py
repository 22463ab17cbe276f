"""Shared fixtures.

A test that needs an optional part (a GPU, a dataset) skips with the reason on a
developer's machine; under ``CI=true`` only GPU tests may skip, and a missing dataset
is a failure.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str, *, ci_may_skip: bool = False) -> None:
    """Skip (or, in CI, fail) the calling test when ``condition`` is false."""
    if condition:
        return
    if IN_CI and not ci_may_skip:
        pytest.fail(f"{reason} (CI=true: only GPU tests may skip)")
    pytest.skip(reason)


def pytest_collection_modifyitems(config, items):
    from compute.backend import gpu_available

    if gpu_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CuPy and a CUDA GPU; run `pytest -m gpu` on a GPU machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True, scope="session")
def _decompressed_copies_in_a_temporary_folder(tmp_path_factory):
    """Gzipped IDX files are decompressed once into $CVPIPE_CACHE: a folder of this test
    session, not the user's cache."""
    old = os.environ.get("CVPIPE_CACHE")
    os.environ["CVPIPE_CACHE"] = str(tmp_path_factory.mktemp("decompressed"))
    yield
    if old is None:
        os.environ.pop("CVPIPE_CACHE", None)
    else:
        os.environ["CVPIPE_CACHE"] = old


@pytest.fixture(autouse=True, scope="session")
def _one_thread_per_native_pool():
    """One BLAS/OpenMP thread per test process: on a small shared machine, k-means and
    BLAS threads waiting on each other made the suite many times slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture
def rng():
    """A seeded NumPy generator: same test, same numbers."""
    return np.random.default_rng(0)


@pytest.fixture
def umask_022():
    """The common umask (022) for the test, whatever the runner's; new files 0644, folders 0755."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(scope="session")
def fashion_mnist_test():
    """The 10,000 Fashion-MNIST test images (Debian's dataset-fashion-mnist or $CVPIPE_DATA)."""
    from pipeline.data.datasets import DatasetNotFoundError, load_dataset

    try:
        return load_dataset("fashion-mnist", split="test")
    except DatasetNotFoundError as exc:
        require(False, f"Fashion-MNIST not found: {exc}")


@pytest.fixture(scope="session")
def digits_test():
    """scikit-learn's 8x8 digits, the test split (360 images), as a cvpipe Dataset."""
    from pipeline.data import load_dataset

    return load_dataset("digits", "test")


@pytest.fixture
def gray_images(rng):
    """Random uint8 grayscale images, (12, 28, 28)."""
    return rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)


@pytest.fixture
def color_images(rng):
    """Random uint8 RGB images, (10, 32, 32, 3)."""
    return rng.integers(0, 256, size=(10, 32, 32, 3), dtype=np.uint8)
