"""``device="auto"`` on a machine with a GPU: small training and inference steps stay on the CPU.

The GPU is faked: ``compute.backend._cupy_or_none`` answers a stand-in module that fails
on any use, so a job that chose the GPU would raise instead of silently running on NumPy.
(The threshold itself was not measured on a GPU; see ``compute.backend.GPU_MIN_STEP_WORK``.)
"""
from __future__ import annotations

import numpy as np
import pytest

from classifiers import LinearSVM, Softmax, TwoLayerNet
from compute import backend


class _FakeCupy:
    class ndarray:  # noqa: N801 (cupy's name)
        pass

    def __getattr__(self, name):
        raise AssertionError(f"the GPU was used (cupy.{name}) where the CPU was expected")


@pytest.fixture
def gpu_machine(monkeypatch):
    fake = _FakeCupy()
    monkeypatch.setattr(backend, "_cupy_or_none", lambda: fake)
    assert backend.gpu_available()
    return fake


def test_the_rule(gpu_machine):
    small, large = backend.GPU_MIN_STEP_WORK - 1, backend.GPU_MIN_STEP_WORK
    assert backend.choose_device("auto", small) == "cpu"
    assert backend.choose_device("auto", large) == "gpu"
    assert backend.choose_device("auto", None) == "gpu"  # unknown work: as before, the GPU
    assert backend.choose_device("gpu", small) == "gpu"  # asked for explicitly: honoured
    assert backend.choose_device("cpu", large) == "cpu"
    assert backend.get_array_module("auto", small) is np
    assert backend.get_array_module("auto", large) is gpu_machine


def test_without_a_gpu_auto_is_the_cpu(monkeypatch):
    monkeypatch.setattr(backend, "_cupy_or_none", lambda: None)
    assert backend.choose_device("auto", 10 * backend.GPU_MIN_STEP_WORK) == "cpu"


@pytest.mark.parametrize("make", [Softmax, LinearSVM, TwoLayerNet])
def test_default_models_of_fashion_mnist_size_train_and_predict_on_the_cpu(make, gpu_machine):
    """A step of the defaults on 784 features and 10 classes (the net: 100 hidden units) does a
    few million multiply-adds: far below the threshold, so 'auto' trains on the CPU."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 784)).astype(np.float32)
    y = np.arange(400) % 10
    model = make(n_epochs=1, tol=None, random_state=0).fit(X, y)
    assert model.predict(X[:3]).shape == (3,)


def test_a_large_step_goes_to_the_gpu(gpu_machine):
    """The same rule sends a wide enough net to the (fake) GPU: the rule is not 'always the CPU'."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4096, 2048)).astype(np.float32)
    y = np.arange(4096) % 10
    wide = TwoLayerNet(hidden_sizes=(4096,), batch_size=4096, n_epochs=1)  # 3 * 4096 * 8.4e6 multiply-adds
    with pytest.raises(AssertionError, match="the GPU was used"):
        wide.fit(X, y)
