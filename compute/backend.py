"""Array backend: turn a ``device`` parameter into the array module that serves it.

Every numeric class in cvpipe takes ``device="auto" | "cpu" | "gpu"``. This module is
the one place that decides what that means. There is no global switch: each call
resolves its own device, and CuPy stays optional (imported lazily, only when asked).
"""
from __future__ import annotations

import functools
import logging

import numpy as np

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "gpu")


@functools.lru_cache(maxsize=1)
def _cupy_or_none():
    """Return the ``cupy`` module when it imports and sees a CUDA device, else None."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install
        logger.debug("CuPy unavailable: %s", exc)
        return None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception as exc:  # no driver, no device
        logger.debug("CuPy imported but no CUDA device: %s", exc)
        return None
    return cupy


def gpu_available() -> bool:
    """Whether CuPy is installed and a CUDA device is visible."""
    return _cupy_or_none() is not None


def resolve_device(device: str = "auto") -> str:
    """Resolve ``"auto"`` to ``"gpu"`` or ``"cpu"`` and validate the value.

    Parameters
    ----------
    device : {"auto", "cpu", "gpu"}

    Returns
    -------
    str
        ``"cpu"`` or ``"gpu"``.

    Raises
    ------
    ValueError
        If ``device`` is not one of the three names.
    RuntimeError
        If ``"gpu"`` is asked for and CuPy or a CUDA device is missing.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "auto":
        return "gpu" if gpu_available() else "cpu"
    if device == "gpu" and not gpu_available():
        raise RuntimeError(
            "device='gpu' needs CuPy and a CUDA device; install the 'gpu' extra "
            "(pip install 'cvpipe[gpu]') on a machine with an NVIDIA GPU, or use device='cpu'"
        )
    return device


#: ``device="auto"`` puts a job on the GPU only when one of its steps does at least this many
#: multiply-adds; below it, the CPU. NOT yet measured on a GPU: the figure stands for the
#: observation that the default net and Softmax on Fashion-MNIST (one step of 64 x 784 x 100
#: or 200 x 784 x 10 multiply-adds, a few million) trained at about half the CPU's speed on
#: an H100, where kernel launches and transfers outweigh products that small, and for the
#: usual rule that a GPU needs products of some hundreds of millions of multiply-adds to pay.
GPU_MIN_STEP_WORK = 200_000_000


def choose_device(device: str = "auto", step_work: float | None = None) -> str:
    """Resolve ``device`` for a job whose step costs ``step_work`` multiply-adds.

    ``"cpu"`` and ``"gpu"`` are taken as asked (see :func:`resolve_device`). ``"auto"`` gives
    ``"gpu"`` only when a GPU is available **and** ``step_work`` is at least
    ``GPU_MIN_STEP_WORK`` (or unknown: None); a smaller step runs faster on the CPU.

    Parameters
    ----------
    device : {"auto", "cpu", "gpu"}
    step_work : float, optional
        Multiply-adds of one step of the job (one mini-batch's forward and backward pass
        in training; one chunk of rows in inference).

    Returns
    -------
    str
        ``"cpu"`` or ``"gpu"``.
    """
    resolved = resolve_device(device)
    if device == "auto" and resolved == "gpu" and step_work is not None and step_work < GPU_MIN_STEP_WORK:
        logger.debug("device='auto': %.3g multiply-adds a step is below %.3g: CPU", step_work, GPU_MIN_STEP_WORK)
        return "cpu"
    return resolved


def get_array_module(device: str = "auto", step_work: float | None = None):
    """Return ``numpy`` or ``cupy`` for ``device``.

    Parameters
    ----------
    device : {"auto", "cpu", "gpu"}
    step_work : float, optional
        Multiply-adds of one step of the job: with ``"auto"``, a step below
        ``GPU_MIN_STEP_WORK`` stays on the CPU (see :func:`choose_device`).

    Returns
    -------
    module
        ``numpy`` for the CPU, ``cupy`` for the GPU.
    """
    return _cupy_or_none() if choose_device(device, step_work) == "gpu" else np


def array_module_of(array):
    """Return the module (``numpy`` or ``cupy``) that owns ``array``."""
    cupy = _cupy_or_none()
    if cupy is not None and isinstance(array, cupy.ndarray):
        return cupy
    return np


def to_numpy(array) -> np.ndarray:
    """Return ``array`` as a NumPy array, copying it from the GPU if needed."""
    if hasattr(array, "get") and not isinstance(array, np.ndarray):
        return array.get()
    return np.asarray(array)


def to_device(array, xp, dtype=None):
    """Put ``array`` on the device of module ``xp`` (``numpy`` or ``cupy``).

    Parameters
    ----------
    array : array-like
    xp : module
        ``numpy`` or ``cupy``.
    dtype : dtype, optional
        Cast to this type on the way.
    """
    if xp is np:
        return np.asarray(to_numpy(array), dtype=dtype)
    return xp.asarray(array, dtype=dtype)


# CUDA C names of the float types, and +inf in each (NVRTC has no INFINITY macro).
_CUDA_FLOATS = {
    "float32": ("float", "__int_as_float(0x7f800000)", "#define T_IS_FLOAT\n"),
    "float64": ("double", "__longlong_as_double(0x7ff0000000000000LL)", ""),
}


@functools.lru_cache(maxsize=64)
def raw_kernel(source, name, dtype_name, **defines):
    """A CuPy ``RawKernel`` of CUDA ``source``, built once per (source, dtype, defines).

    Parameters
    ----------
    source : str
        CUDA C++ that uses ``T`` (its float type), ``INF`` (+inf in ``T``),
        ``T_IS_FLOAT`` (defined for float32 only) and the names in ``defines``.
    name : str
        The ``extern "C"`` kernel to launch.
    dtype_name : {"float32", "float64"}
    **defines : int or str
        Further ``#define NAME value`` lines (block sizes, compile-time k).

    Returns
    -------
    cupy.RawKernel
        Compiled on its first launch.
    """
    if dtype_name not in _CUDA_FLOATS:
        raise ValueError(f"GPU kernels take float32 or float64 data, got {dtype_name}")
    import cupy

    ctype, inf, is_float = _CUDA_FLOATS[dtype_name]
    header = f"#define T {ctype}\n#define INF {inf}\n{is_float}" + "".join(
        f"#define {key} {value}\n" for key, value in defines.items())
    return cupy.RawKernel(header + source, name)


def cpu_kernel(**options):
    """``numba.njit(cache=True, **options)``: how every compiled CPU kernel is declared.

    Numba keeps compiled kernels on disk beside the sources, or in ``$NUMBA_CACHE_DIR``,
    or under the user's home. Where it can write none of these (a read-only install run
    by a user without a writable home, ``NUMBA_CACHE_DIR`` unset or unwritable), a plain
    ``cache=True`` makes the kernel's module fail to import, and with it every model
    that uses the kernel. This decorator compiles such a kernel in memory instead (at
    its first call in each process) and logs a warning that says how to get the cache.

    Parameters
    ----------
    **options
        Further ``numba.njit`` options (``nogil``, ``parallel``, ``fastmath``, ...).
    """
    import numba  # only the compiled kernels need it

    def decorate(func):
        try:
            return numba.njit(cache=True, **options)(func)
        except RuntimeError as exc:  # "cannot cache function ...: no locator available for file ..."
            if "cannot cache" not in str(exc):
                raise
            logger.warning("%s.%s compiles in memory at each start: numba has nowhere to cache it (%s); set "
                           "NUMBA_CACHE_DIR to a writable folder", func.__module__, func.__qualname__, exc)
            return numba.njit(**options)(func)

    return decorate
