"""Ground floor of cvpipe: the array backend and the distance kernels."""
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
]
