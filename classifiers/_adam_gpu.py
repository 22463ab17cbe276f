"""One fused pass of Adam over a parameter on the GPU: a CuPy ``ElementwiseKernel``.

The array form in ``classifiers.optim.Adam`` launches about ten kernels per parameter and
step; for the small matrices of a mini-batch step those launches, not the arithmetic,
were the time (the profile is in BENCHMARKS.md, "The estimators on the GPU").
This kernel reads ``w, dw, m, v`` once and writes ``w, m, v`` once, adding the L2
gradient on the way: the update of the array form, which stays as the reference in the
tests. ``1 - beta`` is computed in double precision, as the array form has it (in
float32, ``1 - 0.999f`` is 1.3e-5 off).
"""
from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def _kernel():
    import cupy

    return cupy.ElementwiseKernel(
        "T dw, T step_size, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, T eps_hat, T l2",
        "T w, T m, T v",
        """
        const T g = dw + l2 * w;
        const T mi = beta1 * m + one_minus_beta1 * g;
        const T vi = beta2 * v + one_minus_beta2 * (g * g);
        m = mi;
        v = vi;
        w -= step_size * mi / (sqrt(vi) + eps_hat);
        """,
        "cvpipe_adam_step",
    )


def adam_step_gpu(w, dw, m, v, step_size, beta1, beta2, eps_hat, l2):
    """:func:`classifiers._adam_cpu.adam_step` on the GPU: the same update and scalar
    arguments, in place.

    Parameters
    ----------
    w, dw, m, v : cupy.ndarray, one float dtype and shape (any shape)
        The parameter, its gradient and Adam's two moments.
    step_size, beta1, beta2, eps_hat, l2 : float
        As for :func:`classifiers._adam_cpu.adam_step`.
    """
    T = w.dtype.type  # scalars in the arrays' precision; 1 - beta from double, as the array form
    _kernel()(dw, T(step_size), T(beta1), T(1 - beta1), T(beta2), T(1 - beta2), T(eps_hat), T(l2), w, m, v)
