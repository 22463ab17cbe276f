"""Datasets and images: the sources a pipeline reads and the one image decoder.

:class:`Dataset` and its errors (:mod:`pipeline.data.dataset`), the readers of each
format (:mod:`~pipeline.data.idx`, :mod:`~pipeline.data.cifar`, :mod:`~pipeline.data.npz`,
:mod:`~pipeline.data.digits`, :mod:`~pipeline.data.folder`), :func:`load_dataset`
(:mod:`pipeline.data.datasets`), downloads (:mod:`pipeline.data.fetch`) and the decoder
training and serving share (:mod:`pipeline.data.images`).
"""
from pipeline.data.dataset import SPLITS, Dataset, DatasetError, DatasetNotFoundError
from pipeline.data.datasets import NAMED_DATASETS, available_datasets, load_dataset
from pipeline.data.fetch import ChecksumError, FetchError, fetch_dataset
from pipeline.data.images import SAFE_FORMATS, ImageError, ImageTooLargeError, UnsupportedImageError, decode_image

__all__ = [
    "NAMED_DATASETS",
    "SAFE_FORMATS",
    "SPLITS",
    "ChecksumError",
    "Dataset",
    "DatasetError",
    "DatasetNotFoundError",
    "FetchError",
    "ImageError",
    "ImageTooLargeError",
    "UnsupportedImageError",
    "available_datasets",
    "decode_image",
    "fetch_dataset",
    "load_dataset",
]
