"""Datasets and images: the sources a pipeline reads and the one image decoder.

:class:`Dataset` (a chunked, lazy source), :class:`ArrayDataset` (one in memory) and
their errors (:mod:`pipeline.data.dataset`); the readers of each format
(:mod:`~pipeline.data.idx`, :mod:`~pipeline.data.cifar`, :mod:`~pipeline.data.npz`,
:mod:`~pipeline.data.digits`, :mod:`~pipeline.data.folder`, :mod:`~pipeline.data.listing`,
:mod:`~pipeline.data.shards`, with :mod:`~pipeline.data.files` for lists of image files);
:func:`open_dataset`, :func:`load_dataset` and :func:`read_task`
(:mod:`pipeline.data.datasets`); downloads (:mod:`pipeline.data.fetch`); and the
decoder training and serving share (:mod:`pipeline.data.images`).
"""
from pipeline.data.dataset import SPLITS, ArrayDataset, Batch, Dataset, DatasetError, DatasetNotFoundError
from pipeline.data.datasets import NAMED_DATASETS, available_datasets, load_dataset, open_dataset, read_task
from pipeline.data.fetch import ChecksumError, FetchError, fetch_dataset
from pipeline.data.images import SAFE_FORMATS, ImageError, ImageTooLargeError, UnsupportedImageError, decode_image

__all__ = [
    "NAMED_DATASETS",
    "ArrayDataset",
    "Batch",
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
    "open_dataset",
    "read_task",
]
