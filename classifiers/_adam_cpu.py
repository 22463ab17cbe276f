"""One fused pass of Adam over a parameter on the CPU, compiled with Numba.

The NumPy form in ``classifiers.optim.Adam`` walks each array six times and allocates
temporaries; for the small matrices of a mini-batch step that bookkeeping cost a third
of the step. This kernel reads ``w, dw, m, v`` once and writes ``w, m, v`` once, adding the
L2 gradient on the way; ``error_model="numpy"`` drops Python's division checks so that
LLVM vectorizes the loop. It computes exactly the update of the NumPy form (the bias
corrections folded into the step size and epsilon), which stays as its reference in the
tests.
"""
from __future__ import annotations

import numpy as np

from compute.backend import cpu_kernel


@cpu_kernel(fastmath=True, nogil=True, error_model="numpy")
def adam_step(w, dw, m, v, step_size, beta1, beta2, eps_hat, l2):  # pragma: no cover - compiled
    """In place, with ``g = dw + l2 w``: ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
    ``w -= a m / (sqrt(v) + e)``.

    Parameters
    ----------
    w, dw, m, v : 1-D C-contiguous float arrays of one dtype and length
        Flat views of the parameter, its gradient and Adam's two moments.
    step_size : float
        ``learning_rate * sqrt(1 - beta2^t) / (1 - beta1^t)``.
    beta1, beta2 : float
    eps_hat : float
        ``epsilon * sqrt(1 - beta2^t)``.
    l2 : float
        L2 strength whose gradient ``l2 * w`` is added here rather than in a pass of its own.
    """
    T = w.dtype.type  # stay in the arrays' precision: float32 lanes, not float64
    b1, b2, a, e, lam = T(beta1), T(beta2), T(step_size), T(eps_hat), T(l2)
    one_b1, one_b2 = T(1.0 - beta1), T(1.0 - beta2)  # from double, as the array form (1 - 0.999f is 1.3e-5 off)
    for i in range(w.shape[0]):
        g = dw[i] + lam * w[i]
        mi = b1 * m[i] + one_b1 * g
        vi = b2 * v[i] + one_b2 * (g * g)
        m[i] = mi
        v[i] = vi
        w[i] -= a * mi / (np.sqrt(vi) + e)
