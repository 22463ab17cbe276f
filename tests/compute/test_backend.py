import numpy as np
import pytest

from compute.backend import get_array_module, gpu_available, resolve_device, to_device, to_numpy


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
