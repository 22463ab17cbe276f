"""The in-place update rules against their textbook formulas."""
import numpy as np
import pytest

from classifiers.optim import OPTIMIZERS, make_optimizer


def _textbook(name, lr, w, grads):
    mu, beta1, beta2, eps, decay = 0.9, 0.9, 0.999, 1e-8, 0.99
    v = np.zeros_like(w)
    m, s = np.zeros_like(w), np.zeros_like(w)
    for t, dw in enumerate(grads, start=1):
        if name == "sgd":
            w = w - lr * dw
        elif name == "momentum":
            v = mu * v - lr * dw
            w = w + v
        elif name == "nesterov":
            v_prev = v
            v = mu * v - lr * dw
            w = w - mu * v_prev + (1 + mu) * v
        elif name == "rmsprop":
            s = decay * s + (1 - decay) * dw**2
            w = w - lr * dw / (np.sqrt(s) + eps)
        else:
            m = beta1 * m + (1 - beta1) * dw
            s = beta2 * s + (1 - beta2) * dw**2
            w = w - lr * (m / (1 - beta1**t)) / (np.sqrt(s / (1 - beta2**t)) + eps)
    return w


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_updates_equal_the_textbook_formulas(rng, name):
    w0 = rng.normal(size=(4, 3))
    grads = [rng.normal(size=(4, 3)) for _ in range(5)]
    params = {"W": w0.copy()}
    opt = make_optimizer(name, 0.01)
    for dw in grads:
        opt.step(params, {"W": dw})
    np.testing.assert_allclose(params["W"], _textbook(name, 0.01, w0, grads), rtol=1e-12, atol=1e-14)


def test_unknown_optimizer():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_optimizer("lbfgs", 0.1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_adam_equals_the_array_form(rng, dtype, monkeypatch):
    import classifiers.optim as optim

    w0 = rng.normal(size=(30, 7)).astype(dtype)
    grads = [rng.normal(size=(30, 7)).astype(dtype) for _ in range(4)]
    results = []
    for fused in (True, False):
        monkeypatch.setattr(optim, "_fused_cpu", lambda *a, fused=fused: fused)
        params, opt = {"W": w0.copy()}, make_optimizer("adam", 0.01)
        for dw in grads:
            opt.step(params, {"W": dw})
        results.append((params["W"], opt.state["W"][1]))
    # float32: fastmath may reorder the arithmetic; differences stay at rounding of w (~1)
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=2e-6 if dtype == np.float32 else 0)
    # the second moment too (1 - beta2 in float32 had put it 1.3e-5 off)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-6 if dtype == np.float32 else 1e-12)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_fused_gpu_adam_equals_the_array_form_on_the_cpu(rng, dtype, l2):
    from compute.backend import get_array_module, to_numpy

    cp = get_array_module("gpu")
    w0 = rng.normal(size=(30, 7)).astype(dtype)
    grads = [rng.normal(size=(30, 7)).astype(dtype) for _ in range(4)]
    gpu, cpu = {"W": cp.asarray(w0)}, {"W": w0.copy()}
    opt_gpu, opt_cpu = make_optimizer("adam", 0.01), make_optimizer("adam", 0.01)
    opt_cpu.state["W"] = [np.zeros_like(w0), np.zeros_like(w0), 0, None]  # None: the array form
    for dw in grads:
        opt_gpu.step(gpu, {"W": cp.asarray(dw)}, l2={"W": l2})
        opt_cpu.step(cpu, {"W": dw}, l2={"W": l2})
    assert opt_gpu.state["W"][3] == "gpu"
    np.testing.assert_allclose(to_numpy(gpu["W"]), cpu["W"], rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=2e-6 if dtype == np.float32 else 0)
    np.testing.assert_allclose(to_numpy(opt_gpu.state["W"][1]), opt_cpu.state["W"][1],
                               rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_l2_left_to_the_optimizer_equals_it_in_the_gradient(name, dtype, rng):
    w0 = rng.normal(size=(30, 7)).astype(dtype)
    grads = [rng.normal(size=(30, 7)).astype(dtype) for _ in range(4)]
    in_grad, deferred = {"W": w0.copy()}, {"W": w0.copy()}
    opt_in_grad, opt_deferred = make_optimizer(name, 0.01), make_optimizer(name, 0.01)
    for dw in grads:
        opt_in_grad.step(in_grad, {"W": dw + 0.3 * in_grad["W"]})
        opt_deferred.step(deferred, {"W": dw}, l2={"W": 0.3})
    np.testing.assert_allclose(deferred["W"], in_grad["W"], rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=2e-6 if dtype == np.float32 else 1e-14)
