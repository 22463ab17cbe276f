import importlib
import logging

import numpy as np
import pytest

from compute.backend import cpu_kernel, get_array_module, gpu_available, resolve_device, to_device, to_numpy

#: Every module that declares a compiled CPU kernel.
KERNEL_MODULES = ("compute._l1_cpu", "compute._topk_cpu", "features._hog_cpu", "classifiers._adam_cpu",
                  "classifiers._softmax_cpu")


@pytest.fixture
def numba_cannot_cache(monkeypatch):
    """Numba with no cache locator, as on a read-only install run by a user with no writable
    home and no writable NUMBA_CACHE_DIR (root, which CI runs as, can write anywhere)."""
    from numba.core import caching

    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
    monkeypatch.setattr(impl, "_locator_classes", [])
    yield
    monkeypatch.undo()
    for name in KERNEL_MODULES:  # back to the cached kernels for the tests that follow
        importlib.reload(importlib.import_module(name))


def test_cpu_kernel_compiles_in_memory_where_numba_cannot_cache(numba_cannot_cache, caplog):
    import numba

    def double(x):
        return 2 * x

    with pytest.raises(RuntimeError, match="cannot cache"):
        numba.njit(cache=True)(double)  # what a plain cache=True does there
    with caplog.at_level(logging.WARNING, logger="compute.backend"):
        kernel = cpu_kernel(nogil=True)(double)
    assert kernel(21) == 42
    assert "compiles in memory" in caplog.text and "NUMBA_CACHE_DIR" in caplog.text


def test_every_kernel_module_imports_where_numba_cannot_cache(numba_cannot_cache, rng):
    for name in KERNEL_MODULES:
        importlib.reload(importlib.import_module(name))
    from compute._topk_cpu import smallest_k_cpu  # and a reloaded kernel runs

    D = rng.random((3, 9))
    _, idx = smallest_k_cpu(D, 2)
    np.testing.assert_array_equal(idx, np.argsort(D, axis=1, kind="stable")[:, :2])


def test_auto_resolves_to_an_available_device():
    assert resolve_device("auto") == ("gpu" if gpu_available() else "cpu")


def test_cpu_is_numpy():
    assert get_array_module("cpu") is np


@pytest.mark.parametrize("bad", ["cuda", "GPU", None, 0])
def test_unknown_device_is_refused(bad):
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device(bad)


def test_gpu_without_cupy_says_what_is_missing():
    if gpu_available():
        pytest.skip("a GPU is present here, so device='gpu' is valid")
    with pytest.raises(RuntimeError, match="CuPy and a CUDA device"):
        resolve_device("gpu")


def test_to_numpy_and_to_device_round_trip(rng):
    a = rng.random((3, 4))
    b = to_device(a, np, dtype=np.float32)
    assert b.dtype == np.float32
    np.testing.assert_array_equal(to_numpy(b), a.astype(np.float32))


@pytest.mark.gpu
def test_gpu_round_trip(rng):
    cp = get_array_module("gpu")
    a = rng.random((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(to_numpy(to_device(a, cp)), a)


def test_raw_kernel_refuses_a_type_it_cannot_compile():
    from compute.backend import raw_kernel

    with pytest.raises(ValueError, match="GPU kernels take float32 or float64 data, got int64"):
        raw_kernel("", "k", "int64")
