"""Update rules for parameters kept in name-keyed dicts (cs231n's ``optim.py``).

An optimizer holds its own per-parameter state (velocities, moments) keyed by the
same names as the parameters. ``step`` updates the arrays in place, so a network that
owns ``params`` sees the new values. The arithmetic works on NumPy and CuPy arrays alike.
"""
from __future__ import annotations

import numpy as np

from compute.backend import array_module_of

OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam")


class SGD:
    """Plain gradient descent: ``w -= lr * dw``.

    Parameters
    ----------
    learning_rate : float
    """

    def __init__(self, learning_rate=1e-3):
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
        self.learning_rate = learning_rate
        self.state = {}

    def step(self, params, grads, l2=None):
        """Update every ``params[name]`` in place from ``grads[name]``.

        Parameters
        ----------
        params, grads : dict of str -> ndarray
            Same keys and shapes.
        l2 : dict of str -> float, optional
            L2 strengths whose gradient ``l2[name] * params[name]`` is still to be added to
            ``grads[name]``: the update is the one for ``grads[name] + l2[name] * params[name]``.
            Leaving the term to the optimizer lets the fused Adam (CPU or GPU) add it in its
            single pass instead of a separate pass over the weights.
        """
        l2 = l2 or {}
        for name, grad in grads.items():
            self._update(name, params[name], grad, l2.get(name, 0.0))

    def _update(self, name, w, dw, l2):
        self._apply(name, w, dw + l2 * w if l2 else dw)

    def _apply(self, name, w, dw):
        """The update rule for a gradient that already holds every term."""

        w -= self.learning_rate * dw


class Momentum(SGD):
    """Heavy-ball momentum: ``v = mu v - lr dw; w += v``."""

    def __init__(self, learning_rate=1e-3, momentum=0.9):
        super().__init__(learning_rate)
        self.momentum = momentum

    def _velocity(self, name, w, dw):
        """Advance the velocity of ``name`` in place (zero before the first step) and return it."""
        v = self.state.get(name)
        if v is None:
            v = self.state[name] = array_module_of(w).zeros_like(w)
        v *= self.momentum
        v -= self.learning_rate * dw
        return v

    def _apply(self, name, w, dw):
        w += self._velocity(name, w, dw)


class Nesterov(Momentum):
    """Nesterov momentum in the cs231n form: ``w += -mu v_prev + (1 + mu) v``."""

    def _apply(self, name, w, dw):
        v_prev = self.state[name].copy() if name in self.state else None
        v = self._velocity(name, w, dw)
        w += (1 + self.momentum) * v
        if v_prev is not None:
            w -= self.momentum * v_prev


class RMSProp(SGD):
    """RMSProp: a running mean of squared gradients scales each step."""

    def __init__(self, learning_rate=1e-3, decay_rate=0.99, epsilon=1e-8):
        super().__init__(learning_rate)
        self.decay_rate, self.epsilon = decay_rate, epsilon

    def _apply(self, name, w, dw):
        cache = self.state.get(name)
        if cache is None:
            cache = self.state[name] = array_module_of(w).zeros_like(w)
        cache *= self.decay_rate
        cache += (1 - self.decay_rate) * (dw * dw)
        denom = cache ** 0.5
        denom += self.epsilon
        w -= self.learning_rate * dw / denom


class Adam(SGD):
    """Adam with bias correction (Kingma and Ba, 2015).

    One fused pass does the update: compiled with Numba on the CPU
    (``classifiers._adam_cpu``), an elementwise kernel on the GPU (``classifiers._adam_gpu``).
    The array form below is their reference.

    The moments are updated in place and the bias corrections are folded into the
    step size and epsilon (``lr * c2 / c1 * m / (sqrt(v) + eps * c2)`` with
    ``c1 = 1 - beta1^t``, ``c2 = sqrt(1 - beta2^t)``): the same update as the textbook
    form, without the ``m_hat``/``v_hat`` temporaries.
    """

    def __init__(self, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8):
        super().__init__(learning_rate)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon

    def _update(self, name, w, dw, l2):
        state = self.state.get(name)
        if state is None:
            xp = array_module_of(w)
            fused = "cpu" if _fused_cpu(w) else "gpu" if xp is not np and w.dtype.kind == "f" else None
            state = self.state[name] = [xp.zeros_like(w), xp.zeros_like(w), 0, fused]
        m, v, t, fused = state
        t = state[2] = t + 1
        c1, c2 = 1 - self.beta1 ** t, (1 - self.beta2 ** t) ** 0.5
        step_size, eps_hat = self.learning_rate * c2 / c1, self.epsilon * c2
        if fused and dw.dtype == w.dtype and dw.shape == w.shape:
            if fused == "gpu":
                from classifiers._adam_gpu import adam_step_gpu

                adam_step_gpu(w, dw, m, v, step_size, self.beta1, self.beta2, eps_hat, l2)
                return
            if dw.flags.c_contiguous:  # the CPU pass walks flat views
                from classifiers._adam_cpu import adam_step  # compiled on first use

                adam_step(w.reshape(-1), dw.reshape(-1), m.reshape(-1), v.reshape(-1),
                          step_size, self.beta1, self.beta2, eps_hat, l2)
                return
        if l2:
            dw = dw + l2 * w
        m *= self.beta1
        m += (1 - self.beta1) * dw
        v *= self.beta2
        v += (1 - self.beta2) * (dw * dw)
        denom = v ** 0.5
        denom += eps_hat
        step = m / denom
        step *= step_size
        w -= step


def _fused_cpu(w):
    """Whether the fused CPU kernel can update ``w`` (a C-contiguous float NumPy array);
    its gradient is checked at each step."""
    return isinstance(w, np.ndarray) and w.flags.c_contiguous and w.dtype.kind == "f"


_BY_NAME = {"sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "rmsprop": RMSProp, "adam": Adam}


def make_optimizer(name, learning_rate):
    """The optimizer called ``name`` (one of ``OPTIMIZERS``) with its default settings."""
    if name not in _BY_NAME:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    return _BY_NAME[name](learning_rate)


def set_learning_rate(optimizer, learning_rate):
    """Change the step size (learning-rate decay between epochs)."""
    optimizer.learning_rate = learning_rate
