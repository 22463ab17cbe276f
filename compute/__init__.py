"""Ground floor of cvpipe: the array backend, the distance kernels, parameter constraints."""
from compute.backend import (
    DEVICES,
    array_module_of,
    get_array_module,
    gpu_available,
    resolve_device,
    to_device,
    to_numpy,
)
from compute.distances import (
    nearest_neighbors,
    pairwise_distances,
    pairwise_distances_reference,
)
from compute.params import (
    Boolean,
    FloatDtype,
    Interval,
    Satisfies,
    StrOptions,
    TupleOf,
    check_params,
)

__all__ = [
    "DEVICES",
    "array_module_of",
    "get_array_module",
    "gpu_available",
    "resolve_device",
    "to_device",
    "to_numpy",
    "nearest_neighbors",
    "pairwise_distances",
    "pairwise_distances_reference",
    "Boolean",
    "FloatDtype",
    "Interval",
    "Satisfies",
    "StrOptions",
    "TupleOf",
    "check_params",
]
